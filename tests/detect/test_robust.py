"""RobustSeasonal: season detection, spikes, quantised data, expected ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchkeeper.detect.filter import onsets, run, windows_of
from watchkeeper.detect.robust import RobustSeasonal, autocorrelation, seasonal_wins, tail_score


def daily(n: int, step: float, seed: int = 0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * step
    shape = np.where((t % 86_400) < 43_200, 10.0, 30.0)  # a square daily wave: hard for a rolling median
    return t, shape + rng.normal(0, noise, n)


@pytest.mark.parametrize(
    ("step", "season", "expected_lag"),
    [
        (300.0, "auto", 288),  # 5-minute samples: one day is 288 points
        (600.0, "auto", 144),
        (300.0, "daily", 288),
        (300.0, "none", 0),
    ],
)
def test_daily_season_is_detected(step: float, season: str, expected_lag: int) -> None:
    t, x = daily(int(4 * 86_400 / step), step)
    det = RobustSeasonal(season=season)
    for ti, xi in zip(t, x, strict=True):
        det.learn_one(float(xi), float(ti))
    assert det.season_lag == expected_lag


def test_no_season_in_white_noise() -> None:
    rng = np.random.default_rng(5)
    det = RobustSeasonal()
    for i, x in enumerate(rng.normal(size=2000)):
        det.learn_one(float(x), 300.0 * i)
    assert det.season_lag == 0


def test_seasonal_model_stays_quiet_on_the_daily_wave_and_catches_a_missing_jump() -> None:
    t, x = daily(8 * 288, 300.0, seed=2)
    x[6 * 288 + 144: 6 * 288 + 180] = 10.0  # the afternoon jump (index 1872) is missing on day 7
    scores = run(RobustSeasonal(), t, x)
    late = [w for w in windows_of(scores, 0.5) if w[0] >= 288]  # the first day is warm-up
    assert late == [(1876, 1902)]


@pytest.mark.parametrize(("at", "size"), [(500, 20.0), (900, -15.0), (1500, 8.0)])
def test_a_spike_is_the_first_point_to_score_high(at: int, size: float) -> None:
    rng = np.random.default_rng(at)
    x = 100 + rng.normal(0, 1, 2000)
    x[at] += size
    scores = run(RobustSeasonal(), np.arange(2000) * 60.0, x)
    assert int(np.flatnonzero(scores >= 0.5)[0]) == at
    assert int(np.flatnonzero(onsets(scores, 100) >= 0.5)[0]) == at


def test_quantised_counts_do_not_alarm_on_every_change() -> None:
    x = np.random.default_rng(0).poisson(1.0, 3000).astype(float)
    scores = run(RobustSeasonal(), np.arange(3000) * 60.0, x)
    assert np.mean(scores >= 0.5) < 0.01


def test_expected_range_contains_the_median() -> None:
    det = RobustSeasonal(window=16, warmup=4)
    assert det.expected_range(0.0) is None
    for i in range(20):
        det.learn_one(5.0 + (i % 2), 60.0 * i)
    lo, hi = det.expected_range(1200.0) or (math.nan, math.nan)
    assert lo < 5.5 < hi


def test_helpers() -> None:
    t = np.arange(1000.0)
    assert autocorrelation(np.ones(10), 2) == 0.0
    assert autocorrelation(np.sin(t / 10), 5000) == 0.0
    assert seasonal_wins(np.sin(2 * np.pi * t / 100), 100, 32, 1)
    scores = [tail_score(u) for u in (0.5, 2.0, 5.0, 7.9, 8.1, 20.0, 100.0)]
    assert scores == sorted(scores) and all(0.0 < s < 1.0 for s in scores)
