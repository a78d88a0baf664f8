"""The responder decides and the worker acts, on separate threads: a slow runbook never delays the
next decision; two governance instances (two servers) on one database run each action once; a dead
worker's action is recovered only after its lease expires, and a live one keeps it by heartbeat."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from conftest import Clock
from watchkeeper.execute import engine
from watchkeeper.execute.actions import ActionStatus
from watchkeeper.execute.executors import StepContext, StepResult, registry
from watchkeeper.governance import Governance
from watchkeeper.model import Cause
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import governance as store

WAIT = 10.0


def runbook(rb_id: str, alertname: str, autonomy: str) -> dict[str, Any]:
    return {"id": rb_id, "title": rb_id, "risk": "low", "autonomy": autonomy,
            "selector": {"alertnames": [alertname]},
            "steps": [{"name": "go", "python": {"executor": "gate", "args": {"rb": rb_id}}}]}


class Gate:
    """An executor plugin that counts its runs and, for ``slow``, blocks until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.runs: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def __call__(self, args: dict[str, Any], ctx: StepContext) -> StepResult:
        with self.lock:
            self.runs[ctx.incident_id] += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if args["rb"] == "slow":
                self.entered.set()
                if not self.release.wait(WAIT):
                    return StepResult(False, "never released")
            return StepResult(True, "ok")
        finally:
            with self.lock:
                self.inside -= 1


def setup(tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str) -> tuple[Watchkeeper, Path]:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    for rb in (runbook("slow", "Slow", "auto"), runbook("ask", "Down", "approve")):
        (directory / f"{rb['id']}.yaml").write_text(yaml.safe_dump(rb))
    return make_service(db_url), directory


def governance(wk: Watchkeeper, directory: Path, gate: Gate, clock: Callable[[], datetime],
               **kw: Any) -> Governance:
    return Governance.from_directory(wk.db, clock, directory, executors=registry(extra={"gate": gate}), **kw)


def fire(wk: Watchkeeper, name: str, service: str) -> int:
    body = {"service": service, "name": name, "summary": f"{service} {name}", "fingerprint": f"{service}-{name}"}
    return wk.ingest("events", orjson.dumps(body), "application/json", "test").incidents[0]


def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return found


def statuses(wk: Watchkeeper, incident: int) -> list[str]:
    return [a["status"] for a in wk.incident(incident)["actions"]]


def test_a_slow_runbook_does_not_delay_the_next_decision(
        tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk, directory = setup(tmp_path, make_service, db_url)
    gate = Gate()
    gov = governance(wk, directory, gate, clock)
    gov.start(interval=0.02)
    try:
        slow = fire(wk, "Slow", "web")
        gov.set_causes(slow, [Cause("web", confidence=0.99)], "rca")
        assert gate.entered.wait(WAIT), "the slow runbook never started"
        second = fire(wk, "Down", "db")
        started = time.monotonic()
        [decision] = until(lambda: wk.incident(second)["decisions"], "the second incident's decision")
        latency = time.monotonic() - started
        assert decision["verdict"] == "needs_approval"
        assert statuses(wk, slow) == ["running"] and not gate.release.is_set()  # decided while it still runs
        assert latency < WAIT / 2
    finally:
        gate.release.set()
        gov.stop()
    assert statuses(wk, slow) == ["succeeded"]


def test_two_servers_run_each_approved_decision_once(
        tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk, directory = setup(tmp_path, make_service, db_url)
    gate = Gate()
    servers = [governance(wk, directory, gate, clock, owner=f"wk-{n}") for n in range(2)]
    for gov in servers:
        gov.start(interval=0.01)
    try:
        incidents = [fire(wk, "Down", f"svc{n}") for n in range(8)]
        pending = until(lambda: len(p := servers[0].approvals()) == 8 and p, "eight approval requests")
        for n, request in enumerate(pending):
            servers[n % 2].vote(request["id"], "token:bob", True)
        until(lambda: all(statuses(wk, i) == ["succeeded"] for i in incidents), "every action to finish")
    finally:
        for gov in servers:
            gov.stop()
    assert gate.runs == Counter({i: 1 for i in incidents})
    assert all(len(wk.incident(i)["decisions"]) == 1 for i in incidents)  # decided once, by one responder


def test_a_dead_workers_action_is_recovered_only_after_its_lease(
        tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk, directory = setup(tmp_path, make_service, db_url)
    gate = Gate()
    dead, alive = (governance(wk, directory, gate, clock, owner=o, lease_seconds=60) for o in ("dead", "alive"))
    incident = fire(wk, "Slow", "web")
    dead.set_causes(incident, [Cause("web", confidence=0.99)], "rca")
    assert dead.respond() == 1
    run = dead.worker.claim()  # ... and the process dies before it finishes
    assert run is not None and run.lease is not None and run.lease.owner == "dead"
    clock.advance(seconds=59)
    assert alive.recover() == 0 and alive.work() == 0  # a live lease is never touched
    clock.advance(seconds=1)
    assert alive.recover() == 1
    view = wk.incident(incident)
    [action] = view["actions"]
    assert action["status"] == "interrupted" and view["status"] == "open"
    kinds = [t["kind"] for t in view["timeline"]]
    assert kinds[-2:] == ["action.interrupted", "incident.escalated"]
    assert alive.work() == 0 and gate.runs == Counter()  # never re-run
    late = engine.Outcome(engine.RunStatus.SUCCEEDED, engine.Verification.SKIPPED)
    assert not dead.worker.record(run, dead.runbook("slow"), late)  # its old owner cannot overwrite it
    assert wk.incident(incident)["actions"][0]["status"] == "interrupted"
    assert wk.verify_audit().ok


def test_a_heartbeat_keeps_a_long_run_its_own(
        tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str) -> None:
    """Real time: a 0.6 s lease, a runbook that takes 1.5 s, another server recovering all along."""
    wk, directory = setup(tmp_path, make_service, db_url)
    gate = Gate()

    def now() -> datetime:
        return datetime.now(UTC)

    runner, other = (governance(wk, directory, gate, now, owner=o, lease_seconds=0.6) for o in ("runner", "other"))
    incident = fire(wk, "Slow", "web")
    runner.set_causes(incident, [Cause("web", confidence=0.99)], "rca")
    runner.respond()
    run = runner.worker.claim()
    assert run is not None
    outcome: list[engine.Outcome] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.worker.run(run)))
    thread.start()
    assert gate.entered.wait(WAIT)
    recovered = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.5:
        recovered += other.recover()
        time.sleep(0.02)
    gate.release.set()
    thread.join(WAIT)
    assert recovered == 0
    assert outcome[0].status is engine.RunStatus.SUCCEEDED
    with wk.db.read() as conn:
        finished = store.action_run(conn, run.id)
    assert finished.status is ActionStatus.SUCCEEDED and finished.lease is None


def test_workers_run_slow_runbooks_of_different_services_side_by_side(
        tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk, directory = setup(tmp_path, make_service, db_url)
    gate = Gate()
    gov = governance(wk, directory, gate, clock, workers=2)
    gov.start(interval=0.02)
    try:
        slow = [fire(wk, "Slow", service) for service in ("web", "db")]
        for incident, service in zip(slow, ("web", "db"), strict=True):
            gov.set_causes(incident, [Cause(service, confidence=0.99)], "rca")
        until(lambda: gate.inside == 2, "both slow runbooks to run at once")
    finally:
        gate.release.set()
        gov.stop()
    assert gate.most_inside == 2 and all(statuses(wk, i) == ["succeeded"] for i in slow)
