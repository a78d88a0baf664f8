"""Logs over HTTP: OTLP/HTTP logs in at ``POST /v1/logs`` (protobuf or JSON, the ingest token),
the templates and per-minute counts out for the ranker and the console, and the log inputs
(:class:`~watchkeeper.service.logs.LogIngest`: syslog listeners, file followers, the anomaly
ticker, raw-line retention) started and stopped with the app (docs/logs.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.errors import InputError
from watchkeeper.logs.otlp import JSON, PROTOBUF
from watchkeeper.retention import Pruner
from watchkeeper.server.app import Ingester, Reader, _read_limited
from watchkeeper.service import Watchkeeper
from watchkeeper.service.log_evidence import RankerLogs
from watchkeeper.service.logs import LogIngest
from watchkeeper.sources.limits import UtcTime


def add_routes(app: FastAPI, service: Watchkeeper, *, inputs: bool = True) -> LogIngest:
    """The routes, and (``inputs``) the listeners and followers of ``settings.logs`` in the app's
    lifespan, after the database is upgraded."""
    logs = LogIngest(service)
    app.state.logs = logs
    ranker = getattr(app.state, "ranker", None)
    if ranker is not None:  # log anomalies are root-cause evidence (docs/rca.md)
        ranker.logs = RankerLogs(logs)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            pruner = None
            if inputs:
                await run_in_threadpool(logs.start)
                keep = logs.config.retention
                pruner = Pruner(logs.prune, interval=keep.interval_seconds, delay=keep.interval_seconds,
                                name="watchkeeper-retention-logs").start()
            try:
                yield state
            finally:
                if pruner is not None:
                    await run_in_threadpool(pruner.stop)
                if inputs:
                    await run_in_threadpool(logs.stop)

    app.router.lifespan_context = lifespan

    @app.post(
        "/v1/logs", tags=["ingest"], summary="OTLP/HTTP logs (ExportLogsServiceRequest)",
        responses={400: {"description": "not an ExportLogsServiceRequest"}, 413: {"description": "body too large"},
                   415: {"description": "neither application/x-protobuf nor application/json"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            JSON: {"schema": {"type": "object", "properties": {"resourceLogs": {"type": "array", "items": {
                "type": "object"}}}}},
        }}},
    )
    async def otlp_logs(request: Request, _who: Ingester) -> Response:
        """Log records of an OTLP exporter; each resource's ``service.name`` is its service. Answered
        200 (an ExportLogsServiceResponse) once the lines are stored."""
        limit = service.settings.max_body_bytes
        body, size, truncated = await _read_limited(request, limit)
        content_type = request.headers.get("content-type")
        if truncated:
            message = f"body of {size}+ bytes exceeds the limit of {limit}"
            await run_in_threadpool(lambda: logs.refuse("otlp", body, message, 413, content_type, always=True))
            raise InputError(message, status=413)
        media, answer = await run_in_threadpool(logs.otlp, body, content_type)
        return Response(answer, media_type=media)

    @app.get("/api/v1/logs/templates", tags=["logs"])
    def log_templates(_who: Reader, service_name: Annotated[str | None, Query(alias="service", min_length=1,
                                                                               max_length=256)] = None,
                      since: UtcTime | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Any:
        """Templates per service (id, text, first and last seen, lines), most lines first."""
        return [_jsonable(r) for r in logs.store.templates(service_name, since, limit)]

    @app.get("/api/v1/logs/counts", tags=["logs"])
    def log_counts(_who: Reader, service_name: Annotated[str | None, Query(alias="service", min_length=1,
                                                                             max_length=256)] = None,
                   template_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                   start: UtcTime | None = None, end: UtcTime | None = None,
                   limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000) -> Any:
        """Lines (and error lines) per minute per template, oldest first."""
        if start and end and end <= start:
            raise InputError("'end' must be after 'start'")
        return [_jsonable(r) for r in logs.store.counts(service_name, template_id, start, end, limit)]

    return logs


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
