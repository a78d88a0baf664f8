from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.errors import AuthError, Conflict
from watchkeeper.policy import PolicyConfig, Risk
from watchkeeper.policy.approvals import ApprovalStatus, Vote, cast, required_approvals

T = datetime(2026, 11, 23, tzinfo=UTC)
EXPIRES = T + timedelta(hours=1)


def vote(actor: str, approve: bool = True, at: datetime = T) -> Vote:
    return Vote(actor, approve, at)


def test_four_eyes_for_high_risk() -> None:
    with pytest.raises(AuthError, match="four-eyes"):
        cast(ApprovalStatus.PENDING, [], vote("alice"), requester="alice", risk=Risk.HIGH, required=1,
             expires_at=EXPIRES, config=PolicyConfig())
    # the requester may withdraw (reject) their own request
    assert cast(ApprovalStatus.PENDING, [], vote("alice", approve=False), requester="alice", risk=Risk.HIGH,
                required=1, expires_at=EXPIRES, config=PolicyConfig()) is ApprovalStatus.REJECTED
    # below the four-eyes risk, requesting and approving may be the same person
    assert cast(ApprovalStatus.PENDING, [], vote("alice"), requester="alice", risk=Risk.MEDIUM, required=1,
                expires_at=EXPIRES, config=PolicyConfig()) is ApprovalStatus.APPROVED


def test_two_approvals() -> None:
    cfg = PolicyConfig(two_approvals_risk=Risk.HIGH)
    need = required_approvals(Risk.HIGH, cfg)
    first = cast(ApprovalStatus.PENDING, [], vote("bob"), requester="alice", risk=Risk.HIGH, required=need,
                 expires_at=EXPIRES, config=cfg)
    assert first is ApprovalStatus.PENDING
    with pytest.raises(Conflict, match="already voted"):
        cast(first, [vote("bob")], vote("bob"), requester="alice", risk=Risk.HIGH, required=need,
             expires_at=EXPIRES, config=cfg)
    assert cast(first, [vote("bob")], vote("carol"), requester="alice", risk=Risk.HIGH, required=need,
                expires_at=EXPIRES, config=cfg) is ApprovalStatus.APPROVED


def test_reject_and_expiry() -> None:
    assert cast(ApprovalStatus.PENDING, [], vote("bob", approve=False), requester="a", risk=Risk.LOW, required=1,
                expires_at=EXPIRES, config=PolicyConfig()) is ApprovalStatus.REJECTED
    with pytest.raises(Conflict, match="expired"):
        cast(ApprovalStatus.PENDING, [], vote("bob", at=EXPIRES), requester="a", risk=Risk.LOW, required=1,
             expires_at=EXPIRES, config=PolicyConfig())
    with pytest.raises(Conflict, match="already approved"):
        cast(ApprovalStatus.APPROVED, [], vote("bob"), requester="a", risk=Risk.LOW, required=1,
             expires_at=EXPIRES, config=PolicyConfig())


@pytest.mark.parametrize(("requester", "voter"), [
    ("token:alice", "cli-user:alice via unix user al"),  # the API's alice, then the CLI mapped to alice
    ("cli:al", "cli-user:alice via unix user al"),  # the unix user asked, then voted mapped to a name
    ("cli-user:alice via unix user al", "token:alice"),
])
def test_four_eyes_knows_one_person_across_channels(requester: str, voter: str) -> None:
    with pytest.raises(AuthError, match="four-eyes"):
        cast(ApprovalStatus.PENDING, [], vote(voter), requester=requester, risk=Risk.HIGH, required=1,
             expires_at=EXPIRES, config=PolicyConfig())
    with pytest.raises(Conflict, match=f"already voted on this request \\(as {requester}\\)"):
        cast(ApprovalStatus.PENDING, [vote(requester)], vote(voter), requester="policy", risk=Risk.HIGH,
             required=2, expires_at=EXPIRES, config=PolicyConfig())
    assert cast(ApprovalStatus.PENDING, [], vote("token:bob"), requester=requester, risk=Risk.HIGH, required=1,
                expires_at=EXPIRES, config=PolicyConfig()) is ApprovalStatus.APPROVED
