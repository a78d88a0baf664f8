"""The watch engine: one detector per series, the watch's direction and floor, windows that
resolve after calm points, evidence on every event, state that survives a JSON round trip."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from watchkeeper.detect.default import shipped
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.watch.config import ForecastWatch, Watch
from watchkeeper.watch.engine import ForecastEngine, WatchEngine, series_key

API = {"service": "api", "instance": "a:1"}


def watch(**kw: Any) -> Watch:
    base: dict[str, Any] = {"name": "latency", "query": "max by (service, instance) (lat)", "detector": "robust",
                            "options": {"window": 16, "season": "none", "warmup": 5}, "resource_label": "instance"}
    return Watch.model_validate({**base, **kw})


def trained(w: Watch, labels: Mapping[str, str] = API, n: int = 40, level: float = 0.2) -> WatchEngine:
    engine = WatchEngine(w)
    for i in range(n):
        assert engine.evaluate([(labels, 10.0 * i, level + 0.002 * (i % 3))]).events == []
    return engine


def at(engine: WatchEngine, t: float, value: float, labels: Mapping[str, str] = API) -> list[Event]:
    return engine.evaluate([(labels, t, value)]).events


@pytest.mark.parametrize(("direction", "spike", "fires"), [
    ("up", 2.0, True), ("up", -1.5, False),
    ("down", 2.0, False), ("down", -1.5, True),
    ("both", 2.0, True), ("both", -1.5, True),
])
def test_only_the_harmful_side_fires(direction: str, spike: float, fires: bool) -> None:
    engine = trained(watch(direction=direction))
    events = at(engine, 400.0, spike)
    assert [e.status for e in events] == ([Status.FIRING] if fires else [])


def test_a_deviation_smaller_than_the_floor_never_fires() -> None:
    quiet = trained(watch(direction="up", floor=0.5))
    assert at(quiet, 400.0, 0.6) == []  # far outside a quiet series' range, but only 0.4 above it
    assert [e.status for e in at(quiet, 410.0, 5.0)] == [Status.FIRING]
    unfloored = trained(watch(direction="up"))
    assert [e.status for e in at(unfloored, 400.0, 0.6)] == [Status.FIRING]


def test_an_event_carries_its_evidence() -> None:
    engine = trained(watch(direction="up", severity="critical"))
    [event] = at(engine, 400.0, 2.0)
    assert (event.source, event.kind, event.name, event.status) == ("watch", EventKind.ANOMALY, "latency",
                                                                  Status.FIRING)
    assert (event.service, event.resource, event.severity) == ("api", "a:1", Severity.CRITICAL)
    assert event.labels == {**API, "watch": "latency"}
    raw = event.raw
    lo, hi = raw["expected_range"]
    assert lo < 0.2 < hi < 2.0
    assert raw["value"] == 2.0 and raw["score"] >= raw["threshold"] == shipped("robust").threshold
    assert raw["query"] == "max by (service, instance) (lat)"
    assert raw["detector_version"] == shipped("robust").version == "robust-v1"
    assert event.starts_at == datetime.fromtimestamp(400.0, UTC) and event.ends_at is None
    assert "above the expected range" in event.summary
    json.dumps(dict(raw))  # stored as JSON


def test_resolves_after_a_few_calm_points_with_the_same_fingerprint() -> None:
    engine = trained(watch(direction="up"))
    [firing] = at(engine, 400.0, 2.0)
    assert at(engine, 410.0, 2.2) == []  # still anomalous: the same window
    assert at(engine, 420.0, 0.2) == [] and at(engine, 430.0, 0.2) == []
    assert engine.firing == 1
    [resolved] = at(engine, 440.0, 0.2)
    assert resolved.status is Status.RESOLVED and resolved.fingerprint == firing.fingerprint
    assert resolved.raw["value"] == 2.2  # the peak of the window
    assert resolved.ends_at == datetime.fromtimestamp(440.0, UTC)
    assert engine.firing == 0


def test_one_calm_point_between_anomalies_does_not_flap() -> None:
    engine = trained(watch(direction="up"))
    events = at(engine, 400.0, 2.0) + at(engine, 410.0, 0.2) + at(engine, 420.0, 2.0)
    assert [e.status for e in events] == [Status.FIRING]


def test_series_without_the_service_label_are_skipped_and_counted() -> None:
    engine = WatchEngine(watch())
    result = engine.evaluate([({"instance": "x"}, 1.0, 1.0), ({"service": ""}, 1.0, 1.0), (API, 1.0, 1.0)])
    assert (result.series, result.unlabelled) == (1, 2)
    assert engine.keys == [series_key("latency", API)]


def test_each_series_has_its_own_detector() -> None:
    w = watch(direction="up")
    b = {"service": "db", "instance": "b:1"}
    engine = WatchEngine(w)
    for i in range(40):
        engine.evaluate([(API, 10.0 * i, 0.2 + 0.002 * (i % 3)), (b, 10.0 * i, 5.0 + 0.01 * (i % 3))])
    events = engine.evaluate([(API, 400.0, 2.0), (b, 400.0, 5.0)]).events  # 2.0 is normal for db, not for api
    assert [(e.service, e.status) for e in events] == [("api", Status.FIRING)]


def test_nan_and_repeated_samples_are_not_learned() -> None:
    engine = trained(watch(direction="up"))
    before = json.dumps(engine.dump(changed_only=False)[0])
    assert engine.evaluate([(API, 400.0, float("nan"))]).events == []
    assert engine.evaluate([(API, 390.0, 9.0)]).events == []  # older than the last sample
    assert json.dumps(engine.dump(changed_only=False)[0]) == before


def test_state_round_trip_scores_exactly_as_before() -> None:
    w = watch(direction="up")
    a = trained(w)
    at(a, 400.0, 2.0)  # an open window travels too
    states, dropped = a.dump(changed_only=False)
    b = WatchEngine(w)
    assert b.load(json.loads(json.dumps(states))) == [] and dropped == []
    assert b.firing == 1
    for t, v in ((410.0, 0.2), (420.0, 0.21), (430.0, 0.2), (440.0, 3.0)):
        ea, eb = at(a, t, v), at(b, t, v)
        assert [(e.status, e.fingerprint, e.raw) for e in ea] == [(e.status, e.fingerprint, e.raw) for e in eb]
    assert a.dump(changed_only=False) == b.dump(changed_only=False)


def test_dump_returns_only_what_changed() -> None:
    engine = trained(watch())
    assert list(engine.dump()[0]) == [series_key("latency", API)]
    assert engine.dump() == ({}, [])


def test_state_of_another_detector_configuration_is_discarded() -> None:
    old = trained(watch())
    states, _ = old.dump(changed_only=False)
    changed = WatchEngine(watch(options={"window": 8, "season": "none", "warmup": 5}))
    assert changed.load(states) == list(states) and changed.keys == []
    assert WatchEngine(watch()).load({"x": {"detector": {"kind": "Nope"}, "labels": {}}}) == ["x"]


def test_a_firing_series_missing_from_the_result_resolves_then_is_forgotten() -> None:
    engine = WatchEngine(watch(direction="up"), absent=2, forget=3)
    for i in range(40):
        engine.evaluate([(API, 10.0 * i, 0.2 + 0.002 * (i % 3))])
    assert len(at(engine, 400.0, 2.0)) == 1
    assert engine.evaluate([], now=410.0).events == []
    [resolved] = engine.evaluate([], now=420.0).events
    assert resolved.status is Status.RESOLVED and resolved.raw["resolved_because"] == "absent"
    for t in (430.0, 440.0, 450.0):
        engine.evaluate([], now=t)
    assert engine.keys == [] and engine.dump() == ({}, [series_key("latency", API)])


def test_threshold_defaults_to_the_shipped_one_and_can_be_set() -> None:
    assert WatchEngine(watch(detector="default", options={})).threshold == shipped("default").threshold
    assert WatchEngine(watch(threshold=0.99)).threshold == 0.99


def test_the_default_detector_runs() -> None:
    engine = WatchEngine(watch(detector="default", options={}, direction="up"))
    rng = np.random.default_rng(1)
    for i in range(300):
        engine.evaluate([(API, 10.0 * i, 0.2 + 0.01 * rng.standard_normal())])
    events = [e for i in range(300, 305) for e in at(engine, 10.0 * i, 5.0)]
    assert [e.status for e in events] == [Status.FIRING]
    assert events[0].raw["detector_version"] == shipped("default").version


def test_a_bad_detector_or_option_is_a_config_error_naming_the_watch() -> None:
    with pytest.raises(ConfigError, match=r"watch 'latency'.*unknown detector 'nope'"):
        WatchEngine(watch(detector="nope"))
    with pytest.raises(ConfigError, match=r"watch 'latency'.*colour"):
        WatchEngine(watch(options={"colour": "red"}))


def test_the_lab_watch_shape_is_handled() -> None:
    lab = Watch.model_validate({"name": "latency", "query": "q", "service_label": "service", "direction": "up",
                                "floor": 0.05, "detector": "robust",
                                "options": {"window": 32, "season": "none", "warmup": 10}, "interval": "2s"})
    engine = WatchEngine(lab)
    labels = {"service": "checkout"}
    for i in range(40):
        assert engine.evaluate([(labels, 2.0 * i, 0.02 + 0.001 * (i % 2))]).events == []
    assert at(engine, 80.0, 0.06, labels) == []  # under the 0.05 floor
    [event] = at(engine, 82.0, 1.5, labels)
    assert event.service == "checkout" and event.resource == ""


# -- forecasts ---------------------------------------------------------------------------------
def forecast_watch(**kw: Any) -> ForecastWatch:
    base: dict[str, Any] = {"name": "disk-full", "query": "disk_used_ratio", "service_label": "service",
                            "resource_label": "instance", "threshold": 0.9, "direction": "up",
                            "horizon": "6h", "lookback": "24h", "step": "5m", "severity": "error"}
    return ForecastWatch.model_validate({**base, **kw})


def ramp(slope: float, n: int = 288, start: float = 0.3) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    times = 1.7e9 + 300.0 * np.arange(n)
    noise = np.random.default_rng(0).normal(0.0, 0.002, n)
    return times, start + slope * np.arange(n) + noise


def test_a_predicted_crossing_fires_a_forecast_event_then_resolves() -> None:
    engine = ForecastEngine(forecast_watch())
    labels = {"service": "db", "instance": "db-1"}
    times, values = ramp(0.002)  # 0.3 → 0.876 over a day: crosses 0.9 within the hour
    [event] = engine.evaluate([(labels, times, values), ({"instance": "x"}, times, values)],
                              now=float(times[-1])).events
    assert (event.kind, event.status, event.source, event.name) == (EventKind.FORECAST, Status.FIRING, "watch",
                                                                   "disk-full")
    assert (event.service, event.resource, event.severity) == ("db", "db-1", Severity.ERROR)
    assert event.labels["watch"] == "disk-full"
    assert event.raw["crossing_at"] and event.raw["interval_earliest_seconds"] <= event.raw["crossing_in_seconds"]
    assert event.raw["query"] == "disk_used_ratio"
    assert engine.firing == 1
    flat_t, flat_v = ramp(0.0)
    [resolved] = engine.evaluate([(labels, flat_t, flat_v)], now=float(flat_t[-1])).events
    assert resolved.status is Status.RESOLVED and resolved.fingerprint == event.fingerprint
    assert engine.evaluate([(labels, flat_t, flat_v)], now=float(flat_t[-1])).events == []


def test_forecast_gaps_and_short_series() -> None:
    engine = ForecastEngine(forecast_watch(direction="down", threshold=0.1))
    times, values = ramp(-0.0005)  # 0.3 → 0.156 over a day: 0.1 is 9 h away, beyond the 6 h horizon
    keep = np.ones(times.size, bool)
    keep[100:120] = False  # Prometheus omits missing steps
    result = engine.evaluate([({"service": "db"}, times[keep], values[keep]),
                              ({"service": "x"}, times[:2], values[:2])], now=float(times[-1]))
    assert (result.series, result.short) == (1, 1)
    assert result.events == []
    assert [v.value for v in result.seen] == [pytest.approx(values[-1])]


def test_the_forecast_step_respects_prometheus_point_limit() -> None:
    assert ForecastEngine(forecast_watch(step="5m")).step == 300.0
    assert ForecastEngine(forecast_watch(step=None, lookback="1h")).step == pytest.approx(7.2)
    assert ForecastEngine(forecast_watch(step="1s", lookback="24h")).step == pytest.approx(86_400 / 10_999)


def test_a_forecast_series_that_disappears_resolves() -> None:
    engine = ForecastEngine(forecast_watch())
    labels = {"service": "db", "instance": "db-1"}
    times, values = ramp(0.002)
    [firing] = engine.evaluate([(labels, times, values)], now=float(times[-1])).events
    [resolved] = engine.evaluate([], now=float(times[-1]) + 300.0).events
    assert (resolved.status, resolved.fingerprint, resolved.raw["resolved_because"]) == (
        Status.RESOLVED, firing.fingerprint, "absent")
    assert engine.firing == 0 and engine.evaluate([], now=float(times[-1]) + 600.0).events == []


def _family_run(w: Watch, one_service: bool, spike: float) -> tuple[WatchEngine, list[Event]]:
    """Twenty series of one watch, trained alike on the same noise; series 0 then deviates by ``spike``."""
    rng = np.random.default_rng(19)
    noise = rng.normal(1.0, 0.05, (400, 20))
    engine = WatchEngine(w)

    def labels(k: int) -> dict[str, str]:
        return {"service": "api" if one_service else f"svc{k}", "instance": f"i{k}"}

    for i in range(400):
        engine.evaluate([(labels(k), 10.0 * i, float(noise[i, k])) for k in range(20)])
    events = engine.evaluate([(labels(k), 4000.0, (1.0 + spike) if k == 0 else 1.0) for k in range(20)]).events
    return engine, events


def test_the_series_of_one_service_are_scored_as_a_family() -> None:
    """likelihood-v3 (docs/detect.md, round 10): one of twenty series of a service needs a rarer value to
    fire than the only series of its service — the service's false alarms do not grow twentyfold."""
    w = watch(detector="default", options={}, direction="both")
    for spike in (0.16, 0.2, 0.25):
        family, _ = _family_run(w, True, spike)
        alone, _ = _family_run(w, False, spike)
        key_f = series_key("latency", {"service": "api", "instance": "i0"})
        key_a = series_key("latency", {"service": "svc0", "instance": "i0"})
        assert family._series[key_f].last_score < alone._series[key_a].last_score
        assert family._series[key_f].group == 20 and alone._series[key_a].group == 1
    _, events = _family_run(w, True, 3.0)  # a clear anomaly still fires, and says how many series it was among
    [event] = events
    assert event.status is Status.FIRING and event.raw["series_of_service"] == 20
    assert event.raw["detector_version"] == shipped("default").version == "likelihood-v3"


def test_a_detector_not_shipped_familywise_scores_each_series_alone() -> None:
    w = watch(direction="both")  # robust-v1
    family, _ = _family_run(w, True, 0.3)
    alone, _ = _family_run(w, False, 0.3)
    key_f = series_key("latency", {"service": "api", "instance": "i0"})
    key_a = series_key("latency", {"service": "svc0", "instance": "i0"})
    assert family._series[key_f].last_score == alone._series[key_a].last_score
