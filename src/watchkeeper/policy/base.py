"""Policy vocabulary: autonomy levels, risk classes, verdicts, reasons, inputs and configuration."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Autonomy(StrEnum):
    SHADOW = "shadow"
    SUGGEST = "suggest"
    APPROVE = "approve"
    AUTO = "auto"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}[self]


class Verdict(StrEnum):
    SHADOW = "shadow"
    SUGGEST = "suggest"
    NEEDS_APPROVAL = "needs_approval"
    AUTO = "auto"
    DENY = "deny"


class Reason(StrEnum):
    """Why the policy gave its verdict. ``text`` is the sentence a human reads."""

    INVALID_PARAMETERS = "invalid_parameters"
    MAINTENANCE_WINDOW = "maintenance_window"
    AUTONOMY_SHADOW = "autonomy_shadow"
    AUTONOMY_SUGGEST = "autonomy_suggest"
    CIRCUIT_OPEN = "circuit_open"
    AUTONOMY_APPROVE = "autonomy_approve"
    SERVICE_BUSY = "service_busy"
    RUNBOOK_BUSY = "runbook_busy"
    HOURLY_LIMIT = "hourly_limit"
    RUNBOOK_HOURLY_LIMIT = "runbook_hourly_limit"
    ALREADY_MITIGATED = "already_mitigated"
    COOLDOWN = "cooldown"
    NO_CONFIDENCE = "no_confidence"
    LOW_CONFIDENCE = "low_confidence"
    RISK_TOO_HIGH = "risk_too_high"
    CHANGE_FREEZE = "change_freeze"
    ALL_CHECKS_PASSED = "all_checks_passed"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    Reason.INVALID_PARAMETERS: "a parameter bound from the incident failed validation; nothing may run",
    Reason.MAINTENANCE_WINDOW: "the service is in a maintenance window: automation stays out",
    Reason.AUTONOMY_SHADOW: "the runbook is at shadow: record what would have run, run nothing",
    Reason.AUTONOMY_SUGGEST: "the runbook is at suggest: propose it, a human runs it",
    Reason.CIRCUIT_OPEN: "the runbook's circuit breaker is open after failed verifications: "
                         "demoted to suggest until a human re-enables it",
    Reason.AUTONOMY_APPROVE: "the runbook is at approve: it runs after approval",
    Reason.SERVICE_BUSY: "another action is already running on this service (blast radius)",
    Reason.RUNBOOK_BUSY: "this runbook already runs at its concurrency limit (blast radius)",
    Reason.HOURLY_LIMIT: "the hourly limit of automated actions is reached",
    Reason.RUNBOOK_HOURLY_LIMIT: "this runbook's hourly limit is reached",
    Reason.ALREADY_MITIGATED: "a fix already mitigated this incident (its alerts have not all cleared yet): "
                              "a further fix waits for a human",
    Reason.COOLDOWN: "this runbook ran on this service moments ago (for this or another incident): "
                     "running it again before its effect shows waits for a human",
    Reason.NO_CONFIDENCE: "no ranked cause with a confidence supports this runbook",
    Reason.LOW_CONFIDENCE: "the confidence of the cause is below the threshold",
    Reason.RISK_TOO_HIGH: "the runbook's risk class is above what may run unattended",
    Reason.CHANGE_FREEZE: "a change freeze is in force: unattended changes need approval",
    Reason.ALL_CHECKS_PASSED: "confidence, risk, blast radius, rate limits and breaker all allow it",
}


@dataclass(frozen=True, slots=True)
class Proposal:
    """One runbook proposed for one incident."""

    incident_id: int
    runbook_id: str
    service: str
    autonomy: Autonomy
    risk: Risk
    confidence: float | None
    threshold: float | None = None  # the runbook's own threshold, if it overrides the policy's
    params_valid: bool = True
    params_error: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """The world as the policy sees it when it decides (counts are of queued or running actions)."""

    now: datetime
    running_on_service: int = 0
    running_of_runbook: int = 0
    actions_last_hour: int = 0
    runbook_actions_last_hour: int = 0
    breaker_open: bool = False
    mitigated: bool = False  # the incident is mitigated: a fix is in, its alerts not all cleared
    #: seconds since this runbook last ran (or was queued) on this service, for any incident; None: never
    last_run_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason
    rule: str
    threshold: float
    inputs: dict[str, object] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.reason.text


class Window(BaseModel):
    """A maintenance window or change freeze: ``services`` are glob patterns (empty: all)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime
    services: list[str] = Field(default_factory=list)
    reason: str = ""
    creator: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, service: str, at: datetime) -> bool:
        if not (self.start <= at < self.end):
            return False
        return not self.services or any(fnmatch.fnmatchcase(service, p) for p in self.services)


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrent_per_service: int = Field(1, ge=0)
    max_concurrent_per_runbook: int = Field(2, ge=0)
    max_actions_per_hour: int = Field(20, ge=0)
    max_runbook_actions_per_hour: int = Field(10, ge=0)
    cooldown_seconds: float = Field(
        300, ge=0, description="the same runbook on the same service again within this many seconds of its "
        "last run (for any incident) waits for a human; 0: off")


class PolicyConfig(BaseModel):
    """The policy file (``policy.yaml`` in the runbooks directory, all keys optional)."""

    model_config = ConfigDict(extra="forbid")

    confidence_threshold: float = Field(0.95, ge=0, le=1)
    max_auto_risk: Risk = Risk.LOW
    limits: Limits = Field(default_factory=Limits)
    breaker_failures: int = Field(
        3, ge=1, description="consecutive failed verifications that open the breaker"
    )
    four_eyes_risk: Risk = Field(Risk.HIGH, description="from this risk on, the requester cannot approve")
    two_approvals_risk: Risk | None = Field(None, description="from this risk on, two approvers are needed")
    approval_ttl_seconds: float = Field(3600, gt=0)
    maintenance: list[Window] = Field(default_factory=list)
    freezes: list[Window] = Field(default_factory=list)
