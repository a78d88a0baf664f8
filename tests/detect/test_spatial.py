"""RangeLikelihood: the default's anomaly likelihood with the range break (a value beyond the
recent range by more than 5 % of it scores 1.0)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from watchkeeper.detect.likelihood import AnomalyLikelihood
from watchkeeper.detect.spatial import RangeLikelihood
from watchkeeper.detect.store import restore


def noisy(n: int, seed: int = 3) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in 50.0 + rng.uniform(-5.0, 5.0, n)]


def test_a_break_of_the_range_scores_one_and_only_beyond_the_tolerance() -> None:
    det = RangeLikelihood(window=32, memory=500)
    for i, x in enumerate(noisy(600)):
        det.learn_one(x, 60.0 * i)
    # the range is about [45, 55]: 5 % of it is 0.5
    assert det.score_one(56.0, 36_000.0) == 1.0
    assert det.score_one(44.0, 36_000.0) == 1.0
    assert det.score_one(55.2, 36_000.0) < 1.0
    assert det.score_one(50.0, 36_000.0) < 0.5


def test_below_the_break_it_scores_as_the_likelihood_does() -> None:
    """Every point that breaks nothing gets the very score of the unchanged default."""
    xs = noisy(3000)
    xs[2000] = 53.0  # inside the range: not a break
    plain, ranged = AnomalyLikelihood(), RangeLikelihood()
    a = [plain.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    b = [ranged.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    differ = [i for i, (u, v) in enumerate(zip(a, b, strict=True)) if u != v]
    assert all(b[i] == 1.0 for i in differ)
    assert len(differ) <= 3  # a uniform series breaks its own range only in its first points


def test_a_new_level_is_reported_once_not_at_every_point() -> None:
    xs = noisy(1000) + [v + 100.0 for v in noisy(500, seed=4)]
    det = RangeLikelihood(window=32, memory=4000)
    scores = [det.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    assert scores[1000] == 1.0
    assert sum(s == 1.0 for s in scores[1001:]) <= 2


def test_the_range_forgets_after_two_memories() -> None:
    """A spike widens the range; two blocks of ``memory`` later it no longer does, and the same
    spike breaks the range again."""
    det = RangeLikelihood(window=32, memory=200)
    xs = noisy(300)
    xs[250] = 200.0
    for i, x in enumerate(xs):
        det.learn_one(x, 60.0 * i)
    assert det.score_one(190.0, 18_000.0) < 1.0
    for i, x in enumerate(noisy(400, seed=9)):
        det.learn_one(x, 18_000.0 + 60.0 * i)
    assert det.score_one(190.0, 50_000.0) == 1.0


def test_no_break_before_the_likelihood_scores() -> None:
    det = RangeLikelihood(window=32, memory=500)
    scores = [det.score_learn_one(x, 60.0 * i) for i, x in enumerate([1.0, 2.0, 100.0, -50.0, 400.0])]
    assert scores == [0.0] * 5


def test_state_round_trip_scores_exactly_as_the_original() -> None:
    det = RangeLikelihood(window=32, memory=300)
    for i, x in enumerate(noisy(700)):
        det.score_learn_one(x, 60.0 * i)
    back = restore(json.loads(json.dumps(det.to_state())))
    assert isinstance(back, RangeLikelihood) and back.params() == det.params()
    for i, x in enumerate([50.0, 58.0, 40.0, 51.0, math.nan, 70.0]):
        t = 42_000.0 + 60.0 * i
        assert back.score_learn_one(x, t) == det.score_learn_one(x, t) or (math.isnan(x))


def test_an_empty_detector_round_trips() -> None:
    det = RangeLikelihood()
    back = restore(json.loads(json.dumps(det.to_state())))
    assert json.dumps(back.to_state()) == json.dumps(det.to_state())  # (NaN != NaN as dicts)


def test_the_state_of_the_plain_likelihood_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="cannot load into RangeLikelihood"):
        RangeLikelihood.from_state(AnomalyLikelihood().to_state())


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        RangeLikelihood(tolerance=-0.1)


def test_no_cap_counts_a_sustained_deviation_as_it_is() -> None:
    """``mean_cap=None`` (round 7's candidate): the short mean is not held at 10 robust standard
    deviations, so a shift far beyond an earlier one scores higher than with the cap; the cap is
    a parameter (saved with the state) and the default's 10 is what round 5's candidate had."""
    xs = (10.0 + np.random.default_rng(7).normal(0.0, 1.0, 1500)).tolist()
    xs[600:700] = [x + 15.0 for x in xs[600:700]]  # a first shift: beyond the cap already
    xs[1200:1300] = [x + 60.0 for x in xs[1200:1300]]  # a second, four times as far
    capped, free = RangeLikelihood(window=32, memory=500), RangeLikelihood(window=32, memory=500, mean_cap=None)
    assert capped.params()["mean_cap"] == 10.0 and free.params()["mean_cap"] is None
    scores = {}
    for det in (capped, free):
        scores[det.mean_cap] = [det.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs[:1230])]
    # the second shift's first point breaks the range (1.0 either way); the points after it are
    # inside the widened range, where only the likelihood speaks
    assert scores[None][1200] == scores[10.0][1200] == 1.0
    assert sum(scores[None][1201:1211]) > sum(scores[10.0][1201:1211]) + 1.0
    back = RangeLikelihood.from_state(json.loads(json.dumps(free.to_state())))
    assert back.params()["mean_cap"] is None
    assert back.score_one(70.1, 1230 * 60.0) == free.score_one(70.1, 1230 * 60.0)
    with pytest.raises(ValueError, match="mean_cap"):
        RangeLikelihood(mean_cap=0.0)


def test_relearn_forgets_the_tails_at_a_new_level() -> None:
    """``relearn=True`` (round 8's candidate): 50 points in a row beyond the range a break crossed
    are a new level; the tails start afresh there (the likelihood silent while they refill, the
    break still armed), so the new level stops looking rare; the one-pass path equals the two
    calls, and the state round trip keeps the episode."""
    xs = (10.0 + np.random.default_rng(3).normal(0.0, 1.0, 1400)).tolist()
    xs[800:] = [x + 40.0 for x in xs[800:]]
    plain, fresh, calls = (RangeLikelihood(window=32, memory=1000, relearn=r) for r in (False, True, True))
    a = [plain.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    b = [fresh.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    c = []
    for i, x in enumerate(xs):
        c.append(calls.score_one(x, 60.0 * i))
        calls.learn_one(x, 60.0 * i)
    assert b == c and a[:850] == b[:850]  # the 50th point at the new level is 849
    assert b[800] == 1.0 and len(fresh._point) == 1400 - 850 < len(plain._point) == 1000
    assert all(v == 0.0 for v in b[850:850 + 64]) and max(a[850:850 + 64]) > 0.0  # the tails refill
    assert fresh.score_one(200.0, 1400 * 60.0) == 1.0  # a break is still a break
    back = RangeLikelihood.from_state(json.loads(json.dumps(fresh.to_state())))
    assert back.score_one(50.5, 1400 * 60.0) == fresh.score_one(50.5, 1400 * 60.0)
    assert back.to_state() == fresh.to_state()
