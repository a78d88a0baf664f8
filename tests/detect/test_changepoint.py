"""CUSUM: exact detection indices on seeded synthetic streams."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.detect.changepoint import Cusum


def detections(det: Cusum, xs: np.ndarray) -> list[int]:
    found = []
    for i, x in enumerate(xs):
        if det.score_one(float(x), float(i)) >= 1.0:
            found.append(i)
        det.learn_one(float(x), float(i))
    return found


def shifted(seed: int, n: int, at: list[int], by: list[float], noise: float = 1.0) -> np.ndarray:
    xs = np.random.default_rng(seed).normal(0.0, noise, n)
    for a, d in zip(at, by, strict=True):
        xs[a:] += d
    return xs


@pytest.mark.parametrize(
    ("seed", "at", "by", "expected"),
    [
        (42, [], [], []),  # no change, no detection
        (3, [], [], []),
        (42, [300], [5.0], [301]),  # a large upward shift is seen within two points
        (7, [300], [-5.0], [302]),  # downward
        (7, [300], [1.5], [306]),  # a small shift takes longer
        (42, [200, 500], [4.0, -8.0], [201, 501]),  # two changes: the reference is re-learned
    ],
)
def test_detection_indices(seed: int, at: list[int], by: list[float], expected: list[int]) -> None:
    det = Cusum(warmup=50, drift=1.0, threshold=10.0)
    assert detections(det, shifted(seed, 800, at, by)) == expected
    assert det.changes == len(expected)


def test_score_grows_towards_the_change() -> None:
    det = Cusum(warmup=20, drift=0.5, threshold=8.0)
    xs = shifted(1, 60, [40], [2.0])
    scores = []
    for i, x in enumerate(xs):
        scores.append(det.score_one(float(x), float(i)))
        det.learn_one(float(x), float(i))
    assert scores[:20] == [0.0] * 20  # learning the reference
    assert max(scores[20:40]) < 0.9
    assert scores.index(1.0) == 44  # the shift at 40, seen at 44
    assert scores[45:] == [0.0] * 15  # learning the new reference
