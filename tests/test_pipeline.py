"""The composed observe pipeline, table-driven over event sequences."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.model import Event, EventKind, IncidentStatus, Severity, Status
from watchkeeper.pipeline import Pipeline, State

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def ev(fp: str, service: str, at: float, status: str = "firing", severity: str = "warning") -> Event:
    when = T0 + timedelta(seconds=at)
    return Event(
        "test", EventKind.ALERT, fp, Status(status), Severity(severity), fp.upper(), service, "",
        {"service": service}, f"{fp} on {service}", when, when if status == "resolved" else None, when,
    )


def run(events: list[Event], **config: object) -> State:
    ids = itertools.count(1)
    state = State()
    Pipeline(PipelineConfig(**config), lambda: next(ids)).observe_all(events, state)  # type: ignore[arg-type]
    return state


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([ev("a", "db", 0), ev("a", "db", 30), ev("a", "db", 60)], {"a": 1}, id="repeats-dedup"),
        pytest.param([ev("a", "db", 0), ev("b", "db", 20)], {"a": 1, "b": 1}, id="same-service-onsets-close"),
        # another alert of the service whose onset is a minute later: another fault (was: joined)
        pytest.param([ev("a", "db", 0), ev("b", "db", 60)], {"a": 1, "b": 2}, id="same-service-onsets-apart"),
        pytest.param([ev("a", "db", 0), ev("b", "web", 1)], {"a": 1, "b": 2}, id="other-service"),
        pytest.param([ev("a", "db", 0), ev("b", "db", 301)], {"a": 1, "b": 2}, id="past-window"),
        pytest.param(  # activity keeps the incident open for its own alerts: the window slides
            [ev("a", "db", 0), ev("a", "db", 200), ev("a", "db", 250, "resolved"), ev("a", "db", 450)], {"a": 1},
            id="window-slides-with-activity",
        ),
        pytest.param(
            [ev("a", "db", 0), ev("a", "db", 10, "resolved"), ev("b", "db", 20)], {"a": 1, "b": 2},
            id="resolved-incident-is-closed",
        ),
    ],
)
def test_grouping(events: list[Event], expected: dict[str, int]) -> None:
    state = run(events)
    assert {fp: a.incident_id for fp, a in state.alerts.items()} == expected


def test_counts_and_last_seen() -> None:
    state = run([ev("a", "db", 0), ev("a", "db", 30), ev("a", "db", 60)])
    alert = state.alerts["a"]
    assert (alert.count, alert.last_seen, alert.first_seen) == (3, T0 + timedelta(seconds=60), T0)
    assert state.repeats == 2


def test_incident_resolves_when_all_alerts_resolved() -> None:
    state = run([ev("a", "db", 0), ev("b", "db", 5), ev("a", "db", 10, "resolved")])
    assert state.incidents[1].status is IncidentStatus.OPEN
    state2 = run([ev("a", "db", 0), ev("b", "db", 5), ev("a", "db", 10, "resolved"), ev("b", "db", 20, "resolved")])
    incident = state2.incidents[1]
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.resolved_at == T0 + timedelta(seconds=20)
    assert [c.kind for c in state2.changes][-1] == "incident.resolved"


def test_auto_resolve_can_be_switched_off() -> None:
    state = run([ev("a", "db", 0), ev("a", "db", 10, "resolved")], auto_resolve=False)
    assert state.incidents[1].status is IncidentStatus.OPEN
    assert state.incidents[1].firing_count == 0


def test_refire_while_incident_active_rejoins_it() -> None:
    state = run([ev("a", "db", 0), ev("b", "db", 1), ev("a", "db", 5, "resolved"), ev("a", "db", 9)])
    assert state.alerts["a"].incident_id == 1
    assert state.alerts["a"].join_reason == "still_open"
    assert state.incidents[1].firing_count == 2
    assert len(state.memberships) == 2  # rejoining is not a second membership


def test_refire_after_resolution_opens_new_incident() -> None:
    state = run([ev("a", "db", 0), ev("a", "db", 5, "resolved"), ev("a", "db", 600)])
    assert state.alerts["a"].incident_id == 2
    assert [(m.incident_id, m.fingerprint) for m in state.memberships] == [(1, "a"), (2, "a")]


def test_stale_firing_after_resolution_is_ignored() -> None:
    late = ev("a", "db", 20)
    stale = Event(**{**{f: getattr(late, f) for f in late.__dataclass_fields__}, "starts_at": T0})
    state = run([ev("a", "db", 0), ev("a", "db", 10, "resolved"), stale])
    assert state.alerts["a"].status is Status.RESOLVED
    assert len(state.incidents) == 1


def test_resolved_for_unknown_fingerprint_opens_nothing() -> None:
    state = run([ev("z", "db", 0, "resolved")])
    assert state.incidents == {}
    assert state.alerts["z"].status is Status.RESOLVED
    assert state.changes[0].kind == "alert.resolved_unseen"


def test_severity_escalates_to_worst_alert() -> None:
    state = run([ev("a", "db", 0, severity="warning"), ev("b", "db", 1, severity="critical")])
    assert state.incidents[1].severity is Severity.CRITICAL


def test_every_join_explains_itself() -> None:
    state = run([ev("a", "db", 0), ev("b", "db", 20), ev("c", "web", 21)])
    reasons = {(m.fingerprint, m.reason) for m in state.memberships}
    assert reasons == {("a", "new_incident"), ("b", "same_service"), ("c", "new_incident")}
    detail = next(m.detail for m in state.memberships if m.fingerprint == "b")
    assert "'db'" in detail and "20s" in detail and "300s" in detail and "join score 0.50" in detail
    opened = [c for c in state.changes if c.kind == "alert.opened"]
    assert all({"dedup_reason", "join_reason", "join_detail", "incident_id"} <= set(c.payload) for c in opened)
