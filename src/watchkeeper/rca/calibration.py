"""From ranking features to a calibrated probability that the top cause is right.

A two-feature logistic model, ``P(top-1 right) = σ(a + b·log1p(top score) + c·log(top / second))``,
fitted on the evaluation sets (``watchkeeper eval rca --calibrate`` rewrites ``calibration.json`` next to
this module, which is committed and read once at import). The causes below the top share what is left (``1 - p``) in
proportion to their scores.

>>> round(top_probability(100.0, 1.0), 3) > round(top_probability(5.0, 4.0), 3)
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL = "logistic(log1p(top), log(top/second))"
#: Where ``eval rca --calibrate`` writes the fitted parameters.
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
#: Fitted by ``watchkeeper eval rca --calibrate`` (see docs/rca.md for the data and the reliability table).
CALIBRATION: dict[str, Any] = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
#: The lab's own fit (``eval rca --format lab --calibrate``): its metrics, scrape interval and failure
#: propagation differ from Nezha's, so a score means something else there.
LAB_CALIBRATION_FILE = Path(__file__).with_name("calibration_lab.json")


def load(environment: str) -> dict[str, Any]:
    """The calibration for ``"lab"`` (when fitted) or for everything else (Nezha's)."""
    if environment == "lab" and LAB_CALIBRATION_FILE.exists():
        return dict(json.loads(LAB_CALIBRATION_FILE.read_text(encoding="utf-8")))
    return dict(CALIBRATION)


def features(top: float, second: float) -> tuple[float, float]:
    """``(log1p(top score), log(top / second))``; the second score is floored at 1 (no evidence)."""
    top = max(top, 0.0)
    second = max(second, 1.0)
    return math.log1p(top), math.log(max(top, 1.0) / second)


def top_probability(top: float, second: float, calibration: dict[str, Any] | None = None) -> float:
    """Probability that the best-scored cause is the root cause."""
    c = calibration or CALIBRATION
    f_top, f_margin = features(top, second)
    x = float(c["intercept"]) + float(c["w_top"]) * f_top + float(c["w_margin"]) * f_margin
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def confidences(scores: Sequence[float], calibration: dict[str, Any] | None = None) -> list[float]:
    """Confidences for scores sorted best first: the top gets :func:`top_probability`, the rest
    share ``1 - p`` in proportion to their scores (so the confidences sum to at most 1)."""
    if not scores:
        return []
    second = scores[1] if len(scores) > 1 else 0.0
    p = top_probability(scores[0], second, calibration)
    rest = [max(s, 0.0) for s in scores[1:]]
    total = sum(rest)
    return [p] + [(1.0 - p) * s / total if total > 0 else 0.0 for s in rest]


def fit(tops: Sequence[float], seconds: Sequence[float], correct: Sequence[bool], l2: float = 0.1) -> dict[str, Any]:
    """Fit the logistic model by penalised maximum likelihood (Newton steps; ``l2`` on the weights only).

    >>> tops = [50, 40, 60, 3, 4, 2, 80, 5]
    >>> seconds = [2, 3, 2, 3, 3, 2, 4, 4]
    >>> c = fit(tops, seconds, [True, True, True, False, False, False, True, False])
    >>> c["w_margin"] > 0
    True
    """
    if not (len(tops) == len(seconds) == len(correct)) or not tops:
        raise ValueError("fit needs as many tops, seconds and outcomes, at least one")
    x = np.array([[1.0, *features(t, s)] for t, s in zip(tops, seconds, strict=True)])
    y = np.array([1.0 if c else 0.0 for c in correct])
    w = np.zeros(3)
    penalty = np.diag([0.0, l2, l2])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -500, 500)))
        grad = x.T @ (p - y) + penalty @ w
        hess = (x.T * (p * (1 - p))) @ x + penalty + 1e-9 * np.eye(3)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return {
        "model": MODEL,
        "intercept": round(float(w[0]), 6),
        "w_top": round(float(w[1]), 6),
        "w_margin": round(float(w[2]), 6),
    }
