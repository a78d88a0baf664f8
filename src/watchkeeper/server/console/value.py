"""The AIOps portfolio in the console: use cases (stage, owners, criteria, KPIs against their
targets), one use case's criteria, versions and gate proposals, deciding a proposal, and the
model registry with its drift events. Each page reads and acts through the same service calls
as the API's ``/api/v1/usecases``, ``/api/v1/gates`` and ``/api/v1/models`` (docs/value.md), as
the signed-in user."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from starlette.responses import RedirectResponse, Response

from watchkeeper.model_registry import Registry
from watchkeeper.portfolio import Portfolio
from watchkeeper.server.console.accounts import User
from watchkeeper.server.console.web import PREFIX, ConsoleRoute, console_of, safe_next, signed_in
from watchkeeper.service import Permission
from watchkeeper.value.drift import ModelKind
from watchkeeper.value.usecase import ID_PATTERN

MAX_ID = 2**31 - 1
Reader = Annotated[User, Depends(signed_in(Permission.READ))]
Approver = Annotated[User, Depends(signed_in(Permission.APPROVE))]
CaseId = Annotated[str, Path(pattern=ID_PATTERN)]
ProposalId = Annotated[int, Path(ge=1, le=MAX_ID)]
PROPOSAL_STATUSES = "^(pending|approved|rejected|superseded|all)$"
MODEL = r"^[a-z_]+:[a-z0-9][a-z0-9._-]*$"

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _portfolio(request: Request) -> Portfolio:
    return Portfolio.of(console_of(request).service)


def _flash(done: str | None) -> str:
    return {"approve": "Promotion approved.", "reject": "Promotion rejected."}.get(done or "", "")


@router.get("/usecases")
def use_cases(request: Request, user: Reader, done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    """Every use case with its gate's evaluation now: each criterion's measured KPI against its target."""
    portfolio = _portfolio(request)
    gates = {e.case.id: e.as_dict() for e in portfolio.evaluate()}
    cases = [{**c, "gate": gates.get(c["id"])} for c in portfolio.cases()]
    pending = portfolio.proposals("pending")
    return console_of(request).render(request, "usecases.html", cases=cases, pending=pending, flash=_flash(done),
                                      api_url="/api/v1/usecases and GET /api/v1/gates/evaluation")


@router.get("/usecases/{case_id}")
def use_case(request: Request, case_id: CaseId, user: Reader,
             done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    portfolio = _portfolio(request)
    shown = portfolio.show(case_id)  # 404 for an unknown id, before the evaluation
    [evaluated] = portfolio.evaluate(case_id)
    return console_of(request).render(request, "usecase.html", c=shown, gate=evaluated.as_dict(), flash=_flash(done),
                                      api_url=f"/api/v1/usecases/{case_id}")


@router.get("/gates")
def gates(request: Request, user: Reader,
          status: Annotated[str, Query(pattern=PROPOSAL_STATUSES)] = "pending",
          done: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    found = _portfolio(request).proposals(None if status == "all" else status)
    return console_of(request).render(request, "gates.html", proposals=found, status=status, flash=_flash(done),
                                      api_url=f"/api/v1/gates?status={status}")


@router.post("/gates/{proposal_id}/{decision}")
def decide(request: Request, proposal_id: ProposalId, decision: Annotated[str, Path(pattern="^(approve|reject)$")],
           user: Approver, comment: Annotated[str, Form(max_length=10_000)] = "",
           back: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """The API's ``POST /api/v1/gates/{id}/approve|reject``: the use case's approvers only, never its
    proposer (four-eyes), 409 when the use case moved since."""
    _portfolio(request).vote(proposal_id, user.actor, decision == "approve", comment.strip())
    target = safe_next(back) if back else f"{PREFIX}/gates"
    return RedirectResponse(f"{target}{'&' if '?' in target else '?'}done={decision}", status_code=303)


@router.get("/models")
def models(request: Request, user: Reader, kind: ModelKind | None = None,
           model: Annotated[str | None, Query(max_length=200, pattern=MODEL)] = None) -> Response:
    """Registered model versions (parameters, training window, held-out and in-sample scores) and drift events."""
    service = console_of(request).service
    registry = Registry(service.db, service.clock)
    versions = registry.versions(kind.value if kind else None)
    drift = registry.drift_events(model or None)[:200]
    query = f"?{urlencode({'kind': kind.value})}" if kind else ""
    return console_of(request).render(request, "models.html", models=versions, drift=drift,
                                      kind=kind.value if kind else "", model=model or "",
                                      kinds=[k.value for k in ModelKind],
                                      api_url=f"/api/v1/models{query} and GET /api/v1/drift")
