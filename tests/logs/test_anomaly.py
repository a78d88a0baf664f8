"""Log anomalies: new template at warning or worse, rate spike and drop, error burst; one event per
anomaly and its resolution; the pure window helper agrees with the live judge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchkeeper.logs.anomaly import LogAnomalies, anomalies_in
from watchkeeper.logs.config import AnomalyConfig
from watchkeeper.model import Event, EventKind, Severity, Status

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def minute(m: int, s: int = 0) -> datetime:
    return T0 + timedelta(minutes=m, seconds=s)


def run(found: LogAnomalies, per_minute: dict[int, int], minutes: int, template: str = "t1",
        severity: Severity = Severity.INFO) -> list[Event]:
    events: list[Event] = []
    for m in range(minutes):
        for _ in range(per_minute.get(m, per_minute.get(-1, 0))):
            events += found.observe("cart", template, f"template {template}", severity, f"line of {template}",
                                    minute(m, 30))
        events += found.tick(minute(m + 1, 10))
    return events


def test_a_steady_rate_is_quiet() -> None:
    assert run(LogAnomalies(AnomalyConfig(learn_minutes=0)), {-1: 30}, 60) == []


def test_a_spike_fires_once_and_resolves_after_quiet_minutes() -> None:
    rates = {-1: 30, 40: 500, 41: 600, 42: 550}
    events = run(LogAnomalies(AnomalyConfig(learn_minutes=0, quiet_minutes=5)), rates, 60)
    assert [(e.name, e.status) for e in events] == [("LogRateSpike", Status.FIRING), ("LogRateSpike", Status.RESOLVED)]
    firing, resolved = events
    assert firing.kind is EventKind.LOG and firing.fingerprint == resolved.fingerprint
    evidence = firing.raw["evidence"]
    assert evidence["template"] == "template t1" and evidence["count"] == 500 and len(evidence["samples"]) == 5
    assert resolved.ends_at == minute(48)  # minutes 43..47 normal


def test_a_drop_to_nothing_fires() -> None:
    rates = {m: 60 for m in range(40)}
    events = run(LogAnomalies(AnomalyConfig(learn_minutes=0)), rates, 43)
    assert [e.name for e in events] == ["LogRateDrop"]


def test_small_counts_never_spike_on_noise() -> None:
    rates = {m: (1 if m % 3 else 4) for m in range(120)}
    assert run(LogAnomalies(AnomalyConfig(learn_minutes=0)), rates, 120) == []


def test_an_error_burst_is_one_event() -> None:
    rates = {m: (1 if m < 30 else 80) for m in range(35)}
    events = run(LogAnomalies(AnomalyConfig(learn_minutes=0)), rates, 35, severity=Severity.ERROR)
    names = [e.name for e in events]
    assert names.count("LogErrorBurst") == 1 and "LogRateSpike" in names


def test_a_new_error_template_fires_after_the_learning_minutes_only() -> None:
    found = LogAnomalies(AnomalyConfig(learn_minutes=10))
    assert found.observe("cart", "a", "boot <*>", Severity.ERROR, "boot 1", minute(0), new=True) == []
    assert found.observe("cart", "b", "disk <*> full", Severity.INFO, "x", minute(20), new=True) == []  # info
    fired = found.observe("cart", "c", "db <*> refused", Severity.ERROR, "db 5 refused", minute(20), new=True)
    assert [(e.name, e.severity, e.labels["template_id"]) for e in fired] == [("LogNewTemplate", Severity.ERROR, "c")]
    assert found.observe("cart", "c", "db <*> refused", Severity.ERROR, "db 6 refused", minute(20), new=True) == []


def test_state_round_trips_the_baselines() -> None:
    found = LogAnomalies(AnomalyConfig(learn_minutes=0))
    run(found, {-1: 30}, 30)
    again = LogAnomalies.from_state(found.state(), AnomalyConfig(learn_minutes=0))
    assert again.state() == found.state()


def test_the_window_helper_finds_spike_drop_and_burst() -> None:
    rows = [{"service": "cart", "template_id": "a", "minute": minute(m), "count": 300 if m == 50 else 40,
             "errors": 0} for m in range(60)]
    rows += [{"service": "cart", "template_id": "e", "minute": minute(m), "count": 50, "errors": 50}
             for m in (55, 56)]
    found = anomalies_in(rows, minute(45), minute(60))
    assert [(a.reason, a.template_id, a.minute) for a in found] == [
        ("rate_spike", "a", minute(50)), ("error_burst", "", minute(55)), ("new_template", "e", minute(55)),
        ("error_burst", "", minute(56))]  # every anomalous minute is listed
