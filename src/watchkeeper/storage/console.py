"""The console's SQL: users, sessions, used approval-link nonces, generated secrets, and the
incident list's keyset page (fast at any depth: ``id < before``, never an OFFSET)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from watchkeeper.model import Incident
from watchkeeper.storage.ingest import incident_from_row
from watchkeeper.storage.tables import (
    action_runs,
    alerts,
    approvals,
    audit_log,
    console_link_nonces,
    console_secrets,
    console_sessions,
    console_users,
    incident_services,
    incidents,
)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    role: str
    password_hash: str | None
    created_at: datetime
    disabled_at: datetime | None
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user: UserRow
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    via: str


def _user(row: Any) -> UserRow:
    return UserRow(row.id, row.name, row.role, row.password_hash, row.created_at, row.disabled_at,
                   row.last_login_at)


# -- users -------------------------------------------------------------------------------------
def add_user(conn: Connection, name: str, role: str, password_hash: str | None, at: datetime) -> int | None:
    """The new user's id, or None when the name is taken."""
    try:
        with conn.begin_nested():
            result = conn.execute(insert(console_users).values(
                name=name, role=role, password_hash=password_hash, created_at=at))
    except IntegrityError:
        return None
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def find_user(conn: Connection, name: str) -> UserRow | None:
    row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
    return None if row is None else _user(row)


def list_users(conn: Connection) -> list[UserRow]:
    return [_user(r) for r in conn.execute(select(console_users).order_by(console_users.c.id))]


def update_user(conn: Connection, user_id: int, **values: Any) -> None:
    conn.execute(update(console_users).where(console_users.c.id == user_id).values(**values))


# -- sessions ----------------------------------------------------------------------------------
def add_session(conn: Connection, session_id: str, user_id: int, at: datetime, expires_at: datetime,
                via: str) -> None:
    conn.execute(insert(console_sessions).values(
        id=session_id, user_id=user_id, created_at=at, expires_at=expires_at, last_seen_at=at, via=via))


def find_session(conn: Connection, session_id: str) -> SessionRow | None:
    row = conn.execute(
        select(console_sessions.c.id.label("sid"), console_sessions.c.created_at.label("s_created"),
               console_sessions.c.expires_at, console_sessions.c.last_seen_at, console_sessions.c.via,
               console_users)
        .join(console_users, console_users.c.id == console_sessions.c.user_id)
        .where(console_sessions.c.id == session_id)
    ).first()
    if row is None:
        return None
    return SessionRow(row.sid, _user(row), row.s_created, row.expires_at, row.last_seen_at, row.via)


def touch_session(conn: Connection, session_id: str, at: datetime) -> None:
    conn.execute(update(console_sessions).where(console_sessions.c.id == session_id).values(last_seen_at=at))


def end_sessions(conn: Connection, *, session_id: str | None = None, user_id: int | None = None,
                 before: datetime | None = None) -> int:
    """Delete one session, a user's sessions, or those that expired before ``before``."""
    query = delete(console_sessions)
    if session_id is not None:
        query = query.where(console_sessions.c.id == session_id)
    elif user_id is not None:
        query = query.where(console_sessions.c.user_id == user_id)
    elif before is not None:
        query = query.where(console_sessions.c.expires_at < before)
    else:
        raise ValueError("say which sessions to end")
    return int(conn.execute(query).rowcount)


# -- approval-link nonces ----------------------------------------------------------------------
def use_nonce(conn: Connection, nonce: str, approval_id: int, at: datetime, actor: str,
              expires_at: datetime) -> bool:
    """Record ``nonce`` as used; False if it already was (the primary key refuses it)."""
    conn.execute(delete(console_link_nonces).where(console_link_nonces.c.expires_at < at))
    try:
        with conn.begin_nested():
            conn.execute(insert(console_link_nonces).values(
                nonce=nonce, approval_id=approval_id, used_at=at, used_by=actor, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def nonce_used(conn: Connection, nonce: str) -> dict[str, Any] | None:
    row = conn.execute(select(console_link_nonces).where(console_link_nonces.c.nonce == nonce)).first()
    return None if row is None else dict(row._mapping)


def free_nonce(conn: Connection, nonce: str) -> None:
    conn.execute(delete(console_link_nonces).where(console_link_nonces.c.nonce == nonce))


# -- secrets -----------------------------------------------------------------------------------
def secret(conn: Connection, name: str, make: str, at: datetime) -> str:
    """The stored secret ``name``; ``make`` is stored first if there is none (a race with another
    server is settled by the primary key: both read the winner's)."""
    row = conn.execute(select(console_secrets.c.value).where(console_secrets.c.name == name)).first()
    if row is not None:
        return str(row.value)
    try:
        with conn.begin_nested():
            conn.execute(insert(console_secrets).values(name=name, value=make, created_at=at))
    except IntegrityError:
        return str(conn.execute(select(console_secrets.c.value).where(console_secrets.c.name == name)).scalar_one())
    return make


# -- the incident list -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IncidentFilter:
    status: str | None = None
    service: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


def incident_page(conn: Connection, where: IncidentFilter, before: int | None, limit: int) -> list[Incident]:
    """Up to ``limit`` incidents, newest first, with ids below ``before`` (the keyset)."""
    query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
    conditions = []
    if before is not None:
        conditions.append(incidents.c.id < before)
    if where.status == "active":
        conditions.append(incidents.c.status != "resolved")
    elif where.status:
        conditions.append(incidents.c.status == where.status)
    if where.severity:
        conditions.append(incidents.c.severity == where.severity)
    if where.since:
        conditions.append(incidents.c.opened_at >= where.since)
    if where.until:
        conditions.append(incidents.c.opened_at < where.until)
    if where.service:
        conditions.append(incidents.c.id.in_(
            select(incident_services.c.incident_id).where(incident_services.c.service == where.service)))
    if where.text:
        conditions.append(func.lower(incidents.c.title).contains(where.text.lower(), autoescape=True))
    if conditions:
        query = query.where(and_(*conditions))
    return [incident_from_row(row) for row in conn.execute(query)]


def known_services(conn: Connection, limit: int = 500) -> list[str]:
    query = select(incident_services.c.service).distinct().order_by(incident_services.c.service).limit(limit)
    return [r.service for r in conn.execute(query)]


def firing_alerts(conn: Connection, limit: int = 5000) -> list[dict[str, Any]]:
    """The most recently seen firing alerts (a silence's preview checks its matchers on these)."""
    query = select(alerts).where(alerts.c.status == "firing").order_by(alerts.c.last_seen.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def audit_page(conn: Connection, before: int | None, limit: int, kind: str | None = None,
               subject: str | None = None) -> list[dict[str, Any]]:
    """Audit records newest first, with ``seq < before`` (the keyset)."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    if kind:
        query = query.where(audit_log.c.kind == kind)
    if subject:
        query = query.where(audit_log.c.subject == subject)
    return [{**dict(r._mapping), "payload": orjson.loads(r.payload)} for r in conn.execute(query)]


def past_incidents_on(conn: Connection, incident_id: int, services: list[str], limit: int = 5) -> list[Incident]:
    """Resolved incidents that shared a service with this one, newest first."""
    if not services:
        return []
    ids = select(incident_services.c.incident_id).where(incident_services.c.service.in_(services[:20]))
    query = (select(incidents).where(incidents.c.id.in_(ids), incidents.c.id != incident_id,
                                     incidents.c.status == "resolved")
             .order_by(incidents.c.id.desc()).limit(limit))
    return [incident_from_row(r) for r in conn.execute(query)]


def approval(conn: Connection, approval_id: int) -> dict[str, Any] | None:
    if not 0 < approval_id <= 2**31 - 1:
        return None
    row = conn.execute(select(approvals).where(approvals.c.id == approval_id)).first()
    return None if row is None else dict(row._mapping)


def action_counts(conn: Connection, start: datetime | None, end: datetime | None) -> list[tuple[str, str, int]]:
    """(trigger, status, count) of the action runs queued in ``[start, end)``."""
    query = select(action_runs.c.trigger, action_runs.c.status, func.count()).group_by(
        action_runs.c.trigger, action_runs.c.status)
    if start:
        query = query.where(action_runs.c.queued_at >= start)
    if end:
        query = query.where(action_runs.c.queued_at < end)
    return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]


def incidents_fixed_by_runbook(conn: Connection, start: datetime | None, end: datetime | None) -> int:
    """Resolved incidents opened in ``[start, end)`` that a runbook action succeeded on."""
    fixed = select(action_runs.c.incident_id).where(action_runs.c.status == "succeeded")
    query = select(func.count()).select_from(incidents).where(incidents.c.status == "resolved",
                                                              incidents.c.id.in_(fixed))
    if start:
        query = query.where(incidents.c.opened_at >= start)
    if end:
        query = query.where(incidents.c.opened_at < end)
    return int(conn.execute(query).scalar_one())
