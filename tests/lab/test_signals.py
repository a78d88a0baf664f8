"""The self-scrape path: a fake lab service (the contract's metrics in a prometheus_client
registry, with noisy simulated traffic) → parse/derive → Monitor events; and over real HTTP."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from watchkeeper.lab.record import COLUMNS, HEADER, Recorder
from watchkeeper.lab.signals import METRICS, RULES, Monitor, Scraper, as_native, derive, parse, watch
from watchkeeper.model import EventKind, Status

MB = 1024.0 * 1024.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
T0 = 1_790_000_000.0


class FakeService:
    """A lab service's /metrics without the service: each page first simulates the traffic of the
    time since the previous one (Poisson arrivals, log-normal latencies, noisy CPU and RSS).
    Set the fault knobs to break it."""

    def __init__(self, name: str, *, rps: float = 20.0, seed: int = 0) -> None:
        self.name = name
        self.rps = rps
        self.rng = np.random.default_rng(seed)
        self.error_share = 0.0
        self.latency_s = 0.02
        self.cpu_cores = 0.03
        self.leak_bytes_per_s = 0.0
        self.disk_ratio = 0.1
        self.version = "v1"
        self.dependency_failing = False
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("lab_requests", "requests", ["service", "status"], registry=r)
        self.duration = Histogram("lab_request_duration_seconds", "latency", ["service"], buckets=BUCKETS, registry=r)
        self.dep_errors = Counter("lab_dependency_errors", "dep errors", ["service", "dependency"], registry=r)
        self.disk_used = Gauge("lab_disk_used_bytes", "disk used", ["service"], registry=r)
        self.disk_capacity = Gauge("lab_disk_capacity_bytes", "disk capacity", ["service"], registry=r)
        self.info = Gauge("lab_config_version_info", "version", ["service", "version"], registry=r)
        self.cpu = Counter("process_cpu_seconds", "cpu", registry=r)
        self.rss = Gauge("process_resident_memory_bytes", "rss", registry=r)
        self.rss_bytes = 40 * MB
        self.disk_capacity.labels(name).set(50 * MB)
        self.last = time.time()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    def advance(self, dt: float) -> None:
        """Simulate ``dt`` seconds of traffic and process life."""
        rng = self.rng
        n = int(rng.poisson(self.rps * dt))
        failed = int(rng.binomial(n, self.error_share)) if n else 0
        if self.dependency_failing:  # degraded answers (200) while every call to "store" fails
            self.dep_errors.labels(self.name, "store").inc(n)
        if n - failed:
            self.requests.labels(self.name, "200").inc(n - failed)
        if failed:
            self.requests.labels(self.name, "500").inc(failed)
        for latency in rng.lognormal(math.log(self.latency_s), 0.4, size=n):
            self.duration.labels(self.name).observe(float(latency))
        self.cpu.inc(max(0.0, self.cpu_cores * dt * float(rng.normal(1.0, 0.2))))
        self.rss_bytes += self.leak_bytes_per_s * dt
        self.rss.set(self.rss_bytes + float(rng.normal(0.0, 0.3 * MB)))
        self.disk_used.labels(self.name).set(self.disk_ratio * 50 * MB + float(rng.normal(0.0, 0.001 * MB)))
        self.info.clear()
        self.info.labels(self.name, self.version).set(1)

    def page(self, dt: float | None = None) -> str:
        with self.lock:
            now = time.time()
            self.advance(now - self.last if dt is None else dt)
            self.last = now
            return generate_latest(self.registry).decode()

    # -- over HTTP -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeService:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, code, ctype = fake.page().encode(), 200, CONTENT_TYPE_LATEST
                else:
                    body, code, ctype = b"ok\n", 200, "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


#: Fault kind of the lab contract -> how it shows on the fake service (None = the process is gone).
FAULTS: dict[str, dict[str, Any] | None] = {
    "crash": None,
    "hang": {"latency_s": 2.0},
    "error_burst": {"error_share": 0.3},
    "cpu_hog": {"cpu_cores": 1.0},
    "memory_leak": {"leak_bytes_per_s": 2 * MB},
    "disk_fill": {"disk_ratio": 0.96},
    "bad_deploy": {"error_share": 0.5, "version": "v2"},
    "dependency_outage": {"dependency_failing": True},
}
#: The SLO rule each fault must fire.
EXPECTED_RULE = {
    "crash": "ServiceDown", "hang": "HighLatency", "error_burst": "HighErrorRatio", "cpu_hog": "HighCpu",
    "memory_leak": "MemoryGrowing", "disk_fill": "DiskAlmostFull", "bad_deploy": "HighErrorRatio",
    "dependency_outage": "DependencyErrors",
}


def drive(monitor: Monitor, fake: FakeService, start: float, seconds: float, interval: float,
          down: bool = False) -> tuple[float, list[Any]]:
    """Scrape ``fake`` every ``interval`` for ``seconds`` of simulated time (no HTTP, no sleeping)."""
    events: list[Any] = []
    t = start
    prev = getattr(fake, "_sample", None)
    while t < start + seconds:
        t += interval
        cur = None if down else parse(fake.page(interval), t)
        events += monitor.observe(t, {fake.name: derive([prev], [cur])})
        prev = cur
    fake._sample = prev  # type: ignore[attr-defined]
    return t, events


# -- parse / derive ------------------------------------------------------------------------------
def test_derive_from_two_pages_of_a_fake_service() -> None:
    fake = FakeService("api", rps=50.0, seed=1)
    fake.error_share = 0.2
    fake.latency_s = 0.3
    a = parse(fake.page(10.0), T0)
    b = parse(fake.page(10.0), T0 + 10.0)
    d = derive([a], [b])
    assert set(d) == set(METRICS)
    assert 40.0 < d["request_rate"] < 60.0
    assert 0.1 < d["error_ratio"] < 0.3
    assert 0.25 < d["latency_p90_s"] < 1.0  # lognormal(0.3, 0.4): p90 ≈ 0.5 s
    assert 0.01 < d["cpu_rate"] < 0.06
    assert abs(d["rss_bytes"] - 40 * MB) < 5 * MB
    assert abs(d["disk_used_ratio"] - 0.1) < 0.01
    assert d["up"] == 1.0
    assert b.version == "v1"


def test_counter_reset_after_a_restart_counts_from_zero() -> None:
    before = parse(FakeService("api", seed=2).page(100.0), T0)
    restarted = FakeService("api", seed=3)
    after = parse(restarted.page(2.0), T0 + 2.0)
    d = derive([before], [after])
    assert 0 < d["request_rate"] * 2.0 == sum(after.requests.values())


def test_no_traffic_is_no_error_and_no_latency() -> None:
    fake = FakeService("idle", rps=0.0)
    d = derive([parse(fake.page(5.0), T0)], [parse(fake.page(5.0), T0 + 5)])
    assert d["request_rate"] == 0.0 and d["error_ratio"] == 0.0
    assert math.isnan(d["latency_p90_s"])


def test_one_instance_down_of_two() -> None:
    a, b = FakeService("api", seed=4), FakeService("api", seed=5)
    prev = [parse(a.page(2.0), T0), parse(b.page(2.0), T0)]
    cur = [parse(a.page(2.0), T0 + 2), None]
    d = derive(prev, cur)
    assert d["up"] == 0.0 and d["request_rate"] > 0  # degraded: the other instance still serves


# -- the monitor, time driven directly ------------------------------------------------------------
@pytest.mark.parametrize("interval", [2.0, 5.0])
def test_a_healthy_noisy_service_stays_quiet(interval: float) -> None:
    for seed in range(3):
        monitor = Monitor()
        _, events = drive(monitor, FakeService("api", seed=seed), T0, 300.0, interval)
        assert events == [], [(e.name, e.labels, e.raw) for e in events]


@pytest.mark.parametrize("interval", [2.0, 5.0])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_kind_is_detected_within_30s_and_resolves(fault: str, interval: float) -> None:
    fake = FakeService("checkout", seed=7)
    monitor = Monitor()
    t, events = drive(monitor, fake, T0, 120.0, interval)
    assert events == []
    knobs = FAULTS[fault]
    saved = {k: getattr(fake, k) for k in (knobs or {})}
    for k, v in (knobs or {}).items():
        setattr(fake, k, v)
    t, events = drive(monitor, fake, t, 30.0, interval, down=knobs is None)
    fired = {e.labels["alertname"] for e in events if e.status is Status.FIRING}
    assert EXPECTED_RULE[fault] in fired, (fault, fired)
    rule_event = next(e for e in events if e.labels["alertname"] == EXPECTED_RULE[fault])
    assert rule_event.kind is EventKind.ANOMALY and rule_event.service == "checkout"
    assert set(rule_event.labels) == {"service", "alertname", "severity"}
    assert rule_event.raw["series"].startswith("checkout ") and rule_event.raw["expected_range"]

    # Repair: the fault goes, so does every firing event (a leak's memory stays high until restart).
    for k, v in saved.items():
        setattr(fake, k, v)
    if fault == "memory_leak":
        fake.rss_bytes = 40 * MB
    _, after = drive(monitor, fake, t, 90.0, interval)
    opened = {e.fingerprint for e in events if e.status is Status.FIRING}
    closed = {e.fingerprint for e in events + after if e.status is Status.RESOLVED}
    assert opened <= closed, [(e.name, e.labels) for e in events + after]
    assert monitor.firing() == []


def test_rule_event_evidence_and_fingerprint_are_stable() -> None:
    monitor = Monitor(rules=[r for r in RULES if r.alert == "HighErrorRatio"], detector=None)
    values = [0.0, 0.2, 0.3, 0.25, 0.02, 0.01]
    events = [e for i, v in enumerate(values) for e in monitor.observe(T0 + 2 * i, {"api": {"error_ratio": v}})]
    assert [(e.status, e.starts_at.timestamp()) for e in events] == [
        (Status.FIRING, T0 + 4), (Status.RESOLVED, T0 + 4)]  # fires on the 2nd breach, clears on the 2nd calm
    firing, resolved = events
    assert firing.fingerprint == resolved.fingerprint
    assert firing.raw["observed"] == 0.3 and resolved.raw["peak"] == 0.3 and resolved.raw["observed"] == 0.01
    assert firing.raw["expected_range"] == [None, 0.05]
    assert resolved.ends_at is not None and resolved.ends_at.timestamp() == T0 + 10
    native = as_native(firing)
    assert native["fingerprint"] == firing.fingerprint and native["kind"] == "anomaly"


def test_missing_values_neither_fire_nor_resolve_and_a_dip_does_not_resolve() -> None:
    [rule] = [r for r in RULES if r.alert == "HighCpu"]
    assert rule.clear_steps == 3
    monitor = Monitor(rules=[rule], detector=None)
    seq = [{"cpu_rate": 1.0}, {"cpu_rate": 1.0}, {"up": 0.0}, {"cpu_rate": 1.0}, {"cpu_rate": 0.1},
           {"cpu_rate": 0.1}, {"cpu_rate": 0.9}, {"cpu_rate": 0.1}, {"cpu_rate": 0.1}, {"cpu_rate": 0.1}]
    events = [e for i, v in enumerate(seq) for e in monitor.observe(T0 + 5 * i, {"api": v})]
    # two calm scrapes, then a breach again: still the one alert; it resolves on the third calm scrape
    assert [e.status for e in events] == [Status.FIRING, Status.RESOLVED]
    assert events[1].received_at.timestamp() == T0 + 45


# -- over HTTP: Scraper, Monitor.step, Recorder --------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService("frontend", rps=100.0, seed=11).start()
    yield service
    service.stop()


def test_scraper_over_http_and_recorded_csv(fake: FakeService, tmp_path: Path) -> None:
    monitor = Monitor(Scraper({"frontend": fake.url, "gone": "http://127.0.0.1:9"}, timeout=1.0, min_window=0.2),
                      recorder=Recorder(tmp_path))
    t = time.time()
    first = monitor.step(t)
    assert [(e.service, e.name, e.status) for e in first] == [("gone", "ServiceDown", Status.FIRING)]
    assert math.isnan(monitor.series["frontend"]["request_rate"][-1][1])  # no rate from one scrape
    time.sleep(0.3)
    assert monitor.step(time.time()) == []
    latest = {m: pts[-1][1] for m, pts in monitor.series["frontend"].items()}
    assert latest["up"] == 1.0 and latest["request_rate"] > 0 and latest["rss_bytes"] > 0

    assert monitor.scraper is not None and monitor.scraper.versions == {"frontend": "v1"}
    rows = (tmp_path / "metrics" / "frontend.csv").read_text().splitlines()
    assert rows[0] + "\n" == HEADER and len(rows) == 3
    cells = rows[2].split(",")
    assert float(cells[0]) > t and float(cells[COLUMNS.index("up") + 1]) == 1.0
    assert float(cells[COLUMNS.index("request_rate") + 1]) > 0
    down = (tmp_path / "metrics" / "gone.csv").read_text().splitlines()[1].split(",")
    assert down[1:] == ["nan"] * (len(COLUMNS) - 1) + ["0"]

    fake.stop()
    events = monitor.step(time.time())
    assert ("frontend", "ServiceDown", Status.FIRING) in [(e.service, e.name, e.status) for e in events]
    monitor.close()


def test_scraper_from_lab_json(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text(
        '{"started_at": "2026-11-23T10:00:00+00:00", "services": {"cache": {"port": 4001, "pid": 1, "deps": [],'
        ' "version": "v1", "instances": [{"port": 4001, "pid": 1}, {"port": 4002, "pid": 2}]}},'
        ' "loadgen": {"pid": 3, "rps": 20}}')
    scraper = Scraper.from_lab(tmp_path)
    assert scraper.endpoints == {"cache": ["http://127.0.0.1:4001", "http://127.0.0.1:4002"]}
    scraper.close()
    with pytest.raises(ValueError, match=r"lab\.json"):
        Scraper.from_lab(tmp_path / "missing")


def test_only_the_harmful_side_is_an_anomaly() -> None:
    fake = FakeService("api", seed=21)
    fake.cpu_cores, fake.latency_s = 0.15, 0.2  # busy, but well under the 0.3-core limit
    monitor = Monitor()
    t, events = drive(monitor, fake, T0, 120.0, 2.0)
    assert events == [], [(e.name, e.labels, e.summary) for e in events]
    fake.cpu_cores, fake.latency_s = 0.01, 0.005  # better: no event
    t, events = drive(monitor, fake, t, 30.0, 2.0)
    assert events == [], [(e.name, e.labels) for e in events]
    fake.rps = 8.0  # traffic lost: an anomaly on the request rate (both sides are watched)
    _, events = drive(monitor, fake, t, 30.0, 2.0)
    assert {e.labels["alertname"] for e in events} == {"RequestRateAnomaly"}
    assert events[0].status is Status.FIRING and events[0].raw["peak"]["value"] < 14.0
    assert events[0].raw["detector"].startswith("RateCusum(")


def test_watch_steps_until_stopped_and_emits_batches(fake: FakeService) -> None:
    batches: list[list[Any]] = []
    stop = threading.Event()
    monitor = Monitor({"frontend": fake.url, "gone": "http://127.0.0.1:9"})  # endpoints: a Scraper of them
    thread = threading.Thread(target=watch, args=(monitor, 0.1, batches.append, stop))
    thread.start()
    deadline = time.monotonic() + 20
    while len(monitor.series.get("frontend", {}).get("up", ())) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    monitor.close()
    assert not thread.is_alive()
    assert len(monitor.series["frontend"]["up"]) >= 5
    assert [[(e.service, e.name) for e in b] for b in batches] == [[("gone", "ServiceDown")]]
    with pytest.raises(ValueError, match="interval"):
        watch(monitor, 0.0, batches.append, stop)


def test_recorded_csv_reads_back_with_the_rca_lab_reader(tmp_path: Path) -> None:
    from watchkeeper.eval.rca import read_lab_metrics

    recorder = Recorder(tmp_path)
    fake = FakeService("payment", seed=31)
    prev = None
    for i in range(5):
        cur = None if i == 3 else parse(fake.page(2.0), T0 + 2 * i)
        recorder.write(T0 + 2 * i, {"payment": derive([prev], [cur])})
        prev = cur
    series = read_lab_metrics(tmp_path / "metrics")["payment"]
    assert set(series) == set(COLUMNS)
    t, up = series["up"]
    assert t.tolist() == [T0 + 2 * i for i in range(5)] and up.tolist() == [1, 1, 1, 0, 1]
    rate = series["request_rate"][1]
    assert math.isnan(rate[0]) and math.isnan(rate[3]) and math.isnan(rate[4]) and 10 < rate[1] < 30


def test_scraper_follows_lab_json_when_a_service_is_scaled(tmp_path: Path) -> None:
    first, second = FakeService("cache", seed=41).start(), FakeService("cache", seed=42).start()
    lab = tmp_path / "lab.json"

    def write(ports: list[int], mtime: float) -> None:
        lab.write_text(json.dumps({"services": {"cache": {
            "port": ports[0], "pid": 1, "deps": [], "version": "v1",
            "instances": [{"port": p, "pid": 1} for p in ports]}}}))
        os.utime(lab, (mtime, mtime))

    try:
        write([first.port], 1_000.0)
        scraper = Scraper.from_lab(tmp_path, timeout=1.0)
        assert scraper.scrape(T0)["cache"]["up"] == 1.0
        write([first.port, second.port], 2_000.0)
        both = scraper.scrape(T0 + 1)
        assert scraper.endpoints == {"cache": [first.url, second.url]} and both["cache"]["up"] == 1.0
        second.stop()
        assert scraper.scrape(T0 + 2)["cache"]["up"] == 0.0  # one instance of two is gone
        lab.unlink()  # the lab went down: keep scraping the last known targets
        assert scraper.scrape(T0 + 3)["cache"]["up"] == 0.0
        scraper.close()
    finally:
        first.stop()
        second.stop()


def test_rates_need_a_minimum_window_between_scrapes(fake: FakeService) -> None:
    scraper = Scraper({"frontend": fake.url}, timeout=1.0, min_window=0.5)
    t = time.time()
    scraper.scrape(t)
    assert set(scraper.scrape(t + 0.1)["frontend"]) == {"up", "rss_bytes", "disk_used_ratio"}  # too close: no rate
    time.sleep(0.5)
    later = scraper.scrape(t + 0.7)["frontend"]  # against an earlier scrape at least 0.5 s back
    assert later["request_rate"] > 0 and later["up"] == 1.0
    scraper.close()


def test_rule_events_carry_the_version_they_fired_with() -> None:
    monitor = Monitor(rules=[r for r in RULES if r.alert == "HighErrorRatio"], detector=None)
    seq = [(0.3, "v2"), (0.3, "v2"), (0.0, "v1"), (0.0, "v1")]  # a bad deploy, then its rollback
    events = [e for i, (v, version) in enumerate(seq)
              for e in monitor.observe(T0 + 2 * i, {"api": {"error_ratio": v}}, {"api": version})]
    assert [(e.status, e.labels["version"]) for e in events] == [(Status.FIRING, "v2"), (Status.RESOLVED, "v2")]
    assert events[0].fingerprint == events[1].fingerprint
