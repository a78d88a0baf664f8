"""Spans and RED rows: the SQL of traces (migration 0017).

Spans are written as driver tuples (SQLite ``executemany``, PostgreSQL ``COPY``): SQLAlchemy Core's
per-row work would cost more than the insert itself at tens of thousands of spans a second.
:class:`TraceStore` reads the stored RED rows back as the ranker's series (``TraceSource``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from watchkeeper.storage.db import Database
from watchkeeper.storage.tables import spans as spans_table
from watchkeeper.storage.tables import trace_red
from watchkeeper.traces.rows import Array, RedRow, series_of
from watchkeeper.traces.spans import Span

#: Bytes a span row holds besides its strings (ids, numbers, index entries), for the size cap.
ROW_OVERHEAD = 120
_SPAN_COLUMNS = ("received_s", "trace_id", "span_id", "parent_id", "service", "operation", "start_s",
                 "duration_s", "error", "kind", "size")
_INSERT_SPAN = f"INSERT INTO spans ({', '.join(_SPAN_COLUMNS)}) VALUES ({', '.join('?' for _ in _SPAN_COLUMNS)})"  # noqa: S608
_COPY_SPANS = f"COPY spans ({', '.join(_SPAN_COLUMNS)}) FROM STDIN"


def span_rows(spans: Iterable[Span], received_s: float) -> list[tuple[Any, ...]]:
    return [(received_s, s.trace_id, s.span_id, s.parent_id, s.service, s.operation, s.start, s.duration, s.error,
             s.kind, ROW_OVERHEAD + len(s.service) + len(s.operation)) for s in spans]


def insert_spans(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_INSERT_SPAN, list(rows))
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(_COPY_SPANS) as copy:
        for row in rows:
            copy.write_row(row)


def insert_red(conn: Connection, rows: Sequence[RedRow]) -> None:
    if rows:
        conn.execute(trace_red.insert(), [
            {"at": r.at, "step": r.step, "scope": r.scope, "name": r.name, "service": r.service, "count": r.count,
             "errors": r.errors, "p50": r.p50, "p95": r.p95, "p99": r.p99, "extra": dict(r.extra) or None}
            for r in rows])


def _red(row: Any) -> RedRow:
    return RedRow(row.at, row.step, row.scope, row.name, row.service, row.count, row.errors, row.p50, row.p95,
                  row.p99, extra=row.extra or {})


def red_rows(
    conn: Connection, *, start: float, end: float, service: str | None = None, edge: str | None = None,
    scope: str | None = None, limit: int = 10_000,
) -> list[RedRow]:
    """RED rows with ``start <= at < end`` (oldest first): of one service (its own, its incoming edges'
    and its operations' rows), one edge, or everything; ``scope`` narrows it."""
    q = select(trace_red).where(trace_red.c.at >= start, trace_red.c.at < end)
    if service is not None:
        q = q.where(trace_red.c.service == service)
    if edge is not None:
        q = q.where(trace_red.c.scope == "edge", trace_red.c.name == edge)
    if scope is not None:
        q = q.where(trace_red.c.scope == scope)
    return [_red(r) for r in conn.execute(q.order_by(trace_red.c.at, trace_red.c.id).limit(limit))]


def recent_edges(conn: Connection, since: float) -> list[tuple[str, int, int, float, float]]:
    """``(caller->callee, calls, errors, seconds observed, last step's end)`` of every edge seen since
    ``since`` (seconds observed: the steps that saw calls on it, times their length)."""
    q = (select(trace_red.c.name, func.sum(trace_red.c.count), func.sum(trace_red.c.errors),
                func.sum(trace_red.c.step), func.max(trace_red.c.at))
         .where(trace_red.c.scope == "edge", trace_red.c.at >= since).group_by(trace_red.c.name))
    return [(str(n), int(c or 0), int(e or 0), float(s or 0.0), float(a)) for n, c, e, s, a in conn.execute(q)]


def trace(conn: Connection, trace_id: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """The stored spans of one trace, by start time."""
    t = spans_table.c
    q = (select(t.trace_id, t.span_id, t.parent_id, t.service, t.operation, t.start_s, t.duration_s, t.error, t.kind)
         .where(t.trace_id == trace_id).order_by(t.start_s, t.id).limit(limit))
    return [{"trace_id": r.trace_id, "span_id": r.span_id, "parent_id": r.parent_id, "service": r.service,
             "operation": r.operation, "start": r.start_s, "duration": r.duration_s, "error": bool(r.error),
             "kind": r.kind} for r in conn.execute(q)]


def exemplars(conn: Connection, service: str, start: float, end: float, *, caller: str | None = None,
              n: int = 5) -> list[str]:
    """Up to ``n`` trace ids of the service's spans starting in ``[start, end)`` (of calls from
    ``caller`` when given): failed ones first, then the slowest."""
    t = spans_table.c
    if caller is None:
        q = select(t.trace_id).where(t.service == service, t.start_s >= start, t.start_s < end)
    else:
        parent = spans_table.alias("parent")
        q = (select(t.trace_id).select_from(spans_table.join(parent, and_(
            parent.c.trace_id == t.trace_id, parent.c.span_id == t.parent_id)))
             .where(t.service == service, t.start_s >= start, t.start_s < end, parent.c.service == caller))
    out: list[str] = []
    for (trace_id,) in conn.execute(q.order_by(t.error.desc(), t.duration_s.desc()).limit(n * 4)):
        if trace_id not in out:
            out.append(trace_id)
        if len(out) == n:
            break
    return out


# -- retention -------------------------------------------------------------------------------------
def delete_spans_before(conn: Connection, before: float, limit: int) -> int:
    """Delete up to ``limit`` of the oldest spans received before ``before`` (unix seconds)."""
    oldest = (select(spans_table.c.id).where(spans_table.c.received_s < before).order_by(spans_table.c.id)
              .limit(limit))
    return int(conn.execute(delete(spans_table).where(spans_table.c.id.in_(oldest.scalar_subquery()))).rowcount)


def spans_bytes(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(spans_table.c.size), 0))).scalar_one())


def delete_oldest_spans(conn: Connection, over: int, limit: int) -> tuple[int, int]:
    """Delete the oldest spans (at most ``limit``) until ``over`` bytes are freed; ``(rows, bytes)``."""
    rows = conn.execute(select(spans_table.c.id, spans_table.c.size).order_by(spans_table.c.id).limit(limit)).all()
    freed, last = 0, None
    for row_id, size in rows:
        freed += int(size)
        last = row_id
        if freed >= over:
            break
    if last is None:
        return 0, 0
    deleted = int(conn.execute(delete(spans_table).where(spans_table.c.id <= last)).rowcount)
    return deleted, freed


def delete_red_before(conn: Connection, before: float, limit: int) -> int:
    oldest = select(trace_red.c.id).where(trace_red.c.at < before).order_by(trace_red.c.id).limit(limit)
    return int(conn.execute(delete(trace_red).where(trace_red.c.id.in_(oldest.scalar_subquery()))).rowcount)


# -- the ranker's trace series -----------------------------------------------------------------------
class TraceStore:
    """The stored RED rows as the ranker's ``TraceSource``: ``series(services, start, end)`` →
    ``{service: {metric: (t, v)}}`` (see :func:`~watchkeeper.traces.rows.series_of`), for the given
    services and every service they call, directly or not, in that time range (a candidate cause
    can be a dependency); operations' series only with ``operations=True``."""

    def __init__(self, db: Database, *, operations: bool = False) -> None:
        self.db = db
        self.operations = operations

    def series(self, services: Sequence[str], start: float, end: float) -> dict[str, dict[str, tuple[Array, Array]]]:
        if not services:
            return {}
        with self.db.read() as conn:
            edges = conn.execute(select(trace_red.c.name).distinct().where(
                trace_red.c.scope == "edge", trace_red.c.at >= start, trace_red.c.at <= end)).scalars().all()
        callees: dict[str, set[str]] = {}
        for name in edges:
            caller, _, callee = name.partition("->")
            callees.setdefault(caller, set()).add(callee)
        wanted, todo = set(services), list(services)
        while todo:
            for callee in callees.get(todo.pop(), ()):
                if callee not in wanted:
                    wanted.add(callee)
                    todo.append(callee)
        q = select(trace_red).where(trace_red.c.at >= start, trace_red.c.at <= end,
                                    trace_red.c.service.in_(sorted(wanted)))
        if not self.operations:
            q = q.where(or_(trace_red.c.scope == "service", trace_red.c.scope == "edge"))
        with self.db.read() as conn:
            rows = [_red(r) for r in conn.execute(q.order_by(trace_red.c.at, trace_red.c.id))]
        return series_of(rows)


__all__ = ["TraceStore", "delete_oldest_spans", "delete_red_before", "delete_spans_before",
           "exemplars", "insert_red", "insert_spans", "recent_edges", "red_rows", "span_rows",
           "spans_bytes", "trace"]
