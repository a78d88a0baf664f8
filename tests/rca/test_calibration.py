"""The confidence model: monotone in the evidence, confidences are a sub-distribution, fit recovers the trend."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.rca.calibration import CALIBRATION, confidences, fit, top_probability


def test_committed_calibration_is_complete() -> None:
    assert {"intercept", "w_top", "w_margin", "model"} <= set(CALIBRATION)


def test_probability_grows_with_the_top_score_and_the_margin() -> None:
    c = {"intercept": -2.0, "w_top": 1.0, "w_margin": 1.0}
    assert top_probability(100.0, 10.0, c) > top_probability(20.0, 10.0, c) > top_probability(10.0, 10.0, c)
    assert top_probability(100.0, 2.0, c) > top_probability(100.0, 50.0, c)
    assert 0.0 <= top_probability(0.0, 0.0, c) <= 1.0


def test_confidences_sum_to_at_most_one() -> None:
    conf = confidences([50.0, 10.0, 5.0, 0.0])
    assert len(conf) == 4 and sum(conf) == pytest.approx(1.0)
    assert conf[1] > conf[2] > conf[3] == 0.0
    assert confidences([]) == []
    assert len(confidences([3.0])) == 1


def test_fit_learns_that_clear_margins_are_right() -> None:
    rng = np.random.default_rng(7)
    tops, seconds, correct = [], [], []
    for _ in range(400):
        second = float(rng.uniform(2, 20))
        ratio = float(np.exp(rng.uniform(0, 4)))
        p_true = 1 / (1 + np.exp(-(-3 + 2 * np.log(ratio))))
        tops.append(second * ratio)
        seconds.append(second)
        correct.append(bool(rng.uniform() < p_true))
    c = fit(tops, seconds, correct, l2=0.01)
    assert 1.2 < c["w_margin"] < 3.0
    assert top_probability(200.0, 2.0, c) > 0.9 > 0.2 > top_probability(4.0, 4.0, c)


def test_fit_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="as many"):
        fit([1.0], [1.0, 2.0], [True])
