"""Routes of the integrations, and the outbox delivery thread's place in ``serve``'s lifespan.

``GET /api/v1/outbox`` (read), ``POST /api/v1/outbox/{id}/retry`` (operate),
``POST /api/v1/integrations/slack/interactivity`` (no token: Slack's signature is the credential).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.errors import InputError
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.server.app import MAX_ID, Id, Operator, Reader, _read_limited
from watchkeeper.server.responses import Json
from watchkeeper.service import Watchkeeper

#: A Slack interactivity body is a few kilobytes; anything much larger is not Slack.
SLACK_MAX_BODY = 64 * 1024



def add_routes(app: FastAPI, service: Watchkeeper, *, deliver: bool = True) -> Integrations:
    """Add the routes; with ``deliver``, run the outbox delivery thread for the app's lifetime."""
    integrations = Integrations(service)
    app.state.integrations = integrations
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:  # migrations run first
            if deliver:
                integrations.start()
            try:
                yield state
            finally:
                await run_in_threadpool(integrations.stop)

    app.router.lifespan_context = lifespan

    @app.get("/api/v1/outbox", tags=["integrations"])
    def list_outbox(
        _who: Reader,
        status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
        target: Annotated[str | None, Query(max_length=64)] = None,
        incident: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> Any:
        """Outbox messages, newest first: where each goes, its state, attempts and last error."""
        return integrations.messages(status=status, target=target, incident_id=incident, limit=limit, offset=offset)

    @app.post("/api/v1/outbox/{message_id}/retry", tags=["integrations"])
    def retry_outbox(message_id: Id, who: Operator) -> Any:
        """Deliver a dead (or waiting) message again now, with a fresh count of attempts (audited)."""
        return integrations.retry(message_id, f"token:{who.name}")

    @app.post("/api/v1/integrations/slack/interactivity", tags=["integrations"],
              responses={401: {"description": "bad or stale Slack signature"}, 400: {"description": "not Slack"},
                         404: {"description": "no Slack integration is configured"},
                         413: {"description": "larger than a Slack interaction"}})
    async def slack_interactivity(request: Request) -> Response:
        """Slack's Request URL for interactivity: Approve / Reject / Acknowledge clicks, verified
        by Slack's signature. Answered at once; the work and the ephemeral reply follow."""
        raw, size, truncated = await _read_limited(request, SLACK_MAX_BODY)
        if truncated:
            raise InputError(f"body of {size}+ bytes is not a Slack interaction", status=413)
        answer = await run_in_threadpool(integrations.slack_click, dict(request.headers), raw)
        task = BackgroundTask(run_in_threadpool, answer.later) if answer.later is not None else None
        if answer.body is None:
            return Response(status_code=200, background=task)
        return Json(answer.body, background=task)

    return integrations
