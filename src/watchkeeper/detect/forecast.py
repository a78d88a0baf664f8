"""Predict when utilisation series will cross a threshold, and say so as ``forecast`` events.

``Forecaster`` fits one exponential-smoothing model per series (all series of a refresh at once,
see ``forecast_ets``), forecasts ``horizon`` ahead with a prediction interval and turns each
predicted crossing into an ``Event(kind=FORECAST)`` that correlates like any alert:

- the point forecast crosses the threshold within the horizon → a FIRING event; its summary
  gives the time to the crossing and the interval, e.g. ``disk_used_percent /var on db-1 will
  cross 90% in 3h10m (80% interval: 2h40m–4h05m)``. The interval is where the upper and lower
  bounds of the forecast band cross (the lower bound may never cross within the horizon:
  ``>6h``);
- no crossing predicted → no event, unless that series+threshold was firing: then one RESOLVED
  event closes it (the forecaster remembers what it reported, like an alert rule would);
- the last point is already past the threshold → FIRING with a crossing "now".

The fingerprint is stable per series labels + threshold + direction, so successive refreshes
update one alert instead of opening new ones. Evidence (model, parameters, crossing steps,
interval, last value) goes into ``raw``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.detect.forecast_ets import EtsBatch, Prediction
from watchkeeper.errors import InputError
from watchkeeper.model import Event, EventKind, Severity, Status, utc
from watchkeeper.sources.base import RESOURCE_LABELS, SERVICE_LABELS, fingerprint_of, first_label

Array = npt.NDArray[np.float64]


class Direction(StrEnum):
    ABOVE = "above"  # utilisation rising to a ceiling (disk full)
    BELOW = "below"  # headroom falling to a floor (free memory)


@dataclass(frozen=True, slots=True)
class Series:
    """One equally spaced series: ``values[i]`` was observed at ``start + i * step``."""

    name: str
    start: datetime
    step: timedelta
    values: Array
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def end(self) -> datetime:
        """Time of the last point."""
        return self.start + self.step * (len(self.values) - 1)


@dataclass(frozen=True, slots=True)
class Crossing:
    """When a forecast crosses a threshold, in steps after the last point (fractions interpolated).

    ``earliest``/``latest`` are where the interval's bounds cross; ``latest`` is None when the
    pessimistic bound stays on the safe side for the whole horizon.
    """

    steps: float
    earliest: float
    latest: float | None


def find_crossing(last: float, mean: Array, lower: Array, upper: Array, threshold: float,
                  direction: Direction = Direction.ABOVE) -> Crossing | None:
    """Where the point forecast first reaches ``threshold``; None when it does not in the horizon.

    >>> path = np.array([82.0, 86.0, 90.0, 94.0])
    >>> find_crossing(80.0, path, path - 4, path + 4, 90.0)
    Crossing(steps=3.0, earliest=2.0, latest=4.0)
    >>> find_crossing(80.0, path, path - 4, path + 4, 99.0) is None
    True
    """
    if direction is Direction.BELOW:
        return find_crossing(-last, -mean, -upper, -lower, -threshold)
    if last >= threshold:
        return Crossing(0.0, 0.0, 0.0)
    steps = _first_reach(last, mean, threshold)
    if steps is None:
        return None
    earliest = _first_reach(last, upper, threshold)
    return Crossing(steps=steps, earliest=steps if earliest is None else min(earliest, steps),
                    latest=_first_reach(last, lower, threshold))


def _first_reach(last: float, path: Array, threshold: float) -> float | None:
    hit = np.flatnonzero(path >= threshold)
    if hit.size == 0:
        return None
    i = int(hit[0])
    before = last if i == 0 else float(path[i - 1])
    after = float(path[i])
    frac = 1.0 if after == before else (threshold - before) / (after - before)
    return i + min(max(frac, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class SeriesForecast:
    """The forecast of one series at one refresh, and its crossing if any."""

    series: Series
    method: str
    prediction: Prediction  # one row
    crossing: Crossing | None

    @property
    def crossing_at(self) -> datetime | None:
        if self.crossing is None:
            return None
        return self.series.end + self.series.step * self.crossing.steps


def season_length_for(values: Array, step: timedelta, candidates: Sequence[timedelta] = (
        timedelta(days=1), timedelta(days=7)), min_acf: float = 0.2) -> int:
    """The candidate period (in steps) with the strongest autocorrelation, or 1 when none shows.

    >>> t = np.arange(24 * 10.0)
    >>> season_length_for(np.sin(2 * np.pi * t / 24), timedelta(hours=1))
    24
    >>> season_length_for(t, timedelta(hours=1))
    1
    """
    n = len(values)
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 8:
        return 1
    idx = np.arange(n, dtype=np.float64)
    coef = np.polyfit(idx[ok], x[ok], 1)
    resid = np.where(ok, x - np.polyval(coef, idx), 0.0)
    denom = float((resid**2).sum())
    if denom <= 1e-12 * float((x[ok] ** 2).sum() + 1.0):
        return 1  # a perfect line: nothing periodic left
    best, best_acf = 1, min_acf
    for period in candidates:
        m = round(period / step)
        if m < 2 or n < 3 * m:
            continue
        acf = float((resid[m:] * resid[:-m]).sum()) / denom
        if acf > best_acf:
            best, best_acf = m, acf
    return best


class Forecaster:
    """Forecast many series at once and report predicted threshold crossings as events.

    Constructor arguments are the configuration. ``fit`` fits every series (vectorised: a
    thousand series of 2,000 points take seconds); ``update`` appends new points cheaply with
    the fitted parameters (and refits every ``refit_every`` new points when set);
    ``forecasts``/``events`` read the current predictions.

    ``trend=True`` (the default) keeps only trended models (linear or damped, chosen on the
    errors of forecasts up to ``horizon`` ahead, see ``forecast_ets``): on seeded synthetic
    ramps it misses fewer crossings and warns earlier than letting the criterion drop the trend
    (``trend=None``), at the price of more false alarms and a slightly worse MASE.
    ``season_length=None`` detects a daily or weekly season from the data.

    >>> from datetime import UTC
    >>> t0 = datetime(2024, 5, 1, tzinfo=UTC)
    >>> noise = np.random.default_rng(0).normal(0.0, 0.5, 300)
    >>> ramp = Series("db-1:/var", t0, timedelta(minutes=5), 40.0 + 0.15 * np.arange(300.0) + noise,
    ...               {"__name__": "disk_used_percent", "mountpoint": "/var", "instance": "db-1",
    ...                "service": "postgres"})
    >>> fc = Forecaster(threshold=90.0, horizon=timedelta(hours=6), unit="%")
    >>> fc.fit([ramp])
    >>> [event] = fc.events(now=ramp.end)
    >>> event.summary
    'disk_used_percent /var on db-1 will cross 90% in 2h59m (80% interval: 2h30m–3h32m)'
    >>> event.kind.value, event.status.value, event.service, event.resource
    ('forecast', 'firing', 'postgres', 'db-1')
    >>> fc.update({"db-1:/var": [20.0] * 12})  # the disk was cleaned up
    >>> [event] = fc.events(now=ramp.end + timedelta(hours=1))
    >>> event.status.value
    'resolved'
    >>> fc.events(now=ramp.end + timedelta(hours=1))
    []
    """

    def __init__(self, threshold: float, horizon: timedelta, *, level: float = 80.0,
                 direction: Direction | str = Direction.ABOVE, unit: str = "",
                 season_length: int | None = None, trend: bool | None = True, refit_every: int | None = None,
                 urgent: timedelta = timedelta(hours=1), source: str = "forecast") -> None:
        if not 0.0 < level < 100.0:
            raise InputError(f"level must be a percentage in (0, 100), got {level}")
        if horizon <= timedelta(0):
            raise InputError("horizon must be positive")
        self.threshold = threshold
        self.horizon = horizon
        self.level = level
        self.direction = Direction(direction)
        self.unit = unit
        self.season_length = season_length
        self.trend = trend
        self.refit_every = refit_every
        self._since_fit = 0
        self.urgent = urgent
        self.source = source
        self._models: list[tuple[EtsBatch, list[Series]]] = []
        self._where: dict[str, tuple[int, int]] = {}
        self._firing: set[str] = set()

    def __repr__(self) -> str:
        return (f"Forecaster(threshold={self.threshold!r}, horizon={self.horizon!r}, level={self.level!r}, "
                f"direction={self.direction.value!r}, trend={self.trend!r})")

    def fit(self, series: Iterable[Series]) -> None:
        """Fit a model to each series (replacing earlier fits; what was firing is remembered)."""
        groups: dict[tuple[int, timedelta, int], list[Series]] = {}
        for s in series:
            m = self.season_length or season_length_for(s.values, s.step)
            groups.setdefault((len(s.values), s.step, m), []).append(s)
        self._models, self._where, self._since_fit = [], {}, 0
        for (_, _, m), members in groups.items():
            steps = max(1, math.ceil(self.horizon / members[0].step))
            model = EtsBatch.fit(np.vstack([s.values for s in members]), season_length=m, trend=self.trend,
                                 horizon=steps)
            for row, s in enumerate(members):
                if s.name in self._where:
                    raise InputError(f"two series are named {s.name!r}")
                self._where[s.name] = (len(self._models), row)
            self._models.append((model, members))

    def update(self, points: Mapping[str, Sequence[float]]) -> None:
        """Append the same number of new points to the named series (absent series: missing)."""
        counts = {len(v) for v in points.values()}
        if len(counts) > 1:
            raise InputError("update needs the same number of new points for every series")
        if not counts or counts == {0}:
            return
        k = counts.pop()
        unknown = set(points) - set(self._where)
        if unknown:
            raise InputError(f"unknown series: {', '.join(sorted(unknown))}")
        for g, (model, members) in enumerate(self._models):
            block = np.full((len(members), k), np.nan)
            for row, s in enumerate(members):
                if s.name in points:
                    block[row] = np.asarray(points[s.name], dtype=np.float64)
            model.update(block)
            grown = [Series(s.name, s.start, s.step, np.concatenate([s.values, block[row]]), s.labels)
                     for row, s in enumerate(members)]
            self._models[g] = (model, grown)
        self._since_fit += k
        if self.refit_every is not None and self._since_fit >= self.refit_every:
            self.fit([s for _, members in self._models for s in members])

    def forecasts(self) -> list[SeriesForecast]:
        """The current forecast of every series, with its crossing (if any)."""
        out: list[SeriesForecast] = []
        for model, members in self._models:
            h = max(1, math.ceil(self.horizon / members[0].step))
            pred = model.predict(h, self.level)
            for row, s in enumerate(members):
                one = Prediction(pred.mean[row:row + 1], pred.lower[row:row + 1], pred.upper[row:row + 1],
                                 pred.level)
                last = _last_finite(s.values)
                crossing = find_crossing(last, one.mean[0], one.lower[0], one.upper[0], self.threshold,
                                         self.direction)
                if crossing is not None and crossing.steps * s.step > self.horizon:
                    crossing = None
                out.append(SeriesForecast(s, model.params.method(row), one, crossing))
        return out

    def events(self, now: datetime) -> list[Event]:
        """FIRING events for predicted crossings; RESOLVED for series that stopped predicting one."""
        now = utc(now)
        events: list[Event] = []
        for fc in self.forecasts():
            fingerprint = self.fingerprint(fc.series.labels or {"series": fc.series.name})
            if fc.crossing is not None:
                self._firing.add(fingerprint)
                events.append(self._event(fc, fingerprint, Status.FIRING, now))
            elif fingerprint in self._firing:
                self._firing.discard(fingerprint)
                events.append(self._event(fc, fingerprint, Status.RESOLVED, now))
        return events

    def fingerprint(self, labels: Mapping[str, str]) -> str:
        """Stable identity of "this series against this threshold"."""
        return fingerprint_of({**labels, "forecast_threshold": repr(float(self.threshold)),
                               "forecast_direction": self.direction.value}, namespace="forecast")

    def _event(self, fc: SeriesForecast, fingerprint: str, status: Status, now: datetime) -> Event:
        s, labels = fc.series, dict(fc.series.labels) or {"series": fc.series.name}
        what = labels.get("__name__") or labels.get("metric") or s.name
        for extra in ("mountpoint", "device", "container"):
            if labels.get(extra) and labels[extra] not in what:
                what = f"{what} {labels[extra]}"
        resource = first_label(labels, RESOURCE_LABELS, s.name)
        service = first_label(labels, SERVICE_LABELS, "")
        limit = f"{_number(self.threshold)}{self.unit}"
        verb = "cross" if self.direction is Direction.ABOVE else "fall below"
        raw: dict[str, Any] = {
            "threshold": self.threshold, "direction": self.direction.value, "level": self.level,
            "horizon_seconds": self.horizon.total_seconds(), "model": fc.method,
            "last_value": _last_finite(s.values), "last_at": s.end.isoformat(),
            "step_seconds": s.step.total_seconds(), "points": len(s.values), "series": s.name,
        }
        c = fc.crossing
        within = format_duration(self.horizon)
        if status is Status.RESOLVED or c is None:
            summary = f"{what} on {resource} no longer predicted to {verb} {limit} within {within}"
            severity, ends_at = Severity.INFO, now
        else:
            at, early = s.step * c.steps, s.step * c.earliest
            late = None if c.latest is None else s.step * c.latest
            upto = format_duration(late) if late is not None else ">" + within
            band = f"{self.level:g}% interval: {format_duration(early)}–{upto}"
            summary = (f"{what} on {resource} has already crossed {limit}" if c.steps == 0.0 else
                       f"{what} on {resource} will {verb} {limit} in {format_duration(at)} ({band})")
            severity = Severity.ERROR if early <= self.urgent else Severity.WARNING
            ends_at = None
            raw.update({
                "crossing_at": (s.end + at).isoformat(), "crossing_in_seconds": at.total_seconds(),
                "interval_earliest_seconds": early.total_seconds(),
                "interval_latest_seconds": None if late is None else late.total_seconds(),
                "severity_reason": "urgent" if severity is Severity.ERROR else "within_horizon",
            })
        return Event(source=self.source, kind=EventKind.FORECAST, fingerprint=fingerprint, status=status,
                     severity=severity, name="ForecastThresholdCrossing", service=service, resource=resource,
                     labels={**labels, "forecast_threshold": _number(self.threshold),
                             "forecast_direction": self.direction.value},
                     summary=summary, starts_at=utc(s.end), ends_at=ends_at, received_at=now, raw=raw)


def _last_finite(values: Array) -> float:
    ok = np.flatnonzero(np.isfinite(values))
    return float(values[ok[-1]]) if ok.size else math.nan


def _number(x: float) -> str:
    return f"{x:g}"


def format_duration(d: timedelta) -> str:
    """``3h10m``, ``2d4h``, ``45m``, ``30s`` (whole minutes from a minute up).

    >>> format_duration(timedelta(hours=3, minutes=10)), format_duration(timedelta(seconds=42))
    ('3h10m', '42s')
    """
    seconds = round(d.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{mins:02d}m" if mins else f"{hours}h"
    return f"{mins}m"
