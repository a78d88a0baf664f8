"""SQL for ITSM sync: which external ticket an incident is linked to, how far polling got, and
which inbound changes were already applied (so a retried webhook or a re-polled record is a
no-op)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from watchkeeper.storage.tables import itsm_cursors, itsm_inbound, itsm_links


@dataclass(frozen=True, slots=True)
class Link:
    """One incident's ticket in one external system."""

    system: str
    incident_id: int
    external_id: str
    external_key: str
    url: str | None = None
    created_at: datetime | None = None


def _link(row: Any) -> Link:
    return Link(row.system, row.incident_id, row.external_id, row.external_key, row.url, row.created_at)


def link_of(conn: Connection, system: str, incident_id: int) -> Link | None:
    row = conn.execute(select(itsm_links).where(itsm_links.c.system == system,
                                                itsm_links.c.incident_id == incident_id)).first()
    return _link(row) if row is not None else None


def link_by_external(conn: Connection, system: str, external_id: str) -> Link | None:
    row = conn.execute(select(itsm_links).where(itsm_links.c.system == system,
                                                itsm_links.c.external_id == external_id)).first()
    return _link(row) if row is not None else None


def link_by_key(conn: Connection, system: str, external_key: str) -> Link | None:
    row = conn.execute(select(itsm_links).where(itsm_links.c.system == system,
                                                itsm_links.c.external_key == external_key)).first()
    return _link(row) if row is not None else None


def links_by_external(conn: Connection, system: str, external_ids: list[str]) -> list[Link]:
    found: list[Link] = []
    for start in range(0, len(external_ids), 500):
        chunk = external_ids[start:start + 500]
        query = select(itsm_links).where(itsm_links.c.system == system, itsm_links.c.external_id.in_(chunk))
        found += [_link(r) for r in conn.execute(query)]
    return found


def links(conn: Connection, system: str, incident_ids: list[int] | None = None) -> list[Link]:
    query = select(itsm_links).where(itsm_links.c.system == system)
    if incident_ids is not None:
        query = query.where(itsm_links.c.incident_id.in_(incident_ids))
    return [_link(r) for r in conn.execute(query.order_by(itsm_links.c.incident_id))]


def add_link(conn: Connection, link: Link, at: datetime) -> None:
    """Record a new ticket for an incident. A second ticket for the same incident or the same
    ticket for a second incident is refused by the unique indexes (IntegrityError)."""
    conn.execute(insert(itsm_links).values(
        system=link.system, incident_id=link.incident_id, external_id=link.external_id,
        external_key=link.external_key, url=link.url, created_at=at))


def cursor(conn: Connection, system: str) -> datetime | None:
    value = conn.execute(select(itsm_cursors.c.at).where(itsm_cursors.c.system == system)).scalar()
    return value if isinstance(value, datetime) else None


def set_cursor(conn: Connection, system: str, at: datetime, now: datetime) -> None:
    done = conn.execute(update(itsm_cursors).where(itsm_cursors.c.system == system).values(at=at, updated_at=now))
    if done.rowcount == 0:
        conn.execute(insert(itsm_cursors).values(system=system, at=at, updated_at=now))


def seen(conn: Connection, system: str, key: str) -> bool:
    """Whether the inbound change ``key`` was already handled."""
    query = select(itsm_inbound.c.key).where(itsm_inbound.c.system == system, itsm_inbound.c.key == _key(key))
    return conn.execute(query).first() is not None


def remember(conn: Connection, system: str, key: str, at: datetime, incident_id: int | None, outcome: str) -> bool:
    """Record inbound change ``key`` as handled (in the caller's transaction, with its effect);
    False when it already was (a concurrent duplicate)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(itsm_inbound).values(system=system, key=_key(key), received_at=at,
                                                     incident_id=incident_id, outcome=outcome))
    except IntegrityError:
        return False
    return True


def _key(key: str) -> str:
    """Keys longer than the column are stored as their SHA-256 (still unique, still stable)."""
    return key if len(key) <= 256 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def forget_before(conn: Connection, before: datetime) -> int:
    """Drop idempotency keys older than ``before`` (a sender retries for hours, not months)."""
    return int(conn.execute(delete(itsm_inbound).where(itsm_inbound.c.received_at < before)).rowcount or 0)
