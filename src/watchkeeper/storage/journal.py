"""The intake journal: accepted request bodies, durably appended before the 2xx, processed later.

A SQLite file of its own next to the database (``<database>-intake``), WAL with
``synchronous=FULL``: a commit here is as durable as one in the database. The pipeline stage that
drains it (``service/intake.py``) commits each body's events with its journal id as a bus message
id (``bus_processed``: at most once), then drops the rows; after a crash it resumes from whatever
is left, and a body committed just before the crash is skipped, not counted twice.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, select

from watchkeeper.storage.tables import bus_processed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intake (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    actor TEXT NOT NULL,
    alerts INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""
# meta: 'uid' (the file's identity), 'dropped' (alerts dropped since the file was made: the
# backlog of another process's drops is read from this one row, not summed over the rows)


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted body (``id`` is 0 until appended)."""

    received_at: datetime
    source: str
    actor: str
    alerts: int
    body: bytes
    id: int = 0


class Journal:
    """Append (one transaction per group of bodies), take the oldest, drop what was committed."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.executescript(_SCHEMA)
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('uid', ?)", (uuid.uuid4().hex[:16],))
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('dropped', '0')")
        #: This journal file's identity: its ids are message ids only together with it.
        self.uid = str(self._conn.execute("SELECT value FROM meta WHERE key = 'uid'").fetchone()[0])
        self._conn.execute("BEGIN")  # one snapshot: what waits, and the drops counted so far
        try:
            row = self._conn.execute("SELECT count(*), coalesce(sum(alerts), 0) FROM intake").fetchone()
            self._dropped_at_open = self._dropped(self._conn)
        finally:
            self._conn.execute("COMMIT")
        #: Bodies and alerts appended and not yet dropped by this object (no count(*) per request).
        self.bodies, self.alerts = int(row[0]), int(row[1])
        self._alerts_at_open, self._appended = self.alerts, 0
        # The backlog's reader: never waits for an append in progress (WAL readers do not block).
        self._reader = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._reader_lock = threading.Lock()

    def append(self, entries: list[Entry]) -> None:
        """Durably append ``entries`` in one transaction (returns after the commit)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO intake (received_at, source, actor, alerts, body) VALUES (?, ?, ?, ?, ?)",
                    [(e.received_at.isoformat(), e.source, e.actor, e.alerts, e.body) for e in entries],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            added = sum(e.alerts for e in entries)
            self.bodies += len(entries)
            self.alerts += added
            self._appended += added

    def take(self, max_alerts: int) -> list[Entry]:
        """The oldest entries, about ``max_alerts`` alerts' worth (at least one entry). The ids and
        counts are read first, then the bodies of just those (at 100 alerts a body, a batch of
        2,000 alerts is 20 bodies, not the 2,000 a row limit alone would read)."""
        with self._lock:
            counts = self._conn.execute(
                "SELECT id, alerts FROM intake ORDER BY id LIMIT ?", (max(1, max_alerts),)
            ).fetchall()
            if not counts:
                return []
            last, total = counts[0][0], 0
            for k, (rid, alerts) in enumerate(counts):
                if k and total + alerts > max_alerts:
                    break
                last, total = rid, total + alerts
            rows = self._conn.execute(
                "SELECT id, received_at, source, actor, alerts, body FROM intake WHERE id <= ? ORDER BY id", (last,)
            ).fetchall()
        return [Entry(datetime.fromisoformat(at), source, actor, alerts, bytes(body), rid)
                for rid, at, source, actor, alerts, body in rows]

    def drop(self, entries: list[Entry]) -> None:
        """Forget entries whose events are committed."""
        if not entries:
            return
        dropped = sum(e.alerts for e in entries)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("DELETE FROM intake WHERE id = ?", [(e.id,) for e in entries])
                self._conn.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'dropped'", (dropped,)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self.bodies -= len(entries)
            self.alerts -= dropped

    def backlog(self) -> int:
        """Alerts appended and not yet dropped, as the appending object sees it (another process
        drops): what waited at open, plus what this object appended, less the drops counted in
        the file since (one row, O(1)). Exact in the one object that appends (the server's)."""
        with self._reader_lock:
            dropped = self._dropped(self._reader)
        return self._alerts_at_open + self._appended - (dropped - self._dropped_at_open)

    def oldest(self) -> datetime | None:
        """When the oldest body still in the journal was received (None: empty); one indexed read,
        never waiting for an append in progress."""
        with self._reader_lock:
            row = self._reader.execute("SELECT received_at FROM intake ORDER BY id LIMIT 1").fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    @staticmethod
    def _dropped(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()[0])

    def close(self) -> None:
        with self._lock, self._reader_lock:
            self._reader.close()
            self._conn.close()


def message_id(uid: str, last: int) -> str:
    """The ``bus_processed`` id marking journal ``uid``'s entries up to ``last`` as committed."""
    return f"intake:{uid}:{last}"


def committed_upto(conn: Connection, uid: str) -> int:
    """The highest journal id of ``uid`` whose events are committed (0: none)."""
    prefix = f"intake:{uid}:"
    ids = conn.execute(select(bus_processed.c.message_id).where(bus_processed.c.message_id.startswith(prefix)))
    return max((int(m.rsplit(":", 1)[1]) for (m,) in ids), default=0)


__all__ = ["Entry", "Journal", "committed_upto", "message_id"]
