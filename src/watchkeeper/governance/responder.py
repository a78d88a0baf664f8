"""Decide: the responder reads audit triggers, matches runbooks, asks the policy, and records
decisions, approval requests and queued actions. It never runs a runbook, so a slow one never
delays the next decision; the worker (:mod:`watchkeeper.governance.worker`) acts.

The responder tails the audit log from a cursor kept in the database and committed with the
decisions it makes, so no incident is missed across restarts. Approvals go through one code path
whatever the channel (API, CLI, later Slack/Teams).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from watchkeeper.errors import Conflict, InputError, NotFound
from watchkeeper.execute import engine
from watchkeeper.execute.actions import ActionStatus, Trigger
from watchkeeper.execute.executors import Executor, StepContext
from watchkeeper.execute.params import ParameterError, bind
from watchkeeper.execute.runbook import Catalog, Runbook
from watchkeeper.execute.select import Match, binding_data, match
from watchkeeper.governance.model import (
    POLICY_VERSION,
    RESPONDER,
    TRIGGERS,
    Decided,
    Hold,
    Proposed,
    ShadowOutcome,
    Voted,
)
from watchkeeper.model import Change, IncidentStatus
from watchkeeper.policy import Autonomy, Context, PolicyConfig, Proposal, Reason, Verdict, decide
from watchkeeper.policy.approvals import ApprovalStatus, Vote, cast, required_approvals
from watchkeeper.storage import Database, audit, queries
from watchkeeper.storage import governance as store
from watchkeeper.storage import value as value_store
from watchkeeper.value.usedmodels import no_models

FINAL = (Verdict.AUTO, Verdict.DENY, Verdict.SHADOW)
CONFIDENCE_REASONS = (Reason.NO_CONFIDENCE, Reason.LOW_CONFIDENCE)


class Responder:
    def __init__(self, db: Database, clock: Callable[[], datetime], catalog: Catalog,
                 executors: Mapping[str, Executor], base_env: Mapping[str, str]) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.executors = executors
        self.base_env = base_env
        #: the model versions an incident's decision used besides the RCA model (``serve`` sets this:
        #: the correlation configuration, the watches' detectors; :mod:`watchkeeper.value.usedmodels`)
        self.models: Callable[[Mapping[str, Any]], dict[str, str]] = no_models

    @property
    def policy(self) -> PolicyConfig:
        return self.catalog.policy

    def runbook(self, runbook_id: str) -> Runbook:
        try:
            return self.catalog.runbooks[runbook_id]
        except KeyError:
            known = ", ".join(sorted(self.catalog.runbooks)) or "none"
            raise NotFound(f"no runbook {runbook_id!r}; known: {known}") from None

    # -- triggers ------------------------------------------------------------------------
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
            made += self.expire(conn)
            if last != start:
                store.set_cursor(conn, RESPONDER, last)
        return made

    def _view(self, conn: Connection, incident_id: int) -> tuple[dict[str, Any], bool, list[str]]:
        incident = queries.get_incident(conn, incident_id)
        members = queries.incident_alerts_of(conn, [incident_id])[incident_id]
        view = {"id": incident.id, "title": incident.title, "severity": incident.severity.value,
                "services": incident.services, "alerts": members}
        return view, incident.is_active, incident.services

    def _examine(self, conn: Connection, incident_id: int) -> int:
        view, active, _ = self._view(conn, incident_id)
        view["models"] = self.models(view)
        if not active or not self.catalog.runbooks:
            return 0
        # a reopened incident is the problem back: what was decided and done before the reopen does
        # not hold now (rate limits and the circuit breaker still do), and neither does the ranking of
        # the episode before: the alert that came back may have another cause (a caller's error alert
        # fires again for a fault elsewhere). Until it is ranked again it is decided as a new one is.
        since = store.last_reopened_at(conn, incident_id)
        causes = store.causes_of(conn, incident_id, since)
        earlier = {d.runbook_id: d for d in store.decision_records(conn, incident_id, since)}
        made = 0
        for runbook in self.catalog.runbooks.values():
            found = match(runbook, view, causes)
            if found is None:
                continue
            previous = earlier.get(runbook.id)
            if previous is not None and self._hold(conn, previous, incident_id, runbook, since) is not None:
                continue
            self.decide(conn, incident_id, self.propose(runbook, view, found), actor="policy")
            made += 1
        return made

    def _hold(self, conn: Connection, previous: store.DecisionRecord, incident_id: int,
              runbook: Runbook, since: datetime | None = None) -> Hold | None:
        """Why an earlier decision stands, or None: a new ranking may change a decision nobody has
        acted on yet (no run, no vote), whose approval request is then superseded."""
        if store.has_action(conn, incident_id, runbook.id, since):
            return Hold.ACTED
        if previous.verdict in FINAL:
            return Hold.FINAL_VERDICT
        if not (previous.confidence is None or previous.reason in CONFIDENCE_REASONS):
            return Hold.NOT_CONFIDENCE
        pending = store.pending_approvals_of(conn, incident_id, runbook.id)
        if any(store.votes(conn, p.id) for p in pending):
            return Hold.VOTED
        for p in pending:
            store.set_approval_status(conn, p.id, ApprovalStatus.SUPERSEDED, self.clock())
        return None

    def supersede_unvoted(self, conn: Connection, incident_id: int, was: str, now_top: str) -> list[Change]:
        """The top cause changed (``was`` → ``now_top``): the incident's pending approval requests that the
        policy made and nobody has voted on are superseded in the transaction that stores the new ranking,
        so no vote can approve a fix for a cause no longer believed (the responder decides afresh on its
        next pass, as :meth:`_hold` says). Audited as ``approval.superseded``."""
        now, changes = self.clock(), []
        for req in store.pending_approvals_of(conn, incident_id):
            if req.decision_id is None or store.votes(conn, req.id):
                continue  # a person asked for it, or someone has voted: theirs to finish
            store.set_approval_status(conn, req.id, ApprovalStatus.SUPERSEDED, now)
            changes.append(Change("approval.superseded", f"incident:{incident_id}", now, {
                "approval_id": req.id, "incident_id": incident_id, "runbook_id": req.runbook_id,
                "reason": f"the top cause changed from {was} to {now_top} before anyone voted"}))
        return changes

    # -- deciding ------------------------------------------------------------------------
    def propose(self, runbook: Runbook, view: Mapping[str, Any], found: Match) -> Proposed:
        models = dict(view.get("models") or {})
        try:
            return Proposed(runbook, found, bind(runbook, binding_data(view, found)), "", models)
        except ParameterError as exc:
            return Proposed(runbook, found, {}, str(exc), models)

    def _context(self, conn: Connection, runbook_id: str, service: str, incident_id: int) -> Context:
        now = self.clock()
        hour = now - timedelta(hours=1)
        last = store.last_run_at(conn, runbook_id, service)
        return Context(
            now=now, running_on_service=store.count_active(conn, service=service),
            running_of_runbook=store.count_active(conn, runbook_id=runbook_id),
            actions_last_hour=store.count_since(conn, hour),
            runbook_actions_last_hour=store.count_since(conn, hour, runbook_id),
            breaker_open=store.breaker(conn, runbook_id)[1],
            mitigated=queries.get_incident(conn, incident_id).status is IncidentStatus.MITIGATED,
            last_run_age_s=None if last is None else max(0.0, (now - last).total_seconds()),
        )

    def plan(self, rb: Runbook, params: Mapping[str, Any], incident_id: int) -> dict[str, Any]:
        return engine.plan(rb, StepContext(params, incident_id, rb.id, self.base_env), self.executors)

    def decide(self, conn: Connection, incident_id: int, p: Proposed, actor: str) -> Decided:
        rb, now = p.runbook, self.clock()
        autonomy = value_store.autonomy(conn, rb.id, rb.autonomy)  # its use cases' stages may lower it
        proposal = Proposal(incident_id, rb.id, p.found.service, autonomy, rb.risk, p.found.confidence,
                            rb.confidence_threshold, params_valid=not p.error, params_error=p.error)
        decision = decide(proposal, self._context(conn, rb.id, p.found.service, incident_id), self.policy)
        cause = p.found.cause
        used = {**p.models, **value_store.named_versions(conn, [("rca", cause.model)] if cause else [])}
        inputs = {**decision.inputs, "incident_id": incident_id, "service": p.found.service,
                  "alert": p.found.alert.get("fingerprint") if p.found.alert else None,
                  "cause": {"component": cause.component, "kind": cause.kind, "confidence": cause.confidence,
                            "model": cause.model} if cause else None,
                  "runbook_version": rb.version, "policy_version": POLICY_VERSION,
                  "declared_autonomy": rb.autonomy.value, "model_versions": used}
        decision_id = store.add_decision(
            conn, incident_id=incident_id, runbook_id=rb.id, runbook_version=rb.version,
            verdict=decision.verdict.value, reason=decision.reason.value, rule=decision.rule,
            confidence=p.found.confidence, threshold=decision.threshold, params=p.params, inputs=inputs, at=now)
        changes = [Change("decision.made", f"incident:{incident_id}", now, {
            "decision_id": decision_id, "incident_id": incident_id, "runbook_id": rb.id,
            "verdict": decision.verdict.value, "reason": decision.reason.value, "reason_text": decision.text,
            "rule": decision.rule, "params": p.params, "inputs": inputs, "models": used,
            "would_run": self.plan(rb, p.params, incident_id) if decision.verdict is Verdict.SHADOW else None})]
        action_id = approval_id = None
        if decision.verdict is Verdict.AUTO:
            action_id = self.queue(conn, incident_id, rb, p.params, p.found.service, Trigger.AUTO, actor, changes,
                                   decision_id=decision_id)
        elif decision.verdict is Verdict.NEEDS_APPROVAL:
            approval_id = self.request(conn, incident_id, rb, p.params, p.found.service, actor, changes,
                                       decision_id=decision_id)
        audit.append(conn, "policy" if actor == "policy" else actor, changes)
        return Decided(decision_id, decision.verdict, decision.reason, action_id, approval_id)

    def queue(self, conn: Connection, incident_id: int, rb: Runbook, params: Mapping[str, Any], service: str,
              trigger: Trigger, actor: str, changes: list[Change], *, decision_id: int | None = None,
              approval_id: int | None = None) -> int:
        """Queue an action for the worker (it runs it later, on this server or another)."""
        now = self.clock()
        action_id = store.add_action(
            conn, decision_id=decision_id, approval_id=approval_id, incident_id=incident_id, runbook_id=rb.id,
            service=service, trigger=trigger.value, actor=actor, status=ActionStatus.QUEUED.value,
            params=dict(params), queued_at=now)
        changes.append(Change("action.queued", f"incident:{incident_id}", now, {
            "action_id": action_id, "incident_id": incident_id, "runbook_id": rb.id, "trigger": trigger.value,
            "service": service}))
        return action_id

    def request(self, conn: Connection, incident_id: int, rb: Runbook, params: Mapping[str, Any], service: str,
                requester: str, changes: list[Change], *, decision_id: int | None = None) -> int:
        now = self.clock()
        expires = now + timedelta(seconds=self.policy.approval_ttl_seconds)
        needed = required_approvals(rb.risk, self.policy)
        approval_id = store.add_approval(
            conn, decision_id=decision_id, incident_id=incident_id, runbook_id=rb.id, risk=rb.risk.value,
            params={**params, "__service": service}, requested_by=requester, requested_at=now, expires_at=expires,
            required=needed, status=ApprovalStatus.PENDING.value)
        changes.append(Change("approval.requested", f"incident:{incident_id}", now, {
            "approval_id": approval_id, "incident_id": incident_id, "runbook_id": rb.id, "risk": rb.risk.value,
            "requested_by": requester, "required": needed, "expires_at": expires}))
        return approval_id

    def expire(self, conn: Connection) -> int:
        """Close the pending approval requests nobody may act on any more: past their deadline, or of an
        incident that has resolved (an approval arriving later would run a fix for a problem gone)."""
        now = self.clock()
        closed = [(req, "no decision before the deadline: rejected automatically")
                  for req in store.expired_approvals(conn, now)]
        seen = {req.id for req, _ in closed}
        closed += [(req, f"incident {req.incident_id} resolved before anyone decided: withdrawn")
                   for req in store.pending_of_resolved(conn) if req.id not in seen]
        for req, reason in closed:
            store.set_approval_status(conn, req.id, ApprovalStatus.EXPIRED, now)
            audit.append(conn, "policy", [Change("approval.expired", f"incident:{req.incident_id}", now, {
                "approval_id": req.id, "incident_id": req.incident_id, "runbook_id": req.runbook_id,
                "reason": reason})])
        return len(closed)

    # -- approvals -----------------------------------------------------------------------
    def approvals(self, status: str | None = "pending") -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = store.list_approvals(conn, status)
            for row in rows:
                row["votes"] = store.votes(conn, row["id"])
                row["params"] = {k: v for k, v in row["params"].items() if not k.startswith("__")}
        return rows

    def vote(self, approval_id: int, actor: str, approve: bool, comment: str = "") -> Voted:
        now = self.clock()
        with self.db.write() as conn:
            self.expire(conn)
            req = store.approval_request(conn, approval_id)
            rb = self.runbook(req.runbook_id)
            earlier = [Vote(v["actor"], v["approve"], v["at"], v["comment"]) for v in store.votes(conn, approval_id)]
            if req.status is not ApprovalStatus.PENDING:
                raise Conflict(f"approval request {approval_id} is already {req.status.value}")
            status = cast(ApprovalStatus.PENDING, earlier, Vote(actor, approve, now, comment),
                          requester=req.requested_by, risk=rb.risk, required=req.required,
                          expires_at=req.expires_at, config=self.policy)
            store.add_vote(conn, approval_id=approval_id, actor=actor, approve=approve, comment=comment, at=now)
            subject = f"incident:{req.incident_id}"
            changes = [Change("approval.voted", subject, now, {
                "approval_id": approval_id, "incident_id": req.incident_id, "runbook_id": rb.id,
                "vote": "approve" if approve else "reject", "comment": comment, "status": status.value})]
            action_id = None
            if status is not ApprovalStatus.PENDING:
                store.set_approval_status(conn, approval_id, status, now)
                changes.append(Change(f"approval.{status.value}", subject, now, {
                    "approval_id": approval_id, "incident_id": req.incident_id, "runbook_id": rb.id}))
            if status is ApprovalStatus.APPROVED:
                # Queued in the same transaction as the approval: one approved decision, one action.
                action_id = self.queue(conn, req.incident_id, rb, req.runbook_params, req.service, Trigger.APPROVED,
                                       actor, changes, decision_id=req.decision_id, approval_id=approval_id)
            audit.append(conn, actor, changes)
        return Voted(approval_id, status, action_id)

    # -- manual runs ---------------------------------------------------------------------
    def propose_manual(self, runbook_id: str, incident_id: int) -> Proposed:
        rb = self.runbook(runbook_id)
        with self.db.read() as conn:
            view, _, services = self._view(conn, incident_id)
            causes = store.causes_of(conn, incident_id)
        found = match(rb, view, causes) or Match(None, None, services[0])
        proposed = self.propose(rb, view, found)
        if proposed.error:
            raise InputError(proposed.error)
        return proposed

    def run_manual(self, runbook_id: str, incident_id: int, actor: str) -> dict[str, int]:
        """A human asks to run a runbook: it queues, or asks for approval when the runbook is at
        ``approve`` or its risk needs four eyes."""
        proposed = self.propose_manual(runbook_id, incident_id)
        rb = proposed.runbook
        with self.db.write() as conn:
            changes: list[Change] = []
            if rb.autonomy is Autonomy.APPROVE or rb.risk.rank >= self.policy.four_eyes_risk.rank:
                result = {"approval_id": self.request(conn, incident_id, rb, proposed.params, proposed.found.service,
                                                      actor, changes)}
            else:
                result = {"action_id": self.queue(conn, incident_id, rb, proposed.params, proposed.found.service,
                                                  Trigger.MANUAL, actor, changes)}
            audit.append(conn, actor, changes)
        return result

    # -- shadow evidence -----------------------------------------------------------------
    def score_shadow(self, conn: Connection, incident_id: int, fixed_by: str | None, harmful: list[str],
                     actor: str) -> list[Change]:
        """Score the incident's shadow decisions against what the human says fixed it."""
        if fixed_by is None and not harmful:
            return []
        now, changes = self.clock(), []
        for record in store.unscored_shadow(conn, incident_id):
            if record.runbook_id in harmful:
                outcome = ShadowOutcome.WOULD_HAVE_HARMED
            elif fixed_by == record.runbook_id:
                outcome = ShadowOutcome.AGREED
            else:
                outcome = ShadowOutcome.DIFFERENT_ACTION
            store.score_decision(conn, record.id, outcome.value, now)
            changes.append(Change("decision.scored", f"incident:{incident_id}", now, {
                "decision_id": record.id, "incident_id": incident_id, "runbook_id": record.runbook_id,
                "outcome": outcome.value, "fixed_by": fixed_by, "judged_by": actor}))
        # a runbook that really ran and did harm: the evidence that demotes its use case at once
        for run in store.actions_of(conn, incident_id):
            if run["runbook_id"] in harmful:
                changes.append(Change("action.harmful", f"incident:{incident_id}", now, {
                    "action_id": run["id"], "incident_id": incident_id, "runbook_id": run["runbook_id"],
                    "status": run["status"], "judged_by": actor}))
        return changes
