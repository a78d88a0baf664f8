"""Typed values that cross the decide/act split: outcomes, hold reasons, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watchkeeper.execute.runbook import Runbook
from watchkeeper.execute.select import Match
from watchkeeper.policy import Reason, Verdict
from watchkeeper.policy.approvals import ApprovalStatus

#: Audit kinds that make the responder look at an incident again.
TRIGGERS = ("incident.opened", "alert.opened", "alert.refired", "incident.reopened", "incident.causes_ranked")
RESPONDER = "responder"
POLICY_VERSION = "policy-v1"


class ShadowOutcome(StrEnum):
    """How a shadow decision compares with what the human who resolved the incident says."""

    AGREED = "agreed"
    DIFFERENT_ACTION = "different_action"
    WOULD_HAVE_HARMED = "would_have_harmed"


class Hold(StrEnum):
    """Why the responder keeps an earlier decision instead of deciding again on a new ranking."""

    ACTED = "acted"  # an action already exists for this incident and runbook
    FINAL_VERDICT = "final_verdict"  # auto, deny and shadow are never revisited
    NOT_CONFIDENCE = "not_confidence"  # the confidence was not what held it back
    VOTED = "voted"  # someone already voted on its approval request

    @property
    def text(self) -> str:
        return {
            Hold.ACTED: "the runbook already ran (or is queued) for this incident",
            Hold.FINAL_VERDICT: "auto, deny and shadow verdicts are final",
            Hold.NOT_CONFIDENCE: "the confidence was not what held it back: its approval request stands",
            Hold.VOTED: "someone already voted on its approval request",
        }[self]


class Interrupted(StrEnum):
    """What happens to an action whose server stopped mid-run (its lease expired)."""

    ESCALATED = "escalated"  # marked interrupted, the incident goes back to a human; never re-run


@dataclass(frozen=True, slots=True)
class Proposed:
    runbook: Runbook
    found: Match
    params: dict[str, Any]
    error: str
    #: the model versions the incident's view used (``kind:name`` → version), besides the RCA model
    models: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decided:
    """What the responder did with one proposal."""

    decision_id: int
    verdict: Verdict
    reason: Reason
    action_id: int | None = None
    approval_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"decision_id": self.decision_id, "verdict": self.verdict.value,
                                 "reason": self.reason.value}
        if self.action_id is not None:
            found["action_id"] = self.action_id
        if self.approval_id is not None:
            found["approval_id"] = self.approval_id
        return found


@dataclass(frozen=True, slots=True)
class Voted:
    approval_id: int
    status: ApprovalStatus
    action_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"approval_id": self.approval_id, "status": self.status.value}
        if self.action_id is not None:
            found["action_id"] = self.action_id
        return found
