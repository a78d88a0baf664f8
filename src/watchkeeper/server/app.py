"""The FastAPI application. Only this package knows HTTP; it calls :class:`Watchkeeper`."""


import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from watchkeeper import __version__
from watchkeeper.errors import AuthError, InputError, WatchkeeperError
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause
from watchkeeper.retention import Pruner
from watchkeeper.server.console import install as install_console
from watchkeeper.server.intake import PATH as INTAKE_PATH
from watchkeeper.server.intake import LeanIntake
from watchkeeper.server.limits import RequestLimits
from watchkeeper.server.outage import install as install_outage
from watchkeeper.server.responses import Json, challenge, error
from watchkeeper.server.spec import allowed_methods, document_errors
from watchkeeper.server.watch import make_watcher
from watchkeeper.service import Permission, Principal, Watchkeeper
from watchkeeper.service.intake import IntakeProcess, IntakeStage, journal_path
from watchkeeper.sources.limits import UtcTime

log = structlog.get_logger("watchkeeper.http")

#: Largest id or offset a route takes: PostgreSQL's INTEGER, the type of every id column there.
MAX_ID = 2**31 - 1
#: An id in a path: out of range is a 422 (never a database error).
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="an id, 1 to 2^31-1")]

bearer = HTTPBearer(auto_error=False, description="An API token from `watchkeeper token create`")


class Comment(BaseModel):
    comment: str = Field("", max_length=10_000, description="Why (kept in the audit log)")


class Resolution(Comment):
    fixed_by: str | None = Field(None, max_length=64,
                                 description="runbook id that fixed it, 'manual' or 'nothing' (scores shadow runs)")
    harmful: list[str] = Field(default_factory=list, description="runbook ids that would have done harm")
    cause: str | None = Field(None, min_length=1, max_length=256,
                              description="the service that really caused it (what 'rca calibrate' learns from)")


class CauseIn(BaseModel):
    component: str = Field(min_length=1, max_length=256)
    kind: str = Field("service", pattern="^(service|resource|metric|change|log)$")
    score: float = Field(0.0, strict=True, allow_inf_nan=False)
    confidence: float = Field(ge=0, le=1, strict=True, allow_inf_nan=False)
    model: str = Field("external", max_length=128)
    evidence: dict[str, Any] = Field(default_factory=dict)


class Ranking(BaseModel):
    causes: list[CauseIn] = Field(max_length=100)


class Vote(BaseModel):
    comment: str = Field("", max_length=10_000)


class MergeIn(BaseModel):
    into: int = Field(ge=1, le=MAX_ID, description="the incident that absorbs this one")


class SplitIn(BaseModel):
    fingerprints: list[str] = Field(min_length=1, max_length=1000)


class MoveIn(BaseModel):
    incident: int = Field(ge=1, le=MAX_ID, description="the incident the alert belongs to")


class SilenceIn(BaseModel):
    matchers: list[str | dict[str, Any]] = Field(min_length=1, max_length=50,
                                                 description='e.g. service="db" or {name, value, isRegex, isEqual}')
    ends_at: UtcTime
    starts_at: UtcTime | None = None
    comment: str = Field("", max_length=2000)


APPROVAL_STATUSES = "^(pending|approved|rejected|expired|superseded|all)$"


class RunRequest(BaseModel):
    incident: int = Field(ge=1, le=MAX_ID)
    dry_run: bool = False


class Assign(BaseModel):
    assignee: str = Field(min_length=1, max_length=256)


class NewComment(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


def principal(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's token, which must grant ``permission``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        service: Watchkeeper = request.app.state.service
        # another scheme (Basic …) gets its own message, not "missing": hand the raw header on
        header = f"Bearer {credentials.credentials}" if credentials else request.headers.get("authorization")
        who = service.cached_principal(header)  # a recently verified token: no thread hop, no query
        if who is None:
            who = await run_in_threadpool(service.authenticate, header)
        who.require(permission)
        return who

    return dependency


Reader = Annotated[Principal, Depends(principal(Permission.READ))]
Operator = Annotated[Principal, Depends(principal(Permission.OPERATE))]
Admin = Annotated[Principal, Depends(principal(Permission.ADMIN))]
Approver = Annotated[Principal, Depends(principal(Permission.APPROVE))]
Ingester = Annotated[Principal, Depends(principal(Permission.INGEST))]


class _App(FastAPI):
    """FastAPI, with ``POST /api/v2/alerts`` handed to the lean intake (``server/intake.py``) before
    FastAPI's own per-request work (its telemetry check, the middleware stack, the router)."""

    lean: LeanIntake | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = self.lean
        if lean is not None and scope["type"] == "http" and scope["path"] == INTAKE_PATH and scope["method"] == "POST":
            await lean(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(service: Watchkeeper, *, upgrade: bool = True, responder: bool = True, watch: bool = True,
               rank: bool = True, bus: Any = None, intake: str = "off") -> FastAPI:
    """The application. ``intake``: who drains the journal of ``POST /api/v2/alerts`` on SQLite —
    ``"process"`` (a child process: the other core; what ``serve`` uses), ``"thread"`` (one of
    this process), ``"off"`` (the default here: that route commits in the request, as every other
    ingest route; tests and embedders get no extra thread or process unless they ask)."""
    from watchkeeper.server.rca_api import add_routes

    watcher = make_watcher(service) if watch else None
    ranker = None
    if rank and service.settings.ranks():  # the ranker (networkx, numpy) only when it will rank
        from watchkeeper.ranking import make_ranker

        ranker = make_ranker(service)
    journal = journal_path(service) if bus is None and intake != "off" else None  # server/intake.py
    stage = None if journal is None else IntakeProcess(service, journal) if intake == "process" else (
        IntakeStage(service, journal, defer=True))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if upgrade:
            await run_in_threadpool(service.upgrade)
        if responder and service.governance.catalog.runbooks:
            service.governance.start(service.settings.responder_interval_seconds)
        if watcher is not None:
            watcher.start()
        if ranker is not None:
            ranker.start()
        pruner = Pruner(service.prune).start() if service.settings.retention_days > 0 else None
        if stage is not None:
            await run_in_threadpool(stage.start)
        try:
            yield
        finally:
            if stage is not None:
                await run_in_threadpool(stage.stop)
            if pruner is not None:
                await run_in_threadpool(pruner.stop)
            if ranker is not None:
                await run_in_threadpool(ranker.stop)
            if watcher is not None:
                await run_in_threadpool(watcher.stop)
            await run_in_threadpool(service.governance.stop)

    # Swagger UI and ReDoc from the package's own copies, not a CDN: /docs works on an offline host
    app = FastAPIOffline(
        title="Watchkeeper", version=__version__, lifespan=lifespan, default_response_class=Json,
        description="Alerts in, a few explained incidents out, every step audited.",
    )
    app.__class__ = _App  # FastAPIOffline is a factory of FastAPI objects; _App adds one branch, no state
    app.state.service = service
    app.state.watcher = watcher
    app.add_middleware(RequestLimits, max_body_bytes=service.settings.max_body_bytes)
    app.state.ranker = ranker
    app.add_middleware(AccessLog)
    install_outage(app, service.db)  # database unreachable: 503 + Retry-After, /healthz says why
    if stage is not None:  # before FastAPI: POST /api/v2/alerts never walks the middleware stack or the router
        assert isinstance(app, _App)
        app.lean = LeanIntake(partial(FastAPI.__call__, app), service=service, stage=stage)

    @app.exception_handler(WatchkeeperError)
    async def _known(_request: Request, exc: WatchkeeperError) -> Response:
        status = getattr(exc, "status", 500)
        found = error(status, str(exc))
        if isinstance(exc, AuthError):
            found.headers["WWW-Authenticate"] = challenge(exc.code, str(exc))
        return found

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
        return error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # 404 (no such route), 405 (wrong method) and the like, in the project's error shape
        found = error(exc.status_code, str(exc.detail))
        found.headers.update(exc.headers or {})
        if exc.status_code == 401 and "www-authenticate" not in found.headers:
            found.headers["WWW-Authenticate"] = challenge(None, "")
        if exc.status_code == 405:  # every method of the path, not only the first route's
            found.headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return found

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        details: dict[str, Any] = {}
        if watcher is not None:
            status = watcher.status()
            details["watch"], details["prometheus"] = status["watches"], status["endpoints"]
        if ranker is not None:
            details["rca"] = ranker.status()
        if stage is not None and stage.running:  # alerts accepted on /api/v2/alerts, not yet processed
            details["intake"] = {"backlog": stage.backlog()}
        integrations = getattr(app.state, "integrations", None)  # the outbox (docs/integrations.md)
        if integrations is not None and integrations.notifiers:
            details["outbox"] = integrations.delivery.health()
        return {"status": "ok", "version": __version__, "details": details}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        if service.metrics is None:
            return Response(b"", media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    add_routes(app, service)
    install_console(app, service)  # the web console under /console (docs/console.md)

    from watchkeeper.server.integrations_api import add_routes as add_integration_routes

    integrations = add_integration_routes(app, service, deliver=responder)
    from watchkeeper.server.itsm_api import add_routes as add_itsm_routes

    add_itsm_routes(app, service, integrations, poll=responder)
    from watchkeeper.server import value_api

    value_api.add_routes(app, service)  # the portfolio, gates and the gate guard
    from watchkeeper.server import traces_api

    traces_api.add_routes(app, service)  # OTLP traces in, RED rows and traces out (docs/traces.md)

    from watchkeeper.server import logs_api

    logs_api.add_routes(app, service)  # OTLP logs in, templates and counts out, the log inputs (docs/logs.md)

    publisher = None
    if bus is not None:  # ingest publishes to the bus; workers commit (docs/scaling.md)
        from watchkeeper.server.bus_ingest import BusLag, Publisher

        publisher = app.state.publisher = Publisher(service, bus)
        if service.metrics is not None:
            service.metrics.collector("bus", BusLag(bus))
    for name, source in service.sources.items():
        _add_ingest_route(app, service, name, source.schema, publisher)
    from watchkeeper.server.rca_api import SCHEMAS

    _publish_schemas(app, [source.schema for source in service.sources.values()] + list(SCHEMAS))

    @app.get("/api/v1/incidents", tags=["incidents"])
    def list_incidents(
        _who: Reader,
        status: Annotated[str | None, Query(pattern="^(open|acknowledged|mitigated|resolved)$")] = None,
        service_name: Annotated[str | None, Query(alias="service", max_length=256)] = None,
        since: UtcTime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> Any:
        return [i.as_dict() for i in service.incidents(status=status, service=service_name, since=since, limit=limit,
                                                       offset=offset)]

    @app.get("/api/v1/incidents/{incident_id}", tags=["incidents"])
    def get_incident(incident_id: Id, _who: Reader) -> Any:
        return service.incident(incident_id).as_dict()

    def _action_route(action: Action) -> None:
        def act(incident_id: Id, who: Operator, body: Comment | None = None) -> Any:
            return service.act(incident_id, action, f"token:{who.name}", body.comment if body else "").as_dict()
        act.__name__ = f"{action.value}_incident"
        app.post(f"/api/v1/incidents/{{incident_id}}/{action.value}", tags=["incidents"])(act)

    for action in (Action.ACKNOWLEDGE, Action.MITIGATE, Action.REOPEN):
        _action_route(action)

    @app.post("/api/v1/incidents/{incident_id}/resolve", tags=["incidents"])
    def resolve(incident_id: Id, who: Operator, body: Resolution | None = None) -> Any:
        body = body or Resolution()
        if body.cause is not None:
            from watchkeeper.ranking import record_cause

            record_cause(service, incident_id, body.cause, f"token:{who.name}")
        return service.act(incident_id, Action.RESOLVE, f"token:{who.name}", body.comment,
                           fixed_by=body.fixed_by, harmful=body.harmful).as_dict()

    @app.put("/api/v1/incidents/{incident_id}/causes", tags=["incidents"])
    def rank_causes(incident_id: Id, body: Ranking, who: Operator) -> Any:
        causes = [Cause(c.component, c.kind, c.score, c.confidence, c.model, c.evidence) for c in body.causes]
        service.governance.set_causes(incident_id, causes, f"token:{who.name}")
        return service.incident(incident_id).as_dict()

    @app.post("/api/v1/incidents/{incident_id}/merge", tags=["incidents"])
    def merge(incident_id: Id, body: MergeIn, who: Operator) -> Any:
        return service.merge(incident_id, body.into, f"token:{who.name}").as_dict()

    @app.post("/api/v1/incidents/{incident_id}/split", tags=["incidents"], status_code=201)
    def split(incident_id: Id, body: SplitIn, who: Operator) -> Any:
        return service.split(incident_id, body.fingerprints, f"token:{who.name}").as_dict()

    @app.post("/api/v1/alerts/{fingerprint}/move", tags=["incidents"])
    def move(fingerprint: str, body: MoveIn, who: Operator) -> Any:
        return service.move_alert(fingerprint, body.incident, f"token:{who.name}").as_dict()

    @app.get("/api/v1/silences", tags=["silences"])
    def list_silences(_who: Reader, expired: bool = False) -> Any:
        return [s.as_dict() for s in service.silences(active=not expired)]

    @app.post("/api/v1/silences", tags=["silences"], status_code=201)
    def add_silence(body: SilenceIn, who: Operator) -> Any:
        made = service.add_silence(body.matchers, body.ends_at, f"token:{who.name}", body.comment, body.starts_at)
        return {k: v for k, v in made.as_dict().items() if k != "created_at"}  # this answer never carried it

    @app.delete("/api/v1/silences/{silence_id}", tags=["silences"], status_code=204)
    def expire_silence(silence_id: Id, who: Operator) -> Response:
        service.expire_silence(silence_id, f"token:{who.name}")
        return Response(status_code=204)

    @app.get("/api/v1/runbooks", tags=["runbooks"])
    def runbooks(_who: Reader) -> Any:
        evidence = service.governance.evidence()
        effective = value_api.portfolio_of(service).effective_autonomy()  # lowered by its use cases' stages
        return [{"id": rb.id, "title": rb.title, "risk": rb.risk.value, "autonomy": rb.autonomy.value,
                 "effective_autonomy": effective.get(rb.id), "evidence": evidence.get(rb.id)}
                for rb in service.governance.catalog.runbooks.values()]

    @app.get("/api/v1/runbooks/{runbook_id}", tags=["runbooks"])
    def runbook(runbook_id: str, _who: Reader) -> Any:
        rb = service.governance.runbook(runbook_id)
        return {**rb.model_dump(mode="json", by_alias=True), "evidence": service.governance.evidence().get(rb.id)}

    @app.post("/api/v1/runbooks/{runbook_id}/run", tags=["runbooks"])
    def run_runbook(runbook_id: str, body: RunRequest, who: Operator) -> Any:
        gov = service.governance
        if body.dry_run:
            proposed = gov.propose_manual(runbook_id, body.incident)
            return {"dry_run": True, "params": proposed.params,
                    "plan": gov.plan(proposed.runbook, proposed.params, body.incident)}
        return gov.run_manual(runbook_id, body.incident, f"token:{who.name}")

    @app.post("/api/v1/runbooks/{runbook_id}/enable", tags=["runbooks"])
    def enable_runbook(runbook_id: str, who: Approver) -> Any:
        service.governance.enable(runbook_id, f"token:{who.name}")
        return service.governance.evidence()[runbook_id]

    @app.get("/api/v1/approvals", tags=["approvals"])
    def list_approvals(
        _who: Reader,
        status: Annotated[str, Query(pattern=APPROVAL_STATUSES)] = "pending",
    ) -> Any:
        return service.governance.approvals(None if status == "all" else status)

    @app.post("/api/v1/approvals/{approval_id}/approve", tags=["approvals"])
    def approve(approval_id: Id, who: Approver, body: Vote | None = None) -> Any:
        return service.governance.vote(approval_id, f"token:{who.name}", True, body.comment if body else "")

    @app.post("/api/v1/approvals/{approval_id}/reject", tags=["approvals"])
    def reject(approval_id: Id, who: Approver, body: Vote | None = None) -> Any:
        return service.governance.vote(approval_id, f"token:{who.name}", False, body.comment if body else "")

    @app.post("/api/v1/incidents/{incident_id}/assign", tags=["incidents"])
    def assign(incident_id: Id, body: Assign, who: Operator) -> Any:
        return service.act(incident_id, Action.ASSIGN, f"token:{who.name}", body.assignee).as_dict()

    @app.post("/api/v1/incidents/{incident_id}/comments", tags=["incidents"])
    def comment(incident_id: Id, body: NewComment, who: Operator) -> Any:
        return service.act(incident_id, Action.COMMENT, f"token:{who.name}", body.text).as_dict()

    @app.get("/api/v1/kpis", tags=["kpis"])
    def kpis(
        _who: Reader,
        start: Annotated[UtcTime | None, Query(alias="from")] = None,
        end: Annotated[UtcTime | None, Query(alias="to")] = None,
    ) -> Any:
        if start and end and end <= start:
            raise InputError("'to' must be after 'from'")
        return service.kpis(start, end).as_dict()

    @app.get("/api/v1/deadletters", tags=["ops"])
    def deadletters(_who: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        return [letter.as_dict(body_limit=4096) for letter in service.dead_letters(limit)]

    @app.get("/api/v1/audit/verify", tags=["ops"])
    def audit_verify(_who: Admin) -> Any:
        verdict = service.verify_audit()
        return {"ok": verdict.ok, "checked": verdict.checked, "broken_seq": verdict.broken_seq,
                "message": str(verdict)}

    return app


def _add_ingest_route(app: FastAPI, service: Watchkeeper, name: str, schema: type[BaseModel],
                      publisher: Any = None) -> None:
    async def ingest(request: Request, who: Ingester) -> Response:
        started = time.perf_counter()
        limit = service.settings.max_body_bytes
        body, size, truncated = await _read_limited(request, limit)
        content_type = request.headers.get("content-type")
        if truncated:
            exc = InputError(f"body of {size}+ bytes exceeds the limit of {limit}", status=413)
            await run_in_threadpool(
                lambda: service.dead_letter(name, body, exc, content_type, size=size, truncated=True)
            )
            raise exc
        if publisher is not None:
            published: Response = await publisher.ingest(name, body, content_type, f"token:{who.name}")
            return published
        result = await run_in_threadpool(
            service.ingest, name, body, content_type, f"token:{who.name}", started
        )
        return Json({"accepted": result.accepted, "incidents": result.incidents,
                     "opened": result.opened}, status_code=202)

    ingest.__name__ = f"ingest_{name}"
    # Alertmanager's own API v2 path too: Prometheus' alerting config can point at Watchkeeper directly
    for path in (f"/api/v1/ingest/{name}", *(["/api/v2/alerts"] if name == "prometheus" else [])):
        app.post(
            path, tags=["ingest"], status_code=202, operation_id=None if path.startswith("/api/v1/") else
            "ingest_alertmanager_v2_alerts", summary=f"Ingest a {name} body",
            responses={400: {"description": "malformed JSON"}, 413: {"description": "body too large"},
                       503: {"description": "the database or the bus cannot take it now (Retry-After)"},
                       415: {"description": "not JSON"}, 422: {"description": "not this format"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema.__name__}"}}
            }}},
        )(ingest)


class AccessLog:
    """One structured log line per request: method, path, status, duration (pure ASGI)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/metrics"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            level = log.warning if status >= 400 else log.info
            level("request", method=scope["method"], path=scope["path"], status=status,
                  ms=round((time.perf_counter() - started) * 1000, 2),
                  client=(scope.get("client") or ("-",))[0])


def _publish_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the ingest bodies' JSON Schemas to the OpenAPI components (they are read raw)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = document_errors(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _read_limited(request: Request, limit: int) -> tuple[bytes, int, bool]:
    """Read at most ``limit`` bytes; say whether more was sent (the rest is not read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", int(declared), True
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
            return b"".join(chunks), size, True
        chunks.append(chunk)
    return b"".join(chunks), size, False


__all__ = ["create_app"]
