"""Robust (BARO-style) anomaly scores of metrics around an onset.

For each metric: the median and inter-quartile range of a long *reference* window before the onset,
and the largest robust z-score ``|x - median| / scale`` in a short window after it. The median and the
IQR ignore the earlier incidents that fall into the reference window (unless they fill more than a
quarter of it), which is why BARO prefers them to the mean and the standard deviation.

``scale`` is the IQR with a floor so that a flat reference (an error ratio that was always 0, a
latency stuck at one histogram bucket) does not divide by zero: ``relative_floor × |median|``, or for
bounded ratios an absolute floor instead; both the floor and the harmful direction come from the
metric's :class:`MetricSpec` (configuration), never from its name.

>>> t = np.arange(0.0, 600.0, 10.0)
>>> v = np.where(t < 500, 1.0 + 0.1 * np.sin(t), 5.0)
>>> s = score_metric(t, v, onset=500.0, params=Params(reference_s=500, window_s=100))
>>> round(s.z, 1), s.onset_at
(29.6, 500.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float64]]

@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What the scorer knows about one metric, from configuration (a watch's ``direction`` and
    ``floor``) or from an evaluation harness, never from its name.

    ``side``: +1 only a rise is evidence, -1 only a fall, 0 both ways (a service whose CPU or latency
    *drops* because its caller stopped calling it is a victim, not a cause). ``floor``: the smallest
    scale of the metric (ratios move in hundredths); ``None`` uses ``relative_floor × |median|``.

    >>> MetricSpec.from_direction("down", 0.01)
    MetricSpec(side=-1, floor=0.01)
    """

    side: int = 0
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (-1, 0, 1):
            raise ValueError(f"side must be -1, 0 or +1, not {self.side!r}")
        if self.floor is not None and not self.floor > 0:
            raise ValueError(f"floor must be positive, not {self.floor!r}")

    @classmethod
    def from_direction(cls, direction: str, floor: float | None = None) -> MetricSpec:
        """``up`` | ``down`` | ``both`` (a watch's harmful direction) and a floor (0 or ``None``: none)."""
        sides = {"up": 1, "down": -1, "both": 0}
        if direction not in sides:
            raise ValueError(f"direction must be up, down or both, not {direction!r}")
        return cls(sides[direction], floor if floor else None)


class ChangeLike(Protocol):
    """Anything with ``at`` (unix seconds), ``service`` and ``description``."""

    @property
    def at(self) -> float: ...
    @property
    def service(self) -> str: ...
    @property
    def description(self) -> str: ...


#: No knowledge: both directions count, the relative floor applies.
PLAIN = MetricSpec()


@dataclass(frozen=True, slots=True)
class Params:
    """The few knobs of the scorer (seconds, and dimensionless thresholds)."""

    reference_s: float = 3600.0  # how much history before the onset describes "normal"
    window_s: float = 300.0  # how long after the onset to look for the change
    relative_floor: float = 0.05  # the scale is at least 5 % of the normal level
    threshold: float = 3.0  # a z-score at least this large counts as anomalous (onset order, graph)
    change_window_s: float = 1800.0  # a change this long before the onset (or during the window) is suspect
    change_boost: float = 2.0  # a suspect change multiplies its service's score by this
    graph_discount: float = 0.5  # a service explained by an anomalous callee (no later than it): score × this
    # traces and logs (watchkeeper.rca.signals, watchkeeper.rca.logs); the four below were tuned on Nezha's
    # 2022-08-23 alone (docs/rca.md, "Traces and logs")
    trace_latency_weight: float = 0.0  # latency seen at a service includes its callees': it weighs this much
    trace_latency_floor_s: float = 0.005  # a latency-like trace series moves by 5 ms at least
    trace_error_floor: float = 0.01  # an error ratio moves in hundredths
    trace_weight: float = 0.5  # a trace z counts this much beside a metric z
    signal_mix: float = 0.5  # 0: a service scores its strongest signal; 1: the sum of its signals
    # where requests stop (watchkeeper.rca.signals, "abort"); chosen looking at both Nezha days, the weight
    # is re-tuned per held-out day by `eval rca` (docs/rca.md, "Fast failures")
    trace_share_floor: float = 0.01  # a share of requests moves in hundredths, like an error ratio
    trace_abort_weight: float = 1.0  # a rise in requests ending at a service counts this much beside a z
    # who owns such a stop (watchkeeper.rca.signals.abort_owners): the callee when at least this many callers
    # stop at it (or it changed itself), else the caller; 1 = always the callee (the rule before it)
    trace_abort_callers: int = 2
    # temporal precedence (watchkeeper.rca.rank): a service whose first anomaly comes more than this many
    # seconds after the earliest anomalous service's is scored × ``late_discount`` (a later symptom, not the
    # start); ``inf`` (the default) turns it off — held out on Nezha it raised top-1 but cost top-3
    # (docs/rca.md, "Temporal precedence: tried, not adopted")
    late_after_s: float = math.inf
    late_discount: float = 0.5
    # onsets seen by sampled series are ordered only to within a sampling step: a callee whose anomaly was
    # first seen at most one of its own sampling steps after its caller's — and at most this many seconds —
    # still explains the caller (the graph step). The cap keeps coarse data ordered: with one-minute samples
    # a minute's slack let symptoms' callees explain true causes away (docs/rca.md, "Onsets one sample
    # apart"); 15 s is Prometheus's usual scrape interval, not a tuned value. 0: exact order only.
    simultaneous_cap_s: float = 15.0
    # a slow edge (docs/rca.md, "A slow link explains its caller"): a caller not slow itself (its own time and its
    # calls to every callee flat) whose calls to one callee got slow on the link is explained by that callee,
    # whatever the onset order; and ``explained_below``: "edge" — such a caller, and the callers explained by it,
    # score at most ``graph_discount`` × what explains them; "all" — every explained caller (measured worse);
    # "none" — halved only, as before
    edge_explains: bool = True
    explained_below: Literal["none", "edge", "all"] = "edge"
    # doubts (watchkeeper.rca.doubt; docs/rca.md, "What the ranking could not rule out"): caps on the top
    # cause's confidence only, never on the ranking. Declared before measuring, not tuned: the top must score
    # ``tie_margin`` × the runner-up for its calibrated confidence to stand (1: off); a callee not yet seen
    # through its slack, or a change below the top within ``window_s`` of the onset, caps it at ``doubt_cap``
    tie_margin: float = 2.0
    await_callees: bool = True
    doubt_changes_below: bool = True
    doubt_cap: float = 0.5
    # inherited anomalies (docs/rca.md, "A symptom's inherited metrics"; declared before measuring, not
    # tuned): a metric of a service explained by a callee counts for it only at the threshold's z when its
    # anomalous direct callees' metric of the same name moved the same way by at least 1 / this of as much
    # in sum — a caller waits for its callees' latency and returns their errors; 0: off
    inherit_tolerance: float = 1.25


@dataclass(frozen=True, slots=True)
class MetricScore:
    """The score of one metric: robust z, when it first crossed the threshold, and its baseline."""

    z: float
    onset_at: float | None
    median: float
    scale: float
    peak: float


def score_metric(t: Array, v: Array, onset: float, params: Params, spec: MetricSpec = PLAIN) -> MetricScore | None:
    """Score one series; ``None`` when there is too little data before or after the onset."""
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    before = v[(t >= onset - params.reference_s) & (t < onset)]
    in_window = (t >= onset) & (t < onset + params.window_s)
    after, after_t = v[in_window], t[in_window]
    if len(before) < 2 or len(after) < 1:
        return None
    median = float(np.median(before))
    q75, q25 = np.percentile(before, [75, 25])
    floor = spec.floor
    scale = max(float(q75 - q25), floor if floor is not None else max(params.relative_floor * abs(median), 1e-9))
    side = spec.side
    dev = (np.abs(after - median) if side == 0 else np.maximum(side * (after - median), 0.0)) / scale
    i = int(np.argmax(dev))
    crossed = np.nonzero(dev >= params.threshold)[0]
    onset_at = float(after_t[crossed[0]]) if len(crossed) else None
    return MetricScore(z=float(dev[i]), onset_at=onset_at, median=median, scale=scale, peak=float(after[i]))


def finite(x: float) -> float:
    """JSON-safe float (NaN/inf → 0) rounded for explanations."""
    return round(x, 4) if math.isfinite(x) else 0.0


def finest_step(*groups: Mapping[str, tuple[Array, Array]]) -> float:
    """The finest median sampling step among a service's series (0 when none has two points)."""
    steps = []
    for series in groups:
        for t, _ in series.values():
            t = np.asarray(t, dtype=np.float64)
            if len(t) >= 2:
                steps.append(float(np.median(np.diff(t))))
    return max(0.0, min(steps, default=0.0))
