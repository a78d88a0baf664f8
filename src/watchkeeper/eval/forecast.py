"""Evaluate the threshold forecaster: accuracy (MASE, sMAPE) and the lead time of its warnings.

- Accuracy: hold out the last ``horizon`` points of each series, fit on the rest, and score the
  forecast with MASE (scaled by the in-sample seasonal-naive error, so seasonal-naive scores
  about 1) and sMAPE (0–200 %). Seasonal naive is scored alongside, and statsforecast's AutoETS
  as the reference on a subset (it costs about a second per series).
- Lead time: replay each series point by point from ``warmup`` on (fit once, then cheap state
  updates), forecasting at every ``every``-th point. On a series whose data really crosses the
  threshold, the lead time is how long before the crossing the warning that was still on at the
  crossing started (0 when no warning was on: a miss). A warning episode that starts more than
  one horizon before any real crossing is a false alarm.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from watchkeeper.detect.forecast import Direction
from watchkeeper.detect.forecast_ets import EtsBatch

Array = npt.NDArray[np.float64]
Progress = Callable[[int], None]


def mase(actual: Array, forecast: Array, train: Array, season_length: int = 1) -> float:
    """Mean absolute error scaled by the in-sample MAE of the seasonal-naive forecast.

    >>> round(mase(np.array([3.0, 4.0]), np.array([3.5, 4.5]), np.arange(10.0)), 3)
    0.5
    """
    m = season_length if len(train) > season_length else 1
    scale = _finite_mean(np.abs(train[m:] - train[:-m]))
    err = _finite_mean(np.abs(actual - forecast))
    if math.isnan(err) or math.isnan(scale):
        return math.nan  # nothing to score (the window is a gap)
    if not scale > 0.0:
        return 0.0 if err == 0.0 else math.inf
    return err / scale


def smape(actual: Array, forecast: Array) -> float:
    """Symmetric MAPE in percent (0–200); a pair of zeros counts as a perfect point.

    >>> smape(np.array([100.0, 0.0]), np.array([110.0, 0.0]))
    4.761904761904762
    """
    denom = np.abs(actual) + np.abs(forecast)
    ratio = np.where(denom > 0, 2.0 * np.abs(actual - forecast) / np.where(denom > 0, denom, 1.0), 0.0)
    return 100.0 * _finite_mean(ratio)


def _finite_mean(a: Array) -> float:
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else math.nan


def seasonal_naive(train: Array, horizon: int, season_length: int = 1) -> Array:
    """Repeat the last season (the last value when ``season_length`` is 1).

    >>> seasonal_naive(np.array([1.0, 2.0, 3.0, 4.0]), 3, season_length=2)
    array([3., 4., 3.])
    """
    m = max(1, min(season_length, len(train)))
    last = train[-m:]
    return np.asarray(np.resize(last, horizon), dtype=np.float64)


def autoets_forecast(train: Array, horizon: int, season_length: int = 1, level: float = 80.0) -> Array:
    """statsforecast's AutoETS point forecast: the reference model (slow: ~1 s per series)."""
    from statsforecast.models import AutoETS  # imported late: about 1.5 s of start-up

    y = np.asarray(train, dtype=np.float64)
    ok = np.isfinite(y)
    if not ok.all():  # AutoETS does not accept gaps: fill them linearly
        idx = np.arange(len(y))
        y = np.interp(idx, idx[ok], y[ok])
    model = AutoETS(season_length=max(1, season_length)).fit(y)
    return np.asarray(model.predict(h=horizon)["mean"], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Per-series scores of one accuracy run (NaN where a model was not run on that series)."""

    mase_fast: Array
    mase_naive: Array
    mase_autoets: Array
    smape_fast: Array
    smape_naive: Array
    smape_autoets: Array
    fit_seconds: float
    autoets_seconds: float
    autoets_series: int


def accuracy(values: Array, horizon: int, season_length: int, *, autoets: int = 0, trend: bool | None = None,
             progress: Progress | None = None) -> Accuracy:
    """Hold out the last ``horizon`` points of each row of ``values`` (series × time) and score.

    ``autoets`` is how many series (the first ones) also get the AutoETS reference.
    """
    train, test = values[:, :-horizon], values[:, -horizon:]
    n = values.shape[0]
    start = time.perf_counter()
    pred = EtsBatch.fit(train, season_length=season_length, trend=trend, horizon=horizon).predict(horizon).mean
    fit_seconds = time.perf_counter() - start
    nan = np.full(n, np.nan)
    out = {k: nan.copy() for k in ("mf", "mn", "ma", "sf", "sn", "sa")}
    for i in range(n):
        naive = seasonal_naive(train[i], horizon, season_length)
        out["mf"][i] = mase(test[i], pred[i], train[i], season_length)
        out["mn"][i] = mase(test[i], naive, train[i], season_length)
        out["sf"][i] = smape(test[i], pred[i])
        out["sn"][i] = smape(test[i], naive)
    start = time.perf_counter()
    for i in range(min(autoets, n)):
        ref = autoets_forecast(train[i], horizon, season_length)
        out["ma"][i] = mase(test[i], ref, train[i], season_length)
        out["sa"][i] = smape(test[i], ref)
        if progress is not None:
            progress(1)
    return Accuracy(out["mf"], out["mn"], out["ma"], out["sf"], out["sn"], out["sa"], fit_seconds,
                    time.perf_counter() - start, min(autoets, n))


@dataclass(frozen=True, slots=True)
class LeadTimes:
    """Warnings replayed over many series. Times are in steps; ``crossings`` counts real ones."""

    lead_steps: list[float] = field(default_factory=list)  # one per real crossing (0 = missed)
    crossings: int = 0
    missed: int = 0
    false_alarms: int = 0
    series: int = 0
    steps_replayed: int = 0
    refresh_seconds: float = 0.0
    refreshes: int = 0
    refits: int = 0


def first_crossing(values: Array, threshold: float, start: int = 0,
                   direction: Direction = Direction.ABOVE) -> int | None:
    """Index of the first point at or after ``start`` on the wrong side of ``threshold``.

    >>> first_crossing(np.array([1.0, 5.0, 9.0, 3.0]), 8.0)
    2
    """
    past = values >= threshold if direction is Direction.ABOVE else values <= threshold
    hit = np.flatnonzero(past[start:])
    return None if hit.size == 0 else start + int(hit[0])


def lead_times(values: Array, threshold: float, horizon: int, season_length: int, *, warmup: int,
               every: int = 1, refit_every: int | None = None, trend: bool | None = None, level: float = 80.0,
               direction: Direction = Direction.ABOVE, progress: Progress | None = None) -> LeadTimes:
    """Replay rows of ``values`` (series × time) and measure warning lead times and false alarms.

    Series already past the threshold during warm-up are skipped (nothing left to predict).
    ``refit_every`` (steps) re-estimates the parameters on all data so far, as a deployment
    would on a schedule; between refits only the states are updated.
    """
    n, n_time = values.shape
    sign = 1.0 if direction is Direction.ABOVE else -1.0
    done_at = np.full(n, n_time)  # replay each series until its first real crossing
    keep: list[int] = []
    for i in range(n):
        if first_crossing(values[i, :warmup], threshold, 0, direction) is not None:
            continue
        c = first_crossing(values[i], threshold, warmup, direction)
        done_at[i] = n_time if c is None else c
        keep.append(i)
    if not keep or warmup >= n_time:
        return LeadTimes(series=len(keep))
    rows = values[keep]
    done = done_at[keep]
    model = EtsBatch.fit(rows[:, :warmup], season_length=season_length, trend=trend, horizon=horizon)
    alarm_start = np.full(len(keep), -1)  # origin where the current warning episode began
    false_alarms = 0
    refresh = 0.0
    refreshes = 0
    refits = 0
    origin = warmup
    last_fit = warmup
    while origin < n_time:
        start = time.perf_counter()
        if refit_every is not None and origin - last_fit >= refit_every:
            model = EtsBatch.fit(rows[:, :origin], season_length=season_length, trend=trend, horizon=horizon)
            last_fit = origin
            refits += 1
        pred = model.predict(horizon, level)
        refresh += time.perf_counter() - start
        refreshes += 1
        active = origin < done
        on = (sign * pred.mean >= sign * threshold).any(axis=1) & active
        began = on & (alarm_start < 0)
        alarm_start[began] = origin
        # A warning that ends before any real crossing was a false alarm.
        ended = ~on & (alarm_start >= 0) & active
        false_alarms += int(ended.sum())
        alarm_start[ended] = -1
        step = min(every, n_time - origin)
        start = time.perf_counter()
        model.update(rows[:, origin:origin + step])
        refresh += time.perf_counter() - start
        origin += step
        if progress is not None:
            progress(step)
    leads: list[float] = []
    missed = 0
    for j in range(len(keep)):
        if done[j] >= n_time:
            false_alarms += int(alarm_start[j] >= 0)  # still on at the end of the data: unconfirmed
            continue
        if alarm_start[j] < 0:
            leads.append(0.0)
            missed += 1
        elif done[j] - alarm_start[j] > horizon + every:
            false_alarms += 1  # on since long before the horizon: premature, then confirmed
            leads.append(float(horizon))
        else:
            leads.append(float(done[j] - alarm_start[j]))
    return LeadTimes(lead_steps=leads, crossings=len(leads), missed=missed, false_alarms=false_alarms,
                     series=len(keep), steps_replayed=n_time - warmup, refresh_seconds=refresh,
                     refreshes=refreshes, refits=refits)


@dataclass(frozen=True, slots=True)
class SyntheticSet:
    """Seeded utilisation series (percent). ``crosses_at[i]`` is the step where series ``i``'s
    underlying ramp reaches ``threshold`` (-1: never within the data)."""

    values: Array
    season_length: int
    threshold: float
    crosses_at: npt.NDArray[np.int64]


def synthetic_utilisation(n_series: int, n_points: int, *, season_length: int = 24, seed: int = 0,
                          crossing_share: float = 0.2, threshold: float = 90.0) -> SyntheticSet:
    """Realistic-looking utilisation: daily shape (two harmonics), trend, AR(1) noise, level shifts.

    A ``crossing_share`` of the series get a linear ramp that reaches ``threshold`` at a known
    step in the last third of the data (the noise can make the data touch it a little earlier),
    then saturates: the daily peaks level off at a ceiling between ``threshold`` + 2 and 98, so
    the series keeps its daily shape and noise. (Ramps used to run on into the 0–100 clip and
    leave long runs of exactly 100, whose in-sample seasonal-naive error is about zero: a
    flat line no utilisation metric shows, and a MASE scale that turned small forecast
    errors there into the largest scores of the whole set.)

    >>> data = synthetic_utilisation(3, 200, seed=1)
    >>> data.values.shape, bool((data.values >= 0).all() and (data.values <= 100).all())
    ((3, 200), True)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_points, dtype=np.float64)
    out = np.empty((n_series, n_points))
    crosses = np.full(n_series, -1, dtype=np.int64)
    m = max(1, season_length)
    for i in range(n_series):
        base = rng.uniform(15.0, 55.0)
        amp = rng.uniform(0.0, 15.0) if rng.random() < 0.8 else 0.0
        phase = rng.uniform(0, 2 * np.pi)
        daily = amp * (np.sin(2 * np.pi * t / m + phase) + 0.3 * np.sin(4 * np.pi * t / m + 2 * phase))
        sd = rng.uniform(0.3, 2.5)
        shocks = rng.normal(0.0, sd, n_points)
        noise = np.empty(n_points)
        acc = 0.0
        phi = rng.uniform(0.3, 0.8)
        for j in range(n_points):
            acc = phi * acc + shocks[j]
            noise[j] = acc
        level = np.zeros(n_points)
        if rng.random() < 0.15:  # a one-off level shift (deploy, cleanup)
            at = int(rng.integers(n_points // 4, n_points // 2))
            level[at:] = rng.normal(0.0, 5.0)
        trend = rng.normal(0.0, 3.0 / n_points) * t
        y = base + daily + level + trend
        if rng.random() < crossing_share:
            cross = int(rng.integers(2 * n_points // 3, n_points - 1))
            ramp_start = int(rng.integers(n_points // 3, cross - 10))
            peak = float(np.max((base + amp * 1.3 + level)[:cross]))
            slope = (threshold - peak) / (cross - ramp_start)
            ceiling = rng.uniform(threshold + 2.0, 98.0)
            rise = np.minimum(np.clip(t - ramp_start, 0.0, None) * max(slope, 0.0), max(ceiling - peak, 0.0))
            y = base + daily + level + rise
            crosses[i] = cross
        out[i] = np.clip(y + noise, 0.0, 100.0)
    return SyntheticSet(out, season_length, threshold, crosses)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """(mean, median) ignoring NaN; (nan, nan) when nothing is finite."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(np.median(a))
