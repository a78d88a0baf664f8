"""Reads and small writes for the API and CLI: incidents, tokens, dead letters, KPI counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from watchkeeper.errors import NotFound
from watchkeeper.model import Incident
from watchkeeper.storage.ingest import incident_from_row
from watchkeeper.storage.tables import (
    alerts,
    api_tokens,
    dead_letters,
    events,
    incident_alerts,
    incident_services,
    incidents,
    silences,
)
from watchkeeper.tokens import TokenInfo


def list_incidents(
    conn: Connection, *, status: str | None = None, service: str | None = None,
    since: datetime | None = None, limit: int = 100, offset: int = 0,
) -> list[Incident]:
    query = select(incidents).order_by(incidents.c.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(incidents.c.status == status)
    if since:
        query = query.where(incidents.c.opened_at >= since)
    if service:
        query = query.where(incidents.c.id.in_(
            select(incident_services.c.incident_id).where(incident_services.c.service == service)
        ))
    return [incident_from_row(row) for row in conn.execute(query)]


#: The largest id a row can have (PostgreSQL's INTEGER): a larger one names nothing.
MAX_ID = 2**31 - 1


def get_incident(conn: Connection, incident_id: int) -> Incident:
    if not 0 < incident_id <= MAX_ID:  # out of the column's range: PostgreSQL would refuse the query
        raise NotFound(f"no incident {incident_id}")
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return incident_from_row(row)


def incident_alerts_of(conn: Connection, incident_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every alert that joined each incident, with the reason it joined and its current state."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    query = (
        select(
            incident_alerts.c.incident_id, incident_alerts.c.fingerprint, incident_alerts.c.joined_at,
            incident_alerts.c.reason, incident_alerts.c.detail, alerts.c.name, alerts.c.service, alerts.c.resource,
            alerts.c.status, alerts.c.severity, alerts.c.labels, alerts.c.summary,
            alerts.c.count, alerts.c.last_seen, alerts.c.resolved_at, alerts.c.source,
        )
        .join(alerts, alerts.c.fingerprint == incident_alerts.c.fingerprint)
        .where(incident_alerts.c.incident_id.in_(incident_ids))
        .order_by(incident_alerts.c.id)
    )
    for row in conn.execute(query):
        found[row.incident_id].append({
            "fingerprint": row.fingerprint, "name": row.name, "service": row.service, "resource": row.resource,
            "status": row.status, "severity": row.severity, "labels": row.labels,
            "summary": row.summary, "count": row.count, "joined_at": row.joined_at,
            "last_seen": row.last_seen, "resolved_at": row.resolved_at,
            "reason": row.reason, "reason_detail": row.detail, "source": row.source,
        })
    return found


def incidents_opened_between(
    conn: Connection, start: datetime | None, end: datetime | None
) -> list[Incident]:
    query = select(incidents)
    if start:
        query = query.where(incidents.c.opened_at >= start)
    if end:
        query = query.where(incidents.c.opened_at < end)
    return [incident_from_row(row) for row in conn.execute(query)]


def count_between(conn: Connection, what: str, start: datetime | None, end: datetime | None) -> int:
    """Events received, or alerts that joined an incident, in ``[start, end)``."""
    column = {"events": events.c.received_at, "alerts": incident_alerts.c.joined_at}[what]
    query = select(func.count()).select_from(column.table)
    if start:
        query = query.where(column >= start)
    if end:
        query = query.where(column < end)
    return int(conn.execute(query).scalar_one())


def count_active_incidents(conn: Connection) -> int:
    return int(conn.execute(
        select(func.count()).select_from(incidents).where(incidents.c.status != "resolved")
    ).scalar_one())


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    name: str
    role: str
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


def add_token(conn: Connection, name: str, role: str, token_hash: str, at: datetime,
              expires_at: datetime | None = None) -> int:
    result = conn.execute(insert(api_tokens).values(
        name=name, role=role, token_hash=token_hash, created_at=at, expires_at=expires_at,
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def find_token(conn: Connection, token_hash: str) -> TokenRow | None:
    """The unrevoked token with this hash (expired or not: the caller says which)."""
    row = conn.execute(
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.expires_at,
               api_tokens.c.last_used_at)
        .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
    ).first()
    return TokenRow(row.id, row.name, row.role, row.expires_at, row.last_used_at) if row else None


def list_tokens(conn: Connection, token_id: int | None = None) -> list[TokenInfo]:
    query = select(
        api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at,
        api_tokens.c.expires_at, api_tokens.c.revoked_at, api_tokens.c.last_used_at,
    ).order_by(api_tokens.c.id)
    if token_id is not None:
        query = query.where(api_tokens.c.id == token_id)
    return [TokenInfo(r.id, r.name, r.role, r.created_at, r.expires_at, r.revoked_at, r.last_used_at)
            for r in conn.execute(query)]


def revoke_token(conn: Connection, token_id: int, at: datetime) -> bool:
    if not 0 < token_id <= MAX_ID:
        return False
    result = conn.execute(
        update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return bool(result.rowcount)


def expire_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(expires_at=at))


def touch_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at))


def add_dead_letter(
    conn: Connection, *, at: datetime, source: str, content_type: str | None, status: int,
    error: str, size: int, body: bytes, truncated: bool,
) -> int:
    result = conn.execute(insert(dead_letters).values(
        received_at=at, source=source, content_type=content_type, status=status, error=error,
        size=size, body=body, truncated=truncated,
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def list_dead_letters(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


def count_dead_letters(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())


def add_silence(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(silences).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def list_silences(conn: Connection, at: datetime | None) -> list[dict[str, Any]]:
    query = select(silences).order_by(silences.c.id.desc())
    if at is not None:
        query = query.where(silences.c.ends_at > at)
    return [dict(row._mapping) for row in conn.execute(query)]


def end_silence(conn: Connection, silence_id: int, at: datetime) -> bool:
    if not 0 < silence_id <= MAX_ID:
        return False
    result = conn.execute(update(silences).where(silences.c.id == silence_id, silences.c.ends_at > at)
                          .values(ends_at=at))
    return bool(result.rowcount)


def get_alert(conn: Connection, fingerprint: str) -> Any:
    from watchkeeper.storage.ingest import alert_from_row

    row = conn.execute(select(alerts).where(alerts.c.fingerprint == fingerprint)).first()
    if row is None:
        raise NotFound(f"no alert with fingerprint {fingerprint!r}")
    return alert_from_row(row)


def member_fingerprints(conn: Connection, incident_id: int) -> list[str]:
    rows = conn.execute(select(incident_alerts.c.fingerprint).where(incident_alerts.c.incident_id == incident_id)
                        .order_by(incident_alerts.c.id))
    return list(dict.fromkeys(r.fingerprint for r in rows))


def move_membership(conn: Connection, fingerprint: str, source: int, target: int, at: datetime, detail: str) -> None:
    conn.execute(incident_alerts.delete().where(incident_alerts.c.incident_id == source,
                                                incident_alerts.c.fingerprint == fingerprint))
    conn.execute(insert(incident_alerts).values(incident_id=target, fingerprint=fingerprint, joined_at=at,
                                                reason="human", detail=detail))


def count_auto_joins(conn: Connection, start: datetime | None, end: datetime | None) -> int:
    """Alerts the correlator put into an existing incident (joins other than new/human)."""
    query = select(func.count()).select_from(incident_alerts).where(
        incident_alerts.c.reason.not_in(("new_incident", "human")))
    if start:
        query = query.where(incident_alerts.c.joined_at >= start)
    if end:
        query = query.where(incident_alerts.c.joined_at < end)
    return int(conn.execute(query).scalar_one())


def count_audit(conn: Connection, kind: str, start: datetime | None, end: datetime | None) -> int:
    from watchkeeper.storage.tables import audit_log

    query = select(func.count()).select_from(audit_log).where(audit_log.c.kind == kind)
    if start:
        query = query.where(audit_log.c.at >= start)
    if end:
        query = query.where(audit_log.c.at < end)
    return int(conn.execute(query).scalar_one())


def activations(conn: Connection, start: datetime | None, end: datetime | None) -> list[tuple[str, datetime, str]]:
    """(alert name, when it started firing into an incident, service) — the history co-occurrence learns from."""
    query = (select(alerts.c.name, incident_alerts.c.joined_at, alerts.c.service)
             .join(alerts, alerts.c.fingerprint == incident_alerts.c.fingerprint)
             .where(incident_alerts.c.reason != "human").order_by(incident_alerts.c.joined_at))
    if start:
        query = query.where(incident_alerts.c.joined_at >= start)
    if end:
        query = query.where(incident_alerts.c.joined_at < end)
    return [(r.name, r.joined_at, r.service) for r in conn.execute(query) if r.name]


def delete_received_before(conn: Connection, what: str, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest ``events`` or ``dead_letters`` received before ``before``."""
    table = {"events": events, "dead_letters": dead_letters}[what]
    oldest = select(table.c.id).where(table.c.received_at < before).order_by(table.c.id).limit(limit)
    return int(conn.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery()))).rowcount)
