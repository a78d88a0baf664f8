"""SQL for decisions, approvals, action runs (claimed with a lease), causes, runbook state and cursors.

Governance reads typed rows (:class:`DecisionRecord`, :class:`ApprovalRequest`,
:class:`~watchkeeper.execute.actions.ActionRun`); the ``dict`` readers serve the JSON views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update

from watchkeeper.errors import NotFound
from watchkeeper.execute.actions import ActionRun, ActionStatus, Lease, Trigger
from watchkeeper.model import Cause, IncidentStatus
from watchkeeper.policy import Reason, Risk, Verdict
from watchkeeper.policy.approvals import ApprovalStatus
from watchkeeper.storage.tables import (
    action_runs,
    approval_votes,
    approvals,
    audit_log,
    cursors,
    decisions,
    incident_causes,
    incidents,
    runbook_state,
)

ACTIVE = (ActionStatus.QUEUED.value, ActionStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    incident_id: int
    runbook_id: str
    verdict: Verdict
    reason: Reason
    confidence: float | None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    id: int
    decision_id: int | None
    incident_id: int
    runbook_id: str
    risk: Risk
    params: dict[str, Any]
    requested_by: str
    expires_at: datetime
    required: int
    status: ApprovalStatus

    @property
    def service(self) -> str:
        return str(self.params.get("__service", ""))

    @property
    def runbook_params(self) -> dict[str, Any]:
        """The runbook's parameters, without the request's own bookkeeping keys."""
        return {k: v for k, v in self.params.items() if not k.startswith("__")}


def _one(conn: Connection, query: Any, what: str) -> dict[str, Any]:
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no {what}")
    return dict(row._mapping)


# -- cursor ---------------------------------------------------------------------------------
def cursor(conn: Connection, name: str) -> int:
    value = conn.execute(select(cursors.c.seq).where(cursors.c.name == name)).scalar()
    return int(value or 0)


def set_cursor(conn: Connection, name: str, seq: int) -> None:
    if conn.execute(update(cursors).where(cursors.c.name == name).values(seq=seq)).rowcount == 0:
        conn.execute(insert(cursors).values(name=name, seq=seq))


# -- causes ---------------------------------------------------------------------------------
def replace_causes(conn: Connection, incident_id: int, causes: Sequence[Cause], at: datetime) -> None:
    conn.execute(incident_causes.delete().where(incident_causes.c.incident_id == incident_id))
    if causes:
        conn.execute(insert(incident_causes), [
            {"incident_id": incident_id, "rank": i, "component": c.component, "kind": c.kind, "score": c.score,
             "confidence": c.confidence, "model": c.model, "evidence": dict(c.evidence), "created_at": at}
            for i, c in enumerate(causes, start=1)
        ])


def causes_of(conn: Connection, incident_id: int, since: datetime | None = None) -> list[Cause]:
    """The incident's ranked causes; with ``since`` (its last reopen), none when they were ranked
    before it — the episode before's ranking, stale for the one that came back."""
    if since is not None and (ranked := causes_ranked_at(conn, incident_id)) is not None and ranked < since:
        return []
    rows = conn.execute(select(incident_causes).where(incident_causes.c.incident_id == incident_id)
                        .order_by(incident_causes.c.rank))
    return [Cause(r.component, r.kind, r.score, r.confidence, r.model, r.evidence) for r in rows]


def causes_ranked_at(conn: Connection, incident_id: int) -> datetime | None:
    """When the incident's stored causes were ranked (None: it has none)."""
    found: datetime | None = conn.execute(select(func.min(incident_causes.c.created_at)).where(
        incident_causes.c.incident_id == incident_id)).scalar()
    return found


def top_causes_of(conn: Connection, incident_ids: Sequence[int], top: int = 3) -> dict[int, list[dict[str, Any]]]:
    """The ``top`` ranked causes of each incident (component, kind, confidence, model), in one query."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    rows = conn.execute(select(incident_causes.c.incident_id, incident_causes.c.component, incident_causes.c.kind,
                               incident_causes.c.confidence, incident_causes.c.model)
                        .where(incident_causes.c.incident_id.in_(list(incident_ids)), incident_causes.c.rank <= top)
                        .order_by(incident_causes.c.incident_id, incident_causes.c.rank))
    for r in rows:
        found[r.incident_id].append({"component": r.component, "kind": r.kind, "confidence": r.confidence,
                                     "model": r.model})
    return found


# -- decisions ------------------------------------------------------------------------------
def add_decision(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(decisions).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def decisions_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(decisions).where(decisions.c.incident_id == incident_id).order_by(decisions.c.id))
    return [dict(r._mapping) for r in rows]


def last_reopened_at(conn: Connection, incident_id: int) -> datetime | None:
    """When the incident was last reopened (from the audit log), or None if never."""
    return reopened_at(conn, [incident_id]).get(incident_id)


def reopened_at(conn: Connection, incident_ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these incidents was last reopened (those never reopened are absent), in one query."""
    if not incident_ids:
        return {}
    subjects = {f"incident:{i}": i for i in incident_ids}
    rows = conn.execute(select(audit_log.c.subject, func.max(audit_log.c.at)).where(
        audit_log.c.subject.in_(list(subjects)), audit_log.c.kind == "incident.reopened",
    ).group_by(audit_log.c.subject))
    return {subjects[subject]: at for subject, at in rows}


def decision_records(conn: Connection, incident_id: int, since: datetime | None = None) -> list[DecisionRecord]:
    """The incident's decisions (only those made at or after ``since`` when given)."""
    query = select(decisions).where(decisions.c.incident_id == incident_id)
    if since is not None:
        query = query.where(decisions.c.at >= since)
    rows = conn.execute(query.order_by(decisions.c.id))
    return [DecisionRecord(r.id, r.incident_id, r.runbook_id, Verdict(r.verdict), Reason(r.reason), r.confidence)
            for r in rows]


def unscored_shadow(conn: Connection, incident_id: int) -> list[DecisionRecord]:
    rows = conn.execute(select(decisions).where(
        decisions.c.incident_id == incident_id, decisions.c.verdict == Verdict.SHADOW.value,
        decisions.c.outcome.is_(None)))
    return [DecisionRecord(r.id, r.incident_id, r.runbook_id, Verdict(r.verdict), Reason(r.reason), r.confidence)
            for r in rows]


def score_decision(conn: Connection, decision_id: int, outcome: str, at: datetime) -> None:
    conn.execute(update(decisions).where(decisions.c.id == decision_id).values(outcome=outcome, scored_at=at))


def shadow_evidence(conn: Connection) -> dict[str, dict[str, int]]:
    """Per runbook: shadow decisions by outcome (``None`` → ``unscored``)."""
    rows = conn.execute(
        select(decisions.c.runbook_id, decisions.c.outcome, func.count())
        .where(decisions.c.verdict == "shadow").group_by(decisions.c.runbook_id, decisions.c.outcome)
    )
    found: dict[str, dict[str, int]] = {}
    for runbook_id, outcome, n in rows:
        found.setdefault(runbook_id, {})[outcome or "unscored"] = int(n)
    return found


# -- approvals ------------------------------------------------------------------------------
def add_approval(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(approvals).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def approval(conn: Connection, approval_id: int) -> dict[str, Any]:
    return _one(conn, select(approvals).where(approvals.c.id == approval_id), f"approval request {approval_id}")


def _request(r: Row[Any]) -> ApprovalRequest:
    return ApprovalRequest(r.id, r.decision_id, r.incident_id, r.runbook_id, Risk(r.risk), dict(r.params),
                           r.requested_by, r.expires_at, r.required, ApprovalStatus(r.status))


def approval_request(conn: Connection, approval_id: int) -> ApprovalRequest:
    row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
    if row is None:
        raise NotFound(f"no approval request {approval_id}")
    return _request(row)


def list_approvals(conn: Connection, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(approvals).order_by(approvals.c.id.desc()).limit(limit)
    if status:
        query = query.where(approvals.c.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


def pending_approvals_of(conn: Connection, incident_id: int, runbook_id: str | None = None) -> list[ApprovalRequest]:
    """The incident's pending approval requests (of one runbook, when given)."""
    query = select(approvals).where(approvals.c.incident_id == incident_id,
                                    approvals.c.status == ApprovalStatus.PENDING.value)
    if runbook_id is not None:
        query = query.where(approvals.c.runbook_id == runbook_id)
    return [_request(r) for r in conn.execute(query.order_by(approvals.c.id))]


def votes(conn: Connection, approval_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(approval_votes).where(approval_votes.c.approval_id == approval_id)
                        .order_by(approval_votes.c.id))
    return [dict(r._mapping) for r in rows]


def add_vote(conn: Connection, **values: Any) -> None:
    conn.execute(insert(approval_votes).values(**values))


def set_approval_status(conn: Connection, approval_id: int, status: ApprovalStatus, at: datetime) -> None:
    conn.execute(update(approvals).where(approvals.c.id == approval_id).values(status=status.value, decided_at=at))


def expired_approvals(conn: Connection, now: datetime) -> list[ApprovalRequest]:
    rows = conn.execute(select(approvals).where(
        approvals.c.status == ApprovalStatus.PENDING.value, approvals.c.expires_at <= now))
    return [_request(r) for r in rows]


def pending_of_resolved(conn: Connection) -> list[ApprovalRequest]:
    """Pending approval requests whose incident has resolved (nothing left to approve)."""
    rows = conn.execute(select(approvals).join(incidents, incidents.c.id == approvals.c.incident_id).where(
        approvals.c.status == ApprovalStatus.PENDING.value, incidents.c.status == IncidentStatus.RESOLVED.value))
    return [_request(r) for r in rows]


# -- action runs ----------------------------------------------------------------------------
def add_action(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(action_runs).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def action(conn: Connection, action_id: int) -> dict[str, Any]:
    return _one(conn, select(action_runs).where(action_runs.c.id == action_id), f"action run {action_id}")


def actions_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(action_runs).where(action_runs.c.incident_id == incident_id).order_by(action_runs.c.id))
    return [dict(r._mapping) for r in rows]


def has_action(conn: Connection, incident_id: int, runbook_id: str, since: datetime | None = None) -> bool:
    """Whether the runbook ran (or is queued) for the incident (at or after ``since`` when given)."""
    query = select(action_runs.c.id).where(action_runs.c.incident_id == incident_id,
                                           action_runs.c.runbook_id == runbook_id)
    if since is not None:
        query = query.where(action_runs.c.queued_at >= since)
    return conn.execute(query.limit(1)).first() is not None


def set_action(conn: Connection, action_id: int, **values: Any) -> None:
    conn.execute(update(action_runs).where(action_runs.c.id == action_id).values(**values))


def count_active(conn: Connection, *, service: str | None = None, runbook_id: str | None = None) -> int:
    query = select(func.count()).select_from(action_runs).where(action_runs.c.status.in_(ACTIVE))
    if service is not None:
        query = query.where(action_runs.c.service == service)
    if runbook_id is not None:
        query = query.where(action_runs.c.runbook_id == runbook_id)
    return int(conn.execute(query).scalar_one())


def count_running(conn: Connection, service: str) -> int:
    return int(conn.execute(select(func.count()).select_from(action_runs).where(
        and_(action_runs.c.status == ActionStatus.RUNNING.value, action_runs.c.service == service))).scalar_one())


def last_run_at(conn: Connection, runbook_id: str, service: str) -> datetime | None:
    """When ``runbook_id`` last ran on ``service``, for any incident and any outcome: the latest
    queued run's finish, else its start, else its queueing; None if it never did."""
    row = conn.execute(
        select(action_runs.c.finished_at, action_runs.c.started_at, action_runs.c.queued_at)
        .where(action_runs.c.runbook_id == runbook_id, action_runs.c.service == service)
        .order_by(action_runs.c.queued_at.desc(), action_runs.c.id.desc()).limit(1)).first()
    return None if row is None else row.finished_at or row.started_at or row.queued_at


def count_since(conn: Connection, since: datetime, runbook_id: str | None = None) -> int:
    query = select(func.count()).select_from(action_runs).where(
        action_runs.c.queued_at >= since, action_runs.c.trigger == "auto")
    if runbook_id is not None:
        query = query.where(action_runs.c.runbook_id == runbook_id)
    return int(conn.execute(query).scalar_one())


# -- leases ---------------------------------------------------------------------------------
def _run(r: Row[Any]) -> ActionRun:
    lease = Lease(r.lease_owner, r.lease_expires_at) if r.lease_owner and r.lease_expires_at else None
    return ActionRun(r.id, r.incident_id, r.runbook_id, r.service, Trigger(r.trigger), r.actor, ActionStatus(r.status),
                     dict(r.params), r.decision_id, r.approval_id, lease)


def action_run(conn: Connection, action_id: int) -> ActionRun:
    row = conn.execute(select(action_runs).where(action_runs.c.id == action_id)).first()
    if row is None:
        raise NotFound(f"no action run {action_id}")
    return _run(row)


def claim(conn: Connection, lease: Lease, now: datetime, max_per_service: int, *,
          skip_locked: bool = False) -> ActionRun | None:
    """Claim the oldest queued action whose service has room: mark it running under ``lease``.

    The candidates are read with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``skip_locked``), so a
    server never waits on a row another is claiming; the claim itself is a conditional UPDATE
    (``WHERE status = 'queued'``) whose row count says whether this server won it, which is atomic
    on SQLite and PostgreSQL alike.
    """
    query = select(action_runs).where(action_runs.c.status == ActionStatus.QUEUED.value).order_by(action_runs.c.id)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    busy: dict[str, int] = {}
    for row in conn.execute(query).all():
        if row.service not in busy:
            busy[row.service] = count_running(conn, row.service)
        if busy[row.service] >= max_per_service:
            continue
        won = conn.execute(update(action_runs).where(
            action_runs.c.id == row.id, action_runs.c.status == ActionStatus.QUEUED.value,
        ).values(status=ActionStatus.RUNNING.value, started_at=now, lease_owner=lease.owner,
                 lease_expires_at=lease.expires_at)).rowcount
        if won == 1:
            return action_run(conn, row.id)
    return None


def renew(conn: Connection, action_id: int, lease: Lease) -> bool:
    """Move the deadline of ``lease`` forward; False when the action is no longer ours."""
    return conn.execute(update(action_runs).where(
        action_runs.c.id == action_id, action_runs.c.status == ActionStatus.RUNNING.value,
        action_runs.c.lease_owner == lease.owner,
    ).values(lease_expires_at=lease.expires_at)).rowcount == 1


def finish(conn: Connection, action_id: int, owner: str, **values: Any) -> bool:
    """Record the end of a run we still hold (the lease is released); False when it was taken from us."""
    return conn.execute(update(action_runs).where(
        action_runs.c.id == action_id, action_runs.c.status == ActionStatus.RUNNING.value,
        action_runs.c.lease_owner == owner,
    ).values(lease_expires_at=None, **values)).rowcount == 1


def _lapsed(now: datetime) -> Any:
    # No deadline: a run claimed before migration 0009, by a server that is gone.
    return and_(action_runs.c.status == ActionStatus.RUNNING.value,
                or_(action_runs.c.lease_expires_at.is_(None), action_runs.c.lease_expires_at <= now))


def expired_leases(conn: Connection, now: datetime) -> list[ActionRun]:
    """Running actions whose lease has expired: their server stopped heart-beating."""
    return [_run(r) for r in conn.execute(select(action_runs).where(_lapsed(now)).order_by(action_runs.c.id))]


def interrupt(conn: Connection, action_id: int, now: datetime) -> bool:
    """Mark a running action interrupted if (and only if) its lease has expired."""
    return conn.execute(update(action_runs).where(action_runs.c.id == action_id, _lapsed(now)).values(
        status=ActionStatus.INTERRUPTED.value, finished_at=now, lease_expires_at=None)).rowcount == 1


# -- runbook state --------------------------------------------------------------------------
def breaker(conn: Connection, runbook_id: str) -> tuple[int, bool]:
    row = conn.execute(select(runbook_state).where(runbook_state.c.runbook_id == runbook_id)).first()
    return (int(row.consecutive_failures), bool(row.breaker_open)) if row else (0, False)


def set_breaker(conn: Connection, runbook_id: str, failures: int, is_open: bool, at: datetime) -> None:
    values = {"consecutive_failures": failures, "breaker_open": is_open, "updated_at": at}
    query = update(runbook_state).where(runbook_state.c.runbook_id == runbook_id).values(**values)
    if conn.execute(query).rowcount == 0:
        conn.execute(insert(runbook_state).values(runbook_id=runbook_id, **values))
