"""Act: the worker claims queued actions with a lease and runs their runbooks outside any
transaction, renewing the lease with a heartbeat while they run; then it records the outcome, the
verification and any rollback. Failed verifications feed the circuit breaker.

Several servers share one queue: an action is claimed by exactly one of them (an atomic
conditional UPDATE; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and is theirs while the lease holds.
A server that dies mid-run stops renewing; once the lease has expired another server marks the
action **interrupted** and escalates its incident to a human. It is never re-run automatically:
a half-done runbook is not known to be safe to repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection

from watchkeeper import lifecycle
from watchkeeper.errors import Conflict
from watchkeeper.execute import engine
from watchkeeper.execute.actions import ActionRun, Lease
from watchkeeper.execute.executors import Executor, StepContext
from watchkeeper.execute.runbook import Catalog, Runbook
from watchkeeper.governance.model import Interrupted
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change, IncidentStatus
from watchkeeper.storage import Database, audit, queries
from watchkeeper.storage import governance as store
from watchkeeper.storage.ingest import save_incident
from watchkeeper.storage.outage import Burst, is_outage

log = structlog.get_logger("watchkeeper.worker")
ON_SUCCESS = {"mitigate": Action.MITIGATE, "resolve": Action.RESOLVE}


class Worker:
    def __init__(self, db: Database, clock: Callable[[], datetime], catalog: Catalog,
                 executors: Mapping[str, Executor], base_env: Mapping[str, str], *, owner: str,
                 lease_seconds: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.executors = executors
        self.base_env = base_env
        self.owner = owner
        self.lease_seconds = lease_seconds

    def lease(self) -> Lease:
        return Lease(self.owner, self.clock() + timedelta(seconds=self.lease_seconds))

    # -- one step of the loop ------------------------------------------------------------
    def step(self) -> int:
        return self.recover() + self.work()

    def work(self) -> int:
        """Run every queued action whose service is free; return how many ran."""
        ran = 0
        while (claimed := self.claim()) is not None:
            self.run(claimed)
            ran += 1
        return ran

    def claim(self) -> ActionRun | None:
        now = self.clock()
        limit = max(1, self.catalog.policy.limits.max_concurrent_per_service)
        with self.db.write() as conn:
            run = store.claim(conn, self.lease(), now, limit, skip_locked=not self.db.is_sqlite)
            if run is not None:
                audit.append(conn, "worker", [Change("action.started", run.subject, now, {
                    "action_id": run.id, "incident_id": run.incident_id, "runbook_id": run.runbook_id,
                    "worker": self.owner})])
        return run

    def run(self, run: ActionRun) -> engine.Outcome:
        """Execute a claimed action's runbook while a heartbeat keeps its lease, then record it."""
        rb = self.catalog.runbooks.get(run.runbook_id)
        if rb is None:
            outcome = engine.Outcome(engine.RunStatus.FAILED, engine.Verification.SKIPPED,
                                     failure=f"runbook {run.runbook_id!r} is no longer in the catalog")
        else:
            with Heartbeat(self, run.id):
                outcome = engine.execute(rb, StepContext(run.params, run.incident_id, rb.id, self.base_env),
                                         self.executors)
        self.record(run, rb, outcome)
        return outcome

    # -- recording -----------------------------------------------------------------------
    def record(self, run: ActionRun, rb: Runbook | None, outcome: engine.Outcome) -> bool:
        """Record the outcome; False when the lease was lost meanwhile (the outcome is audited,
        but the action keeps the status another server gave it)."""
        now = self.clock()
        with self.db.write() as conn:
            finished = store.finish(conn, run.id, self.owner, status=outcome.status.value,
                                    verification=outcome.verification.value, result=outcome.as_dict(),
                                    finished_at=now)
            if not finished:
                log.warning("action finished after its lease was taken over", action_id=run.id)
                audit.append(conn, "worker", [Change("action.finished_late", run.subject, now, {
                    "action_id": run.id, "incident_id": run.incident_id, "runbook_id": run.runbook_id,
                    "worker": self.owner, **outcome.as_dict()})])
                return False
            changes = [Change("action.finished", run.subject, now, {
                "action_id": run.id, "incident_id": run.incident_id, "runbook_id": run.runbook_id,
                **outcome.as_dict()})]
            succeeded = outcome.status is engine.RunStatus.SUCCEEDED
            failures, was_open = store.breaker(conn, run.runbook_id)
            if outcome.verification is engine.Verification.FAILED or not succeeded:
                failures += 1
                opens = failures >= self.catalog.policy.breaker_failures
                store.set_breaker(conn, run.runbook_id, failures, was_open or opens, now)
                if opens and not was_open:
                    changes.append(Change("runbook.breaker_opened", f"runbook:{run.runbook_id}", now, {
                        "runbook_id": run.runbook_id, "consecutive_failures": failures,
                        "detail": "demoted to suggest until a human re-enables it"}))
                changes += self._escalate(conn, run, now, outcome.failure or outcome.status.value,
                                          "automation did not fix it: a human must take over")
            else:
                store.set_breaker(conn, run.runbook_id, 0, was_open, now)
                target = ON_SUCCESS.get(rb.on_success if rb else "none")
                if target is not None:
                    incident = queries.get_incident(conn, run.incident_id)
                    try:
                        change = lifecycle.apply(incident, target, f"runbook:{run.runbook_id}", now,
                                                 f"verified by runbook {run.runbook_id}")
                    except Conflict:
                        change = None
                    if change is not None:
                        save_incident(conn, incident)
                        changes.append(change)
            audit.append(conn, "worker", changes)
        return True

    def _escalate(self, conn: Connection, run: ActionRun, now: datetime, reason: str, detail: str) -> list[Change]:
        incident = queries.get_incident(conn, run.incident_id)
        if incident.status is not IncidentStatus.OPEN and incident.is_active:
            incident.status = IncidentStatus.OPEN
            save_incident(conn, incident)
        return [Change("incident.escalated", run.subject, now, {
            "id": run.incident_id, "incident_id": run.incident_id, "runbook_id": run.runbook_id,
            "reason": reason, "detail": detail})]

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> int:
        """Running actions whose lease expired (their server died) are marked interrupted and their
        incident escalated; a live lease is never touched."""
        now = self.clock()
        recovered = 0
        with self.db.write() as conn:
            for run in store.expired_leases(conn, now):
                if not store.interrupt(conn, run.id, now):
                    continue
                recovered += 1
                owner = run.lease.owner if run.lease else None
                changes = [Change("action.interrupted", run.subject, now, {
                    "action_id": run.id, "incident_id": run.incident_id, "runbook_id": run.runbook_id,
                    "lease_owner": owner, "lease_expired_at": run.lease.expires_at if run.lease else None,
                    "recovered_by": self.owner, "then": Interrupted.ESCALATED.value})]
                changes += self._escalate(conn, run, now, "interrupted",
                                          f"the server running it ({owner or 'unknown'}) stopped before it "
                                          "finished; it is not re-run: a human must check what it did")
                audit.append(conn, "worker", changes)
        return recovered


class Heartbeat:
    """Renews one action's lease every third of the lease while the runbook runs."""

    def __init__(self, worker: Worker, action_id: int) -> None:
        self.worker = worker
        self.action_id = action_id
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"watchkeeper-heartbeat-{action_id}", daemon=True)
        self._burst = Burst()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _beat(self) -> None:
        interval = max(0.05, self.worker.lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                with self.worker.db.write() as conn:
                    if not store.renew(conn, self.action_id, self.worker.lease()):
                        self.lost = True
                        log.warning("lease lost: another server recovered this action", action_id=self.action_id)
                        return
                self._burst.recovered()
            except Exception as exc:  # a missed beat is retried; the lease covers two more
                if not is_outage(exc):
                    log.exception("heartbeat failed", action_id=self.action_id)
                elif self._burst.failed(time.monotonic()):
                    log.warning("heartbeat: database unreachable", action_id=self.action_id)
