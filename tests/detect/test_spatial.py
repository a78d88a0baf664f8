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
