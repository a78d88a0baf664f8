"""Change-point detection: a two-sided CUSUM on values standardised by a reference period.

The first ``warmup`` points after a start (or a detected change) form the reference (mean and
standard deviation). Each later point adds its standardised deviation minus ``drift`` to an
upper and a lower cumulative sum; the score is the larger sum over ``threshold`` (capped at 1).
When learning a point that reaches the threshold, the detector counts a change and learns a new
reference from the points that follow, so a lasting shift is reported once.
"""

from __future__ import annotations

import math
from typing import Any

from watchkeeper.detect.base import Detector


class Cusum(Detector):
    """Two-sided CUSUM change-point detector; score 1.0 marks a change.

    >>> det = Cusum(warmup=20, drift=0.5, threshold=5.0)
    >>> stream = [10.0 + (-1) ** i * 0.5 for i in range(40)] + [13.0] * 5
    >>> first = None
    >>> for i, x in enumerate(stream):
    ...     if det.score_one(x, float(i)) >= 1.0 and first is None:
    ...         first = i
    ...     det.learn_one(x, float(i))
    >>> first, det.changes
    (40, 1)
    """

    def __init__(self, warmup: int = 50, drift: float = 1.0, threshold: float = 10.0) -> None:
        if warmup < 2 or drift < 0 or threshold <= 0:
            raise ValueError("warmup >= 2, drift >= 0 and threshold > 0 are required")
        self.warmup = warmup
        self.drift = drift
        self.threshold = threshold
        self.changes = 0
        self._restart()

    def _restart(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._pos = 0.0
        self._neg = 0.0

    def _sums(self, x: float) -> tuple[float, float]:
        std = math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0
        z = (x - self._mean) / max(std, 1e-9 + 1e-6 * abs(self._mean))
        return max(0.0, self._pos + z - self.drift), max(0.0, self._neg - z - self.drift)

    def score_one(self, x: float, t: float) -> float:
        if self._n < self.warmup:
            return 0.0
        pos, neg = self._sums(x)
        return min(1.0, max(pos, neg) / self.threshold)

    def learn_one(self, x: float, t: float) -> None:
        if self._n < self.warmup:
            self._n += 1
            delta = x - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (x - self._mean)
            return
        pos, neg = self._sums(x)
        if max(pos, neg) >= self.threshold:
            self.changes += 1
            self._restart()
            self.learn_one(x, t)  # the first point of the new regime
        else:
            self._pos, self._neg = pos, neg

    def expected_range(self, t: float) -> tuple[float, float] | None:
        if self._n < self.warmup:
            return None
        std = math.sqrt(self._m2 / (self._n - 1))
        width = (self.threshold + self.drift) * std
        return (self._mean - width, self._mean + width)

    def _get_state(self) -> dict[str, Any]:
        return {"n": self._n, "mean": self._mean, "m2": self._m2, "pos": self._pos, "neg": self._neg,
                "changes": self.changes}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._mean, self._m2 = float(state["mean"]), float(state["m2"])
        self._pos, self._neg = float(state["pos"]), float(state["neg"])
        self.changes = int(state["changes"])
