"""The watch loop: Prometheus down at start and mid-run (backoff, never a crash, status says why),
events ingested (and kept when ingesting fails), detector state across a restart, and ``serve``'s
``/healthz`` and ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from conftest import Api
from watch.fakeprom import FakePrometheus, wait_for
from watchkeeper.model import Event, EventKind, Status
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage.watch import DetectorStateStore
from watchkeeper.telemetry import Metrics
from watchkeeper.watch.config import PrometheusEndpoint, WatchConfig
from watchkeeper.watch.prometheus import PrometheusClient
from watchkeeper.watch.runner import StateStore, Watcher


def config(url: str = "http://prom.test:9090", interval: float = 15.0) -> WatchConfig:
    return WatchConfig.model_validate({
        "prometheus": [{"name": "main", "url": url, "timeout": 2}],
        "watches": [{"name": "latency", "query": "max by (service) (lat)", "direction": "up", "detector": "robust",
                     "options": {"window": 16, "season": "none", "warmup": 5}, "interval": interval}],
    })


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def watcher(fake: FakePrometheus, *, ingest: Callable[[list[Event]], object] | None = None,
            store: StateStore | None = None, metrics: Metrics | None = None, clock: Callable[[], float] | None = None,
            **kw: Any) -> Watcher:
    def client_for(endpoint: PrometheusEndpoint) -> PrometheusClient:
        return PrometheusClient(endpoint, httpx.Client(transport=fake.transport()))

    sent: list[Event] = []
    return Watcher(kw.pop("cfg", None) or config(), ingest or sent.extend, store, metrics=metrics,
                   clock=clock or FakeClock(), client_for=client_for, **kw)


def test_prometheus_down_at_start_backs_off_then_recovers() -> None:
    fake, clock, metrics = FakePrometheus(), FakeClock(), Metrics()
    fake.mode, fake.series = "down", {"api": 0.2}
    w = watcher(fake, clock=clock, metrics=metrics)
    assert w.evaluate("latency") is None
    status = w.watch_status("latency")
    assert status.failures == 1 and status.next_at == clock.now + 30.0
    assert "Prometheus main (http://prom.test:9090) is unreachable" in (status.last_error or "")
    assert w.status()["endpoints"] == {"main": "down"}
    assert w.status()["watches"]["latency"]["ok"] is False
    assert w.evaluate("latency") is None and status.next_at == clock.now + 60.0
    fake.mode = "up"
    clock.now += 60.0
    result = w.evaluate("latency")
    assert result is not None and result.series == 1
    assert status.failures == 0 and status.last_ok_at == clock.now and status.next_at == clock.now + 15.0
    view = w.status()
    assert view["endpoints"] == {"main": "up"} and view["watches"]["latency"]["ok"] is True
    assert view["watches"]["latency"]["series"] == 1
    text = generate_latest(metrics.registry).decode()
    assert 'watchkeeper_watch_evaluations_total{outcome="error",watch="latency"} 2.0' in text
    assert 'watchkeeper_watch_evaluations_total{outcome="ok",watch="latency"} 1.0' in text
    assert 'watchkeeper_watch_prometheus_up{endpoint="main"} 1.0' in text
    assert 'watchkeeper_watch_series{watch="latency"} 1.0' in text


def test_backoff_is_capped_at_five_minutes() -> None:
    fake, clock = FakePrometheus(), FakeClock()
    fake.mode = "unavailable"
    w = watcher(fake, clock=clock)
    waits = []
    for _ in range(8):
        assert w.evaluate("latency") is None
        waits.append(w.watch_status("latency").next_at - clock.now)
    assert waits == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 300.0, 300.0]
    assert "503 unavailable: storage is busy" in (w.watch_status("latency").last_error or "")
    assert w.status()["endpoints"] == {"main": "down"}


def test_a_rejected_query_is_an_error_of_the_watch_not_of_the_endpoint() -> None:
    fake = FakePrometheus()
    fake.mode = "bad"
    w = watcher(fake)
    assert w.evaluate("latency") is None
    assert "bad_data: parse error" in (w.watch_status("latency").last_error or "")
    assert w.status()["endpoints"] == {"main": "up"}


def spike_after_training(fake: FakePrometheus, w: Watcher, n: int = 30) -> None:
    for i in range(n):
        fake.series = {"api": 0.2 + 0.002 * (i % 3)}
        assert w.evaluate("latency") is not None
    fake.series = {"api": 5.0}


def test_events_are_ingested_and_kept_while_ingesting_fails() -> None:
    fake, clock = FakePrometheus(), FakeClock()
    batches: list[list[Event]] = []
    failing = [True]

    def ingest(events: list[Event]) -> None:
        if failing[0]:
            raise RuntimeError("database is unreachable")
        batches.append(list(events))

    w = watcher(fake, ingest=ingest, clock=clock)
    spike_after_training(fake, w)
    assert w.evaluate("latency") is not None  # the query worked; recording its event did not
    status = w.watch_status("latency")
    assert status.failures == 1 and status.pending_events == 1
    assert "cannot record events: database is unreachable" in (status.last_error or "")
    failing[0] = False
    fake.series = {"api": 5.5}
    w.evaluate("latency")
    [[event]] = batches
    assert (event.kind, event.status, event.source, event.name, event.service) == (
        EventKind.ANOMALY, Status.FIRING, "watch", "latency", "api")
    assert status.failures == 0 and status.pending_events == 0 and status.firing == 1


def test_the_loop_survives_an_error_mid_run_and_recovers() -> None:
    fake = FakePrometheus()
    fake.series = {"api": 0.2}
    w = watcher(fake, cfg=config(interval=0.02), clock=time.time, max_backoff=0.1)
    w.start()
    try:
        wait_for(lambda: w.watch_status("latency").evaluations >= 3, what="first evaluations")
        fake.mode = "unavailable"
        wait_for(lambda: w.watch_status("latency").failures >= 3, what="failures to be counted")
        assert w._thread is not None and w._thread.is_alive()
        assert w.status()["watches"]["latency"]["last_error"]
        before = w.watch_status("latency").evaluations
        fake.mode = "up"
        wait_for(lambda: w.watch_status("latency").failures == 0
                 and w.watch_status("latency").evaluations > before, what="recovery")
    finally:
        w.stop()
    assert w._thread is None


def test_detector_state_survives_a_restart(service: Watchkeeper) -> None:
    fake = FakePrometheus()
    store = DetectorStateStore(service.db, service.clock)
    first = watcher(fake, store=store, save_every=10)
    for i in range(9):
        fake.series = {"api": 0.2 + 0.002 * (i % 3)}
        first.evaluate("latency")
    assert store.load("latency") == {}  # saved in batches, not on every evaluation
    first.evaluate("latency")
    assert list(store.load("latency")) == ['latency{service="api"}']
    for i in range(20):
        fake.series = {"api": 0.2 + 0.002 * (i % 3)}
        first.evaluate("latency")
    first.stop()  # saves what changed since the last batch
    saved = store.load("latency")['latency{service="api"}']
    assert saved["detector"]["kind"] == "RobustSeasonal" and saved["last_at"] == fake.t

    fake.series = {"api": 5.0}
    fresh, restarted = [], []
    watcher(fake, ingest=fresh.extend).evaluate("latency")  # nothing learned: no opinion yet
    fake.t -= fake.step  # the same sample again, for the restarted watcher
    watcher(fake, ingest=restarted.extend, store=store).evaluate("latency")
    assert fresh == []
    assert [e.status for e in restarted] == [Status.FIRING]


def test_serve_reports_watches_in_healthz_and_metrics_and_ingests_anomalies(
        make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    fake = FakePrometheus()
    fake.series = {"api": 0.2}
    fake.mode = "down"  # Prometheus is down when serve starts
    with fake.serve() as url:
        service = make_service(sqlite_url, watch=config(url, interval=0.02))
        api = Api(service)
        with api.client:
            wait_for(lambda: api.client.get("/healthz").json()["details"]["prometheus"] == {"main": "down"},
                     what="the endpoint reported down at start")
            down = api.client.get("/healthz").json()["details"]["watch"]["latency"]
            assert down["ok"] is False and "unreachable" in down["last_error"]
            fake.mode = "up"

            def evaluated(n: int) -> bool:
                details = api.client.get("/healthz").json()["details"]
                return bool(details["watch"]["latency"]["evaluations"] >= n)

            wait_for(lambda: evaluated(25), what="the watch to learn")
            health = api.client.get("/healthz").json()
            assert health["status"] == "ok" and health["details"]["prometheus"] == {"main": "up"}
            assert health["details"]["watch"]["latency"]["series"] == 1
            fake.series = {"api": 5.0}
            wait_for(lambda: any(i["services"] == ["api"] for i in service.incidents()), what="an incident")
            metrics = api.client.get("/metrics").text
            assert 'watchkeeper_watch_evaluations_total{outcome="ok",watch="latency"}' in metrics
            assert 'watchkeeper_watch_prometheus_up{endpoint="main"} 1.0' in metrics
            [incident] = api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).json()
            assert incident["services"] == ["api"]
            fake.mode = "unavailable"
            wait_for(lambda: api.client.get("/healthz").json()["details"]["prometheus"] == {"main": "down"},
                     what="the endpoint reported down")
            assert api.client.get("/healthz").status_code == 200
        assert 'latency{service="api"}' in DetectorStateStore(service.db).load("latency")


def test_no_watches_no_watcher(api: Api) -> None:
    details = api.client.get("/healthz").json()["details"]
    assert "watch" not in details and details["rca"]["watches"] == []  # the ranker runs on traces alone
    assert api.client.app.state.watcher is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [{"detector": "nope"}, {"options": {"colour": 1}}])
def test_a_bad_detector_fails_at_start_up(bad: dict[str, Any]) -> None:
    from watchkeeper.errors import ConfigError

    cfg = config().model_dump()
    cfg["watches"][0].update(bad)
    with pytest.raises(ConfigError, match="latency"):
        Watcher(WatchConfig.model_validate(cfg), lambda _e: None)


def test_a_forecast_watch_queries_its_lookback_and_raises_a_forecast_event() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        start, end = float(request.url.params["start"]), float(request.url.params["end"])
        step = float(request.url.params["step"])
        times = [start + step * i for i in range(int((end - start) / step) + 1)]
        values = [[t, repr(0.5 + 0.35 * (t - start) / (end - start))] for t in times]  # 0.5 → 0.85
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"instance": "db-1"}, "values": values}]}})

    cfg = WatchConfig.model_validate({"prometheus": [{"url": "http://prom.test"}], "forecasts": [
        {"name": "disk-full", "query": "disk_used", "service_label": "instance", "threshold": 0.9,
         "horizon": "6h", "lookback": "24h", "step": "10m"}]})
    clock, sent = FakeClock(), []
    clock.now = 1.7e9
    w = Watcher(cfg, sent.extend, clock=clock,
                client_for=lambda e: PrometheusClient(e, httpx.Client(transport=httpx.MockTransport(handler))))
    result = w.evaluate("disk-full")
    assert result is not None and result.series == 1
    params = seen[0].url.params
    assert (float(params["end"]) - float(params["start"]), float(params["step"])) == (86_400.0, 600.0)
    [event] = sent
    assert (event.kind, event.status, event.name, event.service) == (EventKind.FORECAST, Status.FIRING,
                                                                    "disk-full", "db-1")
    assert w.status()["watches"]["disk-full"]["firing"] == 1
