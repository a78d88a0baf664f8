"""Stage gates: compare measured KPIs with a use case's criteria, then promote, hold or demote.

``judge`` compares one criterion with one measure; ``gate`` turns the results into one move with
a reason enum and its inputs, as the policy does for runbooks. Both are pure and total.

Promotion is only ever *proposed* here: a person with the approver role (not the proposer)
applies it. A failed criterion of a use case in production (assisted or autonomous) demotes it
at once, back to its pilot, where it proves itself in shadow again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watchkeeper.value.kpis import Measure
from watchkeeper.value.usecase import Criterion, Kpi, Op, Stage, UseCase, pilot_problems


class Result(StrEnum):
    MET = "met"
    FAILED = "failed"
    UNKNOWN = "unknown"  # not enough evidence yet


@dataclass(frozen=True, slots=True)
class Judged:
    criterion: Criterion
    measure: Measure
    result: Result

    def as_dict(self) -> dict[str, Any]:
        return {"kpi": self.criterion.kpi.value, "op": self.criterion.op.value, "target": self.criterion.target,
                "min_samples": self.criterion.min_samples, "text": self.criterion.describe(),
                "value": self.measure.value, "samples": self.measure.samples, "result": self.result.value}


def judge(criterion: Criterion, measure: Measure) -> Judged:
    """
    >>> c = Criterion(kpi="shadow_agreement", op=">=", target=0.95, min_samples=20)
    >>> judge(c, Measure(0.97, 25)).result.value, judge(c, Measure(0.9, 25)).result.value
    ('met', 'failed')
    >>> judge(c, Measure(1.0, 5)).result.value, judge(c, Measure(None, 0)).result.value
    ('unknown', 'unknown')
    """
    if measure.value is None or measure.samples < criterion.min_samples:
        return Judged(criterion, measure, Result.UNKNOWN)
    ok = measure.value >= criterion.target if criterion.op is Op.AT_LEAST else measure.value <= criterion.target
    return Judged(criterion, measure, Result.MET if ok else Result.FAILED)


class Move(StrEnum):
    PROMOTE = "promote"
    HOLD = "hold"
    DEMOTE = "demote"


class GateReason(StrEnum):
    READY_FOR_PILOT = "ready_for_pilot"
    NOT_READY_FOR_PILOT = "not_ready_for_pilot"
    CRITERIA_MET = "criteria_met"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    CRITERIA_NOT_MET = "criteria_not_met"
    READINESS_NOT_MET = "readiness_not_met"
    CRITERION_FAILED_IN_PRODUCTION = "criterion_failed_in_production"
    HEALTHY = "healthy"
    RETIRED = "retired"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    GateReason.READY_FOR_PILOT: "owners and success criteria are set: it may start its pilot (shadow)",
    GateReason.NOT_READY_FOR_PILOT: "a pilot needs owners and success criteria",
    GateReason.CRITERIA_MET: "every success criterion is met on measured evidence",
    GateReason.INSUFFICIENT_EVIDENCE: "some criteria have too little evidence to judge yet",
    GateReason.CRITERIA_NOT_MET: "some success criteria are not met",
    GateReason.READINESS_NOT_MET: "the criteria are met, but production-readiness criteria are open",
    GateReason.CRITERION_FAILED_IN_PRODUCTION: "a criterion failed in production: demoted at once to its pilot",
    GateReason.HEALTHY: "in production and every judged criterion holds",
    GateReason.RETIRED: "retired: no gate applies",
}


@dataclass(frozen=True, slots=True)
class GateDecision:
    move: Move
    reason: GateReason
    stage: Stage  # where it is
    to: Stage  # where the move leads (the same stage for hold)
    judged: tuple[Judged, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return self.reason.text

    def as_dict(self) -> dict[str, Any]:
        return {"move": self.move.value, "reason": self.reason.value, "text": self.text,
                "stage": self.stage.value, "to": self.to.value, "problems": list(self.problems),
                "criteria": [j.as_dict() for j in self.judged]}


def gate(case: UseCase, stage: Stage, measures: dict[Kpi, Measure]) -> GateDecision:
    """The gate for a use case at ``stage`` given its measured KPIs.

    >>> from watchkeeper.value.usecase import Owners
    >>> owners = Owners(business_sponsor="d", technical_lead="a", operations_leader="b")
    >>> case = UseCase(id="x", title="X", owners=owners,
    ...                success_criteria=[Criterion(kpi="harmful_actions", op="<=", target=0)])
    >>> gate(case, Stage.PROPOSED, {}).move.value
    'promote'
    >>> gate(case, Stage.PILOT, {Kpi.HARMFUL_ACTIONS: Measure(0, 20)}).to.value
    'assisted'
    >>> d = gate(case, Stage.AUTONOMOUS, {Kpi.HARMFUL_ACTIONS: Measure(1, 21)})
    >>> d.move.value, d.to.value, d.reason.value
    ('demote', 'pilot', 'criterion_failed_in_production')
    """
    judged = tuple(judge(c, measures.get(c.kpi, Measure(None, 0))) for c in case.success_criteria)
    if stage is Stage.RETIRED:
        return GateDecision(Move.HOLD, GateReason.RETIRED, stage, stage, judged)
    if stage is Stage.PROPOSED:  # the measures are shown, but a pilot needs only owners and criteria
        problems = pilot_problems(case)
        if problems:
            return GateDecision(Move.HOLD, GateReason.NOT_READY_FOR_PILOT, stage, stage, judged, tuple(problems))
        return GateDecision(Move.PROMOTE, GateReason.READY_FOR_PILOT, stage, Stage.PILOT, judged)
    failed = [j for j in judged if j.result is Result.FAILED]
    unknown = [j for j in judged if j.result is Result.UNKNOWN]
    if stage.in_production and failed:
        return GateDecision(Move.DEMOTE, GateReason.CRITERION_FAILED_IN_PRODUCTION, stage, Stage.PILOT, judged,
                            tuple(j.criterion.describe() for j in failed))
    if failed:
        return GateDecision(Move.HOLD, GateReason.CRITERIA_NOT_MET, stage, stage, judged,
                            tuple(j.criterion.describe() for j in failed))
    if unknown or not judged:
        return GateDecision(Move.HOLD, GateReason.INSUFFICIENT_EVIDENCE, stage, stage, judged,
                            tuple(j.criterion.describe() for j in unknown))
    target = stage.next
    if target is None:
        return GateDecision(Move.HOLD, GateReason.HEALTHY, stage, stage, judged)
    if target is Stage.AUTONOMOUS:
        open_items = [r.name for r in case.readiness if not r.met]
        if open_items or not case.readiness:
            return GateDecision(Move.HOLD, GateReason.READINESS_NOT_MET, stage, stage, judged,
                                tuple(open_items or ["no production-readiness criteria stated"]))
    return GateDecision(Move.PROMOTE, GateReason.CRITERIA_MET, stage, target, judged)
