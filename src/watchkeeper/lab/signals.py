"""The lab's signals without Prometheus: scrape every service's ``/metrics``, derive a few
per-service series, and turn them into Watchkeeper anomaly events.

* :func:`parse` reads one Prometheus text page (prometheus_client's parser) into a :class:`Sample`
  of raw counters and gauges; :func:`derive` turns two consecutive samples into the derived
  metrics of :data:`METRICS` (rates from counter deltas, the p90 latency
  from histogram bucket deltas, as PromQL's ``rate`` and ``histogram_quantile`` would).
* :class:`Scraper` does that over HTTP for every service (and every instance of it).
* :class:`Monitor` keeps the series, scores each one with a robust detector wrapped in
  :class:`~watchkeeper.detect.filter.AnomalyFilter` (scores separate from decisions; anomalous
  points are not learned) and evaluates the plain SLO rules of :data:`RULES` — the same rules
  :mod:`watchkeeper.lab.prometheus` writes in PromQL. Every rule or detector window yields a
  firing event when it opens and a resolved event, same fingerprint, when it closes.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from watchkeeper.detect.base import Detector
from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.filter import AnomalyFilter
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.lab.record import COLUMNS, Recorder
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.sources.base import fingerprint_of

SOURCE = "watchkeeper.lab"
#: The derived metrics: the recorded columns plus failed calls to dependencies per second.
METRICS = (*COLUMNS, "dependency_error_rate")
HOST = "127.0.0.1"
NAN = math.nan
MB = 1024.0 * 1024.0

# -- one scrape ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The raw values of one scrape of one instance (counters are cumulative)."""

    at: float
    requests: Mapping[str, float] = field(default_factory=dict)  # status code -> count
    buckets: Mapping[float, float] = field(default_factory=dict)  # le -> cumulative count
    dependency_errors: float = 0.0
    cpu_seconds: float = NAN
    rss_bytes: float = NAN
    disk_used: float = NAN
    disk_capacity: float = NAN
    version: str = ""


def parse(text: str, at: float) -> Sample:
    """Read one ``/metrics`` page of a lab service.

    >>> page = '''lab_requests_total{service="a",status="200"} 90
    ... lab_requests_total{service="a",status="500"} 10
    ... process_resident_memory_bytes 5e7
    ... '''
    >>> s = parse(page, at=1.0)
    >>> dict(s.requests), s.rss_bytes
    ({'200': 90.0, '500': 10.0}, 50000000.0)
    """
    requests: dict[str, float] = {}
    buckets: dict[float, float] = {}
    values: dict[str, float] = {}
    dependency_errors = 0.0
    version = ""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "lab_requests_total":
                status = s.labels.get("status", "")
                requests[status] = requests.get(status, 0.0) + s.value
            elif s.name == "lab_request_duration_seconds_bucket":
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name == "lab_dependency_errors_total":
                dependency_errors += s.value
            elif s.name == "lab_config_version_info" and s.value:
                version = s.labels.get("version", "")
            elif s.name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                            "lab_disk_used_bytes", "lab_disk_capacity_bytes"):
                values[s.name] = values.get(s.name, 0.0) + s.value
    return Sample(
        at, requests, buckets, dependency_errors, values.get("process_cpu_seconds_total", NAN),
        values.get("process_resident_memory_bytes", NAN), values.get("lab_disk_used_bytes", NAN),
        values.get("lab_disk_capacity_bytes", NAN), version,
    )


def lab_ports(directory: Path | str) -> dict[str, list[int]]:
    """service -> the ports of its instances, from the ``lab.json`` of the lab in ``directory``."""
    path = Path(directory) / "lab.json"
    try:
        lab = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, list[int]] = {}
        for name, svc in lab["services"].items():
            ports = [int(svc["port"])] + [int(i["port"]) for i in svc.get("instances", [])]
            out[str(name)] = list(dict.fromkeys(ports))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot read the lab's services from {path}: {exc}") from exc
    return out


def _delta(cur: float, prev: float) -> float:
    """A counter's increase; a decrease means the process restarted and counts from 0 again."""
    return cur - prev if cur >= prev else cur


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """PromQL's ``histogram_quantile`` over cumulative bucket counts (``le`` -> count).

    >>> quantile(0.9, {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0})
    0.5
    >>> quantile(0.5, {0.1: 0.0, 1.0: 10.0, math.inf: 10.0})
    0.55
    >>> math.isnan(quantile(0.9, {math.inf: 0.0}))
    True
    """
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return NAN
    total = buckets[math.inf]
    if not total > 0:
        return NAN
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == math.inf:
                return lower  # the highest finite bound, as Prometheus answers
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return NAN


def derive(prev: Sequence[Sample | None], cur: Sequence[Sample | None]) -> dict[str, float]:
    """The derived metrics of one service from the previous and the current scrape of each of its
    instances (``None`` = that scrape failed).

    Rates need two scrapes of an instance; ``up`` is 1 only when every instance answered; when
    none did, ``up`` is the only value. CPU, RSS and disk are the largest over the instances (the
    one that hurts), requests and latencies are pooled.

    >>> a = Sample(0.0, {"200": 100.0}, {0.1: 100.0, 2.5: 100.0, math.inf: 100.0}, cpu_seconds=1.0, rss_bytes=4e7)
    >>> b = Sample(2.0, {"200": 118.0, "500": 2.0}, {0.1: 110.0, 2.5: 120.0, math.inf: 120.0},
    ...            cpu_seconds=1.1, rss_bytes=4e7, disk_used=10.0, disk_capacity=100.0)
    >>> d = derive([a], [b])
    >>> d["request_rate"], d["error_ratio"], d["latency_p90_s"], round(d["cpu_rate"], 3), d["up"]
    (10.0, 0.1, 2.02, 0.05, 1.0)
    >>> derive([b], [None])
    {'up': 0.0}
    """
    answered = [s for s in cur if s is not None]
    out: dict[str, float] = {"up": 1.0 if answered and len(answered) == len(cur) else 0.0}
    if not answered:
        return out
    total = errors = dependency_errors = 0.0
    buckets: dict[float, float] = {}
    cpu: list[float] = []
    have_rate = False
    for before, now in zip(prev, cur, strict=True):
        if now is None or before is None or not now.at > before.at:
            continue
        have_rate = True
        dt = now.at - before.at
        for status, count in now.requests.items():
            d = _delta(count, before.requests.get(status, 0.0))
            total += d / dt
            if status.startswith("5"):
                errors += d / dt
        dependency_errors += _delta(now.dependency_errors, before.dependency_errors) / dt
        for le, count in now.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + _delta(count, before.buckets.get(le, 0.0))
        if not (math.isnan(now.cpu_seconds) or math.isnan(before.cpu_seconds)):
            cpu.append(_delta(now.cpu_seconds, before.cpu_seconds) / dt)
    if have_rate:
        out["request_rate"] = total
        out["error_ratio"] = errors / total if total > 0 else 0.0
        out["latency_p90_s"] = quantile(0.9, buckets)
        out["cpu_rate"] = max(cpu) if cpu else NAN
        out["dependency_error_rate"] = dependency_errors
    out["rss_bytes"] = max((s.rss_bytes for s in answered), default=NAN)
    ratios = [s.disk_used / s.disk_capacity for s in answered if s.disk_capacity > 0]
    out["disk_used_ratio"] = max(ratios) if ratios else NAN
    return {name: out[name] for name in METRICS if name in out}


class Scraper:
    """Scrape every instance of every service; derive its metrics from consecutive scrapes.

    ``endpoints`` maps a service to its base URL (or the URLs of its instances). A failed scrape
    (refused, timed out, not 200, unparsable) counts as that instance being down. Built with
    :meth:`from_lab`, it follows the lab: ``lab.json`` is read again whenever it changes (an
    instance added by ``lab scale``, a service restarted on another port).
    """

    def __init__(
        self, endpoints: Mapping[str, str | Sequence[str]], *, timeout: float = 2.0,
        client: httpx.Client | None = None, min_window: float = 1.0,
    ) -> None:
        self.endpoints: dict[str, list[str]] = {
            service: [urls] if isinstance(urls, str) else list(urls) for service, urls in endpoints.items()
        }
        self.min_window = min_window
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 0.5)),
                                              trust_env=False)
        self._seen: dict[str, deque[Sample | None]] = {}  # url -> its recent scrapes, oldest first
        #: service -> the configuration version its answering instances report (``v1,v2`` when mixed)
        self.versions: dict[str, str] = {}
        self._lab: Path | None = None
        self._lab_mtime = 0.0

    @classmethod
    def from_lab(cls, directory: Path | str, **kwargs: Any) -> Scraper:
        """The services and instances of a running lab, from its ``lab.json``."""
        scraper = cls({}, **kwargs)
        scraper._lab = Path(directory)
        scraper._follow_lab()
        return scraper

    def _follow_lab(self) -> None:
        assert self._lab is not None
        try:
            mtime = (self._lab / "lab.json").stat().st_mtime
        except OSError:
            mtime = -1.0  # lab.json gone (lab down): lab_ports names the problem below
        if mtime == self._lab_mtime and self.endpoints:
            return
        ports = lab_ports(self._lab)
        self.endpoints = {name: [f"http://{HOST}:{p}" for p in ps] for name, ps in ports.items()}
        self._lab_mtime = mtime

    def _before(self, url: str, now: float) -> Sample | None:
        """The latest earlier scrape at least ``min_window`` old (rates over less are mostly noise:
        two scrapes 0.2 s apart see 0 or 8 requests of a 20 req/s service); None after a failure."""
        for sample in reversed(self._seen.get(url, ())):
            if sample is None:
                return None
            if now - sample.at >= self.min_window:
                return sample
        return None

    def fetch(self, url: str, now: float) -> Sample | None:
        try:
            response = self._client.get(url.rstrip("/") + "/metrics")
            if response.status_code != 200:
                return None
            return parse(response.text, now)
        except (httpx.HTTPError, ValueError):
            return None

    def scrape(self, now: float) -> dict[str, dict[str, float]]:
        """One scrape of everything: service -> derived metric -> value (see :func:`derive`)."""
        if self._lab is not None:
            with contextlib.suppress(ValueError):  # a lab.json being rewritten: keep the last targets
                self._follow_lab()
        out: dict[str, dict[str, float]] = {}
        for service, urls in self.endpoints.items():
            cur = [self.fetch(url, now) for url in urls]
            out[service] = derive([self._before(url, now) for url in urls], cur)
            versions = sorted({c.version for c in cur if c is not None and c.version})
            if versions:
                self.versions[service] = ",".join(versions)
            for url, sample in zip(urls, cur, strict=True):
                self._seen.setdefault(url, deque(maxlen=16)).append(sample)
        return out

    def close(self) -> None:
        self._client.close()


# -- detectors -------------------------------------------------------------------------------


class Baseline(RobustSeasonal):
    """:class:`~watchkeeper.detect.robust.RobustSeasonal` that scores only what an operator would
    call worse: deviations on the harmful ``side`` (``"up"``, ``"down"`` or ``"both"``) of at
    least ``floor`` — 2 ms more latency or one error in a thousand is not an anomaly, however
    quiet the series was, and a drop in CPU or errors is good news.

    >>> det = Baseline(floor=0.05, side="up", window=8, warmup=4, season="none")
    >>> for i in range(20):
    ...     det.learn_one(0.2, float(i))
    >>> det.score_one(0.24, 20.0), det.score_one(0.0, 20.0), det.score_one(0.9, 20.0) > 0.9
    (0.0, 0.0, True)
    """

    def __init__(self, floor: float = 0.0, side: str = "both", **kwargs: Any) -> None:
        if side not in ("up", "down", "both"):
            raise ValueError(f"side must be up, down or both, not {side!r}")
        super().__init__(**kwargs)
        self.floor = floor
        self.side = side

    def params(self) -> dict[str, Any]:
        base = {name: getattr(self, name) for name in inspect.signature(RobustSeasonal.__init__).parameters
                if name != "self"}
        return {"floor": self.floor, "side": self.side, **base}

    def score_one(self, x: float, t: float) -> float:
        span = self.expected_range(t)
        if span is not None:
            deviation = x - (span[0] + span[1]) / 2.0
            if abs(deviation) < self.floor or (self.side == "up" and deviation < 0) or (
                    self.side == "down" and deviation > 0):
                return 0.0
        return super().score_one(x, t)


#: The smallest deviation worth an anomaly, per derived metric.
FLOORS: Mapping[str, float] = {
    "error_ratio": 0.02, "dependency_error_rate": 1.0, "latency_p90_s": 0.1, "cpu_rate": 0.15,
    "rss_bytes": 32 * MB, "disk_used_ratio": 0.05,
}


class RateCusum(Cusum):
    """:class:`~watchkeeper.detect.changepoint.Cusum` whose noise is at least ``min_cv`` of the
    level: a paced load generator is so steady that a one-scrape dip of 20 % would otherwise be
    a 15-sigma change, while a real loss of traffic still sums to the threshold in a few scrapes.

    >>> det = RateCusum(min_cv=0.05, warmup=10)
    >>> for i in range(30):
    ...     det.learn_one(20.0 + 0.01 * (i % 2), float(i))
    >>> det.score_one(16.0, 30.0) < 0.5, det.score_one(8.0, 30.0)
    (True, 1.0)
    """

    def __init__(self, min_cv: float = 0.05, warmup: int = 50, drift: float = 1.0, threshold: float = 10.0) -> None:
        super().__init__(warmup=warmup, drift=drift, threshold=threshold)
        self.min_cv = min_cv

    def _std(self) -> float:
        std = math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0
        return max(std, self.min_cv * abs(self._mean), 1e-9)

    def _sums(self, x: float) -> tuple[float, float]:
        z = (x - self._mean) / self._std()
        return max(0.0, self._pos + z - self.drift), max(0.0, self._neg - z - self.drift)

    def expected_range(self, t: float) -> tuple[float, float] | None:
        if self._n < self.warmup:
            return None
        width = (self.threshold + self.drift) * self._std()
        return (self._mean - width, self._mean + width)


def default_detector(metric: str) -> Detector:
    """Per derived metric: the request rate (both a drop and a surge matter) by a CUSUM
    change-point detector, which sums evidence over scrapes, with a noise floor of 5 % of the level;
    every other series by a median/MAD baseline without season (the lab runs for minutes),
    floored, watching the harmful side only."""
    if metric == "request_rate":
        return RateCusum(min_cv=0.05, warmup=20, drift=1.0, threshold=10.0)
    return Baseline(floor=FLOORS.get(metric, 0.0), side="up", window=32, season="none", warmup=10)


# -- SLO rules -------------------------------------------------------------------------------

#: One point of a series: (unix seconds, value).
Point = tuple[float, float]
_OPS: Mapping[str, Callable[[float, float], bool]] = {">": operator.gt, "<": operator.lt}


def last(points: Sequence[Point]) -> float:
    return points[-1][1] if points else NAN


def growth_per_minute(window_s: float) -> Callable[[Sequence[Point]], float]:
    """The growth per minute over the last ``window_s`` (least squares; NaN with fewer than 3
    points or when they span less than half the window)."""

    def slope(points: Sequence[Point]) -> float:
        if not points:
            return NAN
        end = points[-1][0]
        pts = [(t, v) for t, v in points if t >= end - window_s and not math.isnan(v)]
        if len(pts) < 3 or pts[-1][0] - pts[0][0] < window_s / 2:
            return NAN
        mt = sum(t for t, _ in pts) / len(pts)
        mv = sum(v for _, v in pts) / len(pts)
        var = sum((t - mt) ** 2 for t, _ in pts)
        if not var > 0:
            return NAN
        return 60.0 * sum((t - mt) * (v - mv) for t, v in pts) / var

    return slope


@dataclass(frozen=True)
class Rule:
    """``value(series of metric) op threshold`` for ``for_steps`` scrapes in a row fires ``alert``;
    it resolves after ``clear_steps`` scrapes in a row without the breach (Prometheus'
    ``keep_firing_for``), so that a noisy signal hovering at the threshold does not flap.

    A missing value (the service is down, or no rate yet) neither fires nor resolves the rule.
    """

    alert: str
    metric: str
    op: str
    threshold: float
    severity: Severity
    summary: str
    for_steps: int = 1
    clear_steps: int = 1
    value: Callable[[Sequence[Point]], float] = last
    unit: str = ""

    def breached(self, v: float) -> bool:
        return _OPS[self.op](v, self.threshold)

    @property
    def text(self) -> str:
        """The condition in words: ``error_ratio > 0.05 for 2 scrapes``."""
        if self.unit == "bytes/min":
            limit = f"growth {self.op} {self.threshold / MB:g} MiB/min"
        elif self.metric == "rss_bytes":
            limit = f"{self.op} {self.threshold / MB:g} MiB"
        else:
            limit = f"{self.op} {self.threshold:g}"
        return f"{self.metric} {limit} for {self.for_steps} scrape{'s' if self.for_steps > 1 else ''}"

    @property
    def expected_range(self) -> list[float | None]:
        return [None, self.threshold] if self.op == ">" else [self.threshold, None]


RSS_GROWTH_MB_PER_MIN = 30.0
RSS_LIMIT_BYTES = 250 * MB
RSS_GROWTH_WINDOW_S = 20.0
CPU_LIMIT_CORES = 0.3

#: The SLO rules an SRE would expect of any HTTP service (PromQL twins in lab/prometheus.py).
RULES: tuple[Rule, ...] = (
    Rule("ServiceDown", "up", "<", 1.0, Severity.CRITICAL, "{service} is down (its /metrics does not answer)"),
    Rule("HighErrorRatio", "error_ratio", ">", 0.05, Severity.ERROR,
         "{service}: {value:.1%} of requests fail (SLO 5%)", for_steps=2, clear_steps=2),
    Rule("HighLatency", "latency_p90_s", ">", 1.0, Severity.ERROR,
         "{service}: p90 latency {value:.2f}s (SLO 1s)", for_steps=2, clear_steps=2),
    # A lab service idles at ~0.05 cores; a hog on a busy 2-core machine gets 0.4–0.8 of one.
    Rule("HighCpu", "cpu_rate", ">", CPU_LIMIT_CORES, Severity.WARNING,
         "{service}: CPU {value:.2f} cores (limit 0.3)", for_steps=2, clear_steps=3),
    Rule("MemoryGrowing", "rss_bytes", ">", RSS_GROWTH_MB_PER_MIN * MB, Severity.WARNING,
         "{service}: RSS grows {mb_value:.0f} MB/min", for_steps=2,
         value=growth_per_minute(RSS_GROWTH_WINDOW_S), unit="bytes/min"),
    Rule("MemoryHigh", "rss_bytes", ">", RSS_LIMIT_BYTES, Severity.ERROR,
         "{service}: RSS {mb_value:.0f} MB (limit 250 MB)"),
    Rule("DependencyErrors", "dependency_error_rate", ">", 1.0, Severity.WARNING,
         "{service}: {value:.1f} failed calls/s to its dependencies", for_steps=2, clear_steps=3),
    Rule("DiskAlmostFull", "disk_used_ratio", ">", 0.9, Severity.ERROR, "{service}: disk {value:.0%} full"),
)


@dataclass
class _RuleState:
    streak: int = 0
    calm: int = 0  # scrapes in a row without the breach while firing
    firing_since: float | None = None
    peak: float = NAN
    labels: dict[str, str] = field(default_factory=dict)


# -- the monitor -----------------------------------------------------------------------------


class Monitor:
    """Series per service, scored by detectors and checked against SLO rules, as events.

    ``observe(now, values)`` takes one scrape's derived values (drive it directly in tests);
    ``step(now)`` scrapes first (and records, when given a recorder). ``scraper`` may be a
    :class:`Scraper` or just the endpoints (service -> base URL).

    >>> m = Monitor(rules=RULES[:1])
    >>> m.observe(0.0, {"api": {"up": 1.0}}) + m.observe(2.0, {"api": {"up": 1.0}})
    []
    >>> [(e.name, e.status.value, e.labels["severity"]) for e in m.observe(4.0, {"api": {"up": 0.0}})]
    [('ServiceDown', 'firing', 'critical')]
    >>> [(e.name, e.status.value) for e in m.observe(6.0, {"api": {"up": 1.0}})]
    [('ServiceDown', 'resolved')]
    """

    def __init__(
        self, scraper: Scraper | Mapping[str, str | Sequence[str]] | None = None, *, rules: Iterable[Rule] = RULES,
        detector: Callable[[str], Detector] | None = default_detector, threshold: float = 0.9,
        recorder: Recorder | None = None, history: int = 600,
    ) -> None:
        # Endpoints (service -> base URL) are scraped as given; Scraper.from_lab(dir) follows the lab.
        self.scraper = Scraper(scraper) if isinstance(scraper, Mapping) else scraper
        self.rules = tuple(rules)
        self.detector = detector
        self.threshold = threshold
        self.recorder = recorder
        self.series: dict[str, dict[str, deque[Point]]] = {}
        self._history = history
        self._filters: dict[tuple[str, str], AnomalyFilter] = {}
        self._rules: dict[tuple[str, str], _RuleState] = {}
        self._versions: dict[str, str] = {}

    def step(self, now: float) -> list[Event]:
        """Scrape once (``now`` in unix seconds), record, and return the events it causes."""
        if self.scraper is None:
            raise RuntimeError("Monitor.step needs a scraper; use observe() to feed values directly")
        values = self.scraper.scrape(now)
        if self.recorder is not None:
            self.recorder.write(now, values)
        return self.observe(now, values, self.scraper.versions)

    def observe(
        self, now: float, values: Mapping[str, Mapping[str, float]], versions: Mapping[str, str] | None = None,
    ) -> list[Event]:
        """One scrape's derived values (and each service's configuration version, which rule events
        carry as label ``version`` — a runbook can tell a bad deploy from a crash by it)."""
        self._versions.update(versions or {})
        events: list[Event] = []
        for service, metrics in values.items():
            series = self.series.setdefault(service, {})
            for metric in METRICS:
                v = metrics.get(metric, NAN)
                points = series.setdefault(metric, deque(maxlen=self._history))
                points.append((now, v))
                if metric != "up" and not math.isnan(v) and self.detector is not None:
                    events += self._filter(service, metric).update(v, now)
            for rule in self.rules:
                events += self._check(service, rule, now)
        return events

    def close(self) -> None:
        """Close the scraper's HTTP client."""
        if self.scraper is not None:
            self.scraper.close()

    def firing(self) -> list[tuple[str, str]]:
        """The (service, alertname) of every rule firing now."""
        return sorted(key for key, st in self._rules.items() if st.firing_since is not None)

    def _filter(self, service: str, metric: str) -> AnomalyFilter:
        key = (service, metric)
        f = self._filters.get(key)
        if f is None:
            assert self.detector is not None
            labels = {"service": service, "alertname": f"{_camel(metric)}Anomaly", "severity": "warning"}
            f = AnomalyFilter(self.detector(metric), series=f"{service} {metric}", threshold=self.threshold,
                              labels=labels, service=service)
            self._filters[key] = f
        return f

    def _check(self, service: str, rule: Rule, now: float) -> list[Event]:
        points = self.series[service].get(rule.metric, ())
        v = rule.value(points)
        st = self._rules.setdefault((service, rule.alert), _RuleState())
        if math.isnan(v):
            return []
        if rule.breached(v):
            st.streak += 1
            st.calm = 0
            if st.firing_since is None:
                if st.streak < rule.for_steps:
                    return []
                st.firing_since, st.peak = now, v
                st.labels = {"service": service, "alertname": rule.alert, "severity": rule.severity.value}
                if service in self._versions:
                    st.labels["version"] = self._versions[service]
                return [self._event(service, rule, st, v, now, Status.FIRING)]
            st.peak = max(st.peak, v) if rule.op == ">" else min(st.peak, v)
            return []
        st.streak = 0
        if st.firing_since is None:
            return []
        st.calm += 1
        if st.calm < rule.clear_steps:
            return []
        event = self._event(service, rule, st, v, now, Status.RESOLVED)
        st.firing_since, st.peak, st.calm = None, NAN, 0
        return [event]

    def _event(self, service: str, rule: Rule, st: _RuleState, v: float, now: float, status: Status) -> Event:
        labels = st.labels  # as when it fired: the resolution keeps the fingerprint
        start = _dt(st.firing_since if st.firing_since is not None else now)
        end = _dt(now) if status is Status.RESOLVED else None
        shown = st.peak if status is Status.RESOLVED else v
        summary = rule.summary.format(service=service, value=shown, mb_value=shown / MB)
        if status is Status.RESOLVED:
            summary = f"resolved: {summary} (now {v:g})"
        evidence: dict[str, Any] = {
            "series": f"{service} {rule.metric}", "rule": f"{rule.alert}: {rule.text}",
            "window": {"start": start.isoformat(), "end": None if end is None else end.isoformat()},
            "observed": v, "peak": None if math.isnan(st.peak) else st.peak, "expected_range": rule.expected_range,
            "annotations": {"summary": summary},
        }
        return Event(
            source=SOURCE, kind=EventKind.ANOMALY, fingerprint=fingerprint_of(labels, namespace="lab-slo"),
            status=status, severity=rule.severity, name=rule.alert, service=service, resource="", labels=labels,
            summary=summary, starts_at=start, ends_at=end, received_at=_dt(now), raw=evidence,
        )


def watch(
    monitor: Monitor, interval: float, emit: Callable[[list[Event]], None], stop: threading.Event,
    clock: Callable[[], float] = time.time,
) -> None:
    """Step ``monitor`` every ``interval`` seconds (on a fixed grid, skipping missed ticks) and hand
    each non-empty batch of events to ``emit``, until ``stop`` is set. Run it in a thread."""
    if not 0.1 <= interval <= 60.0:
        raise ValueError(f"the scrape interval must be between 0.1 and 60 seconds, not {interval}")
    next_at = clock()
    while not stop.is_set():
        events = monitor.step(clock())
        if events:
            emit(events)
        next_at += interval
        now = clock()
        if next_at < now:  # a slow scrape: skip the missed ticks rather than bunch up
            next_at = now + interval - (now - next_at) % interval
        stop.wait(next_at - now)


def _camel(metric: str) -> str:
    """``latency_p90_s`` -> ``LatencyP90S``."""
    return "".join(part.capitalize() for part in metric.split("_"))


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def as_native(event: Event) -> dict[str, Any]:
    """The event in Watchkeeper's own ingest schema (``POST /api/v1/ingest/events``)."""
    out: dict[str, Any] = {
        "summary": event.summary, "service": event.service, "name": event.name, "kind": event.kind.value,
        "status": event.status.value, "severity": event.severity.value, "fingerprint": event.fingerprint,
        "source": "lab", "labels": dict(event.labels), "starts_at": event.starts_at.isoformat(),
    }
    if event.resource:
        out["resource"] = event.resource
    if event.ends_at is not None:
        out["ends_at"] = event.ends_at.isoformat()
    return out
