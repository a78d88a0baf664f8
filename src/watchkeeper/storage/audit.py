"""Append to and read the audit log, in the caller's (write) transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, func, insert, select

from watchkeeper.audit import GENESIS, AuditChain, canonical_json
from watchkeeper.model import AuditRecord, Change
from watchkeeper.storage.tables import audit_log

_HEAD = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)


def head(conn: Connection) -> AuditChain:
    """The chain positioned after the last stored record (call inside a write transaction)."""
    row = conn.execute(_HEAD).first()
    return AuditChain(row.seq, row.hash) if row else AuditChain(0, GENESIS)


def append(
    conn: Connection, actor: str, changes: Iterable[Change], chain: AuditChain | None = None
) -> list[AuditRecord]:
    """Append one record per change, chained after the current head (``chain``, when the caller
    already holds it in this transaction), in this transaction."""
    chain = head(conn) if chain is None else chain
    records = [chain.append(actor, c.kind, c.subject, c.payload, c.at) for c in changes]
    if records and conn.dialect.name == "postgresql":  # one array per column: one short, prepared statement
        conn.exec_driver_sql(_PG_INSERT, tuple(list(c) for c in zip(*(_values(r) for r in records), strict=True)))
    elif records:
        conn.execute(insert(audit_log), [_row(r) for r in records])
    if records:
        hook = conn.get_execution_options().get("wk_audit_hook")
        if hook is not None:  # e.g. the integration outbox: its messages commit with the change
            hook(conn, records)
    return records


_PG_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, kind, subject, payload, prev_hash, hash) SELECT * FROM "
    "unnest(%b::bigint[], %b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
)


def _values(r: AuditRecord) -> tuple[Any, ...]:
    """A record's row in ``_PG_INSERT``'s column order."""
    return (r.seq, r.at, r.actor, r.kind, r.subject, canonical_json(r.payload).decode(), r.prev_hash, r.hash)


def _row(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq, "at": r.at, "actor": r.actor, "kind": r.kind, "subject": r.subject,
        "payload": canonical_json(r.payload).decode(), "prev_hash": r.prev_hash, "hash": r.hash,
    }


def records(
    conn: Connection, *, subject: str | None = None, after: int = 0, limit: int | None = None, batch: int = 5000
) -> Iterator[AuditRecord]:
    """Stored records with ``seq > after`` in ``seq`` order (at most ``limit``), read in batches."""
    last, left = after, limit
    while left is None or left > 0:
        size = batch if left is None else min(batch, left)
        query = select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(size)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        rows = conn.execute(query).all()
        for row in rows:
            yield AuditRecord(
                row.seq, row.at, row.actor, row.kind, row.subject, orjson.loads(row.payload),
                row.prev_hash, row.hash,
            )
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return
        last = rows[-1].seq


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
