"""Logs in the database: raw lines (COPY / executemany), template and per-minute count upserts,
file offsets written in the same transaction as their lines, saved miner state, reads for the
API and the ranker, and pruning by window and size."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, delete, func, select

from watchkeeper.logs.pipeline import LogBatch
from watchkeeper.logs.tail import Offset
from watchkeeper.storage.db import Database, json_text
from watchkeeper.storage.tables import dead_letters, log_counts, log_lines, log_offsets, log_state, log_templates
from watchkeeper.storage.types import SecondStamps, pg_stamp, sqlite_stamp

_LINE_COLUMNS = "received_at, at, service, template_id, severity, input, line, size"
_SQLITE_LINES = f"INSERT INTO log_lines ({_LINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 - constants
_PG_COPY = f"COPY log_lines ({_LINE_COLUMNS}) FROM STDIN"
_TEMPLATES = ("INSERT INTO log_templates (service, template_id, template, first_seen, last_seen, count) "
              "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (service, template_id) DO UPDATE SET "
              "template = excluded.template, first_seen = {least}(log_templates.first_seen, excluded.first_seen), "
              "last_seen = {greatest}(log_templates.last_seen, excluded.last_seen), "
              "count = log_templates.count + excluded.count")
_COUNTS = ("INSERT INTO log_counts (service, template_id, minute, count, errors) VALUES ({p}, {p}, {p}, {p}, {p}) "
           "ON CONFLICT (service, template_id, minute) DO UPDATE SET count = log_counts.count + excluded.count, "
           "errors = log_counts.errors + excluded.errors")
_OFFSETS = ("INSERT INTO log_offsets (input, inode, device, position, lines, updated_at) "
            "VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (input) DO UPDATE SET inode = excluded.inode, "
            "device = excluded.device, position = excluded.position, lines = log_offsets.lines + excluded.lines, "
            "updated_at = excluded.updated_at")
_STATE = ("INSERT INTO log_state (name, version, state, updated_at) VALUES ({p}, {p}, {p}, {p}) "
          "ON CONFLICT (name) DO UPDATE SET version = excluded.version, state = excluded.state, "
          "updated_at = excluded.updated_at")


def _sql(template: str, sqlite: bool) -> str:
    return template.format(p="?" if sqlite else "%s", least="min" if sqlite else "LEAST",
                           greatest="max" if sqlite else "GREATEST")


class _Stamps(dict[datetime, Any]):
    """Times as the driver takes them, made on first use."""

    def __init__(self, stamp: Callable[[datetime], Any]) -> None:
        super().__init__()
        self.stamp = stamp

    def __missing__(self, at: datetime) -> Any:
        value = self[at] = self.stamp(at)
        return value


class LogStore:
    """The logs' tables over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        sqlite = db.is_sqlite
        self._stamp = sqlite_stamp if sqlite else pg_stamp
        #: the raw lines' times as this database's driver takes them (a pipeline's ``stamp``; SQLite:
        #: stateful, call it from one thread at a time)
        self.line_stamp: Callable[[datetime], Any] = SecondStamps() if sqlite else pg_stamp
        self._templates, self._counts = _sql(_TEMPLATES, sqlite), _sql(_COUNTS, sqlite)
        self._offsets, self._state = _sql(_OFFSETS, sqlite), _sql(_STATE, sqlite)

    # -- writes ---------------------------------------------------------------------------------
    def write(self, batch: LogBatch, now: datetime) -> None:
        """Everything of ``batch`` in one transaction: lines, templates, counts, offsets."""
        with self.db.write() as conn:
            self.write_in(conn, batch, now)

    def write_in(self, conn: Connection, batch: LogBatch, now: datetime) -> None:
        stamp = self._stamp
        if batch.lines:
            rows = batch.lines
            if not batch.stamped:
                stamps = _Stamps(stamp)  # each distinct time formatted once; a hit is a plain dict lookup
                rows = [(stamps[received], stamps[at], service, tid, severity, name, line, size)
                        for received, at, service, tid, severity, name, line, size in batch.lines]
            if self.db.is_sqlite:
                conn.exec_driver_sql(_SQLITE_LINES, rows)
            else:
                driver = conn.connection.driver_connection
                assert driver is not None
                with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
        if batch.templates:
            conn.exec_driver_sql(self._templates, [(s, t, v[0], stamp(v[1]), stamp(v[2]), v[3])
                                                   for (s, t), v in sorted(batch.templates.items())])
        if batch.counts:
            conn.exec_driver_sql(self._counts, [(s, t, stamp(m), v[0], v[1])
                                                for (s, t, m), v in sorted(batch.counts.items())])
        if batch.offsets:
            conn.exec_driver_sql(self._offsets, [(name, o.inode, o.device, o.offset, n, stamp(now))
                                                 for name, (o, n) in sorted(batch.offsets.items())])

    def save_states(self, states: Mapping[str, Mapping[str, Any]], version: str, now: datetime) -> None:
        if not states:
            return
        with self.db.write() as conn:
            conn.exec_driver_sql(self._state, [(name, version, json_text(dict(state)), self._stamp(now))
                                               for name, state in sorted(states.items())])

    # -- reads ----------------------------------------------------------------------------------
    def load_state(self, name: str, version: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(select(log_state.c.state, log_state.c.version).where(log_state.c.name == name)).first()
        if row is None or row.version != version:
            return None
        return dict(row.state)

    def known_templates(self) -> set[tuple[str, str]]:
        with self.db.read() as conn:
            return {(str(s), str(t)) for s, t in conn.execute(select(log_templates.c.service,
                                                                     log_templates.c.template_id))}

    def offsets(self) -> dict[str, tuple[Offset, int, datetime]]:
        """Each file input's stored position, lines read in all and when last written."""
        with self.db.read() as conn:
            rows = conn.execute(select(log_offsets)).all()
        return {r.input: (Offset(int(r.inode), int(r.position), int(r.device)), int(r.lines), r.updated_at)
                for r in rows}

    def templates(self, service: str | None = None, since: datetime | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        t = log_templates.c
        return self._rows(select(log_templates).order_by(t.count.desc(), t.template_id), limit,
                          None if service is None else t.service == service,
                          None if since is None else t.last_seen >= since)

    def counts(self, service: str | None = None, template_id: str | None = None, start: datetime | None = None,
               end: datetime | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        c = log_counts.c
        return self._rows(select(log_counts).order_by(c.minute, c.service, c.template_id), limit,
                          None if service is None else c.service == service,
                          None if template_id is None else c.template_id == template_id,
                          None if start is None else c.minute >= start, None if end is None else c.minute < end)

    def lines(self, service: str | None = None, start: datetime | None = None, end: datetime | None = None,
              limit: int = 1000) -> list[dict[str, Any]]:
        c = log_lines.c
        return self._rows(select(log_lines).order_by(c.id.desc()), limit,
                          None if service is None else c.service == service,
                          None if start is None else c.at >= start, None if end is None else c.at < end)

    def _rows(self, query: Select[Any], limit: int, *where: ColumnElement[bool] | None) -> list[dict[str, Any]]:
        """The rows of ``query`` as dicts, narrowed by the conditions given (None: that filter is off)."""
        query = query.where(*(w for w in where if w is not None)).limit(limit)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def kept_by_input(self) -> dict[str, int]:
        """Raw lines kept (inside the retention window), per input."""
        with self.db.read() as conn:
            rows = conn.execute(select(log_lines.c.input, func.count()).group_by(log_lines.c.input)).all()
        return {str(name): int(n) for name, n in rows}

    def dead_letters_by_source(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(select(dead_letters.c.source, func.count()).group_by(dead_letters.c.source)).all()
        return {str(name): int(n) for name, n in rows}

    def size(self) -> tuple[int, int]:
        """(raw lines kept, their bytes)."""
        with self.db.read() as conn:
            count, total = conn.execute(select(func.count(), func.coalesce(func.sum(log_lines.c.size), 0))).one()
        return int(count), int(total)

    # -- retention ------------------------------------------------------------------------------
    def prune(self, lines_before: datetime, max_bytes: int, summary_before: datetime | None,
              chunk: int = 5000) -> int:
        """Delete raw lines received before ``lines_before``, then the oldest until at most
        ``max_bytes`` remain, then counts and templates older than ``summary_before``; a chunk
        per transaction. The raw lines deleted."""
        deleted = 0
        while True:
            with self.db.write() as conn:
                oldest = (select(log_lines.c.id).where(log_lines.c.received_at < lines_before)
                          .order_by(log_lines.c.id).limit(chunk))
                n = int(conn.execute(delete(log_lines).where(log_lines.c.id.in_(oldest.scalar_subquery()))).rowcount)
            deleted += n
            if n < chunk:
                break
        count, total = self.size()
        if total > max_bytes and count:
            excess = int((total - max_bytes * 0.9) / (total / count)) + 1  # down to 90 % of the cap
            while excess > 0:
                step = min(chunk, excess)
                with self.db.write() as conn:
                    oldest = select(log_lines.c.id).order_by(log_lines.c.id).limit(step)
                    n = int(conn.execute(delete(log_lines).where(log_lines.c.id.in_(oldest.scalar_subquery())))
                            .rowcount)
                deleted += n
                excess -= step
                if n < step:
                    break
        if summary_before is not None:
            with self.db.write() as conn:
                conn.execute(delete(log_counts).where(log_counts.c.minute < summary_before))
                conn.execute(delete(log_templates).where(log_templates.c.last_seen < summary_before))
        return deleted
