"""Routes for the AIOps portfolio: use cases, stage gates and their approvals.

Reading is for viewers; defining a use case and asking for a gate is for operators; approving a
promotion is for approvers (and, when the use case names its approvers, only them; never the
proposer). The server also runs the gate guard: every ``gate_guard_seconds`` it demotes a use
case in production whose criteria fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from watchkeeper.governance.loop import Loop
from watchkeeper.model_registry import Registry, Signal
from watchkeeper.portfolio import Portfolio
from watchkeeper.server.app import MAX_ID, Approver, Operator, Reader
from watchkeeper.service import Permission, Watchkeeper
from watchkeeper.value.drift import MAX_SAMPLE, ModelKind, ModelVersion, Number
from watchkeeper.value.usecase import ID_PATTERN, UseCase

log = structlog.get_logger("watchkeeper.drift")
ModelName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]
CaseId = Annotated[str, Path(pattern=ID_PATTERN, description="a use case id")]
ProposalId = Annotated[int, Path(ge=1, le=MAX_ID)]
PROPOSAL_STATUSES = "^(pending|approved|rejected|superseded|all)$"


class UseCaseIn(BaseModel):
    use_case: UseCase = Field(description="the use case (the YAML document of 'usecases apply', as JSON)")
    new_version: bool = Field(False, strict=True,
                              description="change criteria frozen since the pilot (audited; approver role)")
    reason: str = Field("", max_length=2000)


class Evaluate(BaseModel):
    use_case: str | None = Field(None, pattern=ID_PATTERN)


class DriftIn(BaseModel):
    signal: Signal = Signal.SCORES
    scores: list[Number] = Field(default_factory=list, max_length=MAX_SAMPLE)
    version: str | None = Field(None, max_length=64)
    days: float = Field(1.0, strict=True, gt=0, le=366, description="the recent window of a rate check")


class GateVote(BaseModel):
    comment: str = Field("", max_length=10_000)


def portfolio_of(service: Watchkeeper) -> Portfolio:
    return Portfolio.of(service)


def drift_step(registry: Registry, days: float) -> Callable[[], int]:
    """The scheduled drift check: the first one interval after start-up, then every interval; a
    drift is stored and audited (actor ``drift``) and counted by the gates of the use cases naming
    the model, so the gate guard's next pass demotes a use case whose criterion it breaks."""
    started = [False]

    def step() -> int:
        if not started[0]:
            started[0] = True
            return 0
        found = registry.check_scheduled(days)
        drifted = [r for r in found if r["drifted"]]
        if drifted:
            log.warning("model drift", models=[f"{r['model']} {r['version']} ({r['signal']})" for r in drifted])
        return 0  # never at once again: the next check waits its interval

    return step


def add_routes(app: FastAPI, service: Watchkeeper) -> None:
    portfolio = portfolio_of(service)
    started = [False]

    def guard_step() -> int:
        """The first check comes one interval after start-up (start-up stays quick and quiet)."""
        if not started[0]:
            started[0] = True
            return 0
        return portfolio.guard()

    guard = Loop("gate-guard", guard_step, service.settings.gate_guard_seconds)
    registry = Registry(service.db, service.clock)
    loops = [guard]
    if service.settings.drift_check_seconds > 0:
        loops.append(Loop("drift-check", drift_step(registry, service.settings.drift_check_days),
                          service.settings.drift_check_seconds))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            for loop in loops:
                loop.start()
            try:
                yield state
            finally:
                for loop in loops:
                    await run_in_threadpool(loop.stop)

    app.router.lifespan_context = lifespan

    @app.get("/api/v1/usecases", tags=["value"])
    def list_use_cases(_who: Reader) -> Any:
        """The portfolio: each use case's stage, owners, runbooks and services."""
        return portfolio.cases()

    @app.post("/api/v1/usecases", tags=["value"], responses={409: {"description": "criteria frozen since the pilot"}})
    def apply_use_case(body: UseCaseIn, who: Operator) -> Any:
        """Create or update a use case (its stage moves only through gates). Criteria frozen since its
        pilot change only with ``new_version`` and a ``reason``, by an approver."""
        if body.new_version:
            who.require(Permission.APPROVE)
        return portfolio.apply(body.use_case, f"token:{who.name}", new_version=body.new_version, reason=body.reason)

    @app.get("/api/v1/portfolio/priorities", tags=["value"])
    def priorities(_who: Reader) -> Any:
        """The prioritization matrix: use cases ranked into quick wins, strategic projects and future
        consideration (data readiness measured), duplicates flagged, the rubric. Weights: the
        ``value.weights`` setting."""
        return portfolio.priorities(service.settings.value_weights)

    @app.get("/api/v1/usecases/{case_id}", tags=["value"])
    def show_use_case(case_id: CaseId, _who: Reader) -> Any:
        """One use case with its versions, proposals, and each runbook's declared and effective autonomy."""
        return portfolio.show(case_id)

    @app.post("/api/v1/usecases/{case_id}/propose", tags=["value"], status_code=201)
    def propose_stage(case_id: CaseId, who: Operator) -> Any:
        """Ask for the next stage: a pending proposal, or 409 saying what is missing."""
        return portfolio.propose(case_id, f"token:{who.name}")

    @app.get("/api/v1/gates", tags=["value"])
    def list_proposals(_who: Reader, status: Annotated[str, Query(pattern=PROPOSAL_STATUSES)] = "pending") -> Any:
        """Gate proposals (promotions awaiting an approver, and what became of earlier ones)."""
        return portfolio.proposals(None if status == "all" else status)

    @app.get("/api/v1/gates/evaluation", tags=["value"], responses={404: {"description": "no such use case"}})
    def evaluation(_who: Reader,
                   use_case: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> Any:
        """Each use case's KPIs against its criteria and the move its gate would make (changes nothing)."""
        return [e.as_dict() for e in portfolio.evaluate(use_case)]

    @app.post("/api/v1/gates/evaluate", tags=["value"], responses={404: {"description": "no such use case"}})
    def evaluate(who: Operator, body: Evaluate | None = None) -> Any:
        """Evaluate and act: promotions become proposals for an approver, demotions apply at once."""
        return [e.as_dict() for e in portfolio.evaluate(body.use_case if body else None, apply=True,
                                                        actor=f"token:{who.name}")]

    @app.post("/api/v1/gates/{proposal_id}/approve", tags=["value"])
    def approve(proposal_id: ProposalId, who: Approver, body: GateVote | None = None) -> Any:
        return portfolio.vote(proposal_id, f"token:{who.name}", True, body.comment if body else "")

    @app.post("/api/v1/gates/{proposal_id}/reject", tags=["value"])
    def reject(proposal_id: ProposalId, who: Approver, body: GateVote | None = None) -> Any:
        return portfolio.vote(proposal_id, f"token:{who.name}", False, body.comment if body else "")

    @app.get("/api/v1/models", tags=["value"])
    def list_models(_who: Reader, kind: ModelKind | None = None) -> Any:
        """Registered model versions (detectors, template miners, correlation strategies, RCA models)."""
        return registry.versions(kind.value if kind else None)

    @app.post("/api/v1/models", tags=["value"], status_code=201,
              responses={409: {"description": "this version is already registered"}})
    def register_model(body: ModelVersion, who: Operator) -> Any:
        """Register a model version: kind, name, version, params, train_start/train_end, scores
        (held_out, in_sample), baseline (a reference sample of its output scores)."""
        return registry.register(body, f"token:{who.name}")

    @app.get("/api/v1/models/{kind}/{name}", tags=["value"])
    def show_model(kind: ModelKind, name: ModelName, _who: Reader,
                   version: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        return registry.show(kind.value, name, version)

    @app.post("/api/v1/models/{kind}/{name}/drift", tags=["value"])
    def check_drift(kind: ModelKind, name: ModelName, body: DriftIn, who: Operator) -> Any:
        """Check drift (PSI and KS) of recent scores, or of the alert or anomaly rate against the training
        window; a drift is recorded as a drift event the use cases' gates count."""
        return registry.drift(kind.value, name, signal=body.signal, scores=body.scores, version=body.version,
                              days=body.days, actor=f"token:{who.name}")

    @app.get("/api/v1/drift", tags=["value"])
    def drift_events(_who: Reader, model: Annotated[str | None, Query(
            max_length=200, pattern=r"^[a-z_]+:[a-z0-9][a-z0-9._-]*$", description="KIND:NAME")] = None) -> Any:
        return registry.drift_events(model)
