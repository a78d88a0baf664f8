"""The journalled intake: acknowledge a body once it is durably appended, process it after.

``POST /api/v2/alerts`` (Alertmanager's API, what Prometheus sends) on the embedded SQLite
database takes this path: the body is checked and normalized in the request (bad input is
still a 4xx and a dead letter), appended to the intake journal (``storage/journal.py``) in a
group commit shared by concurrent requests, and answered 202. A pipeline stage (a thread)
drains the journal in order: normalize again at the time of receipt, dedup, correlate, commit
with the audit records — marked in ``bus_processed`` with the last journal id of the batch, in
the same transaction — then drop the rows. After a crash (kill -9) the stage resumes from what
is left; a batch committed just before the crash is recognised by its mark and not counted twice.

The backlog is bounded: beyond ``max_backlog`` alerts not yet processed, the route answers 503
with Retry-After instead of queueing more.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.service.ingest import Delivered
from watchkeeper.storage.journal import Entry, Journal, committed_upto, message_id

if TYPE_CHECKING:
    from watchkeeper.service import Watchkeeper

log = structlog.get_logger("watchkeeper.intake")

#: Alerts per pipeline commit when draining the journal.
BATCH_ALERTS = 2_000
#: ``sys.setswitchinterval`` while the stage runs (seconds; Python's default is 0.005).
SWITCH_INTERVAL = 0.0005
#: A drainer thread in the API's process (``intake_drainer: thread``) shares the GIL with the requests.
#: While the API is saturated — the last group commit held more than one body (requests queue behind
#: the journal's commit) within ``BUSY_WINDOW`` seconds — it defers its batches, at most ``MAX_DEFER``
#: seconds between two: alerts are acknowledged first and correlated just after. At full speed again
#: once the arrivals slow down or the backlog reaches ``FULL_SPEED_AT`` of ``intake_max_backlog``.
BUSY_WINDOW = 0.5
MAX_DEFER = 1.0
#: The share of ``intake_max_backlog`` from which the drainer no longer defers.
FULL_SPEED_AT = 0.8
#: Alerts per batch while the API is saturated (a request waits on such a batch for the GIL).
BUSY_BATCH = 500


def journal_path(service: Watchkeeper) -> Path | None:
    """Where the journal lives: next to a SQLite database file, or in ``intake_journal_dir``; None for any
    other database (PostgreSQL, an in-memory SQLite) or with a bus (JetStream is the journal there)."""
    db = service.db
    if not db.is_sqlite or service.settings.bus_url:
        return None
    name = db.engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    beside = Path(name).with_name(Path(name).name + "-intake")
    where = service.settings.intake_journal_dir
    if where is None:
        return beside
    if not where.is_dir():
        raise ConfigError(f"intake_journal_dir {str(where)!r} is not a directory; create it, or unset it to keep "
                          "the journal next to the database")
    path = where / beside.name
    if path.resolve() != beside.resolve() and (waiting := _bodies_in(beside)):
        raise ConfigError(f"{waiting} acknowledged request bodies wait in the journal {str(beside)!r}, which "
                          f"intake_journal_dir {str(where)!r} would leave unread: start once without "
                          "intake_journal_dir to drain it, or move its files there while serve is stopped")
    return path


def _bodies_in(path: Path) -> int:
    """Bodies waiting in the journal at ``path`` (0: no journal there); opening it recovers a crash's WAL."""
    if not path.exists():
        return 0
    try:
        journal = Journal(path)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the journal {str(path)!r} to check it is drained: {exc}") from exc
    journal.close()
    return journal.bodies


class IntakeStage:
    """Drains the intake journal into the pipeline from a thread of its own."""

    def __init__(
        self, service: Watchkeeper, path: Path, *, batch_alerts: int = BATCH_ALERTS, max_backlog: int | None = None,
        defer: bool = False,
    ) -> None:
        self.service = service
        self.path = path
        #: Opened by ``start`` (the server's start-up), closed by ``stop``.
        self.journal: Journal | None = None
        self.batch_alerts = batch_alerts
        #: Alerts accepted but not yet processed, at most; beyond it the route answers 503.
        self.max_backlog = service.settings.intake_max_backlog if max_backlog is None else max_backlog
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done_upto = 0
        self.processed = 0  # alerts committed by this stage since start
        #: Defer batches while the API is saturated (``serve``'s drainer thread; see ``MAX_DEFER``).
        self.defer = defer
        self.clock = time.monotonic  # what the deferral measures time with (tests set their own)
        self._saturated_at = float("-inf")  # monotonic time of the last group commit of several bodies
        self._drained_at = float("-inf")  # ... and of the last batch

    @property
    def running(self) -> bool:
        return self.journal is not None and not self._stop.is_set()

    @property
    def full(self) -> bool:
        return self.journal is not None and self.journal.alerts >= self.max_backlog

    def backlog(self) -> int:
        """Alerts accepted and not yet processed."""
        return self.journal.alerts if self.journal is not None else 0

    def notify(self, bodies: int = 1) -> None:
        """``bodies`` entries were appended in one group commit: drain them now rather than at the next poll."""
        if bodies > 1:
            self._saturated_at = self.clock()
        self._wake.set()

    def deferred(self) -> bool:
        """Whether to hold the next batch back: ``defer`` is on, the API was saturated in the last
        ``BUSY_WINDOW`` seconds, the last batch was less than ``MAX_DEFER`` ago and the backlog is under
        ``FULL_SPEED_AT`` of its bound."""
        journal = self.journal
        return (self.saturated() and journal is not None and self.clock() - self._drained_at < MAX_DEFER
                and journal.alerts < FULL_SPEED_AT * self.max_backlog)

    def saturated(self) -> bool:
        """``defer`` is on and a group commit of several bodies came in the last ``BUSY_WINDOW`` seconds."""
        return self.defer and self.clock() - self._saturated_at < BUSY_WINDOW

    def open(self) -> Journal:
        """Open the journal; what a previous run committed and did not drop is skipped."""
        self.journal = journal = Journal(self.path)
        with self.service.db.read() as conn:
            self._done_upto = committed_upto(conn, journal.uid)
        return journal

    def start(self) -> IntakeStage:
        """Drain in a thread of this process (tests; ``serve`` uses :class:`IntakeProcess`)."""
        self.open()
        # This thread runs the pipeline in pure Python: with the default 5 ms switch interval a
        # request waiting for the GIL waits up to 5 ms at each await. Hand the GIL over sooner.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._run, name="watchkeeper-intake", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Drain what is left (bounded by ``timeout``), then stop."""
        journal = self.journal
        if journal is None:
            return
        deadline = time.monotonic() + timeout
        while journal.bodies and time.monotonic() < deadline and self._thread and self._thread.is_alive():
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.journal = None
        journal.close()

    def drain_once(self) -> int:
        """Process the oldest batch; the number of alerts committed (0: nothing was waiting)."""
        journal = self.journal
        if journal is None:
            return 0
        entries = journal.take(min(self.batch_alerts, BUSY_BATCH) if self.saturated() else self.batch_alerts)
        if not entries:
            return 0
        done = [e for e in entries if e.id <= self._done_upto]  # committed before a crash: skip
        todo = [e for e in entries if e.id > self._done_upto]
        committed = self._commit(todo) if todo else 0
        journal.drop(done + todo)
        self.processed += committed
        return max(committed, 1)

    def _commit(self, entries: list[Entry]) -> int:
        """Commit ``entries`` in order, one run (source, actor) per transaction, so that the mark
        of a run (its last journal id) also covers everything before it. A run the database
        refuses is retried body by body; a body refused alone becomes a dead letter."""
        committed = 0
        for run in _runs(entries):
            try:
                committed += self._deliver(run, run[-1].id)
            except InputError:
                for entry in run:
                    try:
                        committed += self._deliver([entry], entry.id)
                    except InputError as exc:
                        self._dead_letter(entry, exc)
                        self._done_upto = entry.id
        return committed

    def _deliver(self, run: list[Entry], last: int) -> int:
        assert self.journal is not None
        events = []
        for entry in run:
            try:
                events.extend(self.service.check(entry.source, entry.body, "application/json", entry.received_at))
            except InputError as exc:  # checked at receipt: only a changed source could refuse it now
                self._dead_letter(entry, exc)
        self.service.ingest_delivered(
            [Delivered(message_id(self.journal.uid, last), 0, run[0].source, events, run[0].actor)]
        )
        self._done_upto = last
        return len(events)

    def _dead_letter(self, entry: Entry, exc: InputError) -> None:
        self.service.dead_letter(entry.source, entry.body, exc, "application/json", size=len(entry.body))

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.deferred():
                self._stop.wait(0.025)
                continue
            try:
                n = self.drain_once()
                self._drained_at = self.clock()
                if n:
                    continue
            except Exception as exc:  # the database away, locked, full: retry, never drop
                log.error("intake journal not drained; retrying", error=str(exc))
                self._stop.wait(1.0)
                continue
            self._wake.wait(0.2)
            self._wake.clear()


def _runs(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive entries of one source and actor (each run one pipeline item, one audit record).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [[e.id for e in r] for r in _runs([Entry(t, "a", "x", 1, b"", i) for i in (1, 2)]
    ...                                   + [Entry(t, "b", "x", 1, b"", 3)])]
    [[1, 2], [3]]
    """
    out: list[list[Entry]] = []
    for entry in entries:
        if out and (out[-1][-1].source, out[-1][-1].actor) == (entry.source, entry.actor):
            out[-1].append(entry)
        else:
            out.append([entry])
    return out


# -- the stage in a process of its own ------------------------------------------------------------
# The pipeline is pure Python: in the API's process it holds the GIL that every request needs.
# In a child process it runs on the other core. One drainer at a time: an advisory file lock
# (a child orphaned by a kill -9 of its parent stops at its next batch and releases it).


class IntakeProcess:
    """The API side: appends to the journal; a child process (``python -m watchkeeper.service.drainer``)
    drains it. Woken through a pipe — a byte per append group, ``s`` then end of file to stop — so no
    multiprocessing semaphores and no resource-tracker process (12 MiB of RSS) are needed."""

    def __init__(self, service: Watchkeeper, path: Path, *, max_backlog: int | None = None) -> None:
        self.service = service
        self.path = path
        self.max_backlog = service.settings.intake_max_backlog if max_backlog is None else max_backlog
        self.journal: Journal | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None  # the write end of the child's wake-up pipe
        self._stopping = False
        self._lock = threading.Lock()  # the pipe: written by the appender thread, closed by ``stop``
        self._counted = 0.0
        self._checked = 0.0
        self._backlog = 0

    @property
    def running(self) -> bool:
        return self.journal is not None

    @property
    def full(self) -> bool:
        """More than ``max_backlog`` alerts wait (re-read at most every 0.2 s: the child drops;
        O(1), and never waits for an append in progress)."""
        journal = self.journal
        if journal is None:
            return False
        now = time.monotonic()
        if now - self._counted > 0.2:
            self._backlog, self._counted = journal.backlog(), now
        return self._backlog >= self.max_backlog

    def notify(self, bodies: int = 1) -> None:
        with self._lock:
            if self._stopping or self.journal is None:
                return
            if self._process is None:  # the first body since start-up: a server nobody posts to runs no drainer
                self._spawn()
                return
            self._signal(WAKE)
            now = time.monotonic()
            if now - self._checked < 0.2:  # is the drainer alive? (a waitpid: not for every group)
                return
            self._checked = now
            if self._process.poll() is not None:
                log.error("intake drainer exited; starting another", exitcode=self._process.returncode)
                self._spawn()

    def start(self) -> IntakeProcess:
        self.journal = Journal(self.path)
        with self._lock:
            self._stopping = False
            if self.journal.bodies:  # left by the previous run: drain it now
                self._spawn()
        return self

    def _signal(self, what: bytes) -> None:  # under ``_lock``
        if self._pipe is not None:
            with contextlib.suppress(BlockingIOError, BrokenPipeError):  # a full pipe wakes it anyway
                os.write(self._pipe, what)

    def _spawn(self) -> None:  # under ``_lock``
        self._close_pipe()
        read, write = os.pipe()
        os.set_blocking(write, False)
        package = str(Path(__file__).resolve().parents[2])  # the directory that holds ``watchkeeper``
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "watchkeeper.service.drainer", str(read)],
                stdin=subprocess.PIPE, pass_fds=(read,), env=env)
        finally:
            os.close(read)
        self._pipe = write
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write(pickle.dumps((self.service.settings, str(self.path), os.getpid())))
            self._process.stdin.close()

    def _close_pipe(self) -> None:  # under ``_lock``
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = None

    def stop(self, timeout: float = 30.0) -> None:
        """Let the child drain what is left (bounded by ``timeout``), then stop it."""
        if self.journal is None:
            return
        with self._lock:
            self._stopping = True
            self._signal(STOP)
            self._close_pipe()  # end of file: the child stops once the journal is drained
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(10)
        self.journal.close()
        self.journal = None

    def backlog(self) -> int:
        return self.journal.backlog() if self.journal is not None else 0


#: What the API writes to the drainer's pipe: wake up (bodies were appended), or stop once drained.
WAKE, STOP = b"w", b"s"


__all__ = ["BATCH_ALERTS", "STOP", "WAKE", "IntakeProcess", "IntakeStage", "journal_path"]
