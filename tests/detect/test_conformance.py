"""Every detector through the same checks: scores in [0, 1], exact state round-trip, clones."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from watchkeeper.detect.base import Estimator
from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.context import ContextNovelty, LikelihoodContext
from watchkeeper.detect.likelihood import AnomalyLikelihood
from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.detect.spatial import RangeLikelihood
from watchkeeper.detect.store import DETECTORS, restore

UNIVARIATE: list[Callable[[], Estimator]] = [
    AnomalyLikelihood,
    lambda: AnomalyLikelihood(window=16, short=1, memory=200, warmup=4),
    RangeLikelihood,
    lambda: RangeLikelihood(window=16, short=1, memory=200, warmup=4, tolerance=0.0),
    RobustSeasonal,
    lambda: RobustSeasonal(window=8, warmup=4),
    lambda: RobustSeasonal(window=16, season="daily"),
    lambda: RobustSeasonal(season="none", smooth=1),
    Cusum,
    lambda: Cusum(warmup=5, drift=0.0, threshold=2.0),
    ContextNovelty,
    lambda: ContextNovelty(levels=4, order=2, probation=40, memory=200),
    LikelihoodContext,
    lambda: LikelihoodContext(join="mean", order=1, probation=20),
]
MULTIVARIATE: list[Callable[[], Estimator]] = [MaxZ, lambda: MaxZ(memory=5, warmup=2)]


def stream(kind: str, n: int, seed: int) -> list[Any]:
    """Seeded streams with a daily cycle (5-minute steps), spikes and a level shift."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 300.0
    x = 50 + 10 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 1, n)
    x[n // 3] += 40
    x[2 * n // 3:] += 15
    if kind == "multi":
        return [(float(ti), np.column_stack([x, x * 0.1, rng.normal(size=n)])[i]) for i, ti in enumerate(t)]
    if kind == "flat":
        return [(float(ti), 3.0) for ti in t]
    if kind == "integers":
        return [(float(ti), float(v)) for ti, v in zip(t, rng.poisson(2, n), strict=True)]
    return [(float(ti), float(v)) for ti, v in zip(t, x, strict=True)]


CASES = [(make, kind) for make in UNIVARIATE for kind in ("smooth", "flat", "integers")] + [
    (make, "multi") for make in MULTIVARIATE
]


@pytest.mark.parametrize(("make", "kind"), CASES)
def test_scores_in_unit_interval_and_state_round_trip(make: Callable[[], Estimator], kind: str) -> None:
    points = stream(kind, 900, seed=3)
    det: Any = make()
    for t, x in points[:600]:
        s = det.score_one(x, t)
        assert 0.0 <= s <= 1.0
        det.learn_one(x, t)
    state = json.loads(json.dumps(det.to_state()))
    copy: Any = type(det).from_state(state)
    assert repr(copy) == repr(det)
    for t, x in points[600:]:
        a, b = det.score_one(x, t), copy.score_one(x, t)
        assert a == b
        assert 0.0 <= a <= 1.0
        det.learn_one(x, t)
        copy.learn_one(x, t)
    assert json.dumps(det.to_state()) == json.dumps(copy.to_state())


@pytest.mark.parametrize("make", UNIVARIATE + MULTIVARIATE)
def test_clone_is_untrained_with_same_params(make: Callable[[], Estimator]) -> None:
    det: Any = make()
    kind = "multi" if isinstance(det, MaxZ) else "smooth"
    for t, x in stream(kind, 100, seed=1):
        det.learn_one(x, t)
    fresh: Any = det.clone()
    assert fresh.params() == det.params()
    assert json.dumps(fresh.to_state()) == json.dumps(make().to_state())


@pytest.mark.parametrize("make", UNIVARIATE + MULTIVARIATE)
def test_registry_restores_every_detector(make: Callable[[], Estimator]) -> None:
    det = make()
    assert type(det).__name__ in DETECTORS
    assert repr(restore(det.to_state())) == repr(det)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"kind": "Cusum", "version": 99, "params": {}, "state": {}}, "cannot load"),
        ({"kind": "Pickle", "version": 1, "params": {}, "state": {}}, "unknown detector kind"),
    ],
)
def test_bad_state_is_refused(state: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        restore(state)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: RobustSeasonal(window=2), "window"),
        (lambda: RobustSeasonal(season="monthly"), "season"),
        (lambda: Cusum(threshold=0), "threshold"),
        (lambda: MaxZ(memory=1), "memory"),
        (lambda: ContextNovelty(levels=1), "levels"),
        (lambda: LikelihoodContext(join="min"), "join"),
    ],
)
def test_invalid_config_fails_loudly(make: Callable[[], Estimator], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        make()
