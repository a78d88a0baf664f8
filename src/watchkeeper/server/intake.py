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
import threading
from functools import partial
from typing import Any

import orjson
import structlog
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import AuthError, InputError, WatchkeeperError
from watchkeeper.server.responses import challenge, error
from watchkeeper.service import Permission, Watchkeeper
from watchkeeper.service.intake import IntakeProcess, IntakeStage
from watchkeeper.storage.journal import Entry, Journal

log = structlog.get_logger("watchkeeper.intake")
PATH = "/api/v2/alerts"
SOURCE = "prometheus"
_HEADERS = [(b"content-type", b"application/json")]


class Appender:
    """Group commit of journal appends across concurrent requests: while one append runs in a
    thread, the requests that arrive wait together for the next one.

    The appends run in a thread of their own (started at the first, gone after a second idle):
    about a third of the cost of a hop through the shared thread pool (anyio), once per group."""

    IDLE = 1.0  # seconds without an append before the thread exits

    def __init__(self, stage: IntakeStage | IntakeProcess) -> None:
        self.stage = stage
        self._pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self._flushing = False
        self._jobs: queue.SimpleQueue[tuple[Journal, list[Entry], asyncio.Future[None]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _in_thread(self, journal: Journal, entries: list[Entry]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._jobs.put((journal, entries, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="watchkeeper-intake-append", daemon=True)
                self._thread.start()
        return done

    def _work(self) -> None:
        while True:
            try:
                journal, entries, done = self._jobs.get(timeout=self.IDLE)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            try:
                journal.append(entries)
            except BaseException as exc:  # handed to the requests waiting for it
                _settle(done, exc)
            else:
                _settle(done, None)

    async def append(self, entry: Entry) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    journal = self.stage.journal
                    if journal is None:
                        raise InputError("the server is stopping; retry shortly", status=503)
                    await self._in_thread(journal, [entry for entry, _ in group])
                except Exception as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
                    self.stage.notify()
        finally:
            self._flushing = False


class LeanIntake:
    """ASGI middleware answering ``POST /api/v2/alerts`` from the journal; everything else passes."""

    def __init__(self, app: Any, *, service: Watchkeeper, stage: IntakeStage | IntakeProcess) -> None:
        self.app = app
        self.service = service
        self.stage = stage
        self.appender = Appender(stage)
        self.limit = service.settings.max_body_bytes

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
            raise InputError("the intake backlog is full; retry shortly", status=503)
        await self.appender.append(Entry(received_at, SOURCE, f"token:{who.name}", accepted, body))
        return 202, orjson.dumps({"accepted": accepted})


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    """From the append thread: resolve ``done`` in its event loop (a loop already closed: nobody waits)."""

    def settle() -> None:
        if not done.done():
            done.set_exception(exc) if exc is not None else done.set_result(None)

    with contextlib.suppress(RuntimeError):
        done.get_loop().call_soon_threadsafe(settle)


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


__all__ = ["PATH", "Appender", "LeanIntake"]
