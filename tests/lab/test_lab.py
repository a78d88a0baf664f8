"""The real lab: processes on 127.0.0.1, every fault kind observed through the services' HTTP and
metrics, repaired by its remediation, ground truth in faults.jsonl, and no process left behind."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.execute.executors import CommandExecutor, StepContext
from watchkeeper.execute.runbook import load_catalog
from watchkeeper.lab import FAULTS, SERVICES, Lab, LabError
from watchkeeper.lab.control import shipped_runbooks
from watchkeeper.lab.net import request

CAPACITY_MB = 4.0
MB = 1024 * 1024


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("lab"))
    the_lab.up(rps=10, capacity_mb=CAPACITY_MB, monitoring=False)
    try:
        yield the_lab
    finally:
        the_lab.down()


def metric(base_url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none)."""
    status, body = request("GET", base_url + "/metrics")
    assert status == 200
    total = 0.0
    for line in body.decode().splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        have = dict(item.split("=", 1) for item in label_text.rstrip("}").split(",") if "=" in item)
        if all(have.get(k) == f'"{v}"' for k, v in labels.items()):
            total += float(value)
    return total


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.1)


def ground_truth(lab: Lab, fid: str) -> dict[str, Any]:
    return next(f for f in lab.faults() if f["id"] == fid)


def get(url: str) -> int:
    return request("GET", url + "/", timeout=10.0)[0]


def test_up_writes_the_contract_files_and_every_service_answers(lab: Lab) -> None:
    state = json.loads((lab.dir / "lab.json").read_text())
    assert set(state["services"]) == set(SERVICES)
    assert state["loadgen"]["rps"] == 10.0
    for entry in state["services"].values():
        assert entry["instances"][0] == {"port": entry["port"], "pid": entry["pid"]}
        assert entry["version"] == "v1"
    topology = json.loads((lab.dir / "topology.json").read_text())
    assert ["frontend", "checkout"] in topology["edges"]
    assert state["services"]["catalog"]["deps"] == ["cache", "store"]
    for name, url in lab.endpoints().items():
        assert url.startswith("http://127.0.0.1:")
        health = json.loads(request("GET", url + "/healthz")[1])
        assert health["service"] == name and health["faults"] == []
    front = lab.endpoints()["frontend"]
    wait_for(lambda: metric(front, "lab_requests_total", service="frontend", status="200") > 5,
             what="load generator traffic")
    text = request("GET", front + "/metrics")[1].decode()
    for name in ("lab_request_duration_seconds_bucket", "lab_dependency_errors_total", "lab_disk_used_bytes",
                 "lab_disk_capacity_bytes", 'lab_config_version_info{service="frontend",version="v1"} 1.0',
                 "process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert name in text
    assert metric(front, "lab_disk_capacity_bytes") == CAPACITY_MB * MB
    log = [json.loads(line) for line in (lab.dir / "logs" / "frontend.log").read_text().splitlines()]
    assert any(r["message"].startswith("GET / 200 ") and r["level"] == "INFO" for r in log)
    assert list(log[-1])[:4] == ["timestamp", "level", "service", "message"]  # JSON lines, ISO timestamp first
    assert log[-1]["timestamp"][:4].isdigit() and "T" in log[-1]["timestamp"] and log[-1]["service"] == "frontend"


def test_up_twice_and_bad_requests_are_refused_with_a_sentence(lab: Lab) -> None:
    with pytest.raises(LabError, match="already up"):
        lab.up()
    runner = CliRunner()
    again = runner.invoke(app, ["lab", "up", "--dir", str(lab.dir)])
    assert again.exit_code == 2 and "already up" in again.output
    unknown = runner.invoke(app, ["lab", "inject", "meteor", "--target", "checkout", "--dir", str(lab.dir)])
    assert unknown.exit_code == 2
    assert "unknown fault 'meteor'" in unknown.output and all(k in unknown.output for k in FAULTS)
    nowhere = runner.invoke(app, ["lab", "inject", "hang", "--target", "mars", "--dir", str(lab.dir)])
    assert nowhere.exit_code == 2 and "unknown service 'mars'" in nowhere.output and "checkout" in nowhere.output
    leaf = runner.invoke(app, ["lab", "inject", "dependency_outage", "--target", "store", "--dir", str(lab.dir)])
    assert leaf.exit_code == 2 and "no dependencies" in leaf.output
    assert lab.open_faults() == []  # nothing was recorded for refused injections


def test_crash_kills_the_process_and_restart_brings_it_back(lab: Lab) -> None:
    url = lab.endpoints()["payment"]
    truth = lab.inject("crash", "payment")
    assert truth["fault"] == "crash" and truth["target"] == "payment" and truth["ended_at"] is None
    with pytest.raises(ConnectionRefusedError):
        request("GET", url + "/healthz")
    checkout = lab.endpoints()["checkout"]
    assert get(checkout) == 502  # its caller fails …
    assert metric(checkout, "lab_dependency_errors_total", dependency="payment") > 0  # … and says why
    assert lab.status()["services"]["payment"]["up"] is False
    assert lab.check("payment")
    # restarting the wrong service of the cascade would not pass verification: its dependency is down
    assert any("payment" in p for p in lab.check("checkout")) and any("payment" in p for p in lab.check("frontend"))
    assert lab.check("catalog") == []  # it does not depend on payment
    with pytest.raises(LabError, match="down"):
        lab.inject("hang", "payment")
    result = lab.restart("payment")
    assert result["ended"] == [truth["id"]]
    assert get(url) == 200
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"
    assert lab.check("payment") == []


def test_hang_slows_answers_and_scaling_out_relieves_it(lab: Lab) -> None:
    url = lab.endpoints()["cache"]
    slow_before = metric(url, "lab_request_duration_seconds_count") - metric(
        url, "lab_request_duration_seconds_bucket", le="0.5")
    truth = lab.inject("hang", "cache", delay_s=0.8)
    assert truth["detail"]["delay_s"] == 0.8
    started = time.monotonic()
    assert get(url) == 200
    assert time.monotonic() - started >= 0.7  # the injected delay itself, not a speed target
    wait_for(lambda: metric(url, "lab_request_duration_seconds_count")
             - metric(url, "lab_request_duration_seconds_bucket", le="0.5") > slow_before + 3,
             what="slow requests in the latency histogram")
    result = lab.scale("cache")
    assert result["ended"] == [truth["id"]] and result["instances"] == 2
    state = json.loads((lab.dir / "lab.json").read_text())
    ports = [i["port"] for i in state["services"]["cache"]["instances"]]
    assert len(ports) == 2 and result["instance"]["port"] in ports
    new = f"http://127.0.0.1:{result['instance']['port']}"
    wait_for(lambda: metric(new, "lab_requests_total", service="cache", status="200") > 0,
             what="callers sending traffic to the new instance")
    assert lab.check("cache") == []
    assert ground_truth(lab, truth["id"])["ended_by"] == "scale"


def test_error_burst_answers_500_and_expires_by_itself(lab: Lab) -> None:
    url = lab.endpoints()["store"]
    truth = lab.inject("error_burst", "store", duration_s=2.0, ratio=1.0)
    assert get(url) == 500
    assert metric(url, "lab_requests_total", service="store", status="500") > 0
    wait_for(lambda: ground_truth(lab, truth["id"]).get("ended_by") == "expiry", what="expiry")
    assert get(url) == 200


def test_error_burst_ends_with_a_restart(lab: Lab) -> None:
    url = lab.endpoints()["store"]
    truth = lab.inject("error_burst", "store", ratio=1.0)
    assert get(url) == 500
    lab.restart("store")
    assert get(url) == 200
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"


def test_cpu_hog_burns_cpu_until_restart(lab: Lab) -> None:
    url = lab.endpoints()["catalog"]

    def cpu_over(seconds: float) -> float:
        before = metric(url, "process_cpu_seconds_total")
        time.sleep(seconds)
        return metric(url, "process_cpu_seconds_total") - before

    idle = cpu_over(1.0)
    truth = lab.inject("cpu_hog", "catalog")
    try:
        # on a shared machine the hog gets what the scheduler gives it: wait until it has burnt clearly
        # more than the idle service would have (rather than asking for a share of a core in one second)
        start, since = metric(url, "process_cpu_seconds_total"), time.monotonic()

        def burnt() -> float | None:
            extra = metric(url, "process_cpu_seconds_total") - start - idle * (time.monotonic() - since)
            return extra if extra > 0.5 else None

        wait_for(burnt, timeout=30, what="a core's worth of hashing")
        busy = (metric(url, "process_cpu_seconds_total") - start) / (time.monotonic() - since)
    finally:
        lab.restart("catalog")
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"
    assert cpu_over(2.0) / 2.0 < busy


def test_memory_leak_grows_rss_until_restart(lab: Lab) -> None:
    url = lab.endpoints()["frontend"]
    before = metric(url, "process_resident_memory_bytes")
    truth = lab.inject("memory_leak", "frontend", rate_mb_s=20.0, max_mb=60.0)
    wait_for(lambda: metric(url, "process_resident_memory_bytes") > before + 40 * MB, what="RSS growth")
    lab.restart("frontend")
    assert metric(url, "process_resident_memory_bytes") < before + 20 * MB
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"


def test_disk_fill_writes_real_files_until_clear_tmp(lab: Lab) -> None:
    url = lab.endpoints()["cache"]
    truth = lab.inject("disk_fill", "cache")
    capacity = metric(url, "lab_disk_capacity_bytes")
    wait_for(lambda: metric(url, "lab_disk_used_bytes") >= 0.95 * capacity, what="disk filling up")
    files = list((lab.dir / "data" / "cache").glob("fill-*.bin"))
    assert sum(f.stat().st_size for f in files) >= 0.95 * capacity
    lab.restart("cache")  # a restart does not free the disk …
    assert any("full" in p for p in lab.check("cache"))
    assert ground_truth(lab, truth["id"])["ended_at"] is None
    freed = lab.clear_tmp("cache")  # … clearing the temporary files does
    assert freed["freed_bytes"] >= 0.95 * capacity and freed["ended"] == [truth["id"]]
    assert metric(url, "lab_disk_used_bytes") == 0
    assert lab.check("cache") == []


def test_bad_deploy_is_a_change_that_only_a_rollback_undoes(lab: Lab) -> None:
    url = lab.endpoints()["checkout"]
    truth = lab.inject("bad_deploy", "checkout")
    assert metric(url, "lab_config_version_info", version="v2") == 1
    deploy = lab.changes()[-1]
    assert deploy["service"] == "checkout" and deploy["kind"] == "deploy" and deploy["to_version"] == "v2"
    wait_for(lambda: metric(url, "lab_requests_total", service="checkout", status="500") > 2, what="errors")
    lab.restart("checkout")  # comes back with the same bad configuration
    assert json.loads(request("GET", url + "/healthz")[1])["version"] == "v2"
    assert json.loads((lab.dir / "lab.json").read_text())["services"]["checkout"]["version"] == "v2"
    lab.rollback("checkout")
    assert metric(url, "lab_config_version_info", version="v1") == 1
    assert metric(url, "lab_config_version_info", version="v2") == 0
    rollback = lab.changes()[-1]
    assert (rollback["kind"], rollback["from_version"], rollback["to_version"]) == ("rollback", "v2", "v1")
    assert ground_truth(lab, truth["id"])["ended_by"] == "rollback"
    assert lab.check("checkout") == []


def test_dependency_outage_fails_the_targets_calls_while_it_stays_up(lab: Lab) -> None:
    url = lab.endpoints()["catalog"]
    before = metric(url, "lab_dependency_errors_total", service="catalog")
    truth = lab.inject("dependency_outage", "catalog")
    assert truth["detail"]["dependencies"] == ["cache", "store"]
    assert get(url) == 502
    assert metric(url, "lab_dependency_errors_total", service="catalog") >= before + 2
    assert json.loads(request("GET", url + "/healthz")[1])["faults"] == ["dependency_outage"]
    assert get(lab.endpoints()["store"]) == 200  # the dependencies themselves are fine
    lab.repair("catalog")
    assert get(url) == 200
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"


def test_cli_status_and_check_and_the_runbook_commands_run_as_the_executor_would(lab: Lab) -> None:
    runner = CliRunner()
    status = runner.invoke(app, ["lab", "status", "--json", "--dir", str(lab.dir)])
    assert status.exit_code == 0
    services = json.loads(status.output)["services"]
    assert all(s["up"] for s in services.values()) and set(services) == set(SERVICES)
    # the localized runbooks, run by the real command executor (its environment allowlist, no shell)
    catalog = load_catalog(lab.runbooks_dir)
    assert catalog.problems == []
    restart = catalog.runbooks["lab-restart"]
    assert restart.verify is not None
    ctx = StepContext(params={"service": "store"}, incident_id=1, runbook_id=restart.id, base_env=dict(os.environ))
    executor = CommandExecutor()
    assert executor.plan(restart.verify.check, ctx)["argv"][:3] == [sys.executable, "-m", "watchkeeper.lab.cli"]
    healthy = executor.run(restart.verify.check, ctx)
    assert healthy.ok, healthy.output
    truth = lab.inject("error_burst", "store", ratio=1.0)
    broken = executor.run(restart.verify.check, ctx)
    assert not broken.ok and "error_burst" in broken.output
    fixed = executor.run(restart.steps[0], ctx)
    assert fixed.ok, fixed.output
    assert executor.run(restart.verify.check, ctx).ok
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"
    clear = catalog.runbooks["lab-clear-tmp"]
    lab.inject("disk_fill", "store")
    wait_for(lambda: any("full" in p for p in lab.check("store")), what="disk filling up")
    assert clear.verify is not None
    assert executor.run(clear.steps[0], ctx).ok
    assert executor.run(clear.verify.check, ctx).ok
    assert lab.open_faults("store") == []


def test_shipped_and_localized_runbooks_validate(lab: Lab) -> None:
    assert {"lab-restart.yaml", "lab-scale-out.yaml", "lab-clear-tmp.yaml", "lab-rollback.yaml",
            "policy.yaml"} <= set(shipped_runbooks())
    shipped = Path(__file__).parents[2] / "src" / "watchkeeper" / "lab" / "runbooks"
    for directory in (shipped, lab.runbooks_dir):
        result = CliRunner().invoke(app, ["runbooks", "validate", str(directory)])
        assert result.exit_code == 0, result.output
        assert "4 runbooks valid" in result.output


def _lab_processes(directory: Path) -> list[int]:
    """Every process whose command line names the lab directory (services, instances, load generator)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(directory) in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_down_leaves_no_process_behind(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    lab.up(rps=5, monitoring=False)
    try:
        lab.scale("store")
        lab.inject("cpu_hog", "cache")
        running = _lab_processes(lab.dir)
        urls = lab.endpoints()
        assert len(running) == len(SERVICES) + 2  # + the extra store instance + the load generator
    finally:
        stopped = lab.down()
    assert sorted(stopped) == sorted(running)
    assert _lab_processes(lab.dir) == []
    assert not (lab.dir / "lab.json").exists() and not lab.is_up()
    assert {f["ended_by"] for f in lab.faults()} == {"down"}
    with pytest.raises(LabError, match="not up"):
        lab.status()
    for url in urls.values():
        with pytest.raises(ConnectionRefusedError):
            request("GET", url + "/healthz")


def test_cli_up_status_inject_down(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = str(tmp_path / "cli-lab")
    try:
        started = runner.invoke(app, ["lab", "up", "--dir", directory, "--rps", "5", "--no-monitoring"])
        assert started.exit_code == 0, started.output
        assert all(name in started.output for name in SERVICES) and "loadgen" in started.output
        crashed = runner.invoke(app, ["lab", "inject", "crash", "--target", "store", "--dir", directory])
        assert crashed.exit_code == 0 and json.loads(crashed.output)["fault"] == "crash"
        status = json.loads(runner.invoke(app, ["lab", "status", "--json", "--dir", directory]).output)
        assert status["services"]["store"]["up"] is False and status["services"]["store"]["faults"] == ["crash (f-1)"]
        assert status["services"]["cache"]["up"] is True
        check = runner.invoke(app, ["lab", "check", "store", "--dir", directory])
        assert check.exit_code == 1 and "does not answer /healthz" in check.output
        timed = runner.invoke(app, ["lab", "inject", "hang", "--target", "cache", "--duration", "soon",
                                    "--dir", directory])
        assert timed.exit_code == 2 and "duration" in timed.output
    finally:
        stopped = runner.invoke(app, ["lab", "down", "--dir", directory])
    assert stopped.exit_code == 0 and "stopped 6 processes" in stopped.output  # store was already dead
    assert _lab_processes(Path(directory).absolute()) == []
    again = runner.invoke(app, ["lab", "status", "--dir", directory])
    assert again.exit_code == 2 and "not up" in again.output


def test_up_with_monitoring_writes_serve_settings_and_prometheus_follows_the_lab(tmp_path: Path) -> None:
    """`lab up` starts the lab's Prometheus and Alertmanager and writes watchkeeper.yaml: valid settings
    whose watches answer on that Prometheus; `lab scale` adds a scrape target; a deploy is posted to the
    changes API of the Watchkeeper the settings describe; `lab down` stops both daemons."""
    from conftest import need
    from watchkeeper.lab import prometheus
    from watchkeeper.settings import load_settings
    from watchkeeper.watch.prometheus import PrometheusClient

    need(prometheus.installed(), "prometheus is not installed (apt-get install prometheus prometheus-alertmanager)")
    lab = Lab(tmp_path / "lab")
    posted: list[dict[str, Any]] = []
    try:
        state = lab.up(rps=10)
        daemons = state["monitoring"]
        assert set(daemons) == {"prometheus", "alertmanager"}
        settings = load_settings({}, lab.settings_file)
        assert settings.runbooks_dir == lab.dir / "runbooks" and settings.correlation_config == lab.dir / "correlation.yaml"
        assert ("frontend", "checkout") in settings.topology.edges()
        assert {w.name for w in settings.watch.watches} >= {"error_ratio", "latency_p90_s", "up"}
        assert state["watchkeeper"]["url"] == f"http://127.0.0.1:{settings.port}"
        with PrometheusClient(settings.watch.prometheus[0]) as client:
            def every_watch_answers() -> bool:
                return all({s.labels.get("service") for s in client.query(w.query)} == set(SERVICES)
                           for w in settings.watch.watches if w.name not in ("dependency_error_rate",))
            wait_for(every_watch_answers, timeout=30, what="every watch answering for every service")
            lab.scale("cache")
            wait_for(lambda: [s.value for s in client.query('count(up{service="cache"})')] == [2.0], timeout=30,
                     what="Prometheus scraping the new cache instance")
        # a Watchkeeper stand-in on the settings' port receives the deploy
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Changes(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posted.append({"path": self.path, "auth": self.headers["Authorization"], **json.loads(body)})
                self.send_response(202)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", settings.port), Changes)
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        lab.inject("bad_deploy", "payment")
        thread.join(timeout=10)
        server.server_close()
    finally:
        lab.down()
    assert posted and posted[0]["path"] == "/api/v1/ingest/changes"
    assert posted[0]["auth"] == f"Bearer {state['watchkeeper']['ingest_token']}"
    assert (posted[0]["service"], posted[0]["kind"], posted[0]["version"]) == ("payment", "deploy", "v2")
    for daemon in daemons.values():
        assert not Path(f"/proc/{daemon['pid']}").exists()


def test_lab_errors_belong_to_the_one_error_hierarchy() -> None:
    from watchkeeper.errors import WatchkeeperError
    from watchkeeper.lab.control import LabError

    assert issubclass(LabError, WatchkeeperError)
