"""Decide → act → record, split in two: the **responder** decides, the **worker** acts.

* :class:`~watchkeeper.governance.responder.Responder` reads audit triggers, matches runbooks,
  asks the policy and records decisions, approval requests and queued actions.
* :class:`~watchkeeper.governance.worker.Worker` claims queued actions with a lease, runs them
  under a heartbeat and records the outcome; it recovers actions whose lease expired.

Each runs on its own thread (:meth:`Governance.start`), so a slow runbook never delays the next
decision, and several servers can share one PostgreSQL queue (see ``docs/governance.md``).
:class:`Governance` is the facade the service, the API and the CLI use.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from watchkeeper.errors import ConfigError
from watchkeeper.execute.executors import Executor, registry
from watchkeeper.execute.runbook import Catalog, Runbook, load_catalog
from watchkeeper.governance.loop import Loop
from watchkeeper.governance.model import (
    POLICY_VERSION,
    RESPONDER,
    TRIGGERS,
    Decided,
    Hold,
    Interrupted,
    Proposed,
    ShadowOutcome,
    Voted,
)
from watchkeeper.governance.responder import Responder
from watchkeeper.governance.worker import Worker
from watchkeeper.model import Cause, Change
from watchkeeper.policy import PolicyConfig
from watchkeeper.storage import Database, audit, queries
from watchkeeper.storage import governance as store


def worker_id() -> str:
    """This process's name on a lease: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Governance:
    def __init__(
        self, db: Database, clock: Callable[[], datetime], catalog: Catalog,
        executors: Mapping[str, Executor] | None = None, base_env: Mapping[str, str] | None = None,
        *, lease_seconds: float = 60.0, owner: str | None = None, workers: int = 1,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.executors = executors or registry()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.responder = Responder(db, clock, catalog, self.executors, self.base_env)
        self.worker = Worker(db, clock, catalog, self.executors, self.base_env, owner=owner or worker_id(),
                             lease_seconds=lease_seconds)
        self.workers = workers
        self._loops: list[Loop] = []

    @classmethod
    def from_directory(cls, db: Database, clock: Callable[[], datetime], directory: Path | None,
                       **kw: Any) -> Governance:
        if directory is None:
            return cls(db, clock, Catalog(), **kw)
        catalog = load_catalog(directory)
        if catalog.problems:
            raise ConfigError("runbooks are invalid:\n" + "\n".join(str(p) for p in catalog.problems))
        return cls(db, clock, catalog, **kw)

    @property
    def policy(self) -> PolicyConfig:
        return self.catalog.policy

    def runbook(self, runbook_id: str) -> Runbook:
        return self.responder.runbook(runbook_id)

    # -- causes --------------------------------------------------------------------------
    def set_causes(self, incident_id: int, causes: list[Cause], actor: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            queries.get_incident(conn, incident_id)
            before = store.causes_of(conn, incident_id)
            store.replace_causes(conn, incident_id, causes, now)
            changes = [Change("incident.causes_ranked", f"incident:{incident_id}", now, {
                "id": incident_id, "incident_id": incident_id,
                "causes": [{"component": c.component, "kind": c.kind, "score": c.score,
                            "confidence": c.confidence, "model": c.model} for c in causes]})]
            if before and causes and before[0].component != causes[0].component:
                changes += self.responder.supersede_unvoted(conn, incident_id, before[0].component,
                                                            causes[0].component)
            audit.append(conn, actor, changes)

    # -- deciding (the responder) --------------------------------------------------------
    def respond(self, batch: int = 500) -> int:
        """Examine incidents touched since the cursor; return how many decisions were made."""
        made = self.responder.respond(batch)
        if made:
            self._wake_worker()
        return made

    def approvals(self, status: str | None = "pending") -> list[dict[str, Any]]:
        return self.responder.approvals(status)

    def vote(self, approval_id: int, actor: str, approve: bool, comment: str = "") -> dict[str, Any]:
        voted = self.responder.vote(approval_id, actor, approve, comment)
        if voted.action_id is not None:
            self._wake_worker()
        return voted.as_dict()

    def propose_manual(self, runbook_id: str, incident_id: int) -> Proposed:
        return self.responder.propose_manual(runbook_id, incident_id)

    def plan(self, rb: Runbook, params: Mapping[str, Any], incident_id: int) -> dict[str, Any]:
        return self.responder.plan(rb, params, incident_id)

    def run_manual(self, runbook_id: str, incident_id: int, actor: str) -> dict[str, int]:
        result = self.responder.run_manual(runbook_id, incident_id, actor)
        if "action_id" in result:
            self._wake_worker()
        return result

    def score_shadow(self, conn: Connection, incident_id: int, fixed_by: str | None, harmful: list[str],
                     actor: str) -> list[Change]:
        return self.responder.score_shadow(conn, incident_id, fixed_by, harmful, actor)

    # -- acting (the worker) -------------------------------------------------------------
    def work(self) -> int:
        """Run every queued action whose service is free; return how many ran."""
        return self.worker.work()

    def recover(self) -> int:
        """Mark actions whose lease expired interrupted, and escalate their incidents."""
        return self.worker.recover()

    def enable(self, runbook_id: str, actor: str) -> None:
        """Close a runbook's circuit breaker (a human's decision, audited)."""
        self.runbook(runbook_id)
        now = self.clock()
        with self.db.write() as conn:
            failures, was_open = store.breaker(conn, runbook_id)
            store.set_breaker(conn, runbook_id, 0, False, now)
            audit.append(conn, actor, [Change("runbook.enabled", f"runbook:{runbook_id}", now, {
                "runbook_id": runbook_id, "was_open": was_open, "consecutive_failures": failures})])

    def evidence(self) -> dict[str, dict[str, Any]]:
        """Per runbook: shadow decisions by outcome, precision, breaker state."""
        with self.db.read() as conn:
            counts = store.shadow_evidence(conn)
            breakers = {rb: store.breaker(conn, rb) for rb in self.catalog.runbooks}
        found = {}
        for rb_id in sorted(set(self.catalog.runbooks) | set(counts)):
            c = counts.get(rb_id, {})
            scored = sum(n for k, n in c.items() if k != "unscored")
            failures, is_open = breakers.get(rb_id, (0, False))
            agreed = c.get(ShadowOutcome.AGREED.value, 0)
            found[rb_id] = {
                "shadow_decisions": sum(c.values()), "scored": scored, "agreed": agreed,
                "different_action": c.get(ShadowOutcome.DIFFERENT_ACTION.value, 0),
                "would_have_harmed": c.get(ShadowOutcome.WOULD_HAVE_HARMED.value, 0),
                "shadow_precision": agreed / scored if scored else None,
                "breaker_open": is_open, "consecutive_failures": failures,
            }
        return found

    # -- background threads -------------------------------------------------------------
    def start(self, interval: float = 0.5) -> None:
        """Start the responder and ``workers`` workers, each on its own thread. The workers share
        one owner id: a lease belongs to this server, whichever of its threads runs the action."""
        if self._loops:
            return
        self._loops = [Loop("responder", self.respond, interval)]
        self._loops += [Loop("worker", self.worker.step, interval) for _ in range(self.workers)]
        for loop in self._loops:
            loop.start()

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        self._loops = []

    def _wake_worker(self) -> None:
        for loop in self._loops:
            if loop.name == "worker":
                loop.wake()


__all__ = [
    "POLICY_VERSION", "RESPONDER", "TRIGGERS", "Decided", "Governance", "Hold", "Interrupted", "Proposed",
    "Responder", "ShadowOutcome", "Voted", "Worker", "worker_id",
]
