"""Routes for root-cause evidence: change events and the service graph.

``POST /api/v1/ingest/changes`` (ingest), ``GET /api/v1/changes`` (read), ``GET /api/v1/topology`` (read).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper import changes
from watchkeeper.errors import InputError
from watchkeeper.model import utc
from watchkeeper.server.app import Ingester, Reader, _read_limited
from watchkeeper.server.responses import Json
from watchkeeper.service import Watchkeeper
from watchkeeper.sources.limits import UtcTime
from watchkeeper.topology import config as topology_config

SOURCE = "changes"
#: The request bodies, published in the OpenAPI components by the app.
SCHEMAS = (changes.ChangeIn, changes.ChangeBatch)


def add_routes(app: FastAPI, service: Watchkeeper) -> None:
    """Add the routes; the service graph is read here, once (a bad topology file stops start-up
    with a sentence rather than failing requests later)."""
    cfg = service.settings
    configured = topology_config.build(cfg.topology, topology_config.correlation_graph(cfg.correlation_config))
    graph = topology_config.document(configured)

    @app.post("/api/v1/ingest/changes", tags=["ingest"], status_code=202, summary="Record change events",
              responses={400: {"description": "malformed JSON"}, 413: {"description": "body too large"},
                         422: {"description": "not a change"}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "anyOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in SCHEMAS]}}}}})
    async def ingest_changes(request: Request, who: Ingester) -> Response:
        """One change (service, kind deploy|rollback|config|flag, version, at, who, link, description)
        or ``{"changes": [...]}``; stored and audited (``change.recorded``)."""
        limit = service.settings.max_body_bytes
        body, size, truncated = await _read_limited(request, limit)
        content_type = request.headers.get("content-type")
        try:
            if truncated:
                raise InputError(f"body of {size}+ bytes exceeds the limit of {limit}", status=413)
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"malformed JSON: {exc}", status=400) from None
            items = changes.parse(doc)
        except InputError as exc:
            await run_in_threadpool(service.dead_letter, SOURCE, body, exc, content_type, size=size,
                                    truncated=truncated)
            raise
        recorded = await run_in_threadpool(service.changelog.record, items, f"token:{who.name}")
        return Json({"accepted": len(recorded), "changes": recorded}, status_code=202)

    @app.get("/api/v1/changes", tags=["changes"])
    def list_changes(
        _who: Reader,
        service_name: Annotated[str | None, Query(alias="service", max_length=256)] = None,
        since: UtcTime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> Any:
        """Recorded changes, oldest first."""
        return service.changelog.find(service=service_name, since=utc(since) if since else None, limit=limit)

    @app.get("/api/v1/topology", tags=["topology"])
    def topology(request: Request, _who: Reader) -> Any:
        """The service graph ranking uses: ``nodes`` and ``edges`` (caller → callee), each edge with
        its ``sources`` (settings, file, correlation, traces; edges seen in traces also carry ``calls``,
        ``errors`` and ``rate``, calls per second)."""
        traces = getattr(request.app.state, "traces", None)
        if traces is None:
            return graph
        return topology_config.document(traces.merged(configured))
