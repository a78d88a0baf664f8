"""The default detector's scores are fixed by its version: speed work must not change one.

``data/likelihood_v2_probe_scores.npy`` holds the scores ``likelihood-v2`` gave (recorded before
its loop was made faster) of the evaluation protocol's two probe series — the series whose scores
key the protocol's cache, built to reach every branch of the detector (season found and not, a
spike, a level shift, a change of variance, a quantised stretch, a constant one). Equal to the
last bit here means equal cache keys and equal held-out figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.detect.default import SHIPPED
from watchkeeper.detect.filter import run
from watchkeeper.detect.likelihood import AnomalyLikelihood
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.eval.detect import probe

RECORDED = np.load(Path(__file__).parent / "data" / "likelihood_v2_probe_scores.npy")


@pytest.mark.parametrize(("row", "step"), [(0, 60.0), (1, 300.0)])
def test_the_shipped_default_scores_the_probes_exactly_as_recorded(row: int, step: float) -> None:
    shipped = SHIPPED["likelihood"]
    assert shipped.version == "likelihood-v3"  # v3 scores one series as v2 did (its detector is v2's)
    t, x = probe(step)
    scores = run(shipped.build(), t.tolist(), x.tolist(), threshold=shipped.threshold, max_skip=shipped.max_skip)
    assert RECORDED[row].max() > 0.9  # the fixture holds real scores, anomalies included
    np.testing.assert_array_equal(scores, RECORDED[row])


@pytest.mark.parametrize("step", [60.0, 300.0])
def test_score_then_learn_scores_as_the_filter_does_across_a_saved_state(step: float) -> None:
    """The plain protocol (``score_one`` then ``learn_one``, state saved and loaded midway) gives
    the very scores of the filter's path."""
    t, x = probe(step)
    expected = run(AnomalyLikelihood(), t.tolist(), x.tolist(), threshold=1.0, max_skip=0)
    det = AnomalyLikelihood()
    got = np.empty(len(x))
    for i, (ti, xi) in enumerate(zip(t.tolist(), x.tolist(), strict=True)):
        if i == len(x) // 2:
            det = AnomalyLikelihood.from_state(json.loads(json.dumps(det.to_state())))
        got[i] = det.score_one(xi, ti)
        det.learn_one(xi, ti)
    np.testing.assert_array_equal(got, expected)


def test_the_filter_keeping_points_out_scores_as_score_then_learn() -> None:
    """With ``max_skip > 0`` the filter learns only some points; the detector must then score as
    the plain protocol does when it is given the same points to learn."""
    t, x = probe(300.0)
    threshold, max_skip = 0.7, 3
    got = run(AnomalyLikelihood(short=10, memory=500), t.tolist(), x.tolist(), threshold=threshold,
              max_skip=max_skip)
    det = AnomalyLikelihood(short=10, memory=500)
    skipped = 0
    for i, (ti, xi) in enumerate(zip(t.tolist(), x.tolist(), strict=True)):
        s = det.score_one(xi, ti)
        assert s == got[i]
        skipped = skipped + 1 if s >= threshold else 0
        if skipped == 0 or skipped > max_skip:
            det.learn_one(xi, ti)
    assert (got >= threshold).any()


def _median_point_by_point(det: RobustSeasonal) -> float:
    """The seasonal median as RobustSeasonal first computed it, one point at a time."""
    ring, pos = det._ring, det._pos
    same_phase = sorted([ring[pos - back] for back in det._offsets if back <= det._count])
    return same_phase[len(same_phase) // 2]


def test_seasonal_medians_found_ahead_are_those_found_point_by_point() -> None:
    """RobustSeasonal finds the seasonal medians of the next positions in one numpy pass; each
    must be the value picked point by point, across a state saved and loaded midway, the ring
    wrapping around, and ties (a quantised stretch)."""
    step = 1800.0  # a day is 48 points: the ring of 12,000 wraps within the series
    n = 13_000
    rng = np.random.default_rng(5)
    t = np.arange(n) * step
    x = 10.0 + 3.0 * np.sin(2 * np.pi * t / 86_400.0) + rng.normal(0.0, 0.3, n)
    x[6000:7000] = np.round(x[6000:7000])
    det = RobustSeasonal(window=16, season="daily")
    checked = 0
    for i, (ti, xi) in enumerate(zip(t.tolist(), x.tolist(), strict=True)):
        if i == n // 2 + 7:
            det = RobustSeasonal.from_state(json.loads(json.dumps(det.to_state())))
        if det.season_lag:
            assert det._expected() == _median_point_by_point(det), i
            checked += 1
        det.learn_one(xi, ti)
    assert det.season_lag == 48 and det._ahead and checked > 12_000

