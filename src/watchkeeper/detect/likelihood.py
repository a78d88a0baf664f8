"""Anomaly likelihood: how rare a deviation is *for this series*, from its own history.

A raw deviation alone does not compare across series: a noisy, bursty metric reaches 6 robust
standard deviations every day, a clean one never. In the spirit of Numenta's anomaly likelihood,
:class:`AnomalyLikelihood` turns the deviation of a robust model into a tail probability under
the distribution of its own recent deviations — but without assuming that distribution to be
Gaussian (heavy-tailed raw scores are what made the Gaussian version flag bursty series):

* the raw deviation ``|z|`` comes from :class:`~watchkeeper.detect.robust.RobustSeasonal`'s
  model (rolling or same-phase-of-season median, robust residual scale);
* two views of it: the current point (a spike, a dip), and the mean of the last ``short``
  points (a level shift, a change of variance, a burst of moderate deviations), each counted
  at most ``MEAN_CAP`` (10): a lone spike is the point view's business, and left uncapped it
  kept the mean high for ``short`` points and raised false alarms after it (NAB standard 72.1
  uncapped, 75.0 capped at 10; caps from 8 to 30 all did about as well in an offline replica);
* each view's tail probability ``p`` under its last ``memory`` values (:class:`Tail`: empirical,
  with an exponential tail fitted to the top values beyond them, so a new extreme has ``p`` below
  ``1 / memory`` instead of sticking there);
* the *surprise* ``-log10 p / log10 n``: 1.0 is "as rare as the rarest of the ``n`` values
  remembered"; it does not depend on the series' scale or noise, and a stationary series
  reaches it only O(log n) times;
* the views' evidence is joined as in Fisher's method: the surprise of the *product* of their
  ``p`` (the sum of their surprises), divided by the square root of the number of views; a
  point that is unusual in both views (a spike that starts a shift) outranks one that is a
  record in only one of them. (Taking the smaller ``p`` instead, as before, scored about 2 points
  lower on NAB's standard profile, most of it on the bursty tweet volumes.)
* the score is that surprise ``s`` squashed with ``RECORD_HALF``
  (:func:`~watchkeeper.detect.base.squash`): ``s = 1`` scores 0.8, ``s = 0.5`` scores 0.5.
  A record in one view alone, the other view ordinary, scores about 0.73.

Learn every point, anomalies included (an :class:`~watchkeeper.detect.filter.AnomalyFilter`
with ``max_skip=0``): the median model shrugs off outliers anyway, and the tails must see how
often large deviations happen — kept out, every later one would look like a first.

Only scores here; turning scores into alerts (and a refractory period) is the filter's job, see
:func:`peak_onsets` for the threshold-free version used by benchmarks.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector
from watchkeeper.detect.robust import RobustSeasonal

LN10 = math.log(10.0)
#: The exponential tail is fitted to the top ``TOP_SHARE`` of the remembered values (at least
#: ``TOP_MIN`` of them); a p-value below that share comes from the fit.
TOP_SHARE = 0.02
TOP_MIN = 5
#: :class:`Tail` keeps sorted only the values above about this quantile of the remembered ones.
BULK = 0.75
#: :class:`Tail` looks at its cut at least every this many values (while only a few are held).
EVERY_MIN = 8
#: The surprise that scores 0.5; a record (surprise 1.0) then scores 0.8.
RECORD_HALF = 0.5
RECORD_HALF2 = RECORD_HALF * RECORD_HALF
#: Fewer remembered values than this and a tail probability means nothing: the score stays 0.
MIN_HISTORY = 64
#: The short mean counts a deviation beyond this many robust standard deviations as this many:
#: a lone spike is the point view's to score, not something to echo for ``short`` points.
MEAN_CAP = 10.0


class Tail:
    """Upper-tail probabilities of a value against the last ``memory`` values.

    ``p(q)`` is the share of remembered values ``>= q`` (counting ``q`` itself) in the bulk, and
    an exponential tail ``(k / n) · exp(-(q - u) / β)`` beyond the ``k``-th largest value ``u``
    (``β``: the mean excess of the top ``k`` over ``u``; peaks over threshold, shape 0).

    Only the upper part is kept sorted (the values above ``cut``, about the top ``1 - BULK``;
    the rest is only counted): every added value moves a sorted list of a quarter the length,
    and only when it lands in that part. Below ``cut`` a value is not rare (``p`` at least about
    ``1 - BULK``): its ``p`` is that of ``cut``. Every ``n // 8`` values (``n`` remembered, at
    most ``memory``) ``cut`` is chosen again if the upper part has left ``[n / 8, n / 2]``. So
    the same rule holds at every length, whatever the memory; looked at every ``memory // 8``
    values instead, a Tail was exact (no cut) for its first ``memory // 8`` values and then let
    its cut go stale for as long: 500 values, a third of NAB's 1,600-point files.

    >>> tail = Tail(100)
    >>> for v in range(100):
    ...     tail.add(float(v))
    >>> round(tail.p(50.0), 3), round(tail.p(98.0), 3), tail.p(200.0) < 1e-20
    (0.297, 0.011, True)
    """

    __slots__ = ("_every", "_k", "_since", "cut", "memory", "sorted", "values")

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.values: deque[float] = deque()
        self.sorted: list[float] = []  # the values above cut, ascending
        self.cut = -math.inf
        self._since = 0  # values added since cut was chosen
        self._every = EVERY_MIN  # cut is looked at this often: n // 8, n remembered
        self._k = TOP_MIN  # how many top values the exponential tail is fitted to

    def __len__(self) -> int:
        return len(self.values)

    def add(self, q: float) -> None:
        values, cut = self.values, self.cut
        if len(values) == self.memory:
            old = values.popleft()
            if old > cut:
                ordered = self.sorted
                del ordered[bisect_left(ordered, old)]
        else:
            filled = len(values) + 1
            self._k = max(TOP_MIN, int(TOP_SHARE * filled))
            self._every = max(EVERY_MIN, filled >> 3)
        values.append(q)
        if q > cut:
            insort(self.sorted, q)
        since = self._since + 1
        if since < self._every:
            self._since = since
            return
        self._since = 0
        n, m = len(values), len(self.sorted)
        if not n >> 3 <= m <= n >> 1:
            self._recut()

    def _recut(self) -> None:
        """Choose ``cut`` again: the ``BULK`` quantile, if enough values lie above it."""
        everything = sorted(self.values)
        n = len(everything)
        cut = everything[int(BULK * n)]
        first = bisect_right(everything, cut)
        if n - first < max(n >> 3, self._k + 1):  # ties at the quantile: keep everything sorted
            cut, first = -math.inf, 0
        self.cut, self.sorted, self._since = cut, everything[first:], 0

    def log10_p(self, q: float) -> float:
        """``log10`` of :meth:`p` (no underflow for huge ``q``)."""
        ordered = self.sorted
        n = len(self.values)
        m = len(ordered)
        k = self._k
        if m <= k or q <= ordered[-k]:
            if q <= self.cut:
                return math.log10((m + 1) / (n + 1))
            return math.log10((m - bisect_left(ordered, q) + 1) / (n + 1))
        u = ordered[-k]
        beta = math.fsum(ordered[-k:]) / k - u
        if beta <= 0.0:  # the top values are all equal: anything above them is off the scale
            return -300.0
        return math.log10(k / (n + 1)) - (q - u) / beta / LN10

    def p(self, q: float) -> float:
        return float(10.0 ** self.log10_p(q))

    def state(self) -> dict[str, Any]:
        return {"values": list(self.values), "cut": None if self.cut == -math.inf else self.cut,
                "since": self._since}

    def load(self, state: dict[str, Any] | Sequence[float]) -> None:
        """Restore :meth:`state` (or, as saved before ``cut``, the plain list of values)."""
        if isinstance(state, dict):
            values, cut, since = state["values"], state["cut"], int(state["since"])
        else:
            values, cut, since = state, None, 0
        self.values = deque(float(v) for v in values)
        self.cut = -math.inf if cut is None else float(cut)
        self.sorted = sorted(v for v in self.values if v > self.cut)
        self._since = since
        self._k = max(TOP_MIN, int(TOP_SHARE * len(self.values)))
        self._every = max(EVERY_MIN, len(self.values) >> 3)


class AnomalyLikelihood(Detector):
    """Joint tail probability of a robust deviation and of its short mean under their own history.

    ``window``, ``season`` and ``warmup`` configure the robust model (see
    :class:`~watchkeeper.detect.robust.RobustSeasonal`), ``short`` the averaging view,
    ``memory`` how many past deviations the tail probabilities compare against.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = AnomalyLikelihood(window=32, memory=500)
    >>> for i in range(600):
    ...     det.learn_one(10.0 + rng.gauss(0.0, 1.0), t=60.0 * i)
    >>> det.score_one(10.0, 36_000.0) < 0.5, det.score_one(30.0, 36_000.0) > 0.9
    (True, True)
    """

    #: The short mean's cap (:data:`MEAN_CAP`); a subclass may set its own on the instance.
    _cap: float = MEAN_CAP

    def __init__(
        self, window: int = 256, season: str = "auto", short: int = 50, memory: int = 4000, warmup: int = 16,
    ) -> None:
        if short < 1 or memory < 2 * MIN_HISTORY:
            raise ValueError(f"short >= 1 and memory >= {2 * MIN_HISTORY} are required")
        self.window = window
        self.season = season
        self.short = short
        self.memory = memory
        self.warmup = warmup
        self._two_views = short > 1
        #: The joint surprise is divided by sqrt(views); folded into the squash's half.
        self._half2 = RECORD_HALF2 * (2.0 if self._two_views else 1.0)
        self._reset()

    def _reset(self) -> None:
        self._model = RobustSeasonal(window=self.window, season=self.season, warmup=self.warmup)
        self._recent: deque[float] = deque(maxlen=max(self.short - 1, 1))
        # Their sum, kept as values come and go, and summed afresh every maxlen values (no drift).
        self._recent_sum, self._recent_age = 0.0, 0
        self._point = Tail(self.memory)
        self._mean = Tail(self.memory)
        self._last: tuple[float, float, float, float] | None = None  # (x, |z|, short mean, score)
        self._scale_n, self._scale = -1, 1.0  # log10(n + 2), kept for the last n
        self._hot = False  # whether score_learn_one may take its one-pass path

    # -- the protocol -------------------------------------------------------------------------
    def score_one(self, x: float, t: float) -> float:
        last = self._last
        if last is not None and last[0] == x:
            return last[3]
        return self._score(x, self._model.deviation(x))

    def learn_one(self, x: float, t: float) -> None:
        model = self._model
        if model.warmed_up:
            last = self._last
            if last is None or last[0] != x:
                self.score_one(x, t)
                last = self._last
            assert last is not None
            self._remember(last[1], last[2])
        model.learn_model(x, t)
        self._last = None

    def score_learn_one(self, x: float, t: float) -> float:
        """:meth:`score_one` then :meth:`learn_one`, in one pass: what a filter that learns every
        point does, and the streaming hot path. The robust model finds the deviation and learns
        the point in one call (:meth:`RobustSeasonal.deviation_learn`), and the score and the
        learning of the tails are inlined here. The arithmetic is :meth:`_score`'s and
        :meth:`_remember`'s, operation for operation, so the scores are the very same
        (``tests/detect/test_likelihood_scores_fixed.py`` holds them to the bit)."""
        model = self._model
        if not self._hot:  # warming up, or one view only: the two calls
            if not (self._two_views and model.warmed_up):
                score = self.score_one(x, t)
                self.learn_one(x, t)
                return score
            self._hot = True  # a model once warmed up stays so
        z = model.deviation_learn(x, t)
        if z < 0.0:
            z = -z
        cap = self._cap
        capped = z if z < cap else cap
        recent = self._recent
        mean = (self._recent_sum + capped) / (len(recent) + 1)
        point, tail = self._point, self._mean
        n = len(point.values)
        score = 0.0
        if n >= MIN_HISTORY:
            k = point._k
            ordered = point.sorted
            m = len(ordered)
            if m > k and z <= ordered[-k]:
                count = m + 1 if z <= point.cut else m - bisect_left(ordered, z) + 1
                other = tail.sorted
                m = len(other)
                if m > k and mean <= other[-k]:
                    c2 = m + 1 if mean <= tail.cut else m - bisect_left(other, mean) + 1
                    log_p = math.log10(count * c2 / ((n + 1) * (n + 1)))
                else:
                    log_p = math.log10(count / (n + 1)) + tail.log10_p(mean)
            else:
                log_p = point.log10_p(z) + tail.log10_p(mean)
            if n != self._scale_n:
                self._scale_n, self._scale = n, math.log10(n + 2)
            s = log_p / self._scale
            s *= s
            score = s / (s + self._half2)
        # _remember(z, mean), inlined; so is Tail.add while both tails are full and need no new cut
        since, since2 = point._since + 1, tail._since + 1
        if n == self.memory and since < point._every and since2 < tail._every:
            values, ordered = point.values, point.sorted
            old = values.popleft()
            if old > point.cut:
                del ordered[bisect_left(ordered, old)]
            values.append(z)
            if z > point.cut:
                insort(ordered, z)
            point._since = since
            values, other = tail.values, tail.sorted
            old = values.popleft()
            if old > tail.cut:
                del other[bisect_left(other, old)]
            values.append(mean)
            if mean > tail.cut:
                insort(other, mean)
            tail._since = since2
        else:
            point.add(z)
            tail.add(mean)
        age = self._recent_age + 1
        if age >= self.short:
            recent.append(capped)
            self._recent_sum, self._recent_age = sum(recent), 0
        else:
            if len(recent) == recent.maxlen:
                self._recent_sum -= recent[0]
            recent.append(capped)
            self._recent_sum += capped
            self._recent_age = age
        self._last = None
        return score

    # -- the score ------------------------------------------------------------------------------
    def _score(self, x: float, z: float) -> float:
        """The score of a point ``x`` whose deviation is ``z``; remembered in ``_last``."""
        if z < 0.0:
            z = -z
        two = self._two_views
        cap = self._cap
        capped = z if z < cap else cap
        mean = (self._recent_sum + capped) / (len(self._recent) + 1) if two else z
        score = 0.0
        point = self._point
        n = len(point.values)
        if n >= MIN_HISTORY:
            # The hot path, inlined: both views in the bulk of their tails (compare ranks, one
            # logarithm); otherwise Tail.log10_p. Both tails always hold the same count.
            k = point._k
            ordered = point.sorted
            m = len(ordered)
            if m > k and z <= ordered[-k]:
                count = m + 1 if z <= point.cut else m - bisect_left(ordered, z) + 1
                if two:
                    tail = self._mean
                    other = tail.sorted
                    m = len(other)
                    if m > k and mean <= other[-k]:
                        c2 = m + 1 if mean <= tail.cut else m - bisect_left(other, mean) + 1
                        log_p = math.log10(count * c2 / ((n + 1) * (n + 1)))
                    else:
                        log_p = math.log10(count / (n + 1)) + tail.log10_p(mean)
                else:
                    log_p = math.log10(count / (n + 1))
            else:
                log_p = point.log10_p(z)
                if two:
                    log_p += self._mean.log10_p(mean)
            if n != self._scale_n:
                self._scale_n, self._scale = n, math.log10(n + 2)
            s = log_p / self._scale  # minus the joint surprise: squared below
            s *= s
            score = s / (s + self._half2)
        self._last = (x, z, mean, score)
        return score

    def _remember(self, z: float, mean: float) -> None:
        """Learn a scored point's ``|z|`` and short mean into the tails and the short window."""
        self._point.add(z)
        if self._two_views:
            self._mean.add(mean)
            recent = self._recent
            cap = self._cap
            z = z if z < cap else cap  # (NaN too, as the short mean counts it)
            age = self._recent_age + 1
            if age >= self.short:
                recent.append(z)
                self._recent_sum, self._recent_age = sum(recent), 0
            else:
                if len(recent) == recent.maxlen:
                    self._recent_sum -= recent[0]
                recent.append(z)
                self._recent_sum += z
                self._recent_age = age

    def expected_range(self, t: float) -> tuple[float, float] | None:
        return self._model.expected_range(t)

    # -- state --------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {"model": self._model.to_state(), "recent": list(self._recent),
                "recent_sum": self._recent_sum, "recent_age": self._recent_age,
                "point": self._point.state(), "mean": self._mean.state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        self._model = RobustSeasonal.from_state(state["model"])
        self._recent.extend(float(v) for v in state["recent"])
        self._recent_sum = float(state.get("recent_sum", sum(self._recent)))  # saved since 2026-11
        self._recent_age = int(state.get("recent_age", 0))
        self._point.load(state["point"])
        self._mean.load(state["mean"])

    @property
    def remembered(self) -> int:
        """How many deviations the tails compare against now (at most ``memory``): the ``n`` of the
        surprise, for :func:`familywise`."""
        return len(self._point.values)

    @property
    def season_lag(self) -> int:
        """The season of the robust model in points (0: none)."""
        return self._model.season_lag


FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def familywise_one(score: float, series: int, remembered: float, views: int = 2) -> float:
    """:class:`AnomalyLikelihood`'s ``score`` made comparable across *groups* of series: the score of one of
    ``series`` series scored together, with the Bonferroni correction applied to the tail probability
    behind it (``p`` → ``series · p``), so that the most anomalous of D series crosses a threshold about as
    often as one series does (docs/detect.md, round 10). Pure Python: a watch's per-point path.

    A score is ``squash(σ, ½·√views)`` of the surprise ``σ = −log10 p / log10(n + 2)`` (``n`` the
    values ``remembered``); the corrected surprise is ``σ − log10(series) / log10(n + 2)``, at least 0.
    One series changes nothing.

    >>> [round(familywise_one(v, 38, 4000.0), 3) for v in (0.5, 0.8, 0.95, 0.0, 1.0)]
    [0.126, 0.656, 0.933, 0.0, 1.0]
    >>> familywise_one(0.8, 1, 4000.0)
    0.8
    """
    if series <= 1 or not score > 0.0:
        return min(max(score, 0.0), 1.0) if score == score else 0.0
    if score >= 1.0:
        return 1.0
    half2 = RECORD_HALF2 * (2.0 if views > 1 else 1.0)
    sigma = math.sqrt(half2 * score / (1.0 - score)) - math.log10(series) / math.log10(max(remembered, 0.0) + 2.0)
    if sigma <= 0.0:
        return 0.0
    return sigma * sigma / (sigma * sigma + half2)


def familywise(scores: FloatArray, series: int, remembered: FloatArray | float, views: int = 2) -> FloatArray:
    """:func:`familywise_one` of every score (``remembered`` one value, or one per score).

    >>> familywise(np.array([0.5, 0.8, 0.95, 0.0]), 38, 4000.0).round(3).tolist()
    [0.126, 0.656, 0.933, 0.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    n = np.broadcast_to(np.asarray(remembered, dtype=np.float64), s.shape)
    return np.fromiter((familywise_one(a, series, b, views) for a, b in zip(s.tolist(), n.tolist(), strict=True)),
                       dtype=np.float64, count=s.size)


def peak_onsets(scores: FloatArray, horizon: int, delay: int) -> FloatArray:
    """Report each anomaly once, ``delay`` points after its peak: the output at ``i`` is the score
    of point ``j = i - delay`` when it is the largest of ``[j - horizon, i]`` (0 elsewhere; of
    equal scores the last counts).

    Causal (it looks only back), and free of any threshold: whatever the threshold, a burst of
    rising scores gives one detection instead of one per rise, at a cost of ``delay`` points.

    >>> peak_onsets(np.array([0.1, 0.5, 0.7, 0.6, 0.2, 0.1, 0.9, 0.1, 0.1]), horizon=3, delay=1).tolist()
    [0.0, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.9, 0.0]
    """
    n = len(scores)
    out = np.zeros(n)
    values = scores.tolist()
    window: deque[int] = deque()  # indices of a decreasing run of scores: the sliding maximum
    for i in range(n):
        v = values[i]
        while window and values[window[-1]] <= v:
            window.pop()
        window.append(i)
        while window[0] < i - delay - horizon:
            window.popleft()
        j = i - delay
        if j < 0:
            continue
        # j is the largest of [j - horizon, i] (of equal scores, the last one counts)
        if window[0] == j and values[j] > 0.0:
            out[i] = values[j]
    return out
