"""Two ``watchkeeper serve`` processes on one PostgreSQL share one runbook queue: each approved
decision runs exactly once, and when one server is killed (SIGKILL) mid-action the other recovers
that action only after its lease has expired: interrupted and escalated, never re-run."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.servers import Servers, WatchkeeperServer, http, start_watchkeeper, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

LEASE = 3  # seconds: WATCHKEEPER_ACTION_LEASE_SECONDS of both servers
STEP = textwrap.dedent("""\
    # Log "start|end <incident> <server pid> <own pid>" around a sleep of argv[3] seconds.
    import os, sys, time
    log, incident, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    def line(what):
        with open(log, "a") as f:
            f.write(f"{what} {incident} {os.getppid()} {os.getpid()}\\n")
    line("start")
    time.sleep(seconds)
    line("end")
""")


def runbook(rb_id: str, alertname: str, step: Path, log: Path, seconds: float) -> dict[str, Any]:
    return {
        "id": rb_id, "title": rb_id, "risk": "low", "autonomy": "approve",
        "selector": {"alertnames": [alertname]},
        "steps": [{"name": "work", "command": {
            "argv": [sys.executable, str(step), str(log), "{{ incident_id }}", str(seconds)], "timeout": "120s"}}],
    }


def lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def fire(wk: WatchkeeperServer, name: str, service: str) -> int:
    with http() as client:
        r = client.post(f"{wk.url}/api/v1/ingest/events", headers=wk.headers("ingest"),
                        json={"service": service, "name": name, "summary": f"{service} {name}",
                              "fingerprint": f"{service}-{name}"})
    assert r.status_code == 202, r.text
    return int(r.json()["incidents"][0])


def get(wk: WatchkeeperServer, path: str) -> Any:
    with http() as client:
        r = client.get(f"{wk.url}{path}", headers=wk.headers("viewer"))
    r.raise_for_status()
    return r.json()


def approve(wk: WatchkeeperServer, approval_id: int) -> None:
    with http() as client:
        r = client.post(f"{wk.url}/api/v1/approvals/{approval_id}/approve", headers=wk.headers("approver"))
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


def pending_for(wk: WatchkeeperServer, incident: int) -> int | None:
    found = [p["id"] for p in get(wk, "/api/v1/approvals") if p["incident_id"] == incident]
    return found[0] if found else None


def test_two_servers_share_one_queue(pg_url: str, tmp_path: Path) -> None:
    step, log, runbooks = tmp_path / "step.py", tmp_path / "steps.log", tmp_path / "runbooks"
    step.write_text(STEP)
    runbooks.mkdir()
    for rb in (runbook("quick", "Quick", step, log, 0.3), runbook("long", "Long", step, log, 60)):
        (runbooks / f"{rb['id']}.yaml").write_text(yaml.safe_dump(rb))
    env = {"WATCHKEEPER_DATABASE_URL": pg_url, "WATCHKEEPER_RUNBOOKS_DIR": str(runbooks),
           "WATCHKEEPER_RESPONDER_INTERVAL_SECONDS": "0.2", "WATCHKEEPER_ACTION_LEASE_SECONDS": str(LEASE)}
    roles = ("ingest", "viewer", "approver")
    stray: list[int] = []
    try:
        with Servers() as servers:
            a = start_watchkeeper(servers, tmp_path / "a", roles=roles, env=env)
            b = start_watchkeeper(servers, tmp_path / "b", roles=roles, env=env)
            both = (a, b)

            # 1. Each approved decision runs exactly once, whichever server decided or was asked.
            incidents = [fire(both[n % 2], "Quick", f"svc{n}") for n in range(6)]
            for n, incident in enumerate(incidents):
                request = wait_until(lambda i=incident: pending_for(a, i), what=f"approval of {incident}",
                                     servers=servers)
                approve(both[n % 2], request)

            def all_done() -> bool:
                return all([x["status"] for x in get(b, f"/api/v1/incidents/{i}")["actions"]] == ["succeeded"]
                           for i in incidents)

            wait_until(all_done, what="every quick action to succeed", servers=servers)
            starts = sorted(int(line[1]) for line in lines(log) if line[0] == "start")
            assert starts == sorted(incidents)  # once each, never twice
            assert all(len(get(a, f"/api/v1/incidents/{i}")["decisions"]) == 1 for i in incidents)
            runners = {line[2] for line in lines(log)}
            pids = {str(a.server.proc.pid), str(b.server.proc.pid)}  # type: ignore[union-attr]
            assert runners <= pids

            # 2. Kill the server running a long action: the other recovers it only after the lease.
            incident = fire(a, "Long", "db")
            approve(a, wait_until(lambda: pending_for(a, incident), what="approval of the long action",
                                  servers=servers))
            started = wait_until(lambda: [x for x in lines(log) if x[:2] == ["start", str(incident)]],
                                 what="the long action to start", servers=servers)[0]
            stray.append(int(started[3]))
            victim, survivor = (a, b) if started[2] == str(a.server.proc.pid) else (b, a)  # type: ignore[union-attr]
            time.sleep(2 * LEASE)  # longer than the lease: the heartbeat keeps it running
            [action] = get(survivor, f"/api/v1/incidents/{incident}")["actions"]
            assert action["status"] == "running" and str(victim.server.proc.pid) in action["lease_owner"]  # type: ignore[union-attr]
            expires = datetime.fromisoformat(action["lease_expires_at"])
            os.kill(victim.server.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            killed = time.monotonic()

            def interrupted() -> Any:
                view = get(survivor, f"/api/v1/incidents/{incident}")
                return view if view["actions"][0]["status"] == "interrupted" else None

            view = wait_until(interrupted, what="the survivor to recover the action", timeout=4 * LEASE,
                              servers=servers)
            waited = time.monotonic() - killed
            [action] = view["actions"]
            assert datetime.fromisoformat(action["finished_at"]) >= expires  # not before the lease expired
            assert waited >= LEASE / 3  # the last heartbeat was at most a third of a lease before the kill
            event = next(t for t in view["timeline"] if t["kind"] == "action.interrupted")
            assert str(survivor.server.proc.pid) in event["recovered_by"]  # type: ignore[union-attr]
            assert view["status"] == "open" and "incident.escalated" in [t["kind"] for t in view["timeline"]]
            time.sleep(1)
            assert [x[:2] for x in lines(log)].count(["start", str(incident)]) == 1  # never re-run
    finally:
        for pid in stray:  # the killed server's runbook step, in its own session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
