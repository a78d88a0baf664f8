"""One watch, evaluated: the instant-query result in, anomaly events out (pure, no threads, no IO).

:class:`WatchEngine` keeps one streaming detector per series a :class:`~watchkeeper.watch.config.Watch`
returns (key: the watch name and the series' sorted labels). Each evaluation scores every series,
applies the watch's ``direction`` and ``floor``, and reports an anomaly window as
``Event(kind=anomaly)``: FIRING when a series turns anomalous, RESOLVED once it has been calm for
``calm`` evaluations in a row. The learning rule is :class:`~watchkeeper.detect.filter.AnomalyFilter`'s
(anomalous points stay out of training, at most ``max_skip`` in a row); the window rule differs
from it on purpose — one calm point does not close a window here, so a noisy series hovering at the
threshold does not flap between firing and resolved.

:class:`ForecastEngine` does the same for a :class:`~watchkeeper.watch.config.ForecastWatch` with
:class:`~watchkeeper.detect.forecast.Forecaster`: ``Event(kind=forecast)`` while a crossing is
predicted within the horizon, RESOLVED when it no longer is.

Everything a series has learned is a JSON-able dict (:meth:`WatchEngine.dump` /
:meth:`WatchEngine.load`), so that detectors survive a restart.

>>> from watchkeeper.watch.config import Watch
>>> w = Watch(name="latency", query="q", direction="up", floor=0.05, detector="robust",
...           options={"window": 16, "season": "none", "warmup": 5})
>>> engine = WatchEngine(w)
>>> for i in range(30):
...     _ = engine.evaluate([({"service": "api"}, 10.0 * i, 0.2 + 0.001 * (i % 2))])
>>> [e.status.value for e in engine.evaluate([({"service": "api"}, 300.0, 0.1)]).events]  # lower: fine
[]
>>> [(e.status.value, e.name, e.service) for e in engine.evaluate([({"service": "api"}, 310.0, 2.0)]).events]
[('firing', 'latency', 'api')]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector
from watchkeeper.detect.default import make, shipped
from watchkeeper.detect.filter import OpenWindow
from watchkeeper.detect.forecast import Direction as ForecastDirection
from watchkeeper.detect.forecast import Forecaster
from watchkeeper.detect.forecast import Series as ForecastSeries
from watchkeeper.detect.likelihood import AnomalyLikelihood, familywise_one
from watchkeeper.detect.store import restore
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.watch.config import ForecastWatch, Watch
from watchkeeper.watch.prometheus import MAX_POINTS

SOURCE = "watch"
#: One element of an instant-query result: (labels, unix seconds, value).
Point = tuple[Mapping[str, str], float, float]


def series_key(watch: str, labels: Mapping[str, str]) -> str:
    """The identity of one series of one watch, as PromQL would print it.

    >>> series_key("latency", {"service": "api", "instance": "a:1"})
    'latency{instance="a:1",service="api"}'
    """
    inner = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    return f"{watch}{{{inner}}}"


def gate(score: float, x: float, expected: tuple[float, float] | None, direction: str, floor: float) -> float:
    """The score that counts: 0 when ``x`` deviates from the middle of the expected range on the
    harmless side (``direction`` ``up`` or ``down``; ``both`` has none) or by less than ``floor``.
    While the detector has no expected range yet (warming up), the score passes unchanged.

    >>> gate(0.99, 5.0, (0.0, 2.0), "up", 0.0), gate(0.99, -5.0, (0.0, 2.0), "up", 0.0)
    (0.99, 0.0)
    >>> gate(0.99, 1.5, (0.9, 1.1), "both", 1.0), gate(0.99, 3.0, (0.9, 1.1), "down", 0.0)
    (0.0, 0.0)
    """
    if expected is None:
        return score
    deviation = x - (expected[0] + expected[1]) / 2.0
    if abs(deviation) < floor or (direction == "up" and deviation <= 0) or (direction == "down" and deviation >= 0):
        return 0.0
    return score


@dataclass
class _Series:
    labels: dict[str, str]
    detector: Detector
    skipped: int = 0
    calm: int = 0
    absent: int = 0
    window: OpenWindow | None = None
    last_at: float = -math.inf
    last_value: float = math.nan
    last_score: float = 0.0
    last_expected: tuple[float, float] | None = None
    #: the series of its service in the watch's last result (the familywise correction's D)
    group: int = 1

    def to_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "labels": self.labels, "detector": self.detector.to_state(), "skipped": self.skipped,
            "calm": self.calm, "last_at": self.last_at if math.isfinite(self.last_at) else None,
            "window": None if w is None else {
                "start": w.start, "peak_score": w.peak_score, "peak_value": w.peak_value, "peak_at": w.peak_at,
                "expected": None if w.expected is None else list(w.expected), "last": w.last},
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> _Series:
        detector = restore(body["detector"])
        if not isinstance(detector, Detector):
            raise ValueError(f"state holds a {type(detector).__name__}, not a univariate detector")
        w = body.get("window")
        window = None if w is None else OpenWindow(
            float(w["start"]), float(w["peak_score"]), float(w["peak_value"]), float(w["peak_at"]),
            None if w.get("expected") is None else (float(w["expected"][0]), float(w["expected"][1])),
            float(w["last"]))
        last_at = body.get("last_at")
        return cls(dict(body["labels"]), detector, int(body.get("skipped", 0)), int(body.get("calm", 0)),
                   window=window, last_at=-math.inf if last_at is None else float(last_at))


@dataclass(frozen=True, slots=True)
class SeriesView:
    """What one evaluation saw of one series (for status pages and ``watch test``)."""

    key: str
    service: str
    resource: str
    value: float
    score: float
    expected: tuple[float, float] | None
    firing: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one evaluation: its events, and what it saw."""

    events: list[Event]
    series: int
    #: Series skipped because they lack the watch's ``service_label``.
    unlabelled: int
    firing: int
    seen: list[SeriesView] = field(default_factory=list)
    #: Forecast series skipped for having fewer than three values in the lookback.
    short: int = 0


class WatchEngine:
    """The detectors of one :class:`Watch` and the anomaly windows of its series.

    ``calm``: calm evaluations in a row that close a window; ``absent``: evaluations a firing
    series may be missing from the result before its window closes; ``forget``: evaluations after
    which a missing series' detector is dropped. A bad ``detector`` or ``options`` is a
    :class:`~watchkeeper.errors.ConfigError` naming the watch.
    """

    def __init__(self, watch: Watch, *, calm: int = 3, absent: int = 10, forget: int = 2880) -> None:
        self.watch = watch
        try:
            self.shipped = shipped(watch.detector)
            make(watch.detector, watch.options)
        except ValueError as exc:
            raise ConfigError(f"watch {watch.name!r}: {exc}") from None
        self.threshold = watch.threshold if watch.threshold is not None else self.shipped.threshold
        self.calm, self.absent, self.forget = calm, absent, forget
        self._series: dict[str, _Series] = {}
        self._dirty: set[str] = set()
        self._dropped: set[str] = set()

    # -- state -------------------------------------------------------------------------------
    def load(self, states: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Take back the series state :meth:`dump` wrote; returns the keys that could not be
        restored (another detector kind or version: those start afresh)."""
        bad = []
        for stored, body in states.items():
            try:
                series = _Series.from_json(body)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(stored)
                continue
            if series.detector.params() != make(self.watch.detector, self.watch.options).params():
                bad.append(stored)  # the watch's detector changed since: start afresh
                continue
            # the key is the labels' (a store may shorten what it keeps as its own key)
            self._series[series_key(self.watch.name, series.labels)] = series
        return bad

    def dump(self, *, changed_only: bool = True) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The state of the series changed since the last dump (or of all), and the keys dropped."""
        keys = self._dirty if changed_only else set(self._series)
        out = {k: self._series[k].to_json() for k in sorted(keys) if k in self._series}
        dropped = sorted(self._dropped)
        self._dirty, self._dropped = set(), set()
        return out, dropped

    @property
    def keys(self) -> list[str]:
        return sorted(self._series)

    @property
    def firing(self) -> int:
        return sum(1 for s in self._series.values() if s.window is not None)

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, points: Iterable[Point], now: float | None = None) -> Evaluation:
        """Score one instant-query result; ``now`` (default: the latest sample time) dates the
        events that close windows of missing series."""
        w = self.watch
        events: list[Event] = []
        seen: list[SeriesView] = []
        present: set[str] = set()
        unlabelled = 0
        latest = -math.inf
        points = list(points)
        group = self._groups(points)
        for labels, t, x in points:
            if not labels.get(w.service_label):
                unlabelled += 1
                continue
            key = series_key(w.name, labels)
            if key in present:
                continue  # a query returning one label set twice: the first one counts
            present.add(key)
            latest = max(latest, t)
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series(dict(labels), make(w.detector, w.options))
            s.absent = 0
            self._dropped.discard(key)
            if not math.isfinite(x) or not t > s.last_at:
                seen.append(self._view(key, s, x))
                continue  # NaN / Inf, or a sample already seen (the series is not updating)
            events.extend(self._step(key, s, x, t, group.get(labels[w.service_label], 1)))
            self._dirty.add(key)
            seen.append(self._view(key, s, x))
        clock = now if now is not None else latest
        for key in [k for k in self._series if k not in present]:
            s = self._series[key]
            s.absent += 1
            if s.window is not None and s.absent >= self.absent and math.isfinite(clock):
                events.append(self._event(s, Status.RESOLVED, end=s.window.last, reason="absent"))
                s.window, s.calm = None, 0
                self._dirty.add(key)
            elif s.window is None and s.absent >= self.forget:
                del self._series[key]
                self._dirty.discard(key)
                self._dropped.add(key)
        return Evaluation(events, len(present), unlabelled, self.firing, seen)

    def _groups(self, points: Sequence[Point]) -> dict[str, int]:
        """How many series of each service this result holds (label sets counted once): the D of
        :func:`~watchkeeper.detect.likelihood.familywise`, so that a service whose query returns 40
        series does not raise 40 times the false alarms of one that returns one (docs/detect.md)."""
        w = self.watch
        keys: dict[str, set[str]] = {}
        for labels, _t, _x in points:
            service = labels.get(w.service_label)
            if service:
                keys.setdefault(service, set()).add(series_key(w.name, labels))
        return {service: len(k) for service, k in keys.items()}

    def _step(self, key: str, s: _Series, x: float, t: float, group: int = 1) -> list[Event]:
        expected = s.detector.expected_range(t)
        raw = s.detector.score_one(x, t)
        if group > 1 and self.shipped.familywise and isinstance(s.detector, AnomalyLikelihood):
            raw = familywise_one(raw, group, s.detector.remembered)
        s.group = group
        score = gate(raw, x, expected, self.watch.direction, self.watch.floor)
        # AnomalyFilter.step's rule: keep anomalous points out of training, at most max_skip in a row.
        if score < self.threshold:
            s.skipped = 0
            s.detector.learn_one(x, t)
        else:
            s.skipped += 1
            if s.skipped > self.shipped.max_skip:
                s.detector.learn_one(x, t)
        s.last_at, s.last_value, s.last_score, s.last_expected = t, x, score, expected
        if score >= self.threshold:
            s.calm = 0
            if s.window is None:
                s.window = OpenWindow(t, score, x, t, expected, t)
                return [self._event(s, Status.FIRING, end=None)]
            if score > s.window.peak_score:
                s.window.peak_score, s.window.peak_value, s.window.peak_at = score, x, t
                s.window.expected = expected
            s.window.last = t
            return []
        if s.window is None:
            return []
        s.calm += 1
        if s.calm < self.calm:
            return []
        event = self._event(s, Status.RESOLVED, end=t, reason="calm")
        s.window, s.calm = None, 0
        return [event]

    def _view(self, key: str, s: _Series, x: float) -> SeriesView:
        return SeriesView(key, s.labels[self.watch.service_label], self._resource(s.labels), x, s.last_score,
                          s.last_expected, s.window is not None)

    def _resource(self, labels: Mapping[str, str]) -> str:
        return labels.get(self.watch.resource_label, "") if self.watch.resource_label else ""

    def _event(self, s: _Series, status: Status, end: float | None, reason: str = "") -> Event:
        w, window = self.watch, s.window
        assert window is not None
        labels = {**s.labels, "watch": w.name}
        service = s.labels[w.service_label]
        lo_hi = window.expected
        side = {"up": "above", "down": "below"}.get(w.direction, "outside")
        expected_text = f" {side} the expected range [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else " anomalous"
        evidence: dict[str, Any] = {
            "watch": w.name, "query": w.query, "value": window.peak_value,
            "expected_range": None if lo_hi is None else [round(v, 6) for v in lo_hi],
            "score": round(window.peak_score, 6), "threshold": self.threshold,
            "direction": w.direction, "floor": w.floor,
            "detector": self.shipped.name, "detector_version": self.shipped.version,
            "detector_params": _jsonable(s.detector.params()),
            "series_of_service": s.group,
            "window": {"start": _iso(window.start), "end": None if end is None else _iso(end)},
            "peak_at": _iso(window.peak_at), "last_value": s.last_value,
        }
        if status is Status.RESOLVED:
            evidence["resolved_because"] = reason
            summary = (f"{w.name}: {service} back to normal (last value {s.last_value:.4g})" if reason == "calm"
                       else f"{w.name}: {service} no longer returned by the query")
        else:
            summary = f"{w.name}: {service} value {window.peak_value:.4g}{expected_text}"
        start = _dt(window.start)
        return Event(
            source=SOURCE, kind=EventKind.ANOMALY,
            fingerprint=fingerprint_of(labels, namespace="watch"), status=status, severity=w.severity,
            name=w.name, service=service, resource=self._resource(s.labels), labels=labels, summary=summary,
            starts_at=start, ends_at=None if end is None else _dt(end),
            received_at=_dt(end if end is not None else window.start), raw=evidence,
        )


class ForecastEngine:
    """The forecaster of one :class:`ForecastWatch`: query_range results in, forecast events out.

    Each evaluation refits on the whole lookback (the query result is the history); what was
    firing is remembered across evaluations (and, through :meth:`dump` / :meth:`load`, restarts).
    """

    def __init__(self, watch: ForecastWatch, *, level: float = 80.0) -> None:
        self.watch = watch
        self.level = level
        self._forecaster = self._new()
        self._last: dict[str, Event] = {}  # fingerprint -> its last firing event

    def _new(self) -> Forecaster:
        w = self.watch
        return Forecaster(w.threshold, timedelta(seconds=w.horizon), level=self.level,
                          direction=ForecastDirection.ABOVE if w.direction == "up" else ForecastDirection.BELOW,
                          source=SOURCE)

    @property
    def step(self) -> float:
        """The query_range resolution: the watch's ``step``, else lookback / 500 — raised, as the
        client does, so that the lookback holds at most Prometheus' 11,000 points."""
        step = self.watch.step if self.watch.step is not None else max(self.watch.lookback / 500.0, 1.0)
        return max(step, self.watch.lookback / (MAX_POINTS - 1), 0.001)

    def load(self, state: Mapping[str, Any]) -> None:
        self._forecaster._firing = {str(f) for f in state.get("firing", [])}

    def dump(self) -> dict[str, Any]:
        return {"firing": sorted(self._forecaster._firing)}

    @property
    def firing(self) -> int:
        return len(self._forecaster._firing)

    def evaluate(self, series: Sequence[tuple[Mapping[str, str], Sequence[float] | np.ndarray[Any, Any],
                                              Sequence[float] | np.ndarray[Any, Any]]],
                 now: float) -> Evaluation:
        """Forecast every (labels, times, values) series; the times need not be complete (missing
        steps become gaps)."""
        w = self.watch
        step = self.step
        inputs: list[ForecastSeries] = []
        unlabelled = short = 0
        seen: list[SeriesView] = []
        names: set[str] = set()
        for labels, times, values in series:
            if not labels.get(w.service_label):
                unlabelled += 1
                continue
            t = np.asarray(times, dtype=np.float64)
            v = np.asarray(values, dtype=np.float64)
            if t.size < 3 or np.count_nonzero(np.isfinite(v)) < 3:
                short += 1
                continue
            index = np.rint((t - t[0]) / step).astype(np.int64)
            grid = np.full(int(index[-1]) + 1, np.nan)
            grid[index] = v
            name = series_key(w.name, labels)
            if name in names:
                continue
            names.add(name)
            inputs.append(ForecastSeries(name, _dt(float(t[0])), timedelta(seconds=step), grid,
                                         {**labels, "watch": w.name}))
        self._forecaster.fit(inputs)
        events: list[Event] = []
        for e in self._forecaster.events(_dt(now)):
            labels = {k: v for k, v in e.labels.items()}
            service = labels.get(w.service_label, "")
            resource = labels.get(w.resource_label, "") if w.resource_label else ""
            raw = {**e.raw, "watch": w.name, "query": w.query, "lookback_seconds": w.lookback}
            event = replace(e, name=w.name, service=service, resource=resource, raw=raw,
                            severity=w.severity if e.status is Status.FIRING else e.severity)
            events.append(event)
            if event.status is Status.FIRING:
                self._last[event.fingerprint] = event
            else:
                self._last.pop(event.fingerprint, None)
        # a firing series the query no longer returns (the disk was removed …): resolve it
        present = {self._forecaster.fingerprint(s.labels) for s in inputs}
        for fingerprint in sorted(self._forecaster._firing - present):
            self._forecaster._firing.discard(fingerprint)
            last = self._last.pop(fingerprint, None)
            if last is not None:
                events.append(replace(
                    last, status=Status.RESOLVED, severity=Severity.INFO, ends_at=_dt(now), received_at=_dt(now),
                    summary=f"{w.name}: {last.service} no longer returned by the query",
                    raw={**last.raw, "resolved_because": "absent"}))
        for fc in self._forecaster.forecasts():
            labels = {k: v for k, v in fc.series.labels.items() if k != "watch"}
            seen.append(SeriesView(fc.series.name, labels.get(w.service_label, ""),
                                   labels.get(w.resource_label, "") if w.resource_label else "",
                                   float(fc.series.values[np.isfinite(fc.series.values)][-1]), 0.0, None,
                                   fc.crossing is not None))
        return Evaluation(events, len(inputs), unlabelled, self.firing, seen, short)


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | type(None) | list | dict) else repr(v)
            for k, v in params.items()}


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _iso(t: float) -> str:
    return _dt(t).isoformat()
