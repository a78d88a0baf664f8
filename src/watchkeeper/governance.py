"""Decide → act → record: the responder, the action worker, approvals and shadow evidence.

* The **responder** tails the audit log from a cursor kept in the database and committed with the
  decisions it makes, so no incident is missed across restarts: every new or refired alert and
  every new ranking of causes makes it re-examine that incident against the runbook catalog.
* The **worker** runs queued action runs outside any transaction (they take seconds) and records
  the outcome, the verification and any rollback; failed verifications feed the circuit breaker.
* **Approvals** go through one code path whatever the channel (API, CLI, later Slack/Teams).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from watchkeeper import lifecycle
from watchkeeper.errors import ConfigError, Conflict, InputError, NotFound
from watchkeeper.execute import engine
from watchkeeper.execute.executors import Executor, StepContext, registry
from watchkeeper.execute.params import ParameterError, bind
from watchkeeper.execute.runbook import Catalog, Runbook, load_catalog
from watchkeeper.execute.select import Match, binding_data, match
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause, Change, IncidentStatus
from watchkeeper.policy import Autonomy, Context, PolicyConfig, Proposal, Verdict, decide
from watchkeeper.policy.approvals import ApprovalStatus, Vote, cast, required_approvals
from watchkeeper.storage import Database, audit, queries
from watchkeeper.storage import governance as store
from watchkeeper.storage.ingest import save_incident

TRIGGERS = ("incident.opened", "alert.opened", "alert.refired", "incident.reopened", "incident.causes_ranked")
RESPONDER = "responder"
POLICY_VERSION = "policy-v1"


class ShadowOutcome:
    AGREED = "agreed"
    DIFFERENT_ACTION = "different_action"
    WOULD_HAVE_HARMED = "would_have_harmed"


@dataclass(frozen=True, slots=True)
class Proposed:
    runbook: Runbook
    found: Match
    params: dict[str, Any]
    error: str


class Governance:
    def __init__(
        self, db: Database, clock: Callable[[], datetime], catalog: Catalog,
        executors: Mapping[str, Executor] | None = None, base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.executors = executors or registry()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        try:
            return self.catalog.runbooks[runbook_id]
        except KeyError:
            known = ", ".join(sorted(self.catalog.runbooks)) or "none"
            raise NotFound(f"no runbook {runbook_id!r}; known: {known}") from None

    # -- causes --------------------------------------------------------------------------
    def set_causes(self, incident_id: int, causes: list[Cause], actor: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            queries.get_incident(conn, incident_id)
            store.replace_causes(conn, incident_id, causes, now)
            audit.append(conn, actor, [Change("incident.causes_ranked", f"incident:{incident_id}", now, {
                "id": incident_id, "incident_id": incident_id,
                "causes": [{"component": c.component, "kind": c.kind, "score": c.score,
                            "confidence": c.confidence, "model": c.model} for c in causes]})])

    # -- the responder ---------------------------------------------------------------------
    def respond(self, batch: int = 500) -> int:
        """Examine incidents touched since the cursor; return how many decisions were made."""
        made = 0
        with self.db.write() as conn:
            start = store.cursor(conn, RESPONDER)
            last, touched = start, set()
            for record in audit.records(conn, after=start, limit=batch):
                last = record.seq
                if record.kind in TRIGGERS:
                    incident_id = record.payload.get("incident_id", record.payload.get("id"))
                    if isinstance(incident_id, int):
                        touched.add(incident_id)
            for incident_id in sorted(touched):
                made += self._examine(conn, incident_id)
            made += self._expire(conn)
            if last != start:
                store.set_cursor(conn, RESPONDER, last)
        return made

    def _examine(self, conn: Connection, incident_id: int) -> int:
        incident = queries.get_incident(conn, incident_id)
        if not incident.is_active or not self.catalog.runbooks:
            return 0
        members = queries.incident_alerts_of(conn, [incident_id])[incident_id]
        view = {"id": incident.id, "title": incident.title, "severity": incident.severity.value,
                "services": incident.services, "alerts": members}
        causes = store.causes_of(conn, incident_id)
        earlier = {d["runbook_id"]: d for d in store.decisions_of(conn, incident_id)}
        made = 0
        for runbook in self.catalog.runbooks.values():
            found = match(runbook, view, causes)
            if found is None:
                continue
            previous = earlier.get(runbook.id)
            if previous is not None and not self._supersede(conn, previous, incident_id, runbook):
                continue
            self._decide(conn, incident_id, self._propose(runbook, view, found), actor="policy")
            made += 1
        return made

    def _supersede(self, conn: Connection, previous: dict[str, Any], incident_id: int, runbook: Runbook) -> bool:
        """A new ranking may change a decision nobody has acted on yet (no run, no vote)."""
        if store.has_action(conn, incident_id, runbook.id) or previous["verdict"] in ("auto", "deny", "shadow"):
            return False
        if not (previous["confidence"] is None or previous["reason"] in ("no_confidence", "low_confidence")):
            return False  # the confidence was not what held it back: its approval request stands
        pending = store.pending_approvals_of(conn, incident_id, runbook.id)
        if any(store.votes(conn, p["id"]) for p in pending):
            return False
        for p in pending:
            store.set_approval_status(conn, p["id"], "superseded", self.clock())
        return True

    def _propose(self, runbook: Runbook, view: Mapping[str, Any], found: Match) -> Proposed:
        try:
            return Proposed(runbook, found, bind(runbook, binding_data(view, found)), "")
        except ParameterError as exc:
            return Proposed(runbook, found, {}, str(exc))

    def _context(self, conn: Connection, runbook_id: str, service: str) -> Context:
        now = self.clock()
        hour = now - timedelta(hours=1)
        return Context(
            now=now, running_on_service=store.count_active(conn, service=service),
            running_of_runbook=store.count_active(conn, runbook_id=runbook_id),
            actions_last_hour=store.count_since(conn, hour),
            runbook_actions_last_hour=store.count_since(conn, hour, runbook_id),
            breaker_open=store.breaker(conn, runbook_id)[1],
        )

    def _decide(self, conn: Connection, incident_id: int, p: Proposed, actor: str) -> dict[str, Any]:
        rb, now = p.runbook, self.clock()
        proposal = Proposal(incident_id, rb.id, p.found.service, rb.autonomy, rb.risk, p.found.confidence,
                            rb.confidence_threshold, params_valid=not p.error, params_error=p.error)
        decision = decide(proposal, self._context(conn, rb.id, p.found.service), self.policy)
        cause = p.found.cause
        inputs = {**decision.inputs, "incident_id": incident_id, "service": p.found.service,
                  "alert": p.found.alert.get("fingerprint") if p.found.alert else None,
                  "cause": {"component": cause.component, "kind": cause.kind, "confidence": cause.confidence,
                            "model": cause.model} if cause else None,
                  "runbook_version": rb.version, "policy_version": POLICY_VERSION}
        decision_id = store.add_decision(
            conn, incident_id=incident_id, runbook_id=rb.id, runbook_version=rb.version,
            verdict=decision.verdict.value, reason=decision.reason.value, rule=decision.rule,
            confidence=p.found.confidence, threshold=decision.threshold, params=p.params, inputs=inputs, at=now)
        changes = [Change("decision.made", f"incident:{incident_id}", now, {
            "decision_id": decision_id, "incident_id": incident_id, "runbook_id": rb.id,
            "verdict": decision.verdict.value, "reason": decision.reason.value, "reason_text": decision.text,
            "rule": decision.rule, "params": p.params, "inputs": inputs,
            "would_run": self.plan(rb, p.params, incident_id) if decision.verdict is Verdict.SHADOW else None})]
        result: dict[str, Any] = {"decision_id": decision_id, "verdict": decision.verdict.value,
                                  "reason": decision.reason.value}
        if decision.verdict is Verdict.AUTO:
            result["action_id"] = self._queue(conn, incident_id, rb, p.params, p.found.service, "auto", actor,
                                              changes, decision_id=decision_id)
        elif decision.verdict is Verdict.NEEDS_APPROVAL:
            result["approval_id"] = self._request(conn, incident_id, rb, p.params, p.found.service, actor, changes,
                                                  decision_id=decision_id)
        audit.append(conn, "policy" if actor == "policy" else actor, changes)
        return result

    def _queue(self, conn: Connection, incident_id: int, rb: Runbook, params: dict[str, Any], service: str,
               trigger: str, actor: str, changes: list[Change], *, decision_id: int | None = None,
               approval_id: int | None = None) -> int:
        now = self.clock()
        action_id = store.add_action(
            conn, decision_id=decision_id, approval_id=approval_id, incident_id=incident_id, runbook_id=rb.id,
            service=service, trigger=trigger, actor=actor, status="queued", params=params, queued_at=now)
        changes.append(Change("action.queued", f"incident:{incident_id}", now, {
            "action_id": action_id, "incident_id": incident_id, "runbook_id": rb.id, "trigger": trigger,
            "service": service}))
        return action_id

    def _request(self, conn: Connection, incident_id: int, rb: Runbook, params: dict[str, Any], service: str,
                 requester: str, changes: list[Change], *, decision_id: int | None = None) -> int:
        now = self.clock()
        expires = now + timedelta(seconds=self.policy.approval_ttl_seconds)
        needed = required_approvals(rb.risk, self.policy)
        approval_id = store.add_approval(
            conn, decision_id=decision_id, incident_id=incident_id, runbook_id=rb.id, risk=rb.risk.value,
            params={**params, "__service": service}, requested_by=requester, requested_at=now, expires_at=expires,
            required=needed, status="pending")
        changes.append(Change("approval.requested", f"incident:{incident_id}", now, {
            "approval_id": approval_id, "incident_id": incident_id, "runbook_id": rb.id, "risk": rb.risk.value,
            "requested_by": requester, "required": needed, "expires_at": expires}))
        return approval_id

    def _expire(self, conn: Connection) -> int:
        now = self.clock()
        expired = store.expired_approvals(conn, now)
        for row in expired:
            store.set_approval_status(conn, row["id"], ApprovalStatus.EXPIRED.value, now)
            audit.append(conn, "policy", [Change("approval.expired", f"incident:{row['incident_id']}", now, {
                "approval_id": row["id"], "incident_id": row["incident_id"], "runbook_id": row["runbook_id"],
                "reason": "no decision before the deadline: rejected automatically"})])
        return len(expired)

    # -- approvals -----------------------------------------------------------------------
    def approvals(self, status: str | None = "pending") -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = store.list_approvals(conn, status)
            for row in rows:
                row["votes"] = store.votes(conn, row["id"])
                row["params"] = {k: v for k, v in row["params"].items() if not k.startswith("__")}
        return rows

    def vote(self, approval_id: int, actor: str, approve: bool, comment: str = "") -> dict[str, Any]:
        now = self.clock()
        with self.db.write() as conn:
            self._expire(conn)
            row = store.approval(conn, approval_id)
            rb = self.runbook(row["runbook_id"])
            earlier = [Vote(v["actor"], v["approve"], v["at"], v["comment"]) for v in store.votes(conn, approval_id)]
            if row["status"] != ApprovalStatus.PENDING.value:
                raise Conflict(f"approval request {approval_id} is already {row['status']}")
            status = cast(ApprovalStatus.PENDING, earlier, Vote(actor, approve, now, comment),
                          requester=row["requested_by"], risk=rb.risk, required=row["required"],
                          expires_at=row["expires_at"], config=self.policy)
            store.add_vote(conn, approval_id=approval_id, actor=actor, approve=approve, comment=comment, at=now)
            subject = f"incident:{row['incident_id']}"
            changes = [Change("approval.voted", subject, now, {
                "approval_id": approval_id, "incident_id": row["incident_id"], "runbook_id": rb.id,
                "vote": "approve" if approve else "reject", "comment": comment, "status": status.value})]
            result: dict[str, Any] = {"approval_id": approval_id, "status": status.value}
            if status is not ApprovalStatus.PENDING:
                store.set_approval_status(conn, approval_id, status.value, now)
                changes.append(Change(f"approval.{status.value}", subject, now, {
                    "approval_id": approval_id, "incident_id": row["incident_id"], "runbook_id": rb.id}))
            if status is ApprovalStatus.APPROVED:
                params = {k: v for k, v in row["params"].items() if not k.startswith("__")}
                result["action_id"] = self._queue(
                    conn, row["incident_id"], rb, params, row["params"].get("__service", ""), "approved", actor,
                    changes, decision_id=row["decision_id"], approval_id=approval_id)
            audit.append(conn, actor, changes)
        return result

    # -- manual runs ---------------------------------------------------------------------
    def propose_manual(self, runbook_id: str, incident_id: int) -> Proposed:
        rb = self.runbook(runbook_id)
        with self.db.read() as conn:
            incident = queries.get_incident(conn, incident_id)
            members = queries.incident_alerts_of(conn, [incident_id])[incident_id]
            causes = store.causes_of(conn, incident_id)
        view = {"id": incident.id, "title": incident.title, "severity": incident.severity.value,
                "services": incident.services, "alerts": members}
        found = match(rb, view, causes) or Match(None, None, incident.services[0])
        proposed = self._propose(rb, view, found)
        if proposed.error:
            raise InputError(proposed.error)
        return proposed

    def plan(self, rb: Runbook, params: Mapping[str, Any], incident_id: int) -> dict[str, Any]:
        return engine.plan(rb, StepContext(params, incident_id, rb.id, self.base_env), self.executors)

    def run_manual(self, runbook_id: str, incident_id: int, actor: str) -> dict[str, Any]:
        """A human asks to run a runbook: it queues, or asks for approval when the runbook is at
        ``approve`` or its risk needs four eyes."""
        proposed = self.propose_manual(runbook_id, incident_id)
        rb = proposed.runbook
        with self.db.write() as conn:
            changes: list[Change] = []
            if rb.autonomy is Autonomy.APPROVE or rb.risk.rank >= self.policy.four_eyes_risk.rank:
                approval_id = self._request(conn, incident_id, rb, proposed.params, proposed.found.service, actor,
                                            changes)
                result = {"approval_id": approval_id}
            else:
                result = {"action_id": self._queue(conn, incident_id, rb, proposed.params, proposed.found.service,
                                                   "manual", actor, changes)}
            audit.append(conn, actor, changes)
        return result

    # -- the worker ----------------------------------------------------------------------
    def recover(self) -> int:
        """Actions left ``running`` by a crash are marked interrupted (never silently re-run)."""
        now = self.clock()
        with self.db.write() as conn:
            rows = store.interrupted(conn)
            for row in rows:
                store.set_action(conn, row["id"], status="interrupted", finished_at=now)
                audit.append(conn, "worker", [Change("action.interrupted", f"incident:{row['incident_id']}", now, {
                    "action_id": row["id"], "incident_id": row["incident_id"], "runbook_id": row["runbook_id"]})])
        return len(rows)

    def work(self) -> int:
        """Run every queued action whose service is free; return how many ran."""
        ran = 0
        while (claimed := self._claim()) is not None:
            self._run(claimed)
            ran += 1
        return ran

    def _claim(self) -> dict[str, Any] | None:
        now = self.clock()
        with self.db.write() as conn:
            for row in store.queued(conn):
                if store.count_running(conn, row["service"]) >= max(1, self.policy.limits.max_concurrent_per_service):
                    continue
                store.set_action(conn, row["id"], status="running", started_at=now)
                audit.append(conn, "worker", [Change("action.started", f"incident:{row['incident_id']}", now, {
                    "action_id": row["id"], "incident_id": row["incident_id"], "runbook_id": row["runbook_id"]})])
                return row
        return None

    def _run(self, row: dict[str, Any]) -> None:
        rb = self.catalog.runbooks.get(row["runbook_id"])
        if rb is None:
            outcome = engine.Outcome(engine.RunStatus.FAILED, engine.Verification.SKIPPED,
                                     failure=f"runbook {row['runbook_id']!r} is no longer in the catalog")
        else:
            ctx = StepContext(row["params"], row["incident_id"], rb.id, self.base_env)
            outcome = engine.execute(rb, ctx, self.executors)
        self._record(row, rb, outcome)

    def _record(self, row: dict[str, Any], rb: Runbook | None, outcome: engine.Outcome) -> None:
        now = self.clock()
        incident_id, subject = row["incident_id"], f"incident:{row['incident_id']}"
        with self.db.write() as conn:
            store.set_action(conn, row["id"], status=outcome.status.value, verification=outcome.verification.value,
                             result=outcome.as_dict(), finished_at=now)
            changes = [Change("action.finished", subject, now, {
                "action_id": row["id"], "incident_id": incident_id, "runbook_id": row["runbook_id"],
                **outcome.as_dict()})]
            succeeded = outcome.status is engine.RunStatus.SUCCEEDED
            failures, was_open = store.breaker(conn, row["runbook_id"])
            if outcome.verification is engine.Verification.FAILED or not succeeded:
                failures += 1
                opens = failures >= self.policy.breaker_failures
                store.set_breaker(conn, row["runbook_id"], failures, was_open or opens, now)
                if opens and not was_open:
                    changes.append(Change("runbook.breaker_opened", f"runbook:{row['runbook_id']}", now, {
                        "runbook_id": row["runbook_id"], "consecutive_failures": failures,
                        "detail": "demoted to suggest until a human re-enables it"}))
                incident = queries.get_incident(conn, incident_id)
                if incident.status is not IncidentStatus.OPEN and incident.is_active:
                    incident.status = IncidentStatus.OPEN
                    save_incident(conn, incident)
                changes.append(Change("incident.escalated", subject, now, {
                    "id": incident_id, "incident_id": incident_id, "runbook_id": row["runbook_id"],
                    "reason": outcome.failure or outcome.status.value,
                    "detail": "automation did not fix it: a human must take over"}))
            else:
                store.set_breaker(conn, row["runbook_id"], 0, was_open, now)
                target = {"mitigate": Action.MITIGATE, "resolve": Action.RESOLVE}.get(rb.on_success if rb else "none")
                if target is not None:
                    incident = queries.get_incident(conn, incident_id)
                    try:
                        change = lifecycle.apply(incident, target, f"runbook:{row['runbook_id']}", now,
                                                 f"verified by runbook {row['runbook_id']}")
                    except Conflict:
                        change = None
                    if change is not None:
                        save_incident(conn, incident)
                        changes.append(change)
            audit.append(conn, "worker", changes)

    def enable(self, runbook_id: str, actor: str) -> None:
        """Close a runbook's circuit breaker (a human's decision, audited)."""
        self.runbook(runbook_id)
        now = self.clock()
        with self.db.write() as conn:
            failures, was_open = store.breaker(conn, runbook_id)
            store.set_breaker(conn, runbook_id, 0, False, now)
            audit.append(conn, actor, [Change("runbook.enabled", f"runbook:{runbook_id}", now, {
                "runbook_id": runbook_id, "was_open": was_open, "consecutive_failures": failures})])

    # -- shadow evidence -----------------------------------------------------------------
    def score_shadow(self, conn: Connection, incident_id: int, fixed_by: str | None, harmful: list[str],
                     actor: str) -> list[Change]:
        """Score the incident's shadow decisions against what the human says fixed it."""
        if fixed_by is None and not harmful:
            return []
        now, changes = self.clock(), []
        for row in store.unscored_shadow(conn, incident_id):
            if row["runbook_id"] in harmful:
                outcome = ShadowOutcome.WOULD_HAVE_HARMED
            elif fixed_by == row["runbook_id"]:
                outcome = ShadowOutcome.AGREED
            else:
                outcome = ShadowOutcome.DIFFERENT_ACTION
            store.score_decision(conn, row["id"], outcome, now)
            changes.append(Change("decision.scored", f"incident:{incident_id}", now, {
                "decision_id": row["id"], "incident_id": incident_id, "runbook_id": row["runbook_id"],
                "outcome": outcome, "fixed_by": fixed_by, "judged_by": actor}))
        return changes

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
            found[rb_id] = {
                "shadow_decisions": sum(c.values()), "scored": scored, "agreed": c.get("agreed", 0),
                "different_action": c.get("different_action", 0), "would_have_harmed": c.get("would_have_harmed", 0),
                "shadow_precision": c.get("agreed", 0) / scored if scored else None,
                "breaker_open": is_open, "consecutive_failures": failures,
            }
        return found

    # -- background loop ---------------------------------------------------------------------
    def start(self, interval: float = 0.5) -> None:
        if self._thread is not None:
            return
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,), name="watchkeeper-responder",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self, interval: float) -> None:
        import structlog

        log = structlog.get_logger("watchkeeper.responder")
        while not self._stop.is_set():
            try:
                self.respond()
                self.work()
            except Exception:  # keep the loop alive; the failure is logged with its traceback
                log.exception("responder iteration failed")
            self._stop.wait(interval)
