"""Retention: events and dead letters older than ``retention_days`` are deleted, in small
transactions (ingest waits for one chunk at most), and each prune that deleted anything is audited.

``watchkeeper serve`` prunes hourly from a thread of its own (:class:`Pruner`);
``watchkeeper db prune`` prunes on demand.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

#: Rows deleted per transaction.
CHUNK = 5_000
#: What retention deletes, as table names.
PRUNED = ("events", "dead_letters")

log = structlog.get_logger("watchkeeper.retention")


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune deleted: rows received before ``before``."""

    before: datetime
    events: int = 0
    dead_letters: int = 0
    #: Raw spans (older than ``traces.retention.raw_hours``, or beyond ``max_mb``) and RED rows
    #: (older than ``red_days``): their own windows, not ``before``.
    spans: int = 0
    red_rows: int = 0
    #: Raw log lines (logs.retention: their window and size cap; docs/logs.md).
    log_lines: int = 0

    def __str__(self) -> str:
        lines = f" and {self.log_lines} log lines" if self.log_lines else ""
        traces = f"; {self.spans} spans and {self.red_rows} RED rows" if self.spans or self.red_rows else ""
        return (f"deleted {self.events} events and {self.dead_letters} dead letters{lines} received before "
                f"{self.before.isoformat(timespec='seconds')}{traces}")

    @property
    def anything(self) -> bool:
        return bool(self.events or self.dead_letters or self.spans or self.red_rows or self.log_lines)


class Pruner:
    """Calls ``prune`` after ``delay`` seconds, then every ``interval`` seconds, until stopped.
    A failed prune is logged and tried again at the next turn."""

    def __init__(self, prune: Callable[[], Pruned], *, interval: float = 3600.0, delay: float = 60.0,
                 name: str = "watchkeeper-retention") -> None:
        self.prune = prune
        self.interval, self.delay = interval, delay
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Pruner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        wait = self.delay
        while not self._stopped.wait(wait):
            wait = self.interval
            try:
                pruned = self.prune()
            except Exception as exc:  # the next turn tries again; serve goes on
                _say(log.error, "retention prune failed", error=str(exc))
                continue
            if pruned.anything:
                _say(log.info, "retention pruned", events=pruned.events, dead_letters=pruned.dead_letters,
                     spans=pruned.spans, red_rows=pruned.red_rows, log_lines=pruned.log_lines,
                     before=pruned.before.isoformat())


def _say(level: Callable[..., Any], event: str, **fields: Any) -> None:
    """Log, but never let a broken log sink end the thread."""
    with contextlib.suppress(Exception):
        level(event, **fields)
