"""AnomalyLikelihood: the learn/score contract, state, and what it catches in noisy seasonal data."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from watchkeeper.detect.filter import AnomalyFilter
from watchkeeper.detect.likelihood import MEAN_CAP, AnomalyLikelihood, Tail, peak_onsets
from watchkeeper.detect.store import restore

STEP = 300.0  # 5-minute samples: a day is 288 points
DAYS = 10
ANOMALY = 8 * 288 + 100  # day 9, well after the season is found


def seasonal(seed: int, kind: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """Ten days of a noisy daily cycle (noise sd 1, amplitude 10), with one anomaly at ANOMALY."""
    rng = np.random.default_rng(seed)
    n = DAYS * 288
    t = np.arange(n) * STEP
    x = 50 + 10 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 1, n)
    if kind == "spike":
        x[ANOMALY] += 12.0
    elif kind == "level_shift":
        x[ANOMALY:] += 4.0
    elif kind == "variance":
        x[ANOMALY:] += rng.normal(0, 3, n - ANOMALY)
    elif kind == "dip":
        x[ANOMALY: ANOMALY + 5] -= 12.0
    return t, x


def scores_of(t: np.ndarray, x: np.ndarray, det: AnomalyLikelihood | None = None) -> np.ndarray:
    det = det or AnomalyLikelihood()
    out = np.empty(len(x))
    for i, (ti, xi) in enumerate(zip(t.tolist(), x.tolist(), strict=True)):
        out[i] = det.score_one(xi, ti)
        det.learn_one(xi, ti)
    return out


@pytest.mark.parametrize("kind", ["spike", "level_shift", "variance", "dip"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_catches_the_anomaly_within_half_an_hour_and_ranks_it_first(kind: str, seed: int) -> None:
    t, x = seasonal(seed, kind)
    scores = scores_of(t, x)
    settled = 4 * 288  # the season is found after about three days; one more to settle
    peak = scores[ANOMALY: ANOMALY + 6].max()
    assert peak >= 0.8  # at least a record
    assert peak > scores[settled:ANOMALY].max()  # and more than anything in the normal days before


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_quiet_on_pure_noise(seed: int) -> None:
    t, x = seasonal(seed)
    x = x - 10 * np.sin(2 * np.pi * t / 86_400)  # just noise
    reported = peak_onsets(scores_of(t, x), horizon=100, delay=3)
    alarms = int((reported[288:] >= 0.8).sum())  # after the first day
    # At the record threshold (0.8) a stationary series alarms at most about once a day.
    assert alarms <= DAYS - 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_quiet_on_the_seasonal_wave_without_anomaly(seed: int) -> None:
    t, x = seasonal(seed)
    scores = scores_of(t, x)
    reported = peak_onsets(scores, horizon=100, delay=3)
    assert int((reported[4 * 288:] >= 0.8).sum()) <= DAYS - 4  # once the season is known


def test_score_does_not_change_the_model() -> None:
    t, x = seasonal(0)
    det = AnomalyLikelihood()
    for ti, xi in zip(t[:1000].tolist(), x[:1000].tolist(), strict=True):
        det.learn_one(xi, ti)
    before = json.dumps(det.to_state())
    first = [det.score_one(v, t[1000]) for v in (50.0, 80.0, 20.0)]
    assert [det.score_one(v, t[1000]) for v in (50.0, 80.0, 20.0)] == first
    assert json.dumps(det.to_state()) == before
    assert all(0.0 <= s <= 1.0 for s in first) and first[1] > first[0]


def test_state_round_trip_through_json_and_the_registry() -> None:
    t, x = seasonal(1, "spike")
    det = AnomalyLikelihood(window=64, short=10, memory=500)
    for ti, xi in zip(t[:1500].tolist(), x[:1500].tolist(), strict=True):
        det.score_one(xi, ti)
        det.learn_one(xi, ti)
    copy = restore(json.loads(json.dumps(det.to_state())))
    assert isinstance(copy, AnomalyLikelihood) and repr(copy) == repr(det)
    assert copy.season_lag == det.season_lag == 288
    for ti, xi in zip(t[1500:].tolist(), x[1500:].tolist(), strict=True):
        assert copy.score_one(xi, ti) == det.score_one(xi, ti)
        copy.learn_one(xi, ti)
        det.learn_one(xi, ti)


def test_memory_bounds_the_history() -> None:
    det = AnomalyLikelihood(memory=200, warmup=4)
    rng = np.random.default_rng(0)
    for i in range(1000):
        det.learn_one(float(rng.normal()), 60.0 * i)
    state = det.to_state()["state"]
    assert len(state["point"]["values"]) == len(state["mean"]["values"]) == 200


def test_works_behind_the_filter_learning_every_point() -> None:
    t, x = seasonal(3, "spike")
    f = AnomalyFilter(AnomalyLikelihood(), series="api latency", threshold=0.8, max_skip=0)
    events = [e for ti, xi in zip(t.tolist(), x.tolist(), strict=True) for e in f.update(xi, ti)]
    firing = [e.starts_at.timestamp() for e in events if e.status.value == "firing"]
    assert t[ANOMALY] in firing


@pytest.mark.parametrize(
    ("kwargs", "error"), [({"short": 0}, "short"), ({"memory": 10}, "memory"), ({"window": 2}, "window")],
)
def test_invalid_config_fails_loudly(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        AnomalyLikelihood(**kwargs)


def test_tail_probabilities() -> None:
    tail = Tail(1000)
    rng = np.random.default_rng(0)
    values = rng.exponential(1.0, 1000)
    for v in values:
        tail.add(float(v))
    # The bulk is empirical; beyond the top 2 % an exponential tail fitted to them.
    # Below the cut (near the 75th percentile: its share kept within [1/8, 1/2]) a value gets
    # the cut's share.
    share = (int((values > tail.cut).sum()) + 1) / 1001
    assert tail.p(0.0) == tail.p(math.log(2.0)) == pytest.approx(share) and 1 / 8 <= share <= 1 / 2
    assert tail.p(math.log(10.0)) == pytest.approx(0.1, abs=0.02)
    assert tail.p(math.log(100.0)) == pytest.approx(0.01, rel=0.5)
    assert 1e-6 < tail.p(12.0) < 1e-4  # well beyond every value seen (the truth: 6e-6)
    assert tail.p(10.0) > tail.p(20.0) > tail.p(40.0) > 0.0
    assert tail.log10_p(1e6) < -1000  # no underflow to -inf
    equal = Tail(50)
    for _ in range(50):
        equal.add(1.0)
    assert equal.p(1.0) == 1.0 and equal.log10_p(1.5) == -300.0


def test_the_views_evidence_adds_up() -> None:
    """The score is the joint surprise of both views (the product of their tail probabilities),
    as documented: ``s = -log10(p_point · p_mean) / log10(n + 2) / sqrt(2)``, squashed with 0.5;
    the short mean counts a deviation at most MEAN_CAP."""
    t, x = seasonal(5)
    det = AnomalyLikelihood(short=20, memory=1000)
    scores_of(t[:2000], x[:2000], det)
    n = len(det._point)
    for value in (50.0, 58.0, 65.0, 90.0, 500.0):
        z = abs(det._model.deviation(value))
        mean = (sum(det._recent) + min(z, MEAN_CAP)) / (len(det._recent) + 1)
        s = -(det._point.log10_p(z) + det._mean.log10_p(mean)) / math.log10(n + 2) / math.sqrt(2.0)
        assert det.score_one(value, t[2000]) == pytest.approx(s * s / (s * s + 0.25))
    # A bare record in the point view (the short mean ordinary) stays below the 0.8 of the filter.
    record = det._point.sorted[-1] * 1.0001
    s = -(det._point.log10_p(record) + det._mean.log10_p(0.0)) / math.log10(n + 2) / math.sqrt(2.0)
    assert 0.6 < s * s / (s * s + 0.25) < 0.8


def test_a_lone_spike_does_not_linger_in_the_short_mean() -> None:
    t, x = seasonal(6)
    x = x.copy()
    x[2400] += 200.0  # one huge spike: 200 robust standard deviations
    scores = scores_of(t, x, AnomalyLikelihood(short=20))
    assert scores[2400] > 0.9
    # After it the points are ordinary again: nothing near a record while it is in the mean.
    assert scores[2401:2420].max() < 0.6


def test_the_short_mean_is_summed_afresh_without_drift() -> None:
    det = AnomalyLikelihood(short=10, memory=200, warmup=4)
    values = [1e12 if i == 300 else float(i % 7) for i in range(400)]
    for i, v in enumerate(values):
        det.score_one(v, 60.0 * i)
        det.learn_one(v, 60.0 * i)
    assert det._recent_sum == pytest.approx(sum(det._recent), rel=1e-12)


def test_tail_keeps_only_the_upper_part_sorted_and_is_exact_there() -> None:
    rng = np.random.default_rng(2)
    values = rng.gamma(2.0, 1.0, 3000).tolist()
    tail = Tail(1000)
    for v in values:
        tail.add(v)
    window = np.array(values[-1000:])
    assert len(tail) == 1000 and tail.cut > float(np.quantile(window, 0.5))
    assert 1000 // 8 <= len(tail.sorted) <= 1000 // 2 and min(tail.sorted) > tail.cut
    for q in np.quantile(window, [0.8, 0.9, 0.95]).tolist():  # above the cut: the exact share
        assert tail.p(q) == pytest.approx((int((window >= q).sum()) + 1) / 1001)
    # Below the cut a value is not rare: it gets the cut's share, at least 1/8.
    assert tail.p(0.0) == tail.p(tail.cut) >= 1 / 8
    copy = Tail(1000)
    copy.load(json.loads(json.dumps(tail.state())))
    for v in rng.gamma(2.0, 1.0, 500).tolist():
        tail.add(v)
        copy.add(v)
        assert copy.log10_p(2 * v) == tail.log10_p(2 * v)
    old = Tail(1000)
    old.load(values[-1000:])  # as saved before the cut: a plain list, all of it sorted
    assert old.cut == -math.inf and old.p(0.0) == 1.0


def test_tail_answers_alike_whatever_its_memory_until_it_is_full() -> None:
    """The cut is looked at every n // 8 values, n those held: a Tail that has not filled its
    memory gives the same answers whatever that memory (with a look every memory // 8 values,
    a large memory kept everything sorted and exact for its first memory // 8 values, then let
    the cut go stale for as long: the score of a short series depended on the memory)."""
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.exponential(1.0, 300), rng.exponential(3.0, 300)]).tolist()
    small, large = Tail(800), Tail(8000)
    queries = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    for i, v in enumerate(values):
        small.add(v)
        large.add(v)
        assert [small.log10_p(q) for q in queries] == [large.log10_p(q) for q in queries], i
    n = len(values)
    assert small.cut > 0.0 and n // 8 <= len(small.sorted) <= n // 2  # the bulk is only counted
    # Saved and loaded part-way, it carries on alike.
    copy = Tail(8000)
    copy.load(json.loads(json.dumps(large.state())))
    for v in rng.exponential(3.0, 200).tolist():
        copy.add(v)
        large.add(v)
        assert copy.log10_p(2 * v) == large.log10_p(2 * v)


def test_peak_onsets_reports_each_burst_once_at_its_peak() -> None:
    s = np.zeros(300)
    s[50:55] = [0.5, 0.7, 0.9, 0.8, 0.6]  # one burst, rising then falling
    s[120] = 0.85  # a second anomaly, beyond the horizon
    s[140] = 0.6  # a smaller echo within the horizon of the second
    out = peak_onsets(s, horizon=50, delay=3)
    assert np.flatnonzero(out).tolist() == [52 + 3, 120 + 3]
    assert out[55] == 0.9 and out[123] == 0.85
    # Causal: the output up to i depends on the scores up to i only.
    changed = s.copy()
    changed[200:] = 1.0
    assert (peak_onsets(changed, 50, 3)[:200] == out[:200]).all()
