"""Gate KPIs and gates, table-driven: every KPI from plain evidence, every gate reason reachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from watchkeeper.errors import Conflict, InputError
from watchkeeper.policy import Autonomy
from watchkeeper.value.gates import GateReason, Move, Result, gate, judge
from watchkeeper.value.kpis import (
    ActionOutcome,
    Evidence,
    ForecastEvent,
    IncidentTimes,
    Measure,
    ShadowDecision,
    approval_rate,
    forecast_lead_time,
    harmful_actions,
    measure,
    noise_reduction,
    remediation_success,
    shadow_agreement,
    shadow_volume,
    time_change,
)
from watchkeeper.value.usecase import (
    Criterion,
    Kpi,
    Owners,
    ReadinessItem,
    Stage,
    UseCase,
    Window,
    autonomy_of,
    check_update,
    frozen_changes,
    pilot_problems,
)

T = datetime(2026, 11, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def shadow(*outcomes: str | None) -> list[ShadowDecision]:
    return [ShadowDecision("restart", T, o) for o in outcomes]


def acts(*statuses: str, harmful: int = 0) -> list[ActionOutcome]:
    return [ActionOutcome("restart", T, s, harmful=i < harmful) for i, s in enumerate(statuses)]


def times(*minutes: tuple[float | None, float | None]) -> list[IncidentTimes]:
    return [IncidentTimes(T, T + a * MIN if a is not None else None, T + r * MIN if r is not None else None)
            for a, r in minutes]


Run = tuple[str, list[tuple[float, str, float | None]]]


def forecasts(*runs: Run) -> list[ForecastEvent]:
    """Forecast events per fingerprint: (minutes after T, status, predicted seconds to the crossing)."""
    return [ForecastEvent(fp, T + m * MIN, status, crossing) for fp, events in runs for m, status, crossing in events]


WARNED_2H: Run = ("a", [(0, "firing", 7200), (60, "firing", 3600), (120, "firing", 0), (130, "firing", 0)])
MISSED: Run = ("b", [(50, "firing", 0)])
FALSE_ALARM: Run = ("c", [(0, "firing", 600), (20, "resolved", None)])
TWICE: Run = ("d", [(0, "firing", 1800), (30, "firing", 0), (40, "resolved", None), (100, "firing", 600),
               (110, "firing", 0)])

KPI_CASES = [
    ("volume counts only scored", shadow_volume(shadow("agreed", None, "different_action")), Measure(2.0, 2)),
    ("volume of nothing", shadow_volume([]), Measure(0.0, 0)),
    ("agreement 19 of 20", shadow_agreement(shadow(*["agreed"] * 19, "different_action")), Measure(0.95, 20)),
    ("agreement ignores unscored", shadow_agreement(shadow("agreed", None)), Measure(1.0, 1)),
    ("agreement of nothing", shadow_agreement(shadow(None)), Measure(None, 0)),
    ("harm from shadow", harmful_actions(shadow("would_have_harmed", "agreed"), []), Measure(1.0, 2)),
    ("harm from a real action", harmful_actions([], acts("succeeded", harmful=1)), Measure(1.0, 1)),
    ("no harm is a measurement", harmful_actions(shadow("agreed"), acts("failed")), Measure(0.0, 2)),
    ("success of finished runs", remediation_success(acts("succeeded", "rolled_back", "queued")), Measure(0.5, 2)),
    ("success of none finished", remediation_success(acts("running")), Measure(None, 0)),
    ("approval rate", approval_rate(["approved", "rejected", "expired", "pending", "superseded"]),
     Measure(1 / 3, 3)),
    ("approval rate of none", approval_rate(["pending"]), Measure(None, 0)),
    ("mttr -50 %", time_change(times((1, 60)), times((1, 30), (1, 30)), "mttr"), Measure(-0.5, 1)),
    ("mtta +100 %", time_change(times((2, 10), (2, None)), times((4, None)), "mtta"), Measure(1.0, 1)),
    ("mttr without baseline", time_change([], times((1, 30)), "mttr"), Measure(None, 0)),
    ("mttr unresolved now", time_change(times((1, 60)), times((1, None)), "mttr"), Measure(None, 0)),
    ("noise 1000 alerts, 50 incidents", noise_reduction(1000, 50), Measure(0.95, 1000)),
    ("noise without alerts", noise_reduction(0, 3), Measure(None, 0)),
    ("lead: warned 2 h before the crossing", forecast_lead_time(forecasts(WARNED_2H)), Measure(7200.0, 1)),
    ("lead: a miss counts 0", forecast_lead_time(forecasts(WARNED_2H, MISSED)), Measure(3600.0, 2)),
    ("lead: a false alarm is no lead", forecast_lead_time(forecasts(FALSE_ALARM)), Measure(None, 0)),
    ("lead: each warning of a series", forecast_lead_time(forecasts(TWICE)), Measure(1200.0, 2)),
    ("lead: crossings before the window", forecast_lead_time(forecasts(WARNED_2H, MISSED), T + 100 * MIN),
     Measure(7200.0, 1)),
    ("lead: nothing", forecast_lead_time([]), Measure(None, 0)),
]


@pytest.mark.parametrize(("name", "got", "want"), KPI_CASES, ids=[c[0] for c in KPI_CASES])
def test_kpis(name: str, got: Measure, want: Measure) -> None:
    assert got.samples == want.samples, name
    if want.value is None:
        assert got.value is None, name
    else:
        assert got.value == pytest.approx(want.value), name


def test_measure_dispatches_every_kpi() -> None:
    evidence = Evidence(shadow=shadow("agreed", "would_have_harmed"), actions=acts("succeeded"),
                        approvals=["approved"], incidents=times((1, 30)), baseline=times((2, 60)),
                        alerts=10, incident_count=2, drift_events=3, forecasts=forecasts(WARNED_2H))
    got = {k: measure(k, evidence).value for k in Kpi}
    assert got == {Kpi.SHADOW_VOLUME: 2.0, Kpi.SHADOW_AGREEMENT: 0.5, Kpi.HARMFUL_ACTIONS: 1.0,
                   Kpi.REMEDIATION_SUCCESS: 1.0, Kpi.APPROVAL_RATE: 1.0, Kpi.MTTA_CHANGE: -0.5,
                   Kpi.MTTR_CHANGE: -0.5, Kpi.NOISE_REDUCTION: 0.8, Kpi.DRIFT_EVENTS: 3.0,
                   Kpi.FORECAST_LEAD_TIME: 7200.0}


AGREE = Criterion(kpi=Kpi.SHADOW_AGREEMENT, op=">=", target=0.95, min_samples=20)
HARM = Criterion(kpi=Kpi.HARMFUL_ACTIONS, op="<=", target=0)
OWNERS = Owners(business_sponsor="dana", technical_lead="alice", operations_leader="bob")
READY = [ReadinessItem(name="support model", criterion="on-call owns it", met=True)]
CASE = UseCase(id="auto-restart", title="Auto-restart", owners=OWNERS, runbooks=["restart"],
               success_criteria=[AGREE, HARM], readiness=READY)
GOOD = {Kpi.SHADOW_AGREEMENT: Measure(1.0, 20), Kpi.HARMFUL_ACTIONS: Measure(0, 20)}
FEW = {Kpi.SHADOW_AGREEMENT: Measure(1.0, 19), Kpi.HARMFUL_ACTIONS: Measure(0, 19)}
HARMED = {Kpi.SHADOW_AGREEMENT: Measure(1.0, 20), Kpi.HARMFUL_ACTIONS: Measure(1, 21)}
POOR = {Kpi.SHADOW_AGREEMENT: Measure(0.9, 20), Kpi.HARMFUL_ACTIONS: Measure(0, 20)}

GATE_CASES = [
    ("proposed, complete", CASE, Stage.PROPOSED, {}, Move.PROMOTE, GateReason.READY_FOR_PILOT, Stage.PILOT),
    ("proposed, no owners", CASE.model_copy(update={"owners": Owners()}), Stage.PROPOSED, {}, Move.HOLD,
     GateReason.NOT_READY_FOR_PILOT, Stage.PROPOSED),
    ("proposed, no criteria", CASE.model_copy(update={"success_criteria": []}), Stage.PROPOSED, {}, Move.HOLD,
     GateReason.NOT_READY_FOR_PILOT, Stage.PROPOSED),
    ("pilot, met", CASE, Stage.PILOT, GOOD, Move.PROMOTE, GateReason.CRITERIA_MET, Stage.ASSISTED),
    ("pilot, 19 decisions", CASE, Stage.PILOT, FEW, Move.HOLD, GateReason.INSUFFICIENT_EVIDENCE, Stage.PILOT),
    ("pilot, nothing measured", CASE, Stage.PILOT, {}, Move.HOLD, GateReason.INSUFFICIENT_EVIDENCE, Stage.PILOT),
    ("pilot, agreement 90 %", CASE, Stage.PILOT, POOR, Move.HOLD, GateReason.CRITERIA_NOT_MET, Stage.PILOT),
    ("pilot, harm", CASE, Stage.PILOT, HARMED, Move.HOLD, GateReason.CRITERIA_NOT_MET, Stage.PILOT),
    ("assisted, met and ready", CASE, Stage.ASSISTED, GOOD, Move.PROMOTE, GateReason.CRITERIA_MET,
     Stage.AUTONOMOUS),
    ("assisted, readiness open", CASE.model_copy(update={"readiness": [ReadinessItem(name="training")]}),
     Stage.ASSISTED, GOOD, Move.HOLD, GateReason.READINESS_NOT_MET, Stage.ASSISTED),
    ("assisted, no readiness stated", CASE.model_copy(update={"readiness": []}), Stage.ASSISTED, GOOD, Move.HOLD,
     GateReason.READINESS_NOT_MET, Stage.ASSISTED),
    ("assisted, harm", CASE, Stage.ASSISTED, HARMED, Move.DEMOTE, GateReason.CRITERION_FAILED_IN_PRODUCTION,
     Stage.PILOT),
    ("assisted, too little evidence holds", CASE, Stage.ASSISTED, FEW, Move.HOLD,
     GateReason.INSUFFICIENT_EVIDENCE, Stage.ASSISTED),
    ("autonomous, healthy", CASE, Stage.AUTONOMOUS, GOOD, Move.HOLD, GateReason.HEALTHY, Stage.AUTONOMOUS),
    ("autonomous, agreement fell", CASE, Stage.AUTONOMOUS, POOR, Move.DEMOTE,
     GateReason.CRITERION_FAILED_IN_PRODUCTION, Stage.PILOT),
    ("retired", CASE, Stage.RETIRED, HARMED, Move.HOLD, GateReason.RETIRED, Stage.RETIRED),
]


@pytest.mark.parametrize(("name", "case", "stage", "measures", "move", "reason", "to"), GATE_CASES,
                         ids=[c[0] for c in GATE_CASES])
def test_gate(name: str, case: UseCase, stage: Stage, measures: dict[Kpi, Measure], move: Move,
              reason: GateReason, to: Stage) -> None:
    decision = gate(case, stage, measures)
    assert (decision.move, decision.reason, decision.to) == (move, reason, to), name
    assert decision.text and decision.as_dict()["reason"] == reason.value
    if move is not Move.PROMOTE and reason is not GateReason.HEALTHY and reason is not GateReason.RETIRED:
        assert decision.problems, "a gate that holds or demotes says what is missing"


def test_every_gate_reason_is_reachable() -> None:
    assert {c[5] for c in GATE_CASES} == set(GateReason)


@pytest.mark.parametrize(("value", "samples", "result"), [
    (0.95, 20, Result.MET), (0.9499, 20, Result.FAILED), (1.0, 19, Result.UNKNOWN), (None, 50, Result.UNKNOWN)])
def test_judge_at_the_edges(value: float | None, samples: int, result: Result) -> None:
    assert judge(AGREE, Measure(value, samples)).result is result
    assert judge(HARM, Measure(0, 1)).result is Result.MET


@pytest.mark.parametrize(("declared", "stages", "effective"), [
    (Autonomy.AUTO, [], Autonomy.AUTO),
    (Autonomy.AUTO, [Stage.PROPOSED], Autonomy.SHADOW),
    (Autonomy.AUTO, [Stage.PILOT], Autonomy.SHADOW),
    (Autonomy.AUTO, [Stage.ASSISTED], Autonomy.APPROVE),
    (Autonomy.AUTO, [Stage.AUTONOMOUS], Autonomy.AUTO),
    (Autonomy.AUTO, [Stage.RETIRED], Autonomy.SUGGEST),
    (Autonomy.APPROVE, [Stage.AUTONOMOUS], Autonomy.APPROVE),
    (Autonomy.AUTO, [Stage.AUTONOMOUS, Stage.PILOT], Autonomy.SHADOW),  # the most cautious use case wins
])
def test_stage_sets_the_autonomy_of_its_runbooks(declared: Autonomy, stages: list[Stage], effective: Autonomy) -> None:
    assert autonomy_of(declared, stages) is effective


def test_pilot_needs_owners_and_criteria() -> None:
    assert pilot_problems(CASE) == []
    bare = UseCase(id="x", title="X", owners=Owners(technical_lead="alice"))
    assert pilot_problems(bare) == ["owners missing: business_sponsor, operations_leader", "no success criteria"]


def test_criteria_are_frozen_once_the_pilot_started() -> None:
    piloted = CASE.model_copy(update={"stage": Stage.PILOT})
    looser = CASE.model_copy(update={"success_criteria": [AGREE.model_copy(update={"target": 0.8})]})
    assert frozen_changes(piloted, looser) == ["success_criteria"]
    with pytest.raises(Conflict, match=r"frozen since the pilot started.*--new-version"):
        check_update(piloted, looser, new_version=False, reason="")
    with pytest.raises(InputError, match="needs a reason"):
        check_update(piloted, looser, new_version=True, reason=" ")
    check_update(piloted, looser, new_version=True, reason="20 was too few for a weekly job")
    check_update(piloted, CASE.model_copy(update={"title": "renamed"}), new_version=False, reason="")  # not frozen
    check_update(CASE, looser, new_version=False, reason="")  # proposed: not frozen yet
    with pytest.raises(Conflict, match="stages move only through gates"):
        check_update(piloted, CASE.model_copy(update={"stage": Stage.AUTONOMOUS}), new_version=False, reason="")
    with pytest.raises(InputError, match="starts at 'proposed'"):
        check_update(None, piloted, new_version=False, reason="")


@pytest.mark.parametrize("doc", [
    {"id": "Bad Id", "title": "x"},
    {"id": "x", "title": ""},
    {"id": "x", "title": "x", "owners": {"cfo": "x"}},
    {"id": "x", "title": "x", "services": ["a b"]},
    {"id": "x", "title": "x", "runbooks": ["r", "r"]},
    {"id": "x", "title": "x", "success_criteria": [{"kpi": "happiness", "op": ">=", "target": 1}]},
    {"id": "x", "title": "x", "success_criteria": [{"kpi": "mttr_change", "op": "<", "target": -0.3}]},
    {"id": "x", "title": "x", "success_criteria": [{"kpi": "mttr_change", "op": "<=", "target": float("nan")}]},
    {"id": "x", "title": "x", "evaluation": {"days": 7, "start": "2026-11-01T00:00:00Z"}},
    {"id": "x", "title": "x", "baseline": {"start": 0, "end": "2026-11-02T00:00:00Z"}},  # a number is no time
    {"id": "x", "title": "x", "baseline": {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}},
    {"id": "x", "title": "x", "scores": {"business_impact": "huge"}},
])
def test_hostile_use_cases_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UseCase.model_validate(doc)


def test_windows() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert Window(days=30).bounds(now) == (datetime(2026, 10, 31, tzinfo=UTC), now)
    fixed = Window(start=datetime(2026, 10, 1, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC))
    assert fixed.bounds(now) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
