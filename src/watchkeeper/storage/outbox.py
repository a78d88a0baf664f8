"""The integration outbox: durable messages to external systems, and what those systems gave back.

A message is inserted by :class:`OutboxHook`, which :class:`~watchkeeper.storage.db.Database` runs
inside ``audit.append`` — that is, in the very transaction that commits the incident change (every
change appends to the audit log). Either both the change and its messages are committed, or
neither: nothing acknowledged is lost, nothing is sent for a change that was rolled back.

Delivery (``integrations/delivery.py``) claims due messages with a lease, at most the leading run
of each (incident, target) so that one incident's messages reach one target in order, and marks
each delivered, to be retried later, or dead (after ``max_attempts``, or at once when retrying
cannot help). A dead message does not hold the ones after it back; ``retry`` makes it pending again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, literal_column, or_, select, update

from watchkeeper.errors import Conflict, NotFound
from watchkeeper.integrations.base import AUDIT_KINDS, EventKind, Message
from watchkeeper.integrations.routing import Facts
from watchkeeper.model import AuditRecord
from watchkeeper.storage.tables import alerts, approvals, incident_causes, incidents, integration_refs, outbox

#: Alerts whose labels one routing decision reads at most (an incident of thousands of alerts
#: is routed on the labels of its first ones).
ROUTING_ALERTS = 200


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


#: Routes an incident change: (facts, event) -> target names.
Route = Callable[[Facts, EventKind], list[str]]


class OutboxHook:
    """Called with the audit records of a write transaction, inside it: enqueues one message per
    (incident change worth sending, target its routes name)."""

    def __init__(self, route: Route) -> None:
        self.route = route

    def __call__(self, conn: Connection, records: Sequence[AuditRecord]) -> None:
        wanted = [
            (r, AUDIT_KINDS[r.kind]) for r in records if r.kind in AUDIT_KINDS and r.subject.startswith("incident:")
        ]
        if not wanted:
            return
        ids = sorted({i for r, _ in wanted if (i := _incident_id(r)) is not None})
        snapshots = _snapshots(conn, ids)
        rows: list[dict[str, Any]] = []
        for record, event in wanted:
            incident_id = _incident_id(record)
            snap = snapshots.get(incident_id) if incident_id is not None else None
            if snap is None:
                continue
            targets = self.route(snap.facts, event)
            if not targets:
                continue
            payload = {
                **snap.payload,
                "change": {
                    "kind": record.kind,
                    "seq": record.seq,
                    "actor": record.actor,
                    "at": record.at.isoformat(),
                    "payload": record.payload,
                },
                "approval": snap.approval(conn, record.payload) if event in _APPROVAL_EVENTS else None,
            }
            rows.extend(
                {
                    "incident_id": incident_id,
                    "target": target,
                    "event": event.value,
                    "audit_seq": record.seq,
                    "payload": payload,
                    "status": Status.PENDING.value,
                    "attempts": 0,
                    "created_at": record.at,
                    "next_attempt_at": record.at,
                }
                for target in targets
            )
        if rows:
            conn.execute(insert(outbox), rows)


_APPROVAL_EVENTS = (EventKind.APPROVAL_REQUESTED, EventKind.APPROVAL_DECIDED, EventKind.ACTION_FINISHED)


def _incident_id(record: AuditRecord) -> int | None:
    try:
        return int(record.subject.split(":", 1)[1])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    facts: Facts
    payload: dict[str, Any]

    def approval(self, conn: Connection, change: Mapping[str, Any]) -> dict[str, Any] | None:
        approval_id = change.get("approval_id")
        if not isinstance(approval_id, int):
            return None
        row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            return None
        return {
            "id": row.id,
            "runbook_id": row.runbook_id,
            "risk": row.risk,
            "status": row.status,
            "required": row.required,
            "requested_by": row.requested_by,
            "expires_at": row.expires_at.isoformat(),
            "params": {k: v for k, v in row.params.items() if not k.startswith("__")},
        }


def _snapshots(conn: Connection, ids: list[int]) -> dict[int, _Snapshot]:
    if not ids:
        return {}
    labels: dict[int, list[dict[str, str]]] = {i: [] for i in ids}
    for row in conn.execute(
        select(alerts.c.incident_id, alerts.c.labels)
        .where(alerts.c.incident_id.in_(ids))
        .limit(ROUTING_ALERTS * len(ids))
    ):
        if len(labels[row.incident_id]) < ROUTING_ALERTS:
            labels[row.incident_id].append({str(k): str(v) for k, v in (row.labels or {}).items()})
    causes: dict[int, dict[str, Any]] = {}
    for row in conn.execute(
        select(incident_causes).where(incident_causes.c.incident_id.in_(ids), incident_causes.c.rank == 1)
    ):
        causes[row.incident_id] = {
            "component": row.component,
            "kind": row.kind,
            "confidence": row.confidence,
            "model": row.model,
        }
    found = {}
    for row in conn.execute(select(incidents).where(incidents.c.id.in_(ids))):
        services = list(row.services or [])
        common = _common(labels[row.id])
        found[row.id] = _Snapshot(
            Facts(tuple(services), row.severity, tuple(labels[row.id])),
            {
                "incident": {
                    "id": row.id,
                    "title": row.title,
                    "status": row.status,
                    "severity": row.severity,
                    "services": services,
                    "labels": common,
                    "assignee": row.assignee,
                    "opened_at": row.opened_at.isoformat(),
                    "alert_count": row.alert_count,
                },
                "cause": causes.get(row.id),
            },
        )
    return found


def _common(label_sets: list[dict[str, str]]) -> dict[str, str]:
    """The labels every one of the alerts shares."""
    if not label_sets:
        return {}
    first = dict(label_sets[0])
    for other in label_sets[1:]:
        first = {k: v for k, v in first.items() if other.get(k) == v}
    return first


# -- delivery --------------------------------------------------------------------------------------
def claim(conn: Connection, owner: str, now: datetime, lease_until: datetime, limit: int) -> list[Message]:
    """Lease up to ``limit`` due messages in one ``UPDATE … RETURNING`` (SQLite ≥ 3.35 and
    PostgreSQL): for each (incident, target), only messages with no earlier pending message that
    is not yet due or is leased by someone else (so each incident reaches each target in order).
    Each message carries what its target gave back last for its incident (``integration_refs``),
    read in the same statement. Call in a write transaction (writers are serialized: two servers
    never lease one message)."""
    earlier = outbox.alias("earlier")  # Core's alias: the ORM (5 MiB of imports) is not needed
    blocked = exists().where(
        earlier.c.incident_id == outbox.c.incident_id,
        earlier.c.target == outbox.c.target,
        earlier.c.status == Status.PENDING.value,
        earlier.c.id < outbox.c.id,
        or_(earlier.c.next_attempt_at > now, earlier.c.lease_expires_at >= now),
    )
    due = (
        select(outbox.c.id)
        .where(
            outbox.c.status == Status.PENDING.value,
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < now),
            ~blocked,
        )
        .order_by(outbox.c.id)
        .limit(limit)
        .correlate(None)
    )
    # Spelled out: SQLAlchemy's SQLite dialect leaves RETURNING's columns unqualified, which in
    # this subquery would name integration_refs' own columns (always true).
    ref = (
        select(integration_refs.c.ref)
        .where(
            integration_refs.c.target == literal_column("outbox.target"),
            integration_refs.c.incident_id == literal_column("outbox.incident_id"),
        )
        .scalar_subquery()
        .label("ref")
    )
    rows = conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(
            outbox.c.id,
            outbox.c.incident_id,
            outbox.c.target,
            outbox.c.event,
            outbox.c.payload,
            outbox.c.attempts,
            outbox.c.created_at,
            ref,
        )
    ).all()
    return [
        Message(
            r.id,
            r.incident_id,
            r.target,
            EventKind(r.event),
            r.payload,
            r.attempts,
            r.created_at,
            None if r.ref is None else dict(r.ref),
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _chunks(ids: Sequence[int], size: int = 900) -> list[Sequence[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message."""

    id: int
    target: str
    incident_id: int
    delivered: bool
    ref: Mapping[str, Any] | None = None
    error: str | None = None
    #: when to try again (None with an error: dead-letter it)
    retry_at: datetime | None = None


def settle(conn: Connection, owner: str, outcomes: Iterable[Outcome], now: datetime) -> list[Outcome]:
    """Record outcomes of messages this owner still holds; returns those recorded (a message whose
    lease another server took over in the meantime is left to it). Call in a write transaction:
    the delivered ones take one ``UPDATE … RETURNING`` per 900, a failure one each (they differ
    in their error and next attempt)."""
    outcomes = list(outcomes)
    mine = (outbox.c.lease_owner == owner, outbox.c.status == Status.PENDING.value)
    held: set[int] = set()
    for chunk in _chunks([o.id for o in outcomes if o.delivered]):
        held.update(
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk), *mine)
                .values(
                    status=Status.DELIVERED.value,
                    delivered_at=now,
                    attempts=outbox.c.attempts + 1,
                    last_error=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .returning(outbox.c.id)
            ).scalars()
        )
    for o in outcomes:
        if o.delivered:
            if o.ref is not None and o.id in held:
                set_ref(conn, o.target, o.incident_id, o.ref, now)
            continue
        held.update(
            conn.execute(
                update(outbox)
                .where(outbox.c.id == o.id, *mine)
                .values(
                    status=Status.PENDING.value if o.retry_at is not None else Status.DEAD.value,
                    next_attempt_at=o.retry_at or now,
                    attempts=outbox.c.attempts + 1,
                    last_error=o.error,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .returning(outbox.c.id)
            ).scalars()
        )
    return [o for o in outcomes if o.id in held]


def release(conn: Connection, owner: str, ids: Sequence[int]) -> None:
    """Give back messages claimed but not attempted (their group stopped at an earlier failure)."""
    for chunk in _chunks(list(ids)):
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


def set_ref(conn: Connection, target: str, incident_id: int, ref: Mapping[str, Any], now: datetime) -> None:
    changed = conn.execute(
        update(integration_refs)
        .where(integration_refs.c.target == target, integration_refs.c.incident_id == incident_id)
        .values(ref=dict(ref), updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(
            insert(integration_refs).values(target=target, incident_id=incident_id, ref=dict(ref), updated_at=now)
        )


def get_ref(conn: Connection, target: str, incident_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(integration_refs.c.ref).where(
            integration_refs.c.target == target, integration_refs.c.incident_id == incident_id
        )
    ).first()
    return dict(row.ref) if row else None


# -- operators' view ----------------------------------------------------------------------------------
def get(conn: Connection, message_id: int) -> dict[str, Any]:
    row = conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    return _view(row)


def messages(
    conn: Connection,
    *,
    status: str | None = None,
    target: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    query = select(outbox).order_by(outbox.c.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if target is not None:
        query = query.where(outbox.c.target == target)
    if incident_id is not None:
        query = query.where(outbox.c.incident_id == incident_id)
    return [_view(row) for row in conn.execute(query)]


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "target": row.target,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "next_attempt_at": row.next_attempt_at if row.status == Status.PENDING.value else None,
        "delivered_at": row.delivered_at,
        "last_error": row.last_error,
        "audit_seq": row.audit_seq,
    }


def retry(conn: Connection, message_id: int, now: datetime) -> dict[str, Any]:
    """Make a dead (or waiting) message due now, with a fresh count of attempts."""
    found = get(conn, message_id)
    if found["status"] == Status.DELIVERED.value:
        raise Conflict(
            f"outbox message {message_id} was delivered at {found['delivered_at']:%Y-%m-%dT%H:%M:%SZ}; nothing to retry"
        )
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id)
        .values(status=Status.PENDING.value, attempts=0, next_attempt_at=now, lease_owner=None, lease_expires_at=None)
    )
    return get(conn, message_id)


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Messages by (target, status)."""
    rows = conn.execute(
        select(outbox.c.target, outbox.c.status, func.count()).group_by(outbox.c.target, outbox.c.status)
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def oldest_pending(conn: Connection) -> datetime | None:
    return conn.execute(
        select(func.min(outbox.c.created_at)).where(outbox.c.status == Status.PENDING.value)
    ).scalar_one_or_none()


def health(conn: Connection) -> dict[str, Any]:
    """What ``/healthz`` and the console show: pending and dead messages, and the oldest pending
    one's creation time, per target (by the status index: delivered messages are not counted)."""
    by_target: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        select(outbox.c.target, outbox.c.status, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.status.in_([Status.PENDING.value, Status.DEAD.value]))
        .group_by(outbox.c.target, outbox.c.status)
    )
    for target, status, n, oldest in rows:
        entry = by_target.setdefault(target, {"pending": 0, "dead": 0, "oldest_pending_at": None})
        entry[status] = int(n)
        if status == Status.PENDING.value:
            entry["oldest_pending_at"] = oldest
    return by_target


def prune(conn: Connection, before: datetime) -> int:
    """Delete delivered messages delivered before ``before`` (dead ones stay until retried)."""
    return int(
        conn.execute(
            delete(outbox).where(outbox.c.status == Status.DELIVERED.value, outbox.c.delivered_at < before)
        ).rowcount
        or 0
    )


__all__ = [
    "OutboxHook",
    "Outcome",
    "Status",
    "claim",
    "counts",
    "get",
    "get_ref",
    "health",
    "messages",
    "prune",
    "release",
    "retry",
    "set_ref",
    "settle",
]
