"""Routes for traces (docs/traces.md).

``POST /v1/traces`` (OTLP/HTTP, ingest token), ``GET /api/v1/traces/red`` and
``GET /api/v1/traces/{trace_id}`` (read). The :class:`~watchkeeper.service.traces.Traces` of the app
is ``app.state.traces``; its flusher thread runs while the app does; the service graph that
``GET /api/v1/topology`` shows and the ranker uses gains the edges seen in traces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.errors import InputError, NotFound
from watchkeeper.model import utc
from watchkeeper.retention import Pruner
from watchkeeper.server.app import Ingester, Reader, _read_limited
from watchkeeper.service import Watchkeeper
from watchkeeper.service.traces import DEAD_LETTER_SOURCE, Traces
from watchkeeper.sources.limits import UtcTime
from watchkeeper.storage import traces as store
from watchkeeper.storage.traces import TraceStore
from watchkeeper.traces import otlp


#: The OTLP JSON request body, as far as the spec can say it (the spans are checked as OTLP spans).
def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "array", "items": item}, {"type": "null"}]}


EXPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "OTLP ExportTraceServiceRequest (OTLP/JSON mapping): resourceSpans → scopeSpans → spans; "
                   "a span that cannot be used is rejected alone (partialSuccess)",
    "properties": {"resourceSpans": _list_of({"type": "object", "properties": {
        "resource": {"anyOf": [{"type": "object", "properties": {"attributes": _list_of({"type": "object"})}},
                               {"type": "null"}]},
        "scopeSpans": _list_of({"type": "object", "properties": {"spans": _list_of({"type": "object"})}}),
    }})},
}
MAX_RANGE = timedelta(days=31)


def add_routes(app: FastAPI, service: Watchkeeper) -> Traces | None:
    """Add the routes and the flusher (nothing when ``traces.enabled`` is false)."""
    if not service.settings.traces.enabled:
        return None
    traces = Traces(service)
    app.state.traces = traces
    ranker = getattr(app.state, "ranker", None)
    if ranker is not None:  # the ranker's service graph gains the edges seen in traces
        ranker.extend_graph = traces.merged
        ranker.traces = TraceStore(service.db)  # trace evidence: the stored RED rows
    _run_with_app(app, traces, service)

    @app.post(
        "/v1/traces", tags=["ingest"], summary="OTLP/HTTP traces (protobuf or JSON, gzip or not)",
        responses={200: {"description": "ExportTraceServiceResponse (partialSuccess when spans were rejected), "
                                         "in the request's encoding", "content": {
                              "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                              "application/json": {"schema": {"type": "object"}}}},
                   400: {"description": "not an OTLP export request"}, 413: {"description": "body too large"},
                   415: {"description": "not application/x-protobuf or application/json"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": EXPORT_SCHEMA}}}},
    )
    async def export_traces(request: Request, _who: Ingester) -> Response:
        """An OTLP ``ExportTraceServiceRequest``; the spans are committed before the answer."""
        limit = service.settings.max_body_bytes
        body, size, truncated = await _read_limited(request, limit)
        content_type = request.headers.get("content-type")
        if truncated:
            exc = InputError(f"body of {size}+ bytes exceeds the limit of {limit}", status=413)
            await run_in_threadpool(lambda: service.dead_letter(DEAD_LETTER_SOURCE, body, exc, content_type,
                                                                size=size, truncated=True))
            raise exc
        decoded = await run_in_threadpool(traces.export, body, content_type,
                                          request.headers.get("content-encoding"))
        if otlp.media_of(content_type) == otlp.PROTOBUF:
            return Response(decoded.response_protobuf(), media_type=otlp.PROTOBUF)
        return Response(orjson.dumps(decoded.response_json()), media_type=otlp.JSON)

    @app.get("/api/v1/traces/red", tags=["traces"])
    def red(
        _who: Reader,
        service_name: Annotated[str | None, Query(alias="service", max_length=256)] = None,
        edge: Annotated[str | None, Query(max_length=520, pattern="^.+->.+$", description="caller->callee")] = None,
        scope: Annotated[str | None, Query(pattern="^(service|edge|operation)$")] = None,
        start: UtcTime | None = None,
        end: UtcTime | None = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Any:
        """RED rows (one per step: ``count``, ``errors``, ``rate``, ``error_ratio``, latency ``p50/p95/p99``
        in seconds, ``at`` the step's end in unix seconds), oldest first: of one service (its own, the
        calls into it and its operations), one edge, or all; default: the last hour."""
        until = utc(end) if end is not None else service.clock()
        hour = timedelta(hours=1)  # the default range: the hour before 'end' (not before the first instant there is)
        first = datetime.min.replace(tzinfo=UTC)
        since = utc(start) if start is not None else max(until, first + hour) - hour
        if until <= since:
            raise InputError("'end' must be after 'start'")
        if until - since > MAX_RANGE:
            raise InputError(f"ask for at most {MAX_RANGE.days} days at a time")
        with service.db.read() as conn:
            rows = store.red_rows(conn, start=since.timestamp(), end=until.timestamp(), service=service_name,
                                  edge=edge, scope=scope, limit=limit)
        return [r.as_dict() for r in rows]

    @app.get("/api/v1/traces/{trace_id}", tags=["traces"])
    def trace(
        trace_id: Annotated[str, Path(pattern="^[0-9a-fA-F]{32}$", description="32 hex digits")], _who: Reader,
    ) -> Any:
        """The stored spans of one trace (while raw spans are kept: ``traces.retention.raw_hours``)."""
        with service.db.read() as conn:
            spans = store.trace(conn, trace_id.lower())
        if not spans:
            kept = service.settings.traces.retention.raw_hours
            raise NotFound(f"no spans of trace {trace_id} are stored (spans are kept {kept:g} h)")
        return {"trace_id": trace_id.lower(), "spans": spans}

    return traces


def _run_with_app(app: FastAPI, traces: Traces, service: Watchkeeper) -> None:
    """Run the flusher (and, when event retention is off, the trace pruner) while the app runs."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            traces.start()
            # serve's retention job prunes traces with the events; with that job off, traces prune alone
            pruner = Pruner(traces.prune).start() if service.settings.retention_days <= 0 else None
            try:
                yield state
            finally:
                if pruner is not None:
                    await run_in_threadpool(pruner.stop)
                await run_in_threadpool(traces.stop)
                await run_in_threadpool(traces.last_flush)

    app.router.lifespan_context = lifespan


__all__ = ["add_routes"]
