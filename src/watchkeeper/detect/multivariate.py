"""A multivariate detector for the metric set of one service.

Every metric is standardised by its own exponentially weighted mean and variance (memory
``memory`` points; standard deviations below ``min_std`` are raised to it, so a metric that was
flat in training does not explode on its first wiggle). The score squashes the largest absolute
standardised deviation (``half`` deviations give 0.5): a fault usually moves a few metrics of a
service far, rather than all of them a little.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from watchkeeper.detect.base import MultiDetector, squash


class MaxZ(MultiDetector):
    """The largest per-metric z-score, squashed onto ``[0, 1]``.

    >>> det = MaxZ(memory=100, half=4.0)
    >>> rng = np.random.default_rng(0)
    >>> for i in range(200):
    ...     det.learn_one(rng.normal([0.5, 10.0], [0.1, 1.0]), t=float(i))
    >>> det.score_one([0.5, 10.0], 200.0) < 0.1, det.score_one([0.5, 30.0], 200.0) > 0.9
    (True, True)
    """

    def __init__(self, memory: int = 1000, half: float = 4.0, min_std: float = 0.01, warmup: int = 10) -> None:
        if memory < 2 or half <= 0 or min_std <= 0 or warmup < 2:
            raise ValueError("memory >= 2, half > 0, min_std > 0 and warmup >= 2 are required")
        self.memory = memory
        self.half = half
        self.min_std = min_std
        self.warmup = warmup
        self._n = 0
        self._mean: np.ndarray[Any, np.dtype[np.float64]] | None = None
        self._var: np.ndarray[Any, np.dtype[np.float64]] | None = None

    def z(self, x: Sequence[float] | np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The standardised deviation of every metric."""
        v = np.asarray(x, dtype=float)
        if self._mean is None or self._var is None:
            return np.zeros_like(v)
        z: np.ndarray[Any, np.dtype[np.float64]] = np.abs(v - self._mean) / np.maximum(
            np.sqrt(self._var), self.min_std)
        return z

    def score_one(self, x: Sequence[float] | np.ndarray[Any, Any], t: float) -> float:
        if self._n < self.warmup:
            return 0.0
        return squash(float(self.z(x).max()), self.half)

    def learn_one(self, x: Sequence[float] | np.ndarray[Any, Any], t: float) -> None:
        v = np.asarray(x, dtype=float)
        if self._mean is None or self._var is None:
            self._mean, self._var = v.copy(), np.zeros_like(v)
            self._n = 1
            return
        if v.shape != self._mean.shape:
            raise ValueError(f"expected {self._mean.shape[0]} metrics, got {v.shape}")
        self._n += 1
        alpha = max(1.0 / self._n, 1.0 / self.memory)
        delta = v - self._mean
        self._mean += alpha * delta
        self._var = (1.0 - alpha) * (self._var + alpha * delta * delta)

    def _get_state(self) -> dict[str, Any]:
        return {"n": self._n,
                "mean": None if self._mean is None else self._mean.tolist(),
                "var": None if self._var is None else self._var.tolist()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._mean = None if state["mean"] is None else np.array(state["mean"], dtype=float)
        self._var = None if state["var"] is None else np.array(state["var"], dtype=float)
