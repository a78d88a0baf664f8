"""A real service process dies; Watchkeeper's runbook restarts it, verifies it answers HTTP again,
and resolves the incident — or, when verification fails, rolls back and escalates."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from e2e.servers import Servers, WatchkeeperServer, free_port, http, start_watchkeeper, wait_until

SERVICE = textwrap.dedent("""\
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")
LAUNCHER = textwrap.dedent("""\
    # Start the service detached (own session, no inherited output) and record its pid.
    import subprocess, sys
    from pathlib import Path
    here = Path(__file__).parent
    port = sys.argv[1]
    proc = subprocess.Popen([sys.executable, str(here / "service.py"), port], start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (here / f"service-{port}.pid").write_text(str(proc.pid))
""")


def runbook(rb_id: str, alertname: str, launcher: Path, *, restarts: bool) -> dict[str, Any]:
    argv = [sys.executable, str(launcher), "{{ params.port }}"] if restarts else [sys.executable, "-c", "pass"]
    return {
        "id": rb_id, "title": f"{rb_id}: restart the service", "risk": "low", "autonomy": "auto",
        "selector": {"alertnames": [alertname]},
        "parameters": {"port": {"from": "alert.labels.port", "type": "integer", "minimum": 1024, "maximum": 65535}},
        "steps": [{"name": "start", "command": {"argv": argv, "timeout": "10s"}}],
        "verify": {"check": {"name": "answers-http", "http": {"url": "http://127.0.0.1:{{ params.port }}/",
                                                              "timeout": "1s"}},
                   "deadline": "8s", "interval": "250ms"},
        "rollback": [{"name": "record", "command": {"argv": [sys.executable, "-c", "print('rollback ran')"]}}],
        "on_success": "resolve",
    }


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[WatchkeeperServer, Path]]:
    (tmp_path / "service.py").write_text(SERVICE)
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "restart.yaml").write_text(yaml.safe_dump(runbook("restart", "ServiceDown", launcher, restarts=True)))
    (runbooks / "noop.yaml").write_text(yaml.safe_dump(runbook("noop", "ServiceStuck", launcher, restarts=False)))
    try:
        with Servers() as servers:
            wk = start_watchkeeper(servers, tmp_path / "wk", roles=("ingest", "operator", "admin"),
                                   env={"WATCHKEEPER_RUNBOOKS_DIR": str(runbooks),
                                        "WATCHKEEPER_RESPONDER_INTERVAL_SECONDS": "0.2"})
            yield wk, tmp_path
    finally:
        for pid_file in tmp_path.glob("service-*.pid"):
            _kill(int(pid_file.read_text()))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _incident(client: httpx.Client, wk: WatchkeeperServer, alertname: str, port: int) -> int:
    body = {"service": "shop", "name": alertname, "summary": f"shop on port {port} does not answer",
            "severity": "critical", "resource": f"shop-1:{port}", "labels": {"port": str(port)}}
    r = client.post(f"{wk.url}/api/v1/ingest/events", json=body, headers=wk.headers("ingest"))
    assert r.status_code == 202, r.text
    incident_id: int = r.json()["incidents"][0]
    ranking = {"causes": [{"component": "shop", "confidence": 0.99, "model": "e2e"}]}
    r = client.put(f"{wk.url}/api/v1/incidents/{incident_id}/causes", json=ranking, headers=wk.headers("operator"))
    assert r.status_code == 200, r.text
    return incident_id


@pytest.mark.e2e
def test_runbook_restarts_a_killed_process(lab: tuple[WatchkeeperServer, Path]) -> None:
    wk, work = lab
    port = free_port()
    subprocess.run([sys.executable, str(work / "launch.py"), str(port)], check=True)
    wait_until(lambda: _answers(port), what="the service answers", timeout=10)
    original = int((work / f"service-{port}.pid").read_text())
    _kill(original)  # the outage
    wait_until(lambda: not _answers(port) or None, what="the service is down", timeout=10)

    with http() as client:
        incident_id = _incident(client, wk, "ServiceDown", port)

        def resolved() -> dict[str, Any] | None:
            view = client.get(f"{wk.url}/api/v1/incidents/{incident_id}", headers=wk.headers("operator")).json()
            return view if view["status"] == "resolved" else None

        view = wait_until(resolved, what=f"incident {incident_id} resolved by the runbook", timeout=30,
                          logs=wk.server.log_tail)
        assert _answers(port)
        assert int((work / f"service-{port}.pid").read_text()) != original
        [action] = view["actions"]
        assert (action["status"], action["verification"], action["trigger"]) == ("succeeded", "passed", "auto")
        kinds = [t["kind"] for t in view["timeline"]]
        assert kinds.index("decision.made") < kinds.index("action.started") < kinds.index("incident.resolved")
        verdict = client.get(f"{wk.url}/api/v1/audit/verify", headers=wk.headers("admin")).json()
        assert verdict["ok"], verdict


@pytest.mark.e2e
def test_failed_verification_rolls_back_and_escalates(lab: tuple[WatchkeeperServer, Path]) -> None:
    wk, _ = lab
    port = free_port()  # nothing listens there, and the "noop" runbook starts nothing
    with http() as client:
        incident_id = _incident(client, wk, "ServiceStuck", port)

        def finished() -> dict[str, Any] | None:
            view = client.get(f"{wk.url}/api/v1/incidents/{incident_id}", headers=wk.headers("operator")).json()
            actions = view["actions"]
            return view if actions and actions[0]["status"] not in ("queued", "running") else None

        started = time.monotonic()
        view = wait_until(finished, what="the noop runbook finished", timeout=40, logs=wk.server.log_tail)
        [action] = view["actions"]
        assert (action["status"], action["verification"]) == ("rolled_back", "failed")
        assert time.monotonic() - started >= 7  # verification was retried until its 8 s deadline
        assert [s["phase"] for s in action["result"]["steps"]] == ["step", "verify", "rollback"]
        assert action["result"]["steps"][-1]["output"] == "rollback ran\n"
        assert view["status"] == "open"
        assert "incident.escalated" in [t["kind"] for t in view["timeline"]]
