"""Contextual novelty: how unexpected a value's *level* is after the levels just before it.

In the spirit of the contextual anomaly detector (CAD-OSE, Smirnov 2016, NAB standard 69.9) and
of ART-style novelty, but written here from the idea, not the code:

* each value is quantised into one of ``levels`` bins spanning the 0.5 %–99.5 % range of the
  last ``memory`` values (plus one bin below and one above it: a value outside the remembered
  range is its own symbol);
* a *context* is the sequence of the last ``order`` symbols; the model predicts the current
  symbol from the ``order - 1`` before it, with counts over the last ``memory`` contexts
  (additive smoothing ``ALPHA``): the raw score is the information ``-log10 p(symbol | before)``
  — a prediction error, as HTM's raw anomaly is;
* that information is calibrated as :class:`~watchkeeper.detect.likelihood.AnomalyLikelihood`
  calibrates deviations: its tail probability under its own last ``memory`` values
  (:class:`~watchkeeper.detect.likelihood.Tail`), as a surprise ``-log10 p / log10 n`` squashed
  so that a record scores 0.8.
* The bins are placed again every ``memory // 4`` points (and once the first ``probation``
  points are in), and the counts rebuilt from the remembered values: a slow drift of the
  metric's range re-bases the contexts instead of making every later one look new.

Nothing is fixed per series: the range, the counts and the calibration are learned online from
the series itself. :class:`LikelihoodContext` joins it with the default's anomaly likelihood.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector
from watchkeeper.detect.likelihood import MIN_HISTORY, RECORD_HALF2, AnomalyLikelihood, Tail

#: Additive smoothing of the context counts.
ALPHA = 0.5
#: The remembered range that ``levels`` bins span: these quantiles of the remembered values.
RANGE_Q = (0.005, 0.995)


class ContextNovelty(Detector):
    """Calibrated prediction error of a value's level bin given the bins of the values before it.

    >>> det = ContextNovelty(probation=64, memory=400)
    >>> for i in range(600):
    ...     det.learn_one(float(i % 4), t=60.0 * i)
    >>> det.score_one(0.0, 36_000.0) < 0.3, det.score_one(2.0, 36_000.0) > 0.7  # 0 follows 2, 3
    (True, True)
    """

    def __init__(self, levels: int = 8, order: int = 3, probation: int = 150, memory: int = 4000) -> None:
        if levels < 2 or order < 1 or probation < order or memory < max(2 * MIN_HISTORY, probation):
            raise ValueError("levels >= 2, order >= 1, probation >= order and memory >= max(128, probation)")
        self.levels = levels
        self.order = order
        self.probation = probation
        self.memory = memory
        self._symbols = levels + 2
        self._modulus = self._symbols ** (order - 1)  # a context code modulo this: its last order - 1
        self._reset()

    def _reset(self) -> None:
        self._values: deque[float] = deque(maxlen=self.memory)
        # the code of every context that lies wholly within the remembered values
        self._codes: deque[int] = deque(maxlen=self.memory - self.order + 1)
        self._counts: dict[int, int] = {}  # context code -> how many remembered
        self._before: dict[int, int] = {}  # code of the order - 1 symbols before -> count
        self._lo, self._width = 0.0, 0.0  # bins unplaced while width == 0
        self._prefix: int | None = None  # the code of the last order - 1 symbols, once placed
        self._since = 0  # points learned since the bins were placed
        self._tail = Tail(self.memory)
        self._last: tuple[float, float, float] | None = None  # (x, information, score)

    # -- symbols and contexts -----------------------------------------------------------------
    def _symbol(self, x: float) -> int:
        """The bin of ``x``: 0 below the range (and NaN), ``levels + 1`` above it."""
        q = (x - self._lo) / self._width
        if q >= self._symbols - 1:
            return self._symbols - 1
        if q >= -1.0:
            return math.floor(q) + 1
        return 0

    def _place(self) -> None:
        """Place the bins on the remembered values' range and count their contexts again."""
        v = np.asarray(self._values, dtype=np.float64)
        finite = v[np.isfinite(v)]
        if len(finite) == 0:
            return
        lo, hi = (float(q) for q in np.quantile(finite, RANGE_Q))
        if not hi > lo:
            spread = max(abs(lo) * 1e-3, 1e-9)
            lo, hi = lo - spread, hi + spread
        self._count(lo, (hi - lo) / self.levels)

    def _count(self, lo: float, width: float) -> None:
        """Bins from ``lo`` of ``width``; the remembered values' contexts counted under them."""
        self._lo, self._width, self._since = lo, width, 0
        v = np.asarray(self._values, dtype=np.float64)
        s, k = self._symbols, self.order
        with np.errstate(invalid="ignore"):
            b = np.floor((v - lo) / width) + 1.0
        symbols = np.clip(np.nan_to_num(b, nan=0.0, posinf=s - 1, neginf=0.0), 0, s - 1).astype(np.int64)
        codes = np.zeros(max(len(symbols) - k + 1, 0), dtype=np.int64)
        for j in range(k):
            codes = codes * s + symbols[j : len(symbols) - k + 1 + j]
        self._codes = deque(codes.tolist(), maxlen=self.memory - self.order + 1)
        keys, counts = np.unique(codes, return_counts=True)
        self._counts = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        keys, counts = np.unique(codes // s, return_counts=True)
        self._before = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        prefix: int | None = None
        if len(symbols) >= k - 1:
            prefix = 0
            for symbol in symbols[len(symbols) - k + 1 :].tolist() if k > 1 else []:
                prefix = prefix * s + symbol
        self._prefix = prefix

    def _information(self, x: float) -> tuple[float, int] | None:
        """``-log10 p(symbol of x | the symbols before)`` and the context's code."""
        prefix = self._prefix
        if prefix is None:  # bins not placed yet
            return None
        code = prefix * self._symbols + self._symbol(x)
        p = (self._counts.get(code, 0) + ALPHA) / (self._before.get(prefix, 0) + ALPHA * self._symbols)
        return -math.log10(p), code

    # -- the protocol -------------------------------------------------------------------------
    def score_one(self, x: float, t: float) -> float:
        last = self._last
        if last is not None and last[0] == x:
            return last[2]
        found = self._information(x)
        score = self._score(found[0]) if found is not None else 0.0
        self._last = (x, found[0] if found is not None else math.nan, score)
        return score

    def learn_one(self, x: float, t: float) -> None:
        self._learn(x, self._information(x))

    def score_learn_one(self, x: float, t: float) -> float:
        """:meth:`score_one` then :meth:`learn_one`, finding the context's information once."""
        found = self._information(x)
        score = self._score(found[0]) if found is not None else 0.0
        self._learn(x, found)
        return score

    def _score(self, info: float) -> float:
        """The calibrated score of an information ``info``: its surprise under the tail, squashed."""
        tail = self._tail
        n = len(tail.values)
        if n < MIN_HISTORY:
            return 0.0
        s = tail.log10_p(info) / math.log10(n + 2)
        s *= s
        return s / (s + RECORD_HALF2)

    def _learn(self, x: float, found: tuple[float, int] | None) -> None:
        if found is not None:
            info, code = found
            self._tail.add(info)
            codes, counts, before, symbols = self._codes, self._counts, self._before, self._symbols
            if len(codes) == codes.maxlen:
                old = codes[0]
                counts[old] -= 1
                before[old // symbols] -= 1
            codes.append(code)
            counts[code] = counts.get(code, 0) + 1
            before[code // symbols] = before.get(code // symbols, 0) + 1
            self._prefix = code % self._modulus
        self._values.append(x)
        self._since += 1
        if (self._width <= 0.0 and len(self._values) >= self.probation) or self._since >= self.memory // 4:
            self._place()
        self._last = None

    # -- state --------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {
            "values": list(self._values),
            "lo": self._lo,
            "width": self._width,
            "since": self._since,
            "tail": self._tail.state(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        self._values.extend(float(v) for v in state["values"])
        if float(state["width"]) > 0.0:
            self._count(float(state["lo"]), float(state["width"]))
        self._since = int(state["since"])
        self._tail.load(state["tail"])


JOINS = ("max", "mean", "fisher")


class LikelihoodContext(Detector):
    """The default's :class:`AnomalyLikelihood` and :class:`ContextNovelty`, their calibrated
    scores joined by ``join``: ``max`` (either view's surprise alone suffices), ``mean``, or
    ``fisher``: the context as a third view of the likelihood's Fisher join — the surprises of
    the three views (the likelihood's two, summed, and the context's) added and divided by
    ``sqrt(3)``, squashed as the likelihood squashes its own (so a point must be unusual in more
    than one view to outrank a record in one)."""

    def __init__(self, join: str = "max", levels: int = 8, order: int = 3, probation: int = 150) -> None:
        if join not in JOINS:
            raise ValueError(f"join must be one of {', '.join(JOINS)}, not {join!r}")
        self.join = join
        self.levels = levels
        self.order = order
        self.probation = probation
        self._likelihood = AnomalyLikelihood()
        self._context = ContextNovelty(levels=levels, order=order, probation=probation)

    def _join(self, a: float, b: float) -> float:
        if self.join == "max":
            return a if a >= b else b
        if self.join == "mean":
            return 0.5 * (a + b)
        if a >= 1.0 or b >= 1.0:
            return 1.0
        # each squashed score u = s² / (s² + h²) back to its surprise s = h · sqrt(u / (1 - u)):
        # h² = 2 · RECORD_HALF2 for the likelihood's two views joined, RECORD_HALF2 for one view
        total = math.sqrt(2.0 * RECORD_HALF2 * a / (1.0 - a)) + math.sqrt(RECORD_HALF2 * b / (1.0 - b))
        total *= total
        return total / (total + 3.0 * RECORD_HALF2)

    def score_one(self, x: float, t: float) -> float:
        return self._join(self._likelihood.score_one(x, t), self._context.score_one(x, t))

    def learn_one(self, x: float, t: float) -> None:
        self._likelihood.learn_one(x, t)
        self._context.learn_one(x, t)

    def score_learn_one(self, x: float, t: float) -> float:
        return self._join(self._likelihood.score_learn_one(x, t), self._context.score_learn_one(x, t))

    def expected_range(self, t: float) -> tuple[float, float] | None:
        return self._likelihood.expected_range(t)

    def _get_state(self) -> dict[str, Any]:
        return {"likelihood": self._likelihood.to_state(), "context": self._context.to_state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._likelihood = AnomalyLikelihood.from_state(state["likelihood"])
        self._context = ContextNovelty.from_state(state["context"])
