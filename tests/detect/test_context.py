"""ContextNovelty (a calibrated prediction error of a value's level bin given the bins before it)
and LikelihoodContext (it joined with the default's anomaly likelihood)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchkeeper.detect.context import ContextNovelty, LikelihoodContext
from watchkeeper.detect.likelihood import AnomalyLikelihood


def pattern(n: int, seed: int = 5) -> list[float]:
    """A repeating staircase 0, 1, 2, 3 with a little noise (never leaving its bin)."""
    rng = np.random.default_rng(seed)
    return [float(i % 4) * 10.0 + 5.0 + float(rng.uniform(-1.0, 1.0)) for i in range(n)]


def test_a_familiar_level_out_of_its_order_is_novel() -> None:
    """After ..., 25, 35 the staircase goes back to 5: a 25 there is a level the series knows,
    at a place it never comes, and scores as new; the expected 5 does not."""
    det = ContextNovelty(probation=64, memory=800)
    xs = pattern(1000)
    for i, x in enumerate(xs):
        det.learn_one(x, 60.0 * i)
    assert xs[-1] > 30.0  # the staircase's top: 5 comes next
    expected, reordered = det.score_one(5.0, 60_000.0), det.score_one(25.0, 60_000.0)
    assert expected < 0.25  # a bulk value: its p is the bulk's, about 1 / 4
    assert reordered > 0.75


def test_the_likelihood_alone_misses_what_the_context_sees() -> None:
    """The point of a second member: the same reordered level barely moves the default."""
    lik = AnomalyLikelihood(window=32, memory=800)
    both = LikelihoodContext(join="max")
    for i, x in enumerate(pattern(1500)):
        lik.learn_one(x, 60.0 * i)
        both.learn_one(x, 60.0 * i)
    assert lik.score_one(25.0, 90_000.0) < both.score_one(25.0, 90_000.0)


def test_bins_follow_a_lasting_shift() -> None:
    """A level shift is new at first; once it has lasted a memory, the bins are placed on the
    new range and the counts rebuilt: the shifted staircase is ordinary again (a bin edge that
    lands in the noise may still give a few new contexts, as any quantisation does)."""
    det = ContextNovelty(probation=64, memory=400)
    xs = pattern(600) + [x + 1000.0 for x in pattern(1200, seed=6)]
    scores = [det.score_learn_one(x, 60.0 * i) for i, x in enumerate(xs)]
    assert max(scores[600:610]) > 0.75
    assert float(np.quantile(scores[-200:], 0.9)) < 0.3
    assert float(np.quantile(scores[-200:], 0.9)) <= float(np.quantile(scores[400:600], 0.9)) + 0.05


@pytest.mark.parametrize("odd", [math.nan, math.inf, -math.inf, 1e308])
def test_odd_values_score_in_unit_interval(odd: float) -> None:
    det = ContextNovelty(probation=64, memory=400)
    for i, x in enumerate(pattern(500)):
        det.learn_one(x, 60.0 * i)
    s = det.score_learn_one(odd, 30_000.0)
    assert 0.0 <= s <= 1.0
    assert 0.0 <= det.score_one(5.0, 30_060.0) <= 1.0


def test_joins() -> None:
    """``max`` is the larger member's score, ``mean`` their mean; both under the same stream."""
    a, b = LikelihoodContext(join="max"), LikelihoodContext(join="mean")
    for i, x in enumerate(pattern(800)):
        a.learn_one(x, 60.0 * i)
        b.learn_one(x, 60.0 * i)
    lik, ctx = a._likelihood.score_one(25.0, 48_000.0), a._context.score_one(25.0, 48_000.0)
    assert a.score_one(25.0, 48_000.0) == max(lik, ctx)
    assert b.score_one(25.0, 48_000.0) == pytest.approx(0.5 * (lik + ctx))


def test_fisher_join_adds_surprises() -> None:
    """``fisher``: the likelihood's joint surprise and the context's added over sqrt(3) views. A
    record in the context alone (likelihood ordinary) scores below ``max``; both at a record,
    above either alone; and 0 when both are 0."""
    det = LikelihoodContext(join="fisher")
    assert det._join(0.0, 0.0) == 0.0
    assert det._join(0.2, 0.8) < 0.8
    assert det._join(0.8, 0.8) > 0.8
    assert det._join(1.0, 0.3) == 1.0


def test_cache_key_probe_outlasts_the_memories() -> None:
    """``eval detect`` keys its cached scores by a probe's scores: the probe must outlast the
    detectors' 4,000-point memories, so that a change showing only once they are full changes
    the key (round 3 kept a stale cache with a 4,000-point probe)."""
    from watchkeeper.detect.likelihood import AnomalyLikelihood
    from watchkeeper.eval.detect import KEY_PROBE_POINTS, probe

    assert 2 * max(ContextNovelty().memory, AnomalyLikelihood().memory) <= KEY_PROBE_POINTS
    assert len(probe(60.0, KEY_PROBE_POINTS)[1]) == KEY_PROBE_POINTS
