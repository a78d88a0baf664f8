"""The bus's SQL: which messages a worker has committed (idempotency) and partition ownership
through PostgreSQL advisory locks (docs/scaling.md)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, select, text

from watchkeeper.storage.tables import bus_processed


def lock_classes(stream: str) -> tuple[int, int]:
    """The advisory lock classes (first keys) of partition ownership and of worker membership for
    the bus stream ``stream``: deployments (or tests) with different streams on one database do not
    share locks. The second key is the partition, or the worker's slot.

    >>> a, b = lock_classes("WATCHKEEPER"); a != b and 0 <= a < 2**31 and 0 <= b < 2**31
    True
    """
    return (zlib.crc32(f"{stream}:partitions".encode()) & 0x7FFF_FFFF,
            zlib.crc32(f"{stream}:members".encode()) & 0x7FFF_FFFF)


def processed(conn: Connection, message_ids: Iterable[str]) -> set[str]:
    """The ids among ``message_ids`` already committed."""
    ids = list(message_ids)
    if not ids:
        return set()
    if conn.dialect.name == "postgresql":  # one array parameter: no statement with thousands of binds
        rows = conn.execute(text("SELECT message_id FROM bus_processed WHERE message_id = ANY(:ids)"), {"ids": ids})
        return {r[0] for r in rows}
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update(r[0] for r in conn.execute(
            select(bus_processed.c.message_id).where(bus_processed.c.message_id.in_(chunk))))
    return found


def mark(conn: Connection, done: list[tuple[str, int, int]], at: datetime) -> None:
    """Record ``(message id, partition, events)`` as committed, in the caller's transaction: a
    second commit of the same id fails on the primary key (never applied twice)."""
    if done and conn.dialect.name == "postgresql":  # one array per column: one short, prepared statement
        conn.exec_driver_sql(
            "INSERT INTO bus_processed (message_id, partition, events, at) "
            "SELECT m, p, n, %s::timestamptz FROM unnest(%b::text[], %b::integer[], %b::integer[]) AS v(m, p, n)",
            (at, [m for m, _, _ in done], [p for _, p, _ in done], [n for _, _, n in done]))
    elif done:
        conn.execute(bus_processed.insert(), [
            {"message_id": m, "partition": p, "events": n, "at": at} for m, p, n in done])


def prune(conn: Connection, before: datetime) -> int:
    """Forget ids committed before ``before`` (past JetStream's redelivery horizon)."""
    return conn.execute(delete(bus_processed).where(bus_processed.c.at < before)).rowcount or 0


def held(conn: Connection, locks: int, partitions: Iterable[int], pid: int) -> set[int]:
    """Which of ``partitions`` the PostgreSQL backend ``pid`` holds the ownership lock of (one query)."""
    rows = conn.execute(text(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :c "
        "AND objid::bigint = ANY(:ps) AND objsubid = 2 AND pid = :pid AND granted"),
        {"c": locks, "ps": sorted(set(partitions)), "pid": pid})
    return {int(r[0]) for r in rows}


def members(conn: Connection, locks: int) -> int:
    """Workers alive: backends holding a membership lock."""
    return int(conn.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :c "
        "AND objsubid = 2 AND granted"),
        {"c": locks}).scalar_one())


def owned_elsewhere(conn: Connection, locks: int, pid: int) -> set[int]:
    """Partitions whose ownership lock another backend holds."""
    rows = conn.execute(text(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :c AND objsubid = 2 "
        "AND granted AND pid <> :pid"), {"c": locks, "pid": pid})
    return {int(r[0]) for r in rows}
