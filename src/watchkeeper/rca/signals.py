"""Trace evidence for the ranker: which RED series of a service blame it, and what each one says.

The series are those of :mod:`watchkeeper.traces.red` (``service -> metric -> (t, values)``), scored
with the same robust z as metrics (:func:`~watchkeeper.rca.scoring.score_metric`), only rises count:

- **blame** (the service itself, or its link): ``trace.self_*`` — its own time, its callees' left out
  (CPU contention, slow code); ``trace.error_ratio`` and ``edge:*.error_ratio`` — errors it returns;
  ``edge:<caller>-><service>.net_*`` — calls into it took longer as the caller saw them than the
  service took to serve them: the link to it (a network delay) is slow;
- **symptom**: ``trace.latency_*`` and ``edge:*.latency_*`` include the time of the service's own
  callees, so they weigh ``Params.trace_latency_weight`` and the ranker's graph step discounts them
  when a callee became anomalous first;
- traffic (``*.rate``) and per-operation series (``op:*``) are not scored: traffic follows the load
  through every service, and operations would multiply the chances of a large z by luck.

>>> import numpy as np
>>> t = np.arange(0.0, 4200.0, 30.0)
>>> flat = 0.002 + 0.0001 * np.sin(t)
>>> series = {"edge:web->db.net_p95": (t, np.where(t >= 3600, 0.2, flat)), "trace.rate": (t, flat)}
>>> s = trace_score(series, 3600.0, Params())
>>> round(s.score), s.top[0]["metric"], s.top[0]["role"]
(198, 'edge:web->db.net_p95', 'link')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.rca.scoring import Array, MetricScore, MetricSpec, Params, finite, score_metric

__all__ = ["TraceScore", "describe", "trace_role", "trace_score"]


def trace_role(metric: str, params: Params) -> tuple[str, MetricSpec] | None:
    """``(role, spec)`` of a trace series by its name, ``None`` when it is not scored.

    >>> [trace_role(m, Params())[0] for m in ("trace.self_p95", "edge:a->b.net_p50", "trace.error_ratio",
    ...                                       "edge:a->b.latency_p99")]
    ['self', 'link', 'errors', 'latency']
    >>> trace_role("trace.rate", Params()), trace_role("op:GET /.latency_p95", Params())
    (None, None)
    """
    prefix, _, name = metric.rpartition(".")
    if not prefix or prefix.startswith("op:"):
        return None
    if name == "error_ratio":
        return "errors", MetricSpec(1, params.trace_error_floor)
    for head, role in (("self_", "self"), ("net_", "link"), ("latency_", "latency")):
        if name.startswith(head) and (role != "link" or prefix.startswith("edge:")):
            return role, MetricSpec(1, params.trace_latency_floor_s)
    return None


@dataclass(frozen=True, slots=True)
class TraceScore:
    """A service's trace score, when its first series crossed the threshold, and its top series."""

    score: float
    blame: float
    latency: float
    onset_at: float | None
    top: list[dict[str, Any]]


def trace_score(series: Mapping[str, tuple[Array, Array]], onset: float, params: Params) -> TraceScore:
    """Score one service's trace series (see the module docstring)."""
    scored: list[tuple[str, str, MetricScore]] = []
    for metric, (t, v) in series.items():
        role = trace_role(metric, params)
        if role is None:
            continue
        ms = score_metric(t, v, onset, params, role[1])
        if ms is not None:
            scored.append((metric, role[0], ms))
    blame = max((m.z for _, r, m in scored if r != "latency"), default=0.0)
    latency = max((m.z for _, r, m in scored if r == "latency"), default=0.0)
    weighted = [(name, role, m, m.z * (params.trace_latency_weight if role == "latency" else 1.0))
                for name, role, m in scored]
    weighted.sort(key=lambda x: -x[3])
    onsets = [m.onset_at for _, _, m in scored if m.onset_at is not None]
    top = [{"metric": name, "role": role, "z": finite(w), "baseline": finite(m.median), "peak": finite(m.peak),
            "onset_at": m.onset_at, "says": describe(name, role, m)} for name, role, m, w in weighted[:3]]
    return TraceScore(max(blame, latency * params.trace_latency_weight), blame, latency,
                      min(onsets) if onsets else None, top)


def describe(metric: str, role: str, m: MetricScore) -> str:
    """One sentence of what a trace series says.

    >>> describe("edge:web->db.net_p95", "link", MetricScore(40.0, 5.0, 0.002, 0.001, 0.2))
    'calls web → db spend 0.2 s on the link (p95; was 0.002 s) while db serves them no slower: the link to db is slow'
    """
    prefix, _, name = metric.rpartition(".")
    stat = name.rpartition("_")[2]
    if role == "link":
        caller, _, callee = prefix.removeprefix("edge:").partition("->")
        return (f"calls {caller} → {callee} spend {m.peak:.3g} s on the link ({stat}; was {m.median:.3g} s) "
                f"while {callee} serves them no slower: the link to {callee} is slow")
    if role == "self":
        return f"its own time (callees excluded) rose to {m.peak:.3g} s ({stat}; was {m.median:.3g} s)"
    if role == "errors":
        where = "calls into it from " + prefix.removeprefix("edge:").partition("->")[0] if prefix.startswith(
            "edge:") else "its requests"
        return f"{where} fail: error ratio {m.peak:.3g} (was {m.median:.3g})"
    where = "as " + prefix.removeprefix("edge:").partition("->")[0] + " sees it" if prefix.startswith(
        "edge:") else "server side"
    return f"latency {stat} {where} rose to {m.peak:.3g} s (was {m.median:.3g} s; includes its callees)"
