"""Approval rules, pure: who may vote, how many approvals are needed, when a request expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from watchkeeper.errors import AuthError, Conflict
from watchkeeper.policy.base import PolicyConfig, Risk


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"  # a new ranking replaced the decision before anyone voted


@dataclass(frozen=True, slots=True)
class Vote:
    actor: str
    approve: bool
    at: datetime
    comment: str = ""


def required_approvals(risk: Risk, config: PolicyConfig) -> int:
    """
    >>> required_approvals(Risk.HIGH, PolicyConfig(two_approvals_risk=Risk.HIGH))
    2
    >>> required_approvals(Risk.HIGH, PolicyConfig())
    1
    """
    if config.two_approvals_risk is not None and risk.rank >= config.two_approvals_risk.rank:
        return 2
    return 1


def four_eyes(risk: Risk, config: PolicyConfig) -> bool:
    return risk.rank >= config.four_eyes_risk.rank


def cast(
    status: ApprovalStatus, votes: list[Vote], vote: Vote, *, requester: str, risk: Risk,
    required: int, expires_at: datetime, config: PolicyConfig,
) -> ApprovalStatus:
    """Apply one vote; return the request's new status. Raises when the vote is not allowed.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 11, 23, tzinfo=UTC)
    >>> cast(ApprovalStatus.PENDING, [], Vote("bob", True, t), requester="alice", risk=Risk.HIGH,
    ...      required=1, expires_at=t + timedelta(hours=1), config=PolicyConfig()).value
    'approved'
    """
    if status is not ApprovalStatus.PENDING:
        raise Conflict(f"the approval request is already {status.value}")
    if vote.at >= expires_at:
        raise Conflict("the approval request has expired")
    if vote.approve and four_eyes(risk, config) and vote.actor == requester:
        raise AuthError(
            f"four-eyes rule: {vote.actor} requested this {risk.value}-risk action and cannot approve it",
            status=403,
        )
    if any(v.actor == vote.actor for v in votes):
        raise Conflict(f"{vote.actor} has already voted on this request")
    if not vote.approve:
        return ApprovalStatus.REJECTED
    approvals = sum(1 for v in votes if v.approve) + 1
    return ApprovalStatus.APPROVED if approvals >= required else ApprovalStatus.PENDING
