"""The Prometheus path's generated files: valid for promtool/amtool, and the rules behave like the
self-scrape monitor's (``promtool test rules`` on synthetic series)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import need
from e2e.servers import wait_until
from lab.test_signals import FakeService
from watchkeeper.lab.prometheus import JOB, alert_rules, read_lab, start, write_configs
from watchkeeper.lab.signals import RULES

TARGETS = {"frontend": ["127.0.0.1:4001"], "cache": ["127.0.0.1:4002", "127.0.0.1:4003"]}
WEBHOOK = "http://127.0.0.1:8000/api/v1/ingest/alertmanager"


def tool(name: str) -> str:
    path = shutil.which(name)
    package = "prometheus-alertmanager" if name == "amtool" else "prometheus"
    need(path is not None, f"{name} is missing (apt-get install {package})")
    assert path is not None
    return path


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_generated_files(tmp_path: Path) -> None:
    files = write_configs(tmp_path, TARGETS, interval="3s", alertmanager="127.0.0.1:9093", webhook_url=WEBHOOK,
                          bearer_token="s3cret")
    prom = yaml.safe_load(files.prometheus.read_text())
    assert prom["global"] == {"scrape_interval": "3s", "scrape_timeout": "3s", "evaluation_interval": "3s"}
    job = prom["scrape_configs"][0]
    assert job["job_name"] == JOB and job["honor_labels"] is True
    assert {c["labels"]["service"]: c["targets"] for c in job["static_configs"]} == TARGETS
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert prom["rule_files"] == [str(files.rules.resolve())]

    rules = yaml.safe_load(files.rules.read_text())["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [r.alert for r in RULES]
    for generated, rule in zip(rules, RULES, strict=True):
        assert generated["labels"] == {"severity": rule.severity.value}
        assert "{{ $labels.service }}" in generated["annotations"]["summary"]
        assert generated["for"] == f"{(rule.for_steps - 1) * 3}s"
        assert generated.get("keep_firing_for", "0s") == f"{(rule.clear_steps - 1) * 3}s"
    assert "[12s]" in rules[1]["expr"]  # rates over 4 scrapes
    assert all(("group_left (version)" in r["expr"]) == (r["alert"] != "ServiceDown") for r in rules)

    assert files.alertmanager is not None
    am = yaml.safe_load(files.alertmanager.read_text())
    hook = am["receivers"][0]["webhook_configs"][0]
    assert hook == {"url": WEBHOOK, "send_resolved": True,
                    "http_config": {"authorization": {"type": "Bearer", "credentials": "s3cret"}}}
    assert am["route"]["group_wait"] == "1s" and am["route"]["receiver"] == am["receivers"][0]["name"]


@pytest.mark.parametrize("interval", ["500ms", "2m", "fast"])
def test_bad_interval_is_a_clear_error(tmp_path: Path, interval: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        write_configs(tmp_path, TARGETS, interval=interval)


def test_targets_from_lab_json(tmp_path: Path) -> None:
    lab = {"started_at": "2026-11-23T10:00:00+00:00", "loadgen": {"pid": 9, "rps": 20.0},
           "services": {"frontend": {"port": 4001, "pid": 1, "deps": ["cache"], "version": "v1",
                                     "instances": [{"port": 4001, "pid": 1}]},
                        "cache": {"port": 4002, "pid": 2, "deps": [], "version": "v1",
                                  "instances": [{"port": 4002, "pid": 2}, {"port": 4003, "pid": 3}]}}}
    (tmp_path / "lab.json").write_text(json.dumps(lab))
    assert read_lab(tmp_path) == TARGETS
    (tmp_path / "lab.json").write_text("{}")
    with pytest.raises(ValueError, match="cannot read the lab's services"):
        read_lab(tmp_path)


def test_promtool_and_amtool_accept_the_generated_files(tmp_path: Path) -> None:
    promtool = tool("promtool")
    files = write_configs(tmp_path, TARGETS, interval="2s", alertmanager="127.0.0.1:9093", webhook_url=WEBHOOK,
                          bearer_token="s3cret")
    assert "SUCCESS" in run([promtool, "check", "config", str(files.prometheus)], tmp_path)
    assert f"SUCCESS: {len(RULES)} rules found" in run([promtool, "check", "rules", str(files.rules)], tmp_path)
    assert files.alertmanager is not None
    assert "SUCCESS" in run([tool("amtool"), "check-config", str(files.alertmanager)], tmp_path)


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f'{name}{{job="{JOB}",service="api"{labels}}}', "values": values}


def test_rules_fire_on_synthetic_series(tmp_path: Path) -> None:
    """``promtool test rules``: each rule fires on its symptom, and only then."""
    promtool = tool("promtool")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(alert_rules(interval="2s")))
    mib = 1024 * 1024
    series = [
        # 20 req/s of 200s; from t=40s also 10 req/s of 500s (a third fail).
        _series("lab_requests_total", ',status="200"', "0+40x60"),
        _series("lab_requests_total", ',status="500"', "0x20 20+20x40"),
        _series("up", ',instance="127.0.0.1:4001"', "1x30 0x30"),
        # RSS: flat 40 MiB for 60 s, then +4 MiB every 2 s (120 MiB/min).
        _series("process_resident_memory_bytes", "", f"{40 * mib}x30 {44 * mib}+{4 * mib}x30"),
        _series("lab_disk_used_bytes", "", f"{5 * mib}x40 {48 * mib}x20"),
        _series("lab_disk_capacity_bytes", "", f"{50 * mib}x60"),
        _series("process_cpu_seconds_total", "", "0+0.1x60"),
        _series("lab_dependency_errors_total", ',dependency="store"', "0x30 10+10x30"),  # 5/s from 60 s
        _series("lab_config_version_info", ',version="v2"', "1x60"),
    ]

    def expect(at: str, alert: str, *alerts: dict[str, object]) -> dict[str, object]:
        return {"eval_time": at, "alertname": alert, "exp_alerts": list(alerts)}

    def firing(annotations: dict[str, str], **labels: str) -> dict[str, object]:
        if labels.get("severity") != "critical":  # every alert but ServiceDown names the version
            labels["version"] = "v2"
        return {"exp_labels": {"service": "api", **labels}, "exp_annotations": annotations}

    summary = {r["alert"]: r["annotations"] for r in alert_rules(interval="2s")["groups"][0]["rules"]}

    def ann(alert: str, text: str) -> dict[str, str]:
        return {"summary": text, "rule": summary[alert]["rule"]}

    tests = [
        expect("30s", "HighErrorRatio"),
        expect("60s", "HighErrorRatio", firing(ann("HighErrorRatio", "api: 33.33% of requests fail (SLO 5%)"),
                                               severity="error")),
        expect("50s", "ServiceDown"),
        expect("62s", "ServiceDown", firing(
            ann("ServiceDown", "api is down (127.0.0.1:4001 does not answer scrapes)"), severity="critical",
            instance="127.0.0.1:4001", job=JOB)),
        expect("50s", "MemoryGrowing"),
        expect("90s", "MemoryGrowing", firing(ann("MemoryGrowing", "api: RSS grows 120MiB/min"), severity="warning")),
        expect("70s", "DiskAlmostFull"),
        expect("90s", "DiskAlmostFull", firing(ann("DiskAlmostFull", "api: disk 96% full"), severity="error")),
        expect("50s", "DependencyErrors"),
        expect("90s", "DependencyErrors", firing(
            ann("DependencyErrors", "api: 5 failed calls/s to its dependencies"), severity="warning")),
        expect("90s", "HighCpu"),
        expect("90s", "HighLatency"),
    ]
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "2s",
        "tests": [{"interval": "2s", "input_series": series, "alert_rule_test": tests}],
    }))
    assert "SUCCESS" in run([promtool, "test", "rules", "test.yml"], tmp_path)


def test_start_without_alertmanager_runs_prometheus_alone(tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    fake = FakeService("cache", seed=9).start()
    lab = {"services": {"cache": {"port": fake.port, "pid": 1, "deps": [], "version": "v1", "instances": []}}}
    (tmp_path / "lab.json").write_text(json.dumps(lab))
    try:
        stack = start(tmp_path, interval="1s", webhook_url=WEBHOOK, prometheus=prometheus,
                      alertmanager=str(tmp_path / "no-alertmanager"))
        try:
            assert stack.alertmanager is None and stack.files.alertmanager is None
            assert (tmp_path / "prometheus" / "data").is_dir()
            pid = stack.prometheus.proc.pid if stack.prometheus.proc else 0

            def rules_evaluated() -> list[str]:
                with httpx.Client(timeout=2.0, trust_env=False) as client:
                    groups = client.get(f"{stack.prometheus.url}/api/v1/rules").json()["data"]["groups"]
                return [r["name"] for g in groups for r in g["rules"] if r["health"] == "ok"]

            names = wait_until(lambda: len(rules_evaluated()) == len(RULES) and rules_evaluated(),
                               what="Prometheus evaluating every rule", timeout=30, logs=stack.logs)
            assert sorted(names) == sorted(r.alert for r in RULES)
        finally:
            stack.stop()
        assert stack.prometheus.proc is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        fake.stop()


def test_start_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the lab's services"):
        start(tmp_path)
    with pytest.raises(FileNotFoundError, match="not installed"):
        start(tmp_path, targets=TARGETS, prometheus=str(tmp_path / "no-prometheus"))
