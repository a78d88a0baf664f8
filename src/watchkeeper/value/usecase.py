"""A use case of the AIOps portfolio: who owns it, what it covers, what success means, and where
it stands (``proposed → pilot (shadow) → assisted → autonomous → retired``).

The success criteria are fixed before the pilot starts: once a use case has entered its pilot,
they change only as a new, audited version (:func:`frozen_changes` names what moved). Its stage
sets the autonomy of the runbooks it covers (:func:`autonomy_of`): a pilot runs in shadow, an
assisted use case asks for approval, an autonomous one may run unattended.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeeper.errors import Conflict, InputError
from watchkeeper.policy.base import Autonomy
from watchkeeper.sources.limits import UtcTime

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class Stage(StrEnum):
    PROPOSED = "proposed"
    PILOT = "pilot"  # shadow: Watchkeeper records what it would have done
    ASSISTED = "assisted"  # it proposes, a human approves
    AUTONOMOUS = "autonomous"  # it acts unattended within the policy
    RETIRED = "retired"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def in_production(self) -> bool:
        """Assisted and autonomous act on real systems: a failed criterion there demotes at once."""
        return self in (Stage.ASSISTED, Stage.AUTONOMOUS)

    @property
    def next(self) -> Stage | None:
        """The stage a promotion leads to (None: none; retiring is a human's decision)."""
        return {Stage.PROPOSED: Stage.PILOT, Stage.PILOT: Stage.ASSISTED,
                Stage.ASSISTED: Stage.AUTONOMOUS}.get(self)


_ORDER = (Stage.PROPOSED, Stage.PILOT, Stage.ASSISTED, Stage.AUTONOMOUS, Stage.RETIRED)

#: The autonomy a stage allows the runbooks of its use case.
STAGE_AUTONOMY = {
    Stage.PROPOSED: Autonomy.SHADOW,
    Stage.PILOT: Autonomy.SHADOW,
    Stage.ASSISTED: Autonomy.APPROVE,
    Stage.AUTONOMOUS: Autonomy.AUTO,
    Stage.RETIRED: Autonomy.SUGGEST,  # a human may still run it; Watchkeeper no longer decides
}
AUTONOMY_ORDER = (Autonomy.SHADOW, Autonomy.SUGGEST, Autonomy.APPROVE, Autonomy.AUTO)


def lower(a: Autonomy, b: Autonomy) -> Autonomy:
    """The more cautious of two autonomy levels.

    >>> lower(Autonomy.AUTO, Autonomy.APPROVE).value, lower(Autonomy.SHADOW, Autonomy.AUTO).value
    ('approve', 'shadow')
    """
    return a if AUTONOMY_ORDER.index(a) <= AUTONOMY_ORDER.index(b) else b


def autonomy_of(declared: Autonomy, stages: list[Stage]) -> Autonomy:
    """A runbook's effective autonomy: what its YAML declares, lowered to the most cautious stage
    of the use cases that cover it (none: the YAML alone decides).

    >>> autonomy_of(Autonomy.AUTO, [Stage.PILOT]).value
    'shadow'
    >>> autonomy_of(Autonomy.APPROVE, [Stage.AUTONOMOUS, Stage.ASSISTED]).value
    'approve'
    >>> autonomy_of(Autonomy.AUTO, []).value
    'auto'
    """
    found = declared
    for stage in stages:
        found = lower(found, STAGE_AUTONOMY[stage])
    return found


class Kpi(StrEnum):
    """What a gate can measure from the data Watchkeeper holds (see :mod:`watchkeeper.value.kpis`)."""

    SHADOW_VOLUME = "shadow_volume"  # scored shadow decisions in the window
    SHADOW_AGREEMENT = "shadow_agreement"  # share of them that agreed with the human (0..1)
    HARMFUL_ACTIONS = "harmful_actions"  # shadow decisions that would have harmed + actions that did
    REMEDIATION_SUCCESS = "remediation_success"  # finished actions that succeeded (0..1)
    APPROVAL_RATE = "approval_rate"  # decided approval requests that were approved (0..1)
    MTTA_CHANGE = "mtta_change"  # relative change of mean time to acknowledge vs the baseline (-0.3: 30 % less)
    MTTR_CHANGE = "mttr_change"  # relative change of mean time to resolve vs the baseline
    NOISE_REDUCTION = "noise_reduction"  # 1 - incidents / alerts over the window (0..1)
    DRIFT_EVENTS = "drift_events"  # drift events of the models the use case names, in the window
    FORECAST_LEAD_TIME = "forecast_lead_time"  # median seconds a forecast warned before its crossing


class Op(StrEnum):
    AT_LEAST = ">="
    AT_MOST = "<="


class Criterion(BaseModel):
    """One success criterion: a KPI, a comparison, a target, and the least evidence to judge it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: Kpi
    op: Op
    target: float = Field(strict=True, allow_inf_nan=False)
    min_samples: int = Field(1, strict=True, ge=0, le=1_000_000, description="fewer samples: not judged yet")
    text: str = Field("", max_length=500, description="how a person says it, e.g. 'Sev-1 MTTR -30 %'")

    def describe(self) -> str:
        return self.text or f"{self.kpi.value} {self.op.value} {self.target:g}"


class ReadinessItem(BaseModel):
    """A production-readiness criterion (minimum performance, capacity, training, support model):
    people state it, people tick it; autonomy needs every one met."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    criterion: str = Field("", max_length=500)
    met: bool = Field(False, strict=True)


class Owners(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    business_sponsor: str | None = Field(None, min_length=1, max_length=256)
    technical_lead: str | None = Field(None, min_length=1, max_length=256)
    operations_leader: str | None = Field(None, min_length=1, max_length=256)

    def missing(self) -> list[str]:
        return [name for name in ("business_sponsor", "technical_lead", "operations_leader") if not getattr(self, name)]


class Window(BaseModel):
    """A time window: fixed (``start`` and ``end``) or rolling (the last ``days`` before now)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: UtcTime | None = None  # ISO 8601 text (a number is refused); without an offset: UTC
    end: UtcTime | None = None
    days: float | None = Field(None, strict=True, gt=0, le=3660)

    @model_validator(mode="after")
    def _shape(self) -> Window:
        if self.days is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either days or start/end, not both")
        if self.days is None and (self.start is None or self.end is None):
            raise ValueError("give days, or both start and end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """
        >>> from datetime import UTC
        >>> Window(days=7).bounds(datetime(2026, 11, 8, tzinfo=UTC))[0].isoformat()
        '2026-11-01T00:00:00+00:00'
        """
        if self.days is not None:
            return now - timedelta(days=self.days), now
        assert self.start is not None
        assert self.end is not None
        return self.start, self.end


class Scores(BaseModel):
    """Prioritization answers (High / Medium / Low) — see :mod:`watchkeeper.value.priority`.
    ``data_readiness`` is measured by Watchkeeper when left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_impact: str | None = Field(None, pattern="^(high|medium|low)$")
    implementation_complexity: str | None = Field(None, pattern="^(high|medium|low)$")
    data_readiness: str | None = Field(None, pattern="^(high|medium|low)$")
    organizational_alignment: str | None = Field(None, pattern="^(high|medium|low)$")
    risk_of_failure: str | None = Field(None, pattern="^(high|medium|low)$")
    strategic_fit: str | None = Field(None, pattern="^(high|medium|low)$")


class UseCase(BaseModel):
    """The YAML document of one use case (``watchkeeper usecases apply FILE``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    owners: Owners = Field(default_factory=Owners)
    approvers: list[str] = Field(
        default_factory=list, max_length=50,
        description="who may approve its gates (token or cli_users names); empty: any approver")
    capabilities: list[str] = Field(default_factory=list, max_length=50)
    services: list[str] = Field(default_factory=list, max_length=500)
    runbooks: list[str] = Field(default_factory=list, max_length=200)
    models: list[str] = Field(default_factory=list, max_length=50,
                              description="model registry names (kind:name), e.g. detector:robust")
    success_criteria: list[Criterion] = Field(default_factory=list, max_length=50)
    readiness: list[ReadinessItem] = Field(default_factory=list, max_length=50)
    baseline: Window | None = None
    evaluation: Window = Field(default_factory=lambda: Window(days=30))
    scores: Scores = Field(default_factory=Scores)
    #: Only the portfolio sets the stage of a stored use case; a file may say ``proposed``
    #: (the default) or repeat the stored stage.
    stage: Stage = Stage.PROPOSED

    @field_validator("capabilities", "services", "runbooks", "approvers", "models")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or len(value) > 256 or not re.fullmatch(r"[\w.:@/*-]+", value):
                raise ValueError(f"{value!r} is not a name (letters, digits and ._-:@/* only, at most 256)")
        if len(set(values)) != len(values):
            raise ValueError("names repeat")
        return values

    def criteria_doc(self) -> dict[str, Any]:
        """What is frozen once the pilot starts."""
        return {"success_criteria": [c.model_dump(mode="json") for c in self.success_criteria],
                "readiness": [{"name": r.name, "criterion": r.criterion} for r in self.readiness],
                "baseline": self.baseline.model_dump(mode="json") if self.baseline else None,
                "evaluation": self.evaluation.model_dump(mode="json")}


def pilot_problems(case: UseCase) -> list[str]:
    """Why a use case may not enter its pilot (empty: it may).

    >>> pilot_problems(UseCase(id="x", title="X"))
    ['owners missing: business_sponsor, technical_lead, operations_leader', 'no success criteria']
    """
    problems = []
    if missing := case.owners.missing():
        problems.append("owners missing: " + ", ".join(missing))
    if not case.success_criteria:
        problems.append("no success criteria")
    return problems


def frozen_changes(old: UseCase, new: UseCase) -> list[str]:
    """The frozen parts (criteria, readiness criteria, windows) that differ between two versions.

    >>> a = UseCase(id="x", title="X", success_criteria=[Criterion(kpi="shadow_volume", op=">=", target=20)])
    >>> frozen_changes(a, a.model_copy(update={"title": "Y"}))
    []
    >>> frozen_changes(a, a.model_copy(update={"success_criteria": []}))
    ['success_criteria']
    """
    before, after = old.criteria_doc(), new.criteria_doc()
    return [key for key in before if before[key] != after[key]]


def check_update(stored: UseCase | None, new: UseCase, *, new_version: bool, reason: str) -> None:
    """Refuse an update that would break the portfolio's rules, with a sentence saying how to do it."""
    if stored is None:
        if new.stage is not Stage.PROPOSED:
            raise InputError(f"use case {new.id!r} is new: it starts at 'proposed' (stages move only through "
                             f"gates: 'watchkeeper gates evaluate'), not at {new.stage.value!r}")
        return
    if new.stage is not stored.stage and new.stage is not Stage.PROPOSED:
        raise Conflict(f"use case {new.id!r} is at {stored.stage.value!r}; a file cannot move it to "
                       f"{new.stage.value!r}: stages move only through gates")
    changed = frozen_changes(stored, new)
    if changed and stored.stage.rank >= Stage.PILOT.rank and stored.stage is not Stage.RETIRED:
        if not new_version:
            raise Conflict(f"use case {new.id!r} is in its {stored.stage.value} stage: its "
                           f"{', '.join(changed)} are frozen since the pilot started; to change them, apply "
                           "it as a new version with a reason (--new-version --reason '...'), which is audited")
        if not reason.strip():
            raise InputError("a new version of frozen criteria needs a reason (--reason '...')")
