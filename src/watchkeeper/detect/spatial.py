"""The range break ("spatial anomaly") joined with the anomaly likelihood.

A value beyond the range a metric has shown is what a person reading the chart calls an anomaly,
however the deviations before it were distributed. Numenta's NAB detector joins exactly this to
its anomaly likelihood (``spatialTolerance``: a value beyond the minimum or maximum seen so far by
more than 5 % of their range scores 1.0), and it is what lets it hold on categories it was not
built on. :class:`RangeLikelihood` is the default's :class:`~watchkeeper.detect.likelihood.AnomalyLikelihood`
(unchanged, same parameters, learning every point) with that rule, written from the idea:

* the range is that of the last ``memory`` to ``2 · memory`` values: two blocks of ``memory``
  values, the older dropped when a new block is full (a live metric runs for months, and a range
  that never forgets would stop seeing anything; O(1) per point);
* a value more than ``tolerance`` (5 %, Numenta's) of that range beyond it scores 1.0 — only once
  the likelihood itself scores (its tails hold ``MIN_HISTORY`` values), so that a new series does
  not alarm on its first points;
* the value then widens the range, so a level that stays is reported once, not at every point;
* ``mean_cap``: the short mean counts a deviation beyond it as it (the default's
  :data:`~watchkeeper.detect.likelihood.MEAN_CAP`, 10); ``None`` counts every deviation as it is,
  so a sustained anomaly is not squeezed under the mean of an earlier one (round 7);
* ``relearn``: once ``short`` points in a row after a break have stayed beyond the range it broke
  (a new level), the tails and the short window are forgotten and learned afresh (round 8).

>>> det = RangeLikelihood(window=32, memory=500)
>>> for i in range(600):
...     det.learn_one(10.0 + (i % 7) * 0.1, t=60.0 * i)
>>> det.score_one(10.3, 36_000.0) < 0.5, det.score_one(10.7, 36_000.0), det.score_one(9.98, 36_000.0) < 1.0
(True, 1.0, True)
"""

from __future__ import annotations

import math
from typing import Any

from watchkeeper.detect.likelihood import MEAN_CAP, MIN_HISTORY, AnomalyLikelihood, Tail

#: Numenta's ``SPATIAL_TOLERANCE``: how far beyond the range, as a share of it, is a break.
TOLERANCE = 0.05
#: What the short mean counts a deviation as when ``mean_cap`` is ``None`` and the deviation is
#: not finite (a NaN or infinite value): large, but the running sum of ``short`` of them is finite.
NO_CAP = 1e300


class RangeLikelihood(AnomalyLikelihood):
    """:class:`AnomalyLikelihood` whose score is 1.0 at a break of the recent range by more than
    ``tolerance`` of it (see the module's docstring)."""

    def __init__(
        self, window: int = 256, season: str = "auto", short: int = 50, memory: int = 4000, warmup: int = 16,
        tolerance: float = TOLERANCE, mean_cap: float | None = MEAN_CAP, relearn: bool = False,
    ) -> None:
        if not tolerance >= 0.0:
            raise ValueError("tolerance >= 0 is required")
        if mean_cap is not None and not mean_cap > 0.0:
            raise ValueError("mean_cap > 0 (or None: no cap) is required")
        self.tolerance = tolerance
        self.mean_cap = mean_cap
        self.relearn = relearn
        super().__init__(window=window, season=season, short=short, memory=memory, warmup=warmup)
        #: ``mean_cap=None``: the short mean counts every deviation as it is (round 7).
        self._cap = NO_CAP if mean_cap is None else float(mean_cap)

    def _reset(self) -> None:
        super()._reset()
        # The range of the current block (its count) and of the block before it.
        self._lo, self._hi, self._count = math.inf, -math.inf, 0
        self._old_lo, self._old_hi = math.inf, -math.inf
        # relearn: the side of the last break (+1 above, -1 below, 0 none), the edge of the range
        # it broke (with the tolerance), and how many points in a row have stayed beyond it.
        self._side, self._edge, self._run = 0, 0.0, 0
        self._armed = False  # whether the tails were forgotten once (the break needs no history then)

    def _breaks(self, x: float) -> bool:
        """Whether ``x`` breaks the remembered range by more than ``tolerance`` of it."""
        if not self._armed and len(self._point.values) < MIN_HISTORY:
            return False
        lo = self._lo if self._lo < self._old_lo else self._old_lo
        hi = self._hi if self._hi > self._old_hi else self._old_hi
        span = hi - lo
        if not span > 0.0:
            return False
        slack = self.tolerance * span
        return x > hi + slack or x < lo - slack

    def _follow(self, x: float, broke: bool) -> None:
        """``relearn``: count the points in a row beyond the edge the last break crossed; at
        ``short`` of them the metric is at a new level, and the tails and the short window are
        forgotten, to be learned afresh there."""
        side = self._side
        if broke and side == 0:
            lo = self._lo if self._lo < self._old_lo else self._old_lo
            hi = self._hi if self._hi > self._old_hi else self._old_hi
            slack = self.tolerance * (hi - lo)
            if x > hi:
                self._side, self._edge, self._run = 1, hi + slack, 1
            else:
                self._side, self._edge, self._run = -1, lo - slack, 1
            return
        if side == 0:
            return
        if (x > self._edge) if side > 0 else (x < self._edge):
            self._run += 1
            if self._run >= self.short:
                self._forget()
        else:
            self._side, self._run = 0, 0

    def _forget(self) -> None:
        self._side, self._run, self._armed = 0, 0, True
        self._point = Tail(self.memory)
        self._mean = Tail(self.memory)
        self._recent.clear()
        self._recent_sum, self._recent_age = 0.0, 0
        self._scale_n = -1

    def _widen(self, x: float) -> None:
        if x > self._hi:
            self._hi = x
        if x < self._lo:
            self._lo = x
        self._count += 1
        if self._count >= self.memory:
            self._old_lo, self._old_hi = self._lo, self._hi
            self._lo, self._hi, self._count = math.inf, -math.inf, 0

    def score_one(self, x: float, t: float) -> float:
        score = super().score_one(x, t)  # first: learn_one relies on the score it remembers
        return 1.0 if self._breaks(x) else score

    def learn_one(self, x: float, t: float) -> None:
        if self.relearn:  # (before the widening and the tails' learning, as score_learn_one)
            broke = self._breaks(x)
            super().learn_one(x, t)
            self._follow(x, broke)
        else:
            super().learn_one(x, t)
        self._widen(x)

    def score_learn_one(self, x: float, t: float) -> float:
        """:meth:`_breaks`, the likelihood's one pass, then :meth:`_widen`, inlined (the hot path)."""
        lo, hi = self._lo, self._hi
        old_lo, old_hi = self._old_lo, self._old_hi
        broke = False
        if self._armed or len(self._point.values) >= MIN_HISTORY:
            low = lo if lo < old_lo else old_lo
            high = hi if hi > old_hi else old_hi
            span = high - low
            if span > 0.0:
                slack = self.tolerance * span
                broke = x > high + slack or x < low - slack
        score = super().score_learn_one(x, t)
        if self.relearn:
            self._follow(x, broke)
        if x > hi:
            self._hi = x
        if x < lo:
            self._lo = x
        count = self._count + 1
        if count >= self.memory:
            self._old_lo, self._old_hi = self._lo, self._hi
            self._lo, self._hi, count = math.inf, -math.inf, 0
        self._count = count
        return 1.0 if broke else score

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        state["range"] = [_finite(v) for v in (self._lo, self._hi, self._old_lo, self._old_hi)] + [self._count]
        if self.relearn:
            state["shift"] = [self._side, self._edge, self._run, self._armed]
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        lo, hi, old_lo, old_hi, count = state["range"]
        self._lo, self._old_lo = _bound(lo, math.inf), _bound(old_lo, math.inf)
        self._hi, self._old_hi = _bound(hi, -math.inf), _bound(old_hi, -math.inf)
        self._count = int(count)
        side, edge, run, armed = state.get("shift", (0, 0.0, 0, False))
        self._side, self._edge, self._run, self._armed = int(side), float(edge), int(run), bool(armed)


def _finite(v: float) -> float | None:
    """A bound as JSON can hold it (``None`` for an empty block's infinite bound)."""
    return v if math.isfinite(v) else None


def _bound(v: float | None, empty: float) -> float:
    return empty if v is None else float(v)
