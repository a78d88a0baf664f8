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


#: How an actor names its person: ``token:NAME`` (API, or the CLI with ``--token``),
#: ``cli-user:NAME via unix user UNIX`` (the CLI with a ``cli_users`` mapping), ``cli:UNIX``,
#: ``slack:NAME`` (a Slack user mapped to NAME in the Slack integration's config), ``user:NAME``
#: (a person signed in to the web console).
_VIA = " via unix user "


def identities(actor: str) -> frozenset[str]:
    """The names an actor goes by; two actors sharing one are the same person for four-eyes.

    >>> sorted(identities("cli-user:alice via unix user al")), sorted(identities("token:alice"))
    (['al', 'alice'], ['alice'])
    >>> sorted(identities("cli:bob")), sorted(identities("policy")), sorted(identities("slack:alice"))
    (['bob'], ['policy'], ['alice'])
    >>> sorted(identities("user:alice"))  # the web console's signed-in person
    ['alice']
    """
    kind, sep, rest = actor.partition(":")
    if not sep or kind not in ("token", "cli", "cli-user", "slack", "user"):
        return frozenset({actor})
    if kind == "cli-user" and _VIA in rest:
        name, _, unix = rest.partition(_VIA)
        return frozenset({name, unix})
    return frozenset({rest})


def same_person(a: str, b: str) -> bool:
    """
    >>> same_person("token:alice", "cli-user:alice via unix user al"), same_person("token:alice", "cli:bob")
    (True, False)
    """
    return bool(identities(a) & identities(b))


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
    if vote.approve and four_eyes(risk, config) and same_person(vote.actor, requester):
        raise AuthError(
            f"four-eyes rule: {vote.actor} requested this {risk.value}-risk action"
            + ("" if vote.actor == requester else f" (as {requester})") + " and cannot approve it",
            status=403,
        )
    if any(same_person(v.actor, vote.actor) for v in votes):
        raise Conflict(f"{vote.actor} has already voted on this request"
                       + "".join(f" (as {v.actor})" for v in votes if v.actor != vote.actor
                                 and same_person(v.actor, vote.actor)))
    if not vote.approve:
        return ApprovalStatus.REJECTED
    approvals = sum(1 for v in votes if v.approve) + 1
    return ApprovalStatus.APPROVED if approvals >= required else ApprovalStatus.PENDING
