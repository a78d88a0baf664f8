"""Human actions on incidents, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.errors import Conflict, InputError
from watchkeeper.lifecycle import Action, apply
from watchkeeper.model import Incident, IncidentStatus, Severity

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)


def incident(status: IncidentStatus) -> Incident:
    return Incident(1, "db down", status, Severity.CRITICAL, ["db"], T0, T0)


@pytest.mark.parametrize(
    ("start", "action", "end", "kind"),
    [
        (IncidentStatus.OPEN, Action.ACKNOWLEDGE, IncidentStatus.ACKNOWLEDGED, "incident.acknowledged"),
        (IncidentStatus.OPEN, Action.MITIGATE, IncidentStatus.MITIGATED, "incident.mitigated"),
        (IncidentStatus.OPEN, Action.RESOLVE, IncidentStatus.RESOLVED, "incident.resolved"),
        (IncidentStatus.ACKNOWLEDGED, Action.RESOLVE, IncidentStatus.RESOLVED, "incident.resolved"),
        (IncidentStatus.RESOLVED, Action.REOPEN, IncidentStatus.OPEN, "incident.reopened"),
        (IncidentStatus.MITIGATED, Action.REOPEN, IncidentStatus.OPEN, "incident.reopened"),
        (IncidentStatus.ACKNOWLEDGED, Action.ACKNOWLEDGE, IncidentStatus.ACKNOWLEDGED, None),
        (IncidentStatus.OPEN, Action.REOPEN, IncidentStatus.OPEN, None),
    ],
)
def test_transitions(start: IncidentStatus, action: Action, end: IncidentStatus, kind: str | None) -> None:
    inc = incident(start)
    change = apply(inc, action, "alice", T1)
    assert inc.status is end
    assert (change.kind if change else None) == kind


@pytest.mark.parametrize(
    ("start", "action"),
    [(IncidentStatus.RESOLVED, Action.ACKNOWLEDGE), (IncidentStatus.MITIGATED, Action.ACKNOWLEDGE),
     (IncidentStatus.RESOLVED, Action.MITIGATE)],
)
def test_backwards_is_a_conflict(start: IncidentStatus, action: Action) -> None:
    with pytest.raises(Conflict, match="reopen it first"):
        apply(incident(start), action, "alice", T1)


def test_resolving_sets_the_timestamps_mtta_and_mttr_use() -> None:
    inc = incident(IncidentStatus.OPEN)
    apply(inc, Action.RESOLVE, "alice", T1)
    assert (inc.acknowledged_at, inc.mitigated_at, inc.resolved_at) == (T1, T1, T1)
    apply(inc, Action.REOPEN, "bob", T1)
    assert (inc.acknowledged_at, inc.resolved_at) == (None, None)


def test_assign_and_comment() -> None:
    inc = incident(IncidentStatus.OPEN)
    change = apply(inc, Action.ASSIGN, "alice", T1, "bob")
    assert inc.assignee == "bob" and change is not None and change.payload["assignee"] == "bob"
    assert apply(inc, Action.ASSIGN, "alice", T1, "bob") is None
    comment = apply(inc, Action.COMMENT, "alice", T1, "looking at the db")
    assert comment is not None and comment.payload["text"] == "looking at the db"
    with pytest.raises(InputError):
        apply(inc, Action.COMMENT, "alice", T1, "  ")
