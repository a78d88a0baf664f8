"""Routes that take changes made in ServiceNow and Jira back, and the ServiceNow pollers' place
in ``serve``'s lifespan.

``POST /api/v1/integrations/servicenow/inbound`` (operator token: the business rule's outbound
REST message sends ``Authorization: Bearer wk_…``); ``POST /api/v1/integrations/jira/webhook``
(Jira's webhook, signed with its secret in ``X-Hub-Signature``, or a Jira Automation "Send web
request" carrying an operator token).
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from watchkeeper.errors import InputError
from watchkeeper.integrations.itsm import Result
from watchkeeper.integrations.itsm_runtime import Itsm
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.server.app import Operator, _read_limited, bearer, principal
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Permission, Principal, Watchkeeper

#: A business rule sends one record; a batch is at most this many.
MAX_RECORDS = 100
#: Jira's webhook bodies carry the whole issue: a few hundred kilobytes at most.
MAX_BODY = 1024 * 1024
Target = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="the integration target (when several of one kind are set)",
    ),
]


async def jira_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    if "x-hub-signature" in request.headers:
        return None  # Jira's own webhook: the signature over the body is checked with the body
    return await principal(Permission.OPERATE)(request, credentials)


JiraCaller = Annotated[Principal | None, Depends(jira_caller)]


def add_routes(app: FastAPI, service: Watchkeeper, integrations: Integrations, *, poll: bool = True) -> Itsm:
    """Add the routes; with ``poll``, poll ServiceNow for the app's lifetime."""
    itsm = Itsm(service.db, service.clock, service.settings.integrations, integrations.notifiers, service.metrics)
    accounts = Accounts(service.db, service.clock, service.settings.console)
    itsm.bind_console(accounts.secret, service.settings.console.link_hours, service.clock)
    app.state.itsm = itsm
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:  # migrations run first
            if poll:
                itsm.start()
            try:
                yield state
            finally:
                await run_in_threadpool(itsm.stop)

    app.router.lifespan_context = lifespan

    @app.post(
        "/api/v1/integrations/servicenow/inbound",
        tags=["integrations"],
        responses={404: {"description": "no ServiceNow integration is configured"}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": f'an incident record, or {{"records": [1 to {MAX_RECORDS} records]}}',
                        }
                    }
                },
            }
        },
    )
    async def servicenow_inbound(request: Request, _who: Operator, target: Target = None) -> Any:
        """A ServiceNow business rule's outbound REST call: the incident record after a change
        (``sys_id``, ``number``, ``correlation_id``, ``state``, ``assigned_to``, ``work_notes``,
        ``sys_mod_count``, ``sys_updated_by``, ``sys_updated_on``), or ``{"records": [...]}``.
        Each change is applied once and audited as the ServiceNow user who made it."""
        doc = await _json(request)
        records = doc.get("records", [doc]) if isinstance(doc, Mapping) else None
        if (
            not isinstance(records, list)
            or not records
            or len(records) > MAX_RECORDS
            or not all(isinstance(r, Mapping) for r in records)
        ):
            raise InputError(f'send one incident record (a JSON object) or {{"records": [1 to {MAX_RECORDS} objects]}}')
        sync = itsm.servicenow_target(target)
        return _answer(await run_in_threadpool(sync.receive, records))

    @app.post(
        "/api/v1/integrations/jira/webhook",
        tags=["integrations"],
        responses={
            401: {"description": "no operator token, or a signature no webhook secret made"},
            404: {"description": "no Jira integration is configured"},
        },
    )
    async def jira_webhook(request: Request, _who: JiraCaller, target: Target = None) -> Any:
        """Jira's webhook (``jira:issue_updated``, ``comment_created``): status, assignee and
        comment changes come back to the linked incident, once each (Jira retries)."""
        raw, size, truncated = await _read_limited(request, MAX_BODY)
        if truncated:
            raise InputError(f"body of {size}+ bytes is too large for a Jira webhook", status=413)
        sync = itsm.jira_target(target, raw, request.headers.get("x-hub-signature"))
        doc = _decode(raw)
        if not isinstance(doc, Mapping):
            raise InputError("a Jira webhook body is a JSON object")
        return _answer(await run_in_threadpool(sync.receive, doc))

    return itsm


async def _json(request: Request) -> Any:
    raw, size, truncated = await _read_limited(request, MAX_BODY)
    if truncated:
        raise InputError(f"body of {size}+ bytes exceeds the limit of {MAX_BODY}", status=413)
    return _decode(raw)


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", status=400) from None


def _answer(results: list[Result]) -> dict[str, Any]:
    return {
        "applied": sum(1 for r in results if r.outcome.value == "applied"),
        "results": [
            {
                "field": r.change.field.value,
                "outcome": r.outcome.value,
                "incident": r.incident_id,
                "external_id": r.change.external_id,
                "detail": r.detail,
            }
            for r in results
        ],
    }
