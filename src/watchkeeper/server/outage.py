"""While the database is unreachable: every route answers 503 with ``Retry-After`` (never a 500
with a traceback), ``/healthz`` runs ``SELECT 1`` and answers 503 with the reason, and the server
logs one line per burst of failures, then one when the database is back."""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper import __version__
from watchkeeper.server.responses import Json
from watchkeeper.storage import Database
from watchkeeper.storage.outage import OUTAGE_ERRORS, Burst, is_outage, reason

log = structlog.get_logger("watchkeeper.http")

#: Seconds a client is asked to wait while the database is unreachable.
RETRY_AFTER = 5


class Outage:
    """The server's view of a database outage: the 503 it answers, the log line per burst."""

    def __init__(self) -> None:
        self.burst = Burst()

    def unavailable(self, exc: BaseException, body: dict[str, Any] | None = None) -> Response:
        if self.burst.failed(time.monotonic()):  # one line per burst of failures, no traceback
            log.warning("database unreachable: answering 503", error=reason(exc))
        body = body or {"error": "the database is unreachable; retry later", "status": 503, "reason": reason(exc)}
        return Json(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER)})

    def reachable(self) -> None:
        if (failures := self.burst.recovered()) > 0:
            log.info("database reachable again", failed_requests=failures)


class DatabaseHealth:
    """Pure ASGI: ``/healthz`` first checks the database with ``SELECT 1``; when that fails it
    answers 503 with the reason, otherwise the route answers as usual."""

    def __init__(self, app: ASGIApp, db: Database, outage: Outage) -> None:
        self.app, self.db, self.outage = app, db, outage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz":
            try:
                await run_in_threadpool(self.db.ping)
            except OUTAGE_ERRORS as exc:
                if not is_outage(exc):
                    raise
                body = {"status": "unavailable", "reason": f"database: {reason(exc)}", "version": __version__}
                await self.outage.unavailable(exc, body)(scope, receive, send)
                return
            self.outage.reachable()
        await self.app(scope, receive, send)


def install(app: FastAPI, db: Database) -> None:
    """Answer database outages with 503 + ``Retry-After`` on every route and on ``/healthz``."""
    outage = Outage()

    async def _database(_request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            raise exc  # a bug, not an outage: the server's 500 path
        return outage.unavailable(exc)

    for kind in OUTAGE_ERRORS:
        app.add_exception_handler(kind, _database)
    app.add_middleware(DatabaseHealth, db=db, outage=outage)
