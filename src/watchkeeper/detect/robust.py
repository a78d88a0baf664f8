"""A robust seasonal baseline: rolling median / MAD of one-step-ahead residuals.

The expected value is the median of the last ``window`` values or, once a daily or weekly
season is detected (autocorrelation at that lag of at least ``season_acf``), the median of the
values at the same phase of the last ``seasons`` periods (``±spread`` points). The deviation of a
new value is measured in robust standard deviations (1.4826 × the median absolute residual of
the last ``window`` points) and squashed onto ``[0, 1]`` (``half`` deviations give 0.5): the
*raw* score.

The score is the larger of two views of that deviation: how unusual the mean raw score of the
last ``smooth`` points is given its own history (a Gaussian tail over an exponentially weighted
mean/variance with memory ``memory``, mapped by :func:`tail_score`: an anomaly likelihood in the
spirit of Numenta's, which adapts to noisy metrics), and the instantaneous deviation squashed with
``spike`` deviations giving 0.5 (so a huge spike scores high even on a noisy metric).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector

DAY = 86_400.0
WEEK = 7 * DAY
#: Candidate seasons, longest first: a weekly season also repeats daily shapes.
PERIODS = (("weekly", WEEK), ("daily", DAY))
MAX_HISTORY = 12_000
MAD_TO_SIGMA = 1.4826
SQRT2 = math.sqrt(2.0)
MIN_STD = 0.02
STEPS_KEPT = 256
#: Seasonal medians are found ahead in batches when a season is at least this many points long.
AHEAD_MIN = 16
#: The long-run residual scale remembers about this many windows.
LONG_MEMORY = 16


class RobustSeasonal(Detector):
    """Median/MAD baseline with automatic daily/weekly seasonality.

    >>> det = RobustSeasonal(window=32)
    >>> for i in range(100):
    ...     det.learn_one(10.0 + (i % 3), t=60.0 * i)
    >>> det.score_one(11.0, t=6000.0) < 0.1, det.score_one(50.0, t=6000.0) > 0.5
    (True, True)
    >>> det.expected_range(6000.0)
    (2.1044, 19.8956)
    """

    def __init__(
        self, window: int = 64, season: str = "auto", seasons: int = 3, spread: int = 1,
        half: float = 6.0, smooth: int = 8, memory: int = 2000, spike: float = 30.0,
        warmup: int = 16,
    ) -> None:
        if window < 4 or warmup < 2 or seasons < 1 or spread < 0:
            raise ValueError("window >= 4, warmup >= 2, seasons >= 1 and spread >= 0 are required")
        if season not in ("auto", "none", "daily", "weekly"):
            raise ValueError(f"season must be auto, none, daily or weekly, not {season!r}")
        self.window = window
        self.season = season
        self.seasons = seasons
        self.spread = spread
        self.smooth = smooth
        self.memory = memory
        self.half = half
        self._half2 = half * half
        self.spike = spike
        self._spike2 = spike * spike
        self.warmup = warmup
        self._long_alpha = 1.0 / (LONG_MEMORY * window)
        self._reset()

    def _reset(self) -> None:
        self._values: deque[float] = deque(maxlen=self.window)
        self._sorted_values: list[float] = []
        self._residuals: deque[float] = deque(maxlen=self.window)
        self._sorted_residuals: list[float] = []
        # A ring of the last MAX_HISTORY values (deque indexing is O(n) in the middle).
        self._ring: list[float] = [0.0] * MAX_HISTORY
        self._pos = 0  # next write index
        self._count = 0  # values in the ring
        self._n = 0
        self._mean_abs = 0.0
        self._n_abs = 0  # residuals in _mean_abs (since the season was found)
        self._raws: deque[float] = deque(maxlen=max(self.smooth - 1, 1))
        self._n_avg = 0
        self._avg_mean = 0.0
        self._avg_var = 0.0
        self._steps: list[float] = []  # the first intervals: the sampling step is their median
        self._t_last = math.nan
        self._lag = 0  # season length in points; 0 = no season (yet)
        self._offsets: list[int] = []  # how far back the same phase of earlier seasons lies
        # The seasonal medians of the next positions, found ahead in one numpy pass (_fill_ahead):
        # the median at position p reads only values at least min(offsets) points older than p.
        self._ahead: list[float] = []
        self._ahead_i = 0  # the entry of _ahead for the position about to be written
        self._decided = self.season == "none"
        self._cached: float | None = None
        self._last_raw: tuple[float, float, float] | None = None  # (x, raw, recent mean) of score_one

    # -- the model ----------------------------------------------------------------------------
    def _expected(self) -> float:
        if self._cached is not None:
            return self._cached
        if self._lag:
            ring, pos, offsets = self._ring, self._pos, self._offsets
            if self._ahead_i < len(self._ahead) or self._fill_ahead():
                expected = self._ahead[self._ahead_i]
                self._cached = expected
                return expected
            if offsets[-1] <= self._count:  # negative indices wrap around the ring
                same_phase = sorted([ring[pos - back] for back in offsets])
            else:
                same_phase = sorted([ring[pos - back] for back in offsets if back <= self._count])
            expected = same_phase[len(same_phase) // 2]
        else:
            s = self._sorted_values
            expected = s[len(s) // 2]
        self._cached = expected
        return expected

    def _fill_ahead(self) -> bool:
        """Find the seasonal medians of the next ``min(offsets)`` positions at once (numpy), when
        the full history is there and that is at least :data:`AHEAD_MIN` positions; whether it did.

        Each is the very value :meth:`_expected` picked point by point (the middle of the same
        values, sorted). Values are never NaN: callers drop them, and the sorted residuals could
        not hold them anyway."""
        offsets = self._offsets
        ahead = offsets[0]
        if ahead < AHEAD_MIN or offsets[-1] > self._count:
            return False
        ring, pos = self._ring, self._pos
        backs = np.asarray(offsets)
        idx = (pos + np.arange(ahead)[None, :] - backs[:, None]) % MAX_HISTORY
        same_phase = np.asarray(ring)[idx]  # one column per position
        self._ahead = np.sort(same_phase, axis=0)[len(offsets) // 2].tolist()
        self._ahead_i = 0
        return True

    def _scale(self, expected: float) -> float:
        r = self._sorted_residuals
        mad = r[len(r) // 2] if r else 0.0
        # The mean absolute residual over a long memory keeps the scale from collapsing to 0 on
        # quantised or piecewise-constant data, where the median residual is often exactly 0.
        return max(MAD_TO_SIGMA * mad, self._mean_abs, 1e-9 + 1e-9 * abs(expected))

    def _detect_season(self) -> None:
        """Decide once enough history exists whether a daily or weekly season repeats."""
        n = self._count
        if n < self.window or n % (self.window // 2):
            return
        step = float(np.median(self._steps)) if self._steps else 0.0
        if not step > 0:
            self._decided = True
            return
        wanted = [(name, period) for name, period in PERIODS if self.season in ("auto", name)]
        undecidable = False
        for _name, period in wanted:
            lag = round(period / step)
            if lag < 2 or lag * (self.seasons + 1) > MAX_HISTORY:
                continue
            if n < lag + 4 * self.window:
                undecidable = True  # a longer season may still show up
                continue
            if seasonal_wins(np.array(self.history), lag, self.window, self.spread):
                self._set_lag(lag)
                self._decided = True
                # The long-run residual scale measured the model without season: start it over.
                self._mean_abs, self._n_abs = 0.0, 0
                return
        if not undecidable:
            self._decided = True

    def _set_lag(self, lag: int) -> None:
        self._lag = lag
        self._ahead, self._ahead_i = [], 0
        self._offsets = sorted(
            k * lag - j for k in range(1, self.seasons + 1) for j in range(-self.spread, self.spread + 1)
        ) if lag else []

    # -- the protocol -------------------------------------------------------------------------
    def score_one(self, x: float, t: float) -> float:
        if self._n < self.warmup:
            return 0.0
        raws = self._raws
        raw = self._raw(x)
        recent = (sum(raws) + raw) / (len(raws) + 1)
        self._last_raw = (x, raw, recent)
        lik = self._likelihood(recent)
        z2 = raw * self._half2 / max(1.0 - raw, 1e-300)  # back to z²
        instant = z2 / (z2 + self._spike2)
        return instant if instant > lik else lik

    def _raw(self, x: float) -> float:
        z2 = self.deviation(x)
        z2 *= z2
        return z2 / (z2 + self._half2)

    def deviation(self, x: float) -> float:
        """How far ``x`` lies from the expected value, in robust standard deviations (signed;
        0.0 while warming up). Does not change the model."""
        if self._n < self.warmup:
            return 0.0
        expected = self._cached
        if expected is None:
            expected = self._expected()
        r = self._sorted_residuals
        scale = MAD_TO_SIGMA * r[len(r) // 2] if r else 0.0
        if scale < self._mean_abs:
            scale = self._mean_abs
        if scale <= 0.0:
            scale = 1e-9 + 1e-9 * abs(expected)
        return (x - expected) / scale

    def _likelihood(self, recent: float) -> float:
        """How unusual the mean raw score of the last ``smooth`` points is, given its history."""
        u = recent - self._avg_mean
        if u <= 0.0:
            return 0.0
        std = math.sqrt(self._avg_var)
        return tail_score(u / (std if std > MIN_STD else MIN_STD))

    def learn_one(self, x: float, t: float) -> None:
        if self._n >= self.warmup:
            last = self._last_raw
            raws = self._raws
            if last is not None and last[0] == x:
                raw, recent = last[1], last[2]
            else:
                raw = self._raw(x)
                recent = (sum(raws) + raw) / (len(raws) + 1)
            raws.append(raw)
            self._n_avg += 1
            alpha = max(1.0 / self._n_avg, 1.0 / self.memory)
            delta = recent - self._avg_mean
            self._avg_mean += alpha * delta
            self._avg_var = (1.0 - alpha) * (self._avg_var + alpha * delta * delta)
        self.learn_model(x, t)

    def learn_model(self, x: float, t: float) -> None:
        """Update only the expected value, the residual scale and the season (what
        :meth:`deviation` needs), not the likelihood of the raw scores: for detectors that build
        their own score on top of the deviation."""
        self.deviation_learn(x, t)

    def deviation_learn(self, x: float, t: float) -> float:
        """:meth:`deviation` of ``x``, then :meth:`learn_model` of it, in one pass: the expected
        value is found once and serves both (the streaming hot path of detectors that score and
        then learn every point)."""
        n = self._n
        z = 0.0
        if n >= 1:
            expected = self._cached
            if expected is None:
                ahead = self._ahead  # _expected(), its usual cases inlined
                if self._ahead_i < len(ahead):
                    expected = ahead[self._ahead_i]
                elif self._lag:
                    expected = self._expected()
                else:
                    s = self._sorted_values
                    expected = s[len(s) // 2]
            res, sorted_res = self._residuals, self._sorted_residuals
            if n >= self.warmup:  # deviation(x), as it computes it
                scale = MAD_TO_SIGMA * sorted_res[len(sorted_res) // 2] if sorted_res else 0.0
                if scale < self._mean_abs:
                    scale = self._mean_abs
                if scale <= 0.0:
                    scale = 1e-9 + 1e-9 * abs(expected)
                z = (x - expected) / scale
            residual = abs(x - expected)
            if len(res) == self.window:
                del sorted_res[bisect_left(sorted_res, res[0])]
            res.append(residual)
            insort(sorted_res, residual)
            self._n_abs += 1
            alpha = 1.0 / self._n_abs
            if alpha < self._long_alpha:
                alpha = self._long_alpha
            self._mean_abs += alpha * (residual - self._mean_abs)
        values = self._values
        if self._lag:  # the seasonal median reads the ring: no rolling median to keep sorted
            values.append(x)
        else:
            sorted_values = self._sorted_values
            if len(values) == self.window:
                del sorted_values[bisect_left(sorted_values, values[0])]
            values.append(x)
            insort(sorted_values, x)
        pos = self._pos
        self._ring[pos] = x
        self._pos = pos + 1 if pos + 1 < MAX_HISTORY else 0
        self._ahead_i += 1
        if self._count < MAX_HISTORY:
            self._count += 1
        steps = self._steps
        if n > 0 and len(steps) < STEPS_KEPT:
            steps.append(t - self._t_last)
        self._t_last = t
        self._n = n + 1
        self._cached = None
        self._last_raw = None
        if not self._decided:
            self._detect_season()
        return z

    def expected_range(self, t: float) -> tuple[float, float] | None:
        if self._n < self.warmup:
            return None
        expected = self._expected()
        width = self.half * self._scale(expected)
        return (expected - width, expected + width)

    # -- state --------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {
            "values": list(self._values), "residuals": list(self._residuals),
            "history": self.history, "n": self._n, "mean_abs": self._mean_abs, "n_abs": self._n_abs,
            "raws": list(self._raws), "n_avg": self._n_avg,
            "avg_mean": self._avg_mean, "avg_var": self._avg_var, "steps": self._steps, "t_last": self._t_last,
            "lag": self._lag, "decided": self._decided,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        self._values.extend(float(v) for v in state["values"])
        self._sorted_values = sorted(self._values)
        self._residuals.extend(float(v) for v in state["residuals"])
        self._sorted_residuals = sorted(self._residuals)
        for v in state["history"]:
            self._ring[self._pos] = float(v)
            self._pos = (self._pos + 1) % MAX_HISTORY
            self._count = min(self._count + 1, MAX_HISTORY)
        self._n = int(state["n"])
        self._mean_abs = float(state["mean_abs"])
        self._n_abs = int(state.get("n_abs", max(self._n - 1, 0)))  # states saved before n_abs
        self._raws.extend(float(v) for v in state["raws"])
        self._n_avg = int(state["n_avg"])
        self._avg_mean, self._avg_var = float(state["avg_mean"]), float(state["avg_var"])
        self._steps = [float(v) for v in state["steps"]]
        self._t_last = float(state["t_last"])
        self._set_lag(int(state["lag"]))
        self._decided = bool(state["decided"])

    @property
    def history(self) -> list[float]:
        """The remembered values, oldest first."""
        if self._count < MAX_HISTORY:
            return self._ring[: self._count]
        return self._ring[self._pos:] + self._ring[: self._pos]

    @property
    def warmed_up(self) -> bool:
        """Whether the model has seen ``warmup`` points (before that, every score is 0)."""
        return self._n >= self.warmup

    @property
    def season_lag(self) -> int:
        """The detected season in points (0: none)."""
        return self._lag


def autocorrelation(x: np.ndarray[Any, np.dtype[np.float64]], lag: int) -> float:
    """Sample autocorrelation of ``x`` at ``lag`` (0.0 for a constant series).

    >>> t = np.arange(400.0)
    >>> round(autocorrelation(np.sin(2 * np.pi * t / 50), 50), 2)
    0.88
    """
    d = x - x.mean()
    denom = float(d @ d)
    if denom == 0.0 or lag >= len(x):
        return 0.0
    return float(d[:-lag] @ d[lag:]) / denom


def seasonal_wins(x: np.ndarray[Any, np.dtype[np.float64]], lag: int, window: int, spread: int) -> bool:
    """Whether the same phase one season ago predicts ``x`` better (smaller median absolute
    error) than the median of the last ``window`` points.

    >>> t = np.arange(600.0)
    >>> seasonal_wins(np.sin(2 * np.pi * t / 100), 100, 32, 1)
    True
    >>> seasonal_wins(np.random.default_rng(1).normal(size=600), 100, 32, 1)
    False
    """
    n = len(x)
    idx = np.arange(max(lag + spread, window), n)
    if len(idx) < window:
        return False
    shifted = np.stack([x[idx - lag + j] for j in range(-spread, spread + 1)])
    seasonal_err = np.median(np.abs(x[idx] - np.median(shifted, axis=0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, window)[idx - window]
    local_err = np.median(np.abs(x[idx] - np.median(windows, axis=1)))
    return bool(seasonal_err < local_err)


def tail_score(u: float) -> float:
    """``L / (L + 5)`` for ``L = -log10`` of the Gaussian upper tail beyond ``u`` deviations:
    p = 1e-5 gives 0.5, p = 1e-45 gives 0.9; monotone and never saturating.

    >>> tail_score(0.0) < 0.1, round(tail_score(4.265), 2), tail_score(40.0) < tail_score(41.0) < 1.0
    (True, 0.5, True)
    """
    if u < 8.0:
        log_p = math.log10(0.5 * math.erfc(u / SQRT2))
    else:  # Mills ratio: the tail is phi(u) / u to better than 2 %
        log_p = -(u * u / 2.0 + math.log(u * math.sqrt(2.0 * math.pi))) / math.log(10.0)
    lp = -log_p
    return lp / (lp + 5.0)
