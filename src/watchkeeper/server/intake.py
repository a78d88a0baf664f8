"""The lean intake route: ``POST /api/v2/alerts`` on the journal (docs/scaling.md, "Intake").

Pure ASGI, in front of FastAPI's routing: the bearer token (cached), the body under the size
limit, the same checks as every ingest route (a plain body is counted in one pass, no events
built; a refused body is a 4xx and a dead letter), then a group-committed append to the intake
journal; 202 only after that commit.
``service/intake.py`` processes the journal. Without a journal (PostgreSQL, a bus) the FastAPI
route of the same path answers, committing in the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

import orjson
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import AuthError, InputError, WatchkeeperError
from watchkeeper.server.responses import challenge, error
from watchkeeper.service import Permission, Watchkeeper
from watchkeeper.service.intake import IntakeProcess, IntakeStage
from watchkeeper.storage.journal import Entry
from watchkeeper.telemetry import Metrics

log = structlog.get_logger("watchkeeper.intake")
PATH = "/api/v2/alerts"
SOURCE = "prometheus"
_HEADERS = [(b"content-type", b"application/json")]


#: ``Appender.observe``: (bodies in the group, seconds of its commit, seconds its first request waited in all).
CommitObserver = Callable[[int, float, float], None]


class Appender:
    """Group commit of journal appends across concurrent requests, in a thread of its own (started
    at the first, gone after a second idle): each transaction takes every body queued while the
    previous one committed, and the next starts as soon as it returns — not after a round trip
    through the event loop. A request is answered only after the commit that holds its body."""

    IDLE = 1.0  # seconds without an append before the thread exits

    def __init__(self, stage: IntakeStage | IntakeProcess, observe: CommitObserver | None = None) -> None:
        self.stage = stage
        #: Told of each group commit: bodies, seconds of the commit, seconds its oldest request waited.
        self.observe = observe
        self._jobs: queue.SimpleQueue[tuple[Entry, asyncio.Future[None], float]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def append(self, entry: Entry) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.put((entry, done, time.perf_counter()))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name="watchkeeper-intake-append", daemon=True)
                    self._thread.start()
        await done

    def _work(self) -> None:
        while True:
            try:
                group = [self._jobs.get(timeout=self.IDLE)]
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            with contextlib.suppress(queue.Empty):
                while True:  # everything queued while the previous transaction committed
                    group.append(self._jobs.get_nowait())
            failure: BaseException | None = None
            began = time.perf_counter()
            try:
                journal = self.stage.journal
                if journal is None:
                    raise InputError("the server is stopping; retry shortly", status=503)
                journal.append([entry for entry, _, _ in group])
            except BaseException as exc:  # handed to the requests waiting for it
                failure = exc
            if failure is None and self.observe is not None:  # before the answers: a scrape after one sees it
                ended = time.perf_counter()
                try:
                    self.observe(len(group), ended - began, ended - group[0][2])
                except Exception as exc:  # a metric never holds the answers back
                    log.warning("intake commit metrics not recorded", error=str(exc))
            _settle([done for _, done, _ in group], failure)
            if failure is None:
                self.stage.notify(len(group))


class IntakeGauges(Collector):
    """``/metrics``: the journal's backlog, its bound and the age of its oldest body (read at each
    scrape, O(1))."""

    def __init__(self, stage: IntakeStage | IntakeProcess, clock: Callable[[], datetime]) -> None:
        self.stage, self.clock = stage, clock

    def collect(self) -> Iterable[GaugeMetricFamily]:
        journal = self.stage.journal
        if journal is None or not self.stage.running:
            return
        try:  # the journal closed under the scrape (the server stopping): no intake series, not a 500
            backlog, oldest = self.stage.backlog(), journal.oldest()
        except sqlite3.Error as exc:
            log.warning("intake metrics unavailable", error=str(exc))
            return
        yield GaugeMetricFamily("watchkeeper_intake_backlog",
                                "Alerts acknowledged on /api/v2/alerts and not yet processed (the intake journal)",
                                value=backlog)
        yield GaugeMetricFamily("watchkeeper_intake_backlog_limit",
                                "intake_max_backlog: with this many alerts waiting, /api/v2/alerts answers 503",
                                value=self.stage.max_backlog)
        age = max(0.0, (self.clock() - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily("watchkeeper_intake_oldest_seconds",
                                "Age of the oldest alert body waiting in the intake journal (0: none waits)",
                                value=age)


class LeanIntake:
    """The ASGI app answering ``POST /api/v2/alerts`` from the journal; anything else, or any request while
    the journal is closed, goes to ``app`` (FastAPI, server/app.py ``_App``)."""

    def __init__(self, app: Any, *, service: Watchkeeper, stage: IntakeStage | IntakeProcess) -> None:
        self.app = app
        self.service = service
        self.stage = stage
        metrics = service.metrics
        self.appender = Appender(stage, None if metrics is None else _commit_metrics(metrics))
        self.limit = service.settings.max_body_bytes
        # A drainer in another process counts nothing here: this process counts the alerts it appends
        # (durably accepted, as ``watchkeeper_events_ingested`` says); a drainer thread counts its commits.
        self.events = (metrics.events.labels(SOURCE)
                       if metrics is not None and isinstance(stage, IntakeProcess) else None)
        self.refused = None if metrics is None else metrics.counter(
            "watchkeeper_intake_refused", "Requests to /api/v2/alerts answered 503 because the backlog was full")
        if metrics is not None:
            metrics.collector("intake", IntakeGauges(stage, service.clock))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or not self.stage.running:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        try:
            try:
                status, answer = await self._ingest(headers, receive)
            except (WatchkeeperError, asyncio.CancelledError):
                raise
            except Exception as exc:  # the journal cannot take it (disk full, I/O error): not the sender's fault
                log.error("intake journal append failed", error=str(exc))
                raise InputError("the intake journal cannot take alerts now; retry shortly", status=503) from exc
        except WatchkeeperError as exc:
            found = error(getattr(exc, "status", 500), str(exc))
            if isinstance(exc, AuthError):
                found.headers["WWW-Authenticate"] = challenge(exc.code, str(exc))
            if getattr(exc, "status", 500) == 503:
                found.headers["Retry-After"] = "1"
            await found(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": answer})

    async def _ingest(self, headers: dict[bytes, bytes], receive: Any) -> tuple[int, bytes]:
        service = self.service
        raw = headers.get(b"authorization")
        header = raw.decode("latin-1") if raw is not None else None
        who = service.cached_principal(header)  # a recently verified token: no thread hop, no query
        if who is None:
            who = await run_in_threadpool(service.authenticate, header)
        who.require(Permission.INGEST)
        body, size, truncated = await _read(headers, receive, self.limit)
        content_type = headers[b"content-type"].decode("latin-1") if b"content-type" in headers else None
        received_at = service.clock()
        try:
            if truncated:
                raise InputError(f"body of {size}+ bytes exceeds the limit of {self.limit}", status=413)
            accepted = service.count(SOURCE, body, content_type, received_at)  # no events built here
        except InputError as exc:
            await run_in_threadpool(
                partial(service.dead_letter, SOURCE, body, exc, content_type, size=size, truncated=truncated)
            )
            raise
        if self.stage.full:
            if self.refused is not None:
                self.refused.inc()
            raise InputError("the intake backlog is full; retry shortly", status=503)
        await self.appender.append(Entry(received_at, SOURCE, f"token:{who.name}", accepted, body))
        if self.events is not None:
            self.events.inc(accepted)
        return 202, orjson.dumps({"accepted": accepted})


def _commit_metrics(metrics: Metrics) -> CommitObserver:
    """``/metrics`` of the journal's group commits: how long a commit (fsync included) takes, how many
    bodies it holds, and how long its oldest request waited from its append to the commit's end — the
    durability's share of a request's latency (docs/scaling.md, "Where a small body's time goes")."""
    seconds = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
    commit = metrics.histogram("watchkeeper_intake_commit_seconds",
                               "Duration of one group commit of the intake journal (fsync included)", seconds)
    wait = metrics.histogram("watchkeeper_intake_wait_seconds",
                             "From a group's oldest request queueing its body to the group's commit", seconds)
    bodies = metrics.histogram("watchkeeper_intake_group_bodies", "Request bodies per group commit of the journal",
                               (1, 2, 4, 8, 16, 32, 64, 128, 256))

    def observe(group: int, took: float, waited: float) -> None:
        commit.observe(took)
        wait.observe(waited)
        bodies.observe(group)

    return observe


def _settle(waiting: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    """From the append thread: resolve the futures in their event loop, one call per loop (a loop
    already closed: nobody waits)."""
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for done in waiting:
        loops.setdefault(done.get_loop(), []).append(done)

    def settle(futures: list[asyncio.Future[None]]) -> None:
        for done in futures:
            if not done.done():
                done.set_exception(exc) if exc is not None else done.set_result(None)

    for loop, futures in loops.items():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, futures)


async def _read(headers: dict[bytes, bytes], receive: Any, limit: int) -> tuple[bytes, int, bool]:
    """The body, at most ``limit`` bytes; whether more was sent (the rest is not read)."""
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        return b"", int(declared), True
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InputError("the client went away", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
            return b"".join(chunks), size, True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size, False


__all__ = ["PATH", "Appender", "IntakeGauges", "LeanIntake"]
