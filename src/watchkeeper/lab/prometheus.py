"""The lab's signals through real Prometheus and Alertmanager, when they are installed.

* :func:`prometheus_config` scrapes every lab service and instance (from ``lab.json``) every 2–5 s
  and evaluates :func:`alert_rules` — the SLO rules of :data:`watchkeeper.lab.signals.RULES`,
  same names, thresholds and severities, written in PromQL — at the same interval.
* :func:`alertmanager_config` sends every alert and its resolution to Watchkeeper's
  ``/api/v1/ingest/alertmanager`` with a bearer token, after a lab-short group wait.
* :func:`start` runs both (Prometheus alone when Alertmanager is missing) bound to 127.0.0.1 on
  free ports, with their storage in the lab directory; :meth:`Stack.stop` stops them.

The config builders are shared with the end-to-end tests (``tests/e2e/servers.py``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from watchkeeper.lab.signals import HOST, RULES, Rule, lab_ports

JOB = "watchkeeper-lab"
PROMETHEUS = "prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# -- configuration ------------------------------------------------------------------------------


def read_lab(directory: Path | str) -> dict[str, list[str]]:
    """service -> ``["127.0.0.1:port", ...]`` (every instance) of the lab running in ``directory``."""
    return {name: [f"{HOST}:{p}" for p in ports] for name, ports in lab_ports(directory).items()}


def static_jobs(jobs: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """One scrape job per name, each with its ``host:port`` targets."""
    return [{"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in jobs.items()]


def lab_job(targets: Mapping[str, Sequence[str]], job: str = JOB, targets_file: Path | None = None) -> dict[str, Any]:
    """One job scraping every service's instances, each labelled ``service``. The lab's own
    metrics carry the same ``service`` label, hence ``honor_labels``. With ``targets_file`` the
    targets are read from that ``file_sd`` JSON file, which the lab rewrites when it scales."""
    if targets_file is not None:
        return {"job_name": job, "honor_labels": True,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}]}
    return {
        "job_name": job, "honor_labels": True,
        "static_configs": [{"targets": list(t), "labels": {"service": s}} for s, t in sorted(targets.items())],
    }


def prometheus_config(
    scrape_configs: Sequence[Mapping[str, Any]], *, interval: str = "2s", rule_files: Sequence[str | Path] = (),
    alertmanager: str | None = None,
) -> dict[str, Any]:
    """A whole ``prometheus.yml``: scrape and evaluate every ``interval``, alert to ``alertmanager``."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(f) for f in rule_files],
        "scrape_configs": [dict(c) for c in scrape_configs],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def _seconds(interval: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if interval.endswith(unit) and interval[: -len(unit)].isdigit():
            return int(interval[: -len(unit)]) * units[unit]
    raise ValueError(f"not an interval like '2s': {interval!r}")


def _promql(rule: Rule, job: str, window: str, growth_window: str) -> str:
    sel = f'job="{job}"'
    t = f"{rule.threshold:g}"
    exprs = {
        "ServiceDown": f"up{{{sel}}} == 0",
        "HighErrorRatio": f'sum by (service) (rate(lab_requests_total{{{sel},status=~"5.."}}[{window}]))'
        f" / sum by (service) (rate(lab_requests_total{{{sel}}}[{window}])) > {t}",
        "HighLatency": "histogram_quantile(0.9, sum by (service, le) "
        f"(rate(lab_request_duration_seconds_bucket{{{sel}}}[{window}]))) > {t}",
        "HighCpu": f"max by (service) (rate(process_cpu_seconds_total{{{sel}}}[{window}])) > {t}",
        "MemoryGrowing": f"max by (service) (deriv(process_resident_memory_bytes{{{sel}}}[{growth_window}])) * 60"
        f" > {rule.threshold:.0f}",
        "MemoryHigh": f"max by (service) (process_resident_memory_bytes{{{sel}}}) > {rule.threshold:.0f}",
        "DependencyErrors": f"sum by (service) (rate(lab_dependency_errors_total{{{sel}}}[{window}])) > {t}",
        "DiskAlmostFull": f"max by (service) (lab_disk_used_bytes{{{sel}}} / lab_disk_capacity_bytes{{{sel}}})"
        f" > {t}",
    }
    if rule.alert not in exprs:
        raise ValueError(f"no PromQL for rule {rule.alert}")
    if rule.alert == "ServiceDown":  # a down service exports no version
        return exprs[rule.alert]
    # The alert carries the service's configuration version (label ``version``), as the self-scrape
    # monitor's do: a runbook tells a bad deploy from a crash by it. topk keeps one version per
    # service while two instances disagree.
    return (f"({exprs[rule.alert]}) * on (service) group_left (version) "
            f"topk by (service) (1, lab_config_version_info{{{sel}}})")


_SUMMARIES = {
    "ServiceDown": "{{ $labels.service }} is down ({{ $labels.instance }} does not answer scrapes)",
    "HighErrorRatio": "{{ $labels.service }}: {{ $value | humanizePercentage }} of requests fail (SLO 5%)",
    "HighLatency": "{{ $labels.service }}: p90 latency {{ $value | humanize }}s (SLO 1s)",
    "HighCpu": "{{ $labels.service }}: CPU {{ $value | humanize }} cores (limit 0.3)",
    "MemoryGrowing": "{{ $labels.service }}: RSS grows {{ $value | humanize1024 }}B/min",
    "MemoryHigh": "{{ $labels.service }}: RSS {{ $value | humanize1024 }}B (limit 250 MiB)",
    "DependencyErrors": "{{ $labels.service }}: {{ $value | humanize }} failed calls/s to its dependencies",
    "DiskAlmostFull": "{{ $labels.service }}: disk {{ $value | humanizePercentage }} full",
}


def alert_rules(
    *, interval: str = "2s", job: str = JOB, rules: Sequence[Rule] = RULES, growth_window: str = "20s",
) -> dict[str, Any]:
    """The rules file: :data:`~watchkeeper.lab.signals.RULES` in PromQL. Rates look back 4 scrape
    intervals (at least 10 s); a rule "for N scrapes" waits ``for: (N-1) × interval``, as the
    self-scrape monitor fires on the N-th breaching scrape.

    >>> r = alert_rules(interval="2s")["groups"][0]["rules"]
    >>> [(x["alert"], x["for"], x["labels"]["severity"]) for x in r][:2]
    [('ServiceDown', '0s', 'critical'), ('HighErrorRatio', '2s', 'error')]
    >>> r[1]["expr"].split(" / ")[0]
    '(sum by (service) (rate(lab_requests_total{job="watchkeeper-lab",status=~"5.."}[10s]))'
    """
    step = _seconds(interval)
    window = f"{max(10, round(4 * step))}s"
    out = []
    for rule in rules:
        doc: dict[str, Any] = {
            "alert": rule.alert,
            "expr": _promql(rule, job, window, growth_window),
            "for": f"{round((rule.for_steps - 1) * step)}s",
        }
        if rule.clear_steps > 1:  # resolves on the clear_steps-th calm scrape, as the self-scrape monitor
            doc["keep_firing_for"] = f"{round((rule.clear_steps - 1) * step)}s"
        out.append(doc | {"labels": {"severity": rule.severity.value},
                          "annotations": {"summary": _SUMMARIES.get(rule.alert, rule.alert), "rule": rule.text}})
    return {"groups": [{"name": "watchkeeper-lab-slo", "interval": interval, "rules": out}]}


def alertmanager_config(
    webhook_url: str, *, bearer_token: str | None = None, group_by: Sequence[str] = ("alertname", "service"),
    group_wait: str = "1s", group_interval: str = "1s", repeat_interval: str = "1h",
) -> dict[str, Any]:
    """An ``alertmanager.yml`` sending every alert, and its resolution, to one webhook.

    >>> c = alertmanager_config("http://127.0.0.1:8000/api/v1/ingest/alertmanager", bearer_token="t0k")
    >>> c["receivers"][0]["webhook_configs"][0]["http_config"]
    {'authorization': {'type': 'Bearer', 'credentials': 't0k'}}
    """
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
    if bearer_token is not None:
        webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
    return {
        "route": {"receiver": "watchkeeper", "group_by": list(group_by), "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": repeat_interval},
        "receivers": [{"name": "watchkeeper", "webhook_configs": [webhook]}],
    }


@dataclass(frozen=True)
class ConfigFiles:
    prometheus: Path
    rules: Path
    alertmanager: Path | None


def write_configs(
    directory: Path, targets: Mapping[str, Sequence[str]], *, interval: str = "2s",
    alertmanager: str | None = None, webhook_url: str | None = None, bearer_token: str | None = None,
    targets_file: Path | None = None,
) -> ConfigFiles:
    """Write ``prometheus.yml`` and ``rules.yml`` (and ``alertmanager.yml`` when a webhook is given)."""
    step = _seconds(interval)
    if not 1.0 <= step <= 60.0:
        raise ValueError(f"the scrape interval must be between 1s and 60s, not {interval}")
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / "rules.yml"
    rules.write_text(yaml.safe_dump(alert_rules(interval=interval), sort_keys=False))
    prom = directory / "prometheus.yml"
    config = prometheus_config([lab_job(targets, targets_file=targets_file)], interval=interval,
                               rule_files=[rules.resolve()], alertmanager=alertmanager)
    prom.write_text(yaml.safe_dump(config, sort_keys=False))
    am = None
    if webhook_url is not None:
        am = directory / "alertmanager.yml"
        am.write_text(yaml.safe_dump(alertmanager_config(webhook_url, bearer_token=bearer_token), sort_keys=False))
    return ConfigFiles(prom, rules, am)


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it; a tiny race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def which(program: str) -> str | None:
    """The executable for ``program`` (a path or a name on PATH), or None."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program)


def installed() -> bool:
    """Whether the Prometheus path is available (Alertmanager is optional)."""
    return which(PROMETHEUS) is not None


@dataclass
class Daemon:
    """One server process in its own process group, logging to ``<workdir>/<name>.log``."""

    name: str
    argv: list[str]
    workdir: Path
    port: int
    ready_path: str = "/-/ready"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = READY_TIMEOUT) -> Daemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.stop()
                    raise RuntimeError(f"{self.name} exited with code {code} before it was ready\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} was not ready after {timeout:.0f}s\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the process group (:func:`stop_group`); always close the log."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                stop_group(proc, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def detach(self) -> subprocess.Popen[bytes] | None:
        """Let the process outlive this object (``lab up`` returns while it runs): close our copy of
        its log and hand over the process, which the caller now stops."""
        proc, self.proc = self.proc, None
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"---- {self.name}: no log ({exc})"
        return f"---- {self.name} ({self.log_path}):\n" + "\n".join(text.splitlines()[-lines:])


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``), SIGKILL it after
    ``timeout``, reap the leader; then SIGKILL whatever of the group outlived it."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    _signal_group(proc, signal.SIGKILL)


@dataclass
class Stack:
    """Prometheus and (when installed) Alertmanager, running for one lab."""

    prometheus: Daemon
    alertmanager: Daemon | None
    files: ConfigFiles

    def stop(self) -> None:
        for daemon in (self.alertmanager, self.prometheus):
            if daemon is not None:
                daemon.stop()

    def logs(self) -> str:
        return "\n".join(d.log_tail() for d in (self.prometheus, self.alertmanager) if d is not None)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start(
    directory: Path | str, *, targets: Mapping[str, Sequence[str]] | None = None, interval: str = "2s",
    webhook_url: str | None = None, bearer_token: str | None = None, prometheus: str = PROMETHEUS,
    alertmanager: str = ALERTMANAGER, timeout: float = READY_TIMEOUT, targets_file: Path | None = None,
) -> Stack:
    """Run Prometheus (and Alertmanager when installed and ``webhook_url`` is given) for the lab in
    ``directory``: configs and storage under ``<directory>/prometheus`` and ``/alertmanager``."""
    base = Path(directory)
    targets = read_lab(base) if targets is None else targets
    prom_bin = which(prometheus)
    if prom_bin is None:
        raise FileNotFoundError(f"{prometheus} is not installed (apt-get install prometheus)")
    am_bin = which(alertmanager) if webhook_url is not None else None
    am_port = free_port() if am_bin is not None else None
    prom_dir, am_dir = base / "prometheus", base / "alertmanager"
    files = write_configs(prom_dir, targets, interval=interval,
                          alertmanager=None if am_port is None else f"{HOST}:{am_port}",
                          webhook_url=webhook_url if am_bin is not None else None, bearer_token=bearer_token,
                          targets_file=targets_file)
    am: Daemon | None = None
    if am_bin is not None and am_port is not None and files.alertmanager is not None:
        am = Daemon("alertmanager", [am_bin, f"--config.file={files.alertmanager.resolve()}",
                                     f"--storage.path={(am_dir / 'data').resolve()}",
                                     f"--web.listen-address={HOST}:{am_port}", "--cluster.listen-address="],
                    am_dir, am_port).start(timeout)
    port = free_port()
    try:
        prom = Daemon("prometheus", [prom_bin, f"--config.file={files.prometheus.resolve()}",
                                     f"--storage.tsdb.path={(prom_dir / 'data').resolve()}",
                                     f"--web.listen-address={HOST}:{port}"], prom_dir, port).start(timeout)
    except BaseException:
        if am is not None:
            am.stop()
        raise
    return Stack(prom, am, files)
