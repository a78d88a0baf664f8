"""The ranker inside serve, on a fake :class:`SeriesSource` (no Prometheus): the degraded dependency
ranks first, the watch's direction is respected, reranking writes no audit noise, rolled-back deploys
are no suspects, and a Prometheus that is down is counted, shown and survived."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from conftest import Clock
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.model import Cause
from watchkeeper.ranking import Ranker, make_ranker
from watchkeeper.server import create_app
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.watch.config import Watch
from watchkeeper.watch.prometheus import PrometheusError, RangeSeries

ONSET = datetime.fromisoformat("2026-11-22T06:00:00+00:00").timestamp()  # the alert's startsAt


def step(before: float, after: float) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    def f(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.where(t < ONSET, before * (1 + 0.01 * np.sin(t)), after)
    return f


class FakeSource:
    """Per watch, per service: a function of time; records what was asked."""

    def __init__(self, shapes: Mapping[str, Mapping[str, Callable[[Any], Any]]]) -> None:
        self.shapes = shapes
        self.asked: list[tuple[str, float, float, float]] = []

    def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        self.asked.append((watch.name, start, end, step))
        t = np.arange(start, end + 1e-9, step)
        return [RangeSeries({watch.service_label: svc, "job": "x"}, t, f(t))
                for svc, f in self.shapes.get(watch.name, {}).items()]


class Down:
    def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        raise PrometheusError("Prometheus main (http://127.0.0.1:1) is unreachable: ConnectError", retryable=True)


def settings(**rca: Any) -> dict[str, Any]:
    return {
        "watch": {"prometheus": [{"url": "http://127.0.0.1:1"}],
                  "watches": [{"name": "latency", "query": "max by (service) (latency)", "direction": "up",
                               "floor": 0.05, "interval": "15s"},
                              {"name": "queue", "query": "q", "direction": "both", "rca": False}]},
        "topology": {"services": {"api": {"depends_on": ["db", "cache"]}, "db": {}, "cache": {}}},
        "rca": {"delay": "5s", "rerank": "1s", **rca},
    }


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> Watchkeeper:
    return make_service(sqlite_url, **settings())


def open_incident(wk: Watchkeeper, service: str = "api") -> int:
    result = wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("Slow", service))), "application/json",
                       "test")
    return result.incidents[0]


def ranked_records(wk: Watchkeeper, incident: int) -> list[Any]:
    with wk.db.read() as conn:
        return [r for r in audit.records(conn, subject=f"incident:{incident}") if r.kind == "incident.causes_ranked"]


SHAPES = {"latency": {"api": step(0.02, 0.3), "db": step(0.01, 2.0), "cache": step(1.0, 0.0)}}


def test_the_degraded_dependency_ranks_first_and_a_falling_metric_is_no_cause(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    source = FakeSource(SHAPES)
    ranker = Ranker(wk, source)
    assert ranker.tick() == 0  # younger than rca.delay
    clock.advance(seconds=60)
    assert ranker.tick() == 1
    causes = {c["component"]: c for c in wk.incident(incident)["causes"]}
    top = wk.incident(incident)["causes"][0]
    assert top["component"] == "db" and top["model"] == "baro-v1" and top["evidence"]["top_metrics"]
    # cache's latency fell from 1.0 to 0: the watch says only a rise is harmful
    assert causes["cache"]["score"] == 0.0
    assert [r.actor for r in ranked_records(wk, incident)] == ["rca"]
    # the query covered reference before the onset up to now, at the watch's interval; rca: false is not asked
    name, start, end, step_s = source.asked[0]
    assert (name, start, end, step_s) == ("latency", ONSET - 3600, clock.now.timestamp(), 15.0)
    assert {a[0] for a in source.asked} == {"latency"}


def test_both_directions_would_have_blamed_the_falling_service(
        make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> None:
    doc = settings()
    doc["watch"]["watches"][0]["direction"] = "both"
    wk = make_service(sqlite_url, **doc)
    incident = open_incident(wk)
    clock.advance(seconds=60)
    Ranker(wk, FakeSource(SHAPES)).tick()
    assert {c["component"]: c["score"] for c in wk.incident(incident)["causes"]}["cache"] > 0


def test_top_three_unchanged_writes_no_second_record(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    ranker = Ranker(wk, FakeSource(SHAPES))
    clock.advance(seconds=60)
    assert ranker.tick() == 1
    clock.advance(seconds=30)  # the evidence window (5 min) is still filling: ranked again, same top three
    assert ranker.tick() == 0
    assert ranker.rankings == 2 and ranker.stored == 1
    assert len(ranked_records(wk, incident)) == 1


def test_a_ranking_stored_with_a_doubt_is_stored_again_when_the_doubt_is_gone(wk: Watchkeeper, clock: Clock) -> None:
    """Ranked 6 s after the onset on 15-s samples, the callees of ``api`` (the only one anomalous) were last
    seen at the onset: they could still explain it, so its confidence is capped. Once they are seen flat a
    step later, the same top three is stored again with the calibrated confidence, or the policy would go on
    seeing the cap."""
    incident = open_incident(wk)
    ranker = Ranker(wk, FakeSource({"latency": {"api": step(0.02, 30.0), "db": step(0.01, 0.01),
                                                 "cache": step(1.0, 1.0)}}))
    clock.advance(seconds=6)
    assert ranker.tick() == 1
    first = wk.incident(incident)["causes"][0]
    assert first["component"] == "api" and first["evidence"]["doubts"]["callees_not_seen_yet"] == ["cache", "db"]
    assert first["confidence"] <= 0.5
    clock.advance(seconds=30)
    assert ranker.tick() == 1
    again = wk.incident(incident)["causes"][0]
    assert again["component"] == "api" and "doubts" not in again["evidence"]
    assert again["confidence"] == first["evidence"]["doubts"]["calibrated"] > first["confidence"]
    assert len(ranked_records(wk, incident)) == 2
    clock.advance(seconds=30)
    assert ranker.tick() == 0  # nothing material changed: no third record


def test_a_complete_ranking_is_redone_only_when_the_incident_gains_a_service(
        make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> None:
    wk = make_service(sqlite_url, **settings(window="30s"))
    incident = open_incident(wk)
    ranker = Ranker(wk, FakeSource(SHAPES))
    clock.advance(seconds=60)
    ranker.tick()
    clock.advance(seconds=5)
    ranker.tick()
    assert ranker.rankings == 1  # the window is complete: nothing new to see
    wk.merge(open_incident(wk, "db"), incident, "test")  # the incident gains db
    assert sorted(wk.incident(incident)["services"]) == ["api", "db"]
    ranker.tick()
    assert ranker.rankings == 2


def test_a_reopened_incident_is_ranked_from_its_reopen(
        make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> None:
    """api's alert resolves and fires again 90 s later, now for a fault in cache: the ranking of the
    episode before (db) is not kept — the incident is ranked again from the reopen, even though its
    first ranking was complete and no service was added."""
    wk = make_service(sqlite_url, **settings(window="30s"))
    reopen = ONSET + 240

    def db(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.where((t >= ONSET) & (t < ONSET + 120), 2.0, 0.01 * (1 + 0.01 * np.sin(t)))

    def cache(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.where(t >= reopen, 2.0, 0.01 * (1 + 0.01 * np.sin(t)))

    source = FakeSource({"latency": {"api": step(0.02, 0.3), "db": db, "cache": cache}})
    ranker = Ranker(wk, source)
    incident = open_incident(wk)
    clock.advance(seconds=60)
    assert ranker.tick() == 1
    assert wk.incident(incident)["causes"][0]["component"] == "db"
    clock.advance(seconds=90)
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("Slow", "api", status="resolved",
                                                               ends="2026-11-22T06:02:00Z"))), "application/json", "t")
    assert wk.incident(incident)["status"] == "resolved"
    clock.advance(seconds=90)  # 06:04, the fault is now in cache
    again = am_alert("Slow", "api", starts="2026-11-22T06:04:00Z")
    assert wk.ingest("alertmanager", orjson.dumps(am_webhook(again)), "application/json", "t").incidents == [incident]
    assert wk.incident(incident)["status"] == "open"
    assert ranker.tick() == 0  # younger than rca.delay since the reopen
    clock.advance(seconds=60)
    assert ranker.tick() == 1
    assert wk.incident(incident)["causes"][0]["component"] == "cache"
    assert source.asked[-1][1] == reopen - 3600  # the reference hour before the reopen
    assert len(ranked_records(wk, incident)) == 2


def test_a_person_s_ranking_before_a_reopen_is_ranked_again_after_it(wk: Watchkeeper, clock: Clock) -> None:
    """Theirs stands for the episode they ranked; the problem that came back is ranked afresh."""
    incident = open_incident(wk)
    wk.governance.set_causes(incident, [Cause("cache", confidence=0.9)], "token:alice")
    clock.advance(seconds=60)
    ranker = Ranker(wk, FakeSource(SHAPES))
    assert ranker.tick() == 0
    clock.advance(seconds=30)
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("Slow", "api", status="resolved",
                                                               ends="2026-11-22T06:01:30Z"))), "application/json", "t")
    clock.advance(seconds=30)
    again = am_alert("Slow", "api", starts="2026-11-22T06:02:00Z")
    assert wk.ingest("alertmanager", orjson.dumps(am_webhook(again)), "application/json", "t").incidents == [incident]
    clock.advance(seconds=30)
    assert ranker.tick() == 1
    assert wk.incident(incident)["causes"][0]["model"] == "baro-v1"


def test_a_person_s_ranking_stands(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    wk.governance.set_causes(incident, [Cause("cache", confidence=0.9)], "token:alice")
    clock.advance(seconds=60)
    assert Ranker(wk, FakeSource(SHAPES)).tick() == 0
    assert [c["component"] for c in wk.incident(incident)["causes"]] == ["cache"]


def test_a_rolled_back_deploy_is_no_suspect(wk: Watchkeeper, clock: Clock) -> None:
    before = datetime.fromtimestamp(ONSET).astimezone()
    from watchkeeper.changes import parse

    wk.changelog.record(parse({"changes": [
        {"service": "db", "kind": "deploy", "version": "v2", "at": (before - timedelta(minutes=10)).isoformat()},
        {"service": "cache", "kind": "deploy", "version": "v7", "at": (before - timedelta(minutes=9)).isoformat()},
        {"service": "db", "kind": "rollback", "version": "v1", "at": (before - timedelta(minutes=5)).isoformat()},
    ]}), "ci")
    incident = open_incident(wk)
    clock.advance(seconds=60)
    Ranker(wk, FakeSource({"latency": {"api": step(0.02, 0.3), "db": step(0.01, 2.0), "cache": step(0.01, 0.5)}})).tick()
    causes = {c["component"]: c for c in wk.incident(incident)["causes"]}
    assert "changes" not in causes["db"]["evidence"]
    assert [c["description"] for c in causes["cache"]["evidence"]["changes"]] == ["deploy v7"]


def test_prometheus_down_is_counted_shown_and_survived(wk: Watchkeeper, clock: Clock) -> None:
    open_incident(wk)
    clock.advance(seconds=60)
    ranker = Ranker(wk, Down())
    assert ranker.tick() == 0
    assert ranker.tick() == 0
    status = ranker.status()
    assert status["errors"] == 2 and status["failing"] and "unreachable" in status["last_error"]


def test_serve_shows_rca_in_healthz_and_metrics(make_service: Callable[..., Watchkeeper], sqlite_url: str,
                                                clock: Clock) -> None:
    """The app's own ranker, on the settings' Prometheus (nothing listens on port 1: it is down)."""
    wk = make_service(sqlite_url, **settings())
    app = create_app(wk, upgrade=False)
    ranker = app.state.ranker
    assert isinstance(ranker, Ranker)
    open_incident(wk)
    clock.advance(seconds=60)
    ranker.tick()
    client = TestClient(app)  # no lifespan: the test drives the ranker
    details = client.get("/healthz").json()["details"]["rca"]
    assert details["errors"] == 1 and details["watches"] == ["latency"]
    metrics = client.get("/metrics").text
    assert "watchkeeper_rca_errors_total 1.0" in metrics and "watchkeeper_rca_rankings_total 0.0" in metrics


def test_no_ranker_without_evidence_to_rank_on(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    """No watch with ``rca: true`` and traces off: nothing to rank on, no ranker. Traces on (the
    default): their RED rows and call graph are evidence of their own, so the ranker runs."""
    doc = settings()
    doc["watch"]["watches"][0]["rca"] = False
    assert make_ranker(make_service(sqlite_url, **doc, traces={"enabled": False})) is None
    assert make_ranker(make_service(sqlite_url, traces={"enabled": False})) is None
    assert isinstance(make_ranker(make_service(sqlite_url, **doc)), Ranker)
    assert isinstance(make_ranker(make_service(sqlite_url)), Ranker)


def test_a_ranking_that_failed_is_tried_again_when_prometheus_is_back(
        make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> None:
    wk = make_service(sqlite_url, **settings(window="30s"))
    incident = open_incident(wk)
    clock.advance(seconds=60)  # the evidence window is complete: one good ranking would be final
    ranker = Ranker(wk, Down())
    assert ranker.tick() == 0 and ranker.failing
    ranker.source = FakeSource(SHAPES)
    assert ranker.tick() == 1 and not ranker.failing
    assert wk.incident(incident)["causes"][0]["component"] == "db"


def test_the_top_causes_carry_a_small_plot_of_their_evidence_around_the_onset(wk: Watchkeeper, clock: Clock) -> None:
    """What the console's evidence plot reads: ``series`` {metric: [[t, v], …]} (≤ 60 points, from a
    window before the onset to a window after it, the spike kept) and ``series_onset``."""
    incident = open_incident(wk)
    clock.advance(seconds=60)
    Ranker(wk, FakeSource(SHAPES)).tick()
    causes = wk.incident(incident)["causes"]
    top = causes[0]
    series = top["evidence"]["series"]
    assert list(series) == ["latency"] and top["evidence"]["series_onset"] == ONSET
    points = series["latency"]
    assert 2 <= len(points) <= 60
    times = [t for t, _ in points]
    assert times == sorted(times) and times[0] >= ONSET - 300 and times[-1] <= clock.now.timestamp()
    assert max(v for _, v in points) == 2.0 and min(v for t, v in points if t < ONSET) < 0.02  # before and after
    # the console finds it and draws it, the onset as its dashed marker
    from watchkeeper.server.console import charts
    assert charts.evidence_series(top["evidence"])["latency"][0] == tuple(points[0])
    # only the top three carry series: the stored JSON stays bounded
    assert all("series" not in c["evidence"] for c in causes[3:])
    assert len(orjson.dumps(top["evidence"])) < 4000


def test_the_plot_grows_with_the_window_without_audit_noise(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    ranker = Ranker(wk, FakeSource(SHAPES))
    clock.advance(seconds=10)
    assert ranker.tick() == 1
    first = wk.incident(incident)["causes"][0]
    clock.advance(seconds=120)
    assert ranker.tick() == 0  # same top three: not stored again ...
    later = wk.incident(incident)["causes"][0]
    assert len(ranked_records(wk, incident)) == 1  # ... nor audited
    assert later["evidence"]["series"]["latency"][-1][0] > first["evidence"]["series"]["latency"][-1][0]
    assert (later["score"], later["confidence"]) == (first["score"], first["confidence"])  # as audited


def test_a_long_fine_series_is_thinned_to_sixty_points_and_keeps_its_spike() -> None:
    from watchkeeper.ranking import downsample
    t = np.arange(0.0, 3600.0, 1.0)
    v = np.zeros_like(t)
    v[1234] = 50.0
    v[100] = np.nan
    points = downsample(t, v, 600.0, 1800.0, 0.0)
    assert len(points) == 60 and [1234.0, 50.0] in points
    assert all(600.0 <= p[0] <= 1800.0 for p in points)
    assert downsample(t, np.full_like(t, np.inf), 0, 3600, 0.0) == []


def test_hostile_evidence_values_do_not_break_the_plot(wk: Watchkeeper, clock: Clock) -> None:
    """A watch answering NaN and infinities: the stored series holds only finite numbers (valid JSON)."""
    incident = open_incident(wk)
    clock.advance(seconds=60)

    def wild(t: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        out = np.where(t < ONSET, 0.01, 3.0)
        out[::3] = np.nan
        out[1::7] = np.inf
        return out

    Ranker(wk, FakeSource({"latency": {"api": step(0.02, 0.3), "db": wild}})).tick()
    top = wk.incident(incident)["causes"][0]
    assert top["component"] == "db"
    values = [v for _, v in top["evidence"]["series"]["latency"]]
    assert values and all(np.isfinite(values))


class FakeTraces:
    """Trace series: calls api → cache take 0.3 s on the link after the onset; asked services recorded."""

    def __init__(self) -> None:
        self.asked: list[tuple[tuple[str, ...], float, float]] = []

    def series(self, services: Sequence[str], start: float, end: float) -> dict[str, dict[str, Any]]:
        self.asked.append((tuple(services), start, end))
        t = np.arange(start, end + 1e-9, 30.0)
        link = np.where(t < ONSET, 0.002 * (1 + 0.01 * np.sin(t)), 0.3)
        return {"cache": {"edge:api->cache.net_p95": (t, link), "edge:api->cache.rate": (t, np.ones_like(t))}}


class FakeLogs:
    def anomalies(self, services: Sequence[str], start: float, end: float, graph: object = None) -> dict[str, float]:
        return {"db": 40.0}


class Broken:
    def series(self, services: Sequence[str], start: float, end: float) -> dict[str, Any]:
        raise OSError("trace store unreachable")

    def anomalies(self, services: Sequence[str], start: float, end: float, graph: object = None) -> dict[str, float]:
        raise OSError("log store unreachable")


FLAT = {"latency": {"api": step(0.02, 0.021), "db": step(0.01, 0.0101), "cache": step(1.0, 1.0)}}


def test_a_trace_source_adds_its_evidence(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    traces = FakeTraces()
    clock.advance(seconds=120)
    ranker = make_ranker(wk, FakeSource(FLAT), traces=traces)
    assert ranker is not None
    ranker.tick()
    top = wk.incident(incident)["causes"][0]
    assert top["component"] == "cache"  # metrics are flat: the link into cache is what changed
    says = top["evidence"]["signals"]["traces"]["top"][0]
    assert says["role"] == "link" and "api → cache" in says["says"]
    assert traces.asked[0][0] == ("api",) and traces.asked[0][1] == ONSET - 3600


def test_a_log_source_adds_its_evidence(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    clock.advance(seconds=120)
    Ranker(wk, FakeSource(FLAT), logs=FakeLogs()).tick()
    top = wk.incident(incident)["causes"][0]
    assert top["component"] == "db" and top["evidence"]["signals"]["logs"]["score"] == 40.0


def test_a_failing_trace_or_log_source_leaves_the_metrics_ranking(wk: Watchkeeper, clock: Clock) -> None:
    incident = open_incident(wk)
    clock.advance(seconds=60)
    ranker = Ranker(wk, FakeSource(SHAPES), traces=Broken(), logs=Broken())
    assert ranker.tick() == 1 and ranker.errors == 0
    assert wk.incident(incident)["causes"][0]["component"] == "db"


def test_no_signal_no_causes_stored(make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> None:
    """With traces on (the default) the ranker runs without a metric watch; where no signal says
    anything about an incident's services — no spans, no log anomalies — it stores nothing (no causes
    of score 0, no audit entry, nothing for the integrations to announce)."""
    wk = make_service(sqlite_url)
    ranker = make_ranker(wk)
    assert isinstance(ranker, Ranker)
    incident = open_incident(wk)
    clock.advance(seconds=600)
    assert ranker.tick() == 0
    assert wk.incident(incident)["causes"] == [] and ranked_records(wk, incident) == []
