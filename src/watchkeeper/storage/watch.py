"""Detector state of the watches (table ``detector_state``): loaded when a watch starts, saved in
batches by :class:`~watchkeeper.watch.runner.Watcher` every few evaluations and when it stops."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from watchkeeper.storage.db import Database
from watchkeeper.storage.tables import detector_state

#: Rows per statement (SQLite allows 32,766 bound parameters; four per row).
BATCH = 500
#: The longest key kept as is (the column's length); longer ones are shortened with their hash.
MAX_KEY = 1024


def row_key(key: str) -> str:
    """``key`` as stored: itself when it fits, else a prefix and its SHA-256 (series with very many
    labels). The state itself holds the labels, so the watch rebuilds the full key on load.

    >>> row_key('latency{service="api"}')
    'latency{service="api"}'
    >>> len(row_key("x" * 5000))
    1024
    """
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:MAX_KEY - len(digest) - 1]}#{digest}"


class DetectorStateStore:
    """``load(watch)`` / ``save(watch, states, dropped)`` over the database, batched."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.clock = clock

    def load(self, watch: str) -> dict[str, dict[str, Any]]:
        """Every saved series state of ``watch``, by key."""
        with self.db.read() as conn:
            rows = conn.execute(select(detector_state.c.key, detector_state.c.state)
                                .where(detector_state.c.watch == watch)).all()
        return {str(key): dict(state) for key, state in rows}

    def save(self, watch: str, states: Mapping[str, Mapping[str, Any]], dropped: Sequence[str] = ()) -> None:
        """Replace the state of the given keys and delete the dropped ones, in one transaction."""
        if not states and not dropped:
            return
        now = self.clock()
        keys = [row_key(k) for k in (*states, *dropped)]
        with self.db.write() as conn:
            for i in range(0, len(keys), BATCH):
                chunk = keys[i:i + BATCH]
                conn.execute(delete(detector_state).where(detector_state.c.key.in_(chunk)))
            rows = [{"key": row_key(k), "watch": watch, "state": dict(v), "updated_at": now} for k, v in states.items()]
            for i in range(0, len(rows), BATCH):
                conn.execute(insert(detector_state), rows[i:i + BATCH])

