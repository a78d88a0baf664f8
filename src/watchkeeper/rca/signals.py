"""Trace evidence for the ranker: which RED series of a service blame it, and what each one says.

The series are those of :mod:`watchkeeper.traces.red` (``service -> metric -> (t, values)``), scored
with the same robust z as metrics (:func:`~watchkeeper.rca.scoring.score_metric`), only rises count:

- **blame** (the service itself, or its link): ``trace.self_*`` — its own time, its callees' left out
  (CPU contention, slow code); ``trace.error_ratio`` and ``edge:*.error_ratio`` — errors it returns;
  ``edge:<caller>-><service>.net_*`` — calls into it took longer as the caller saw them than the
  service took to serve them: the link to it (a network delay) is slow;
- **fast failure** (no status code needed): ``edge:<caller>-><service>.last_share`` — more of the
  caller's requests end with their call to the service (a wrong answer or an error that makes the caller
  give up there), and ``trace.no_call_share`` — more of the service's own requests call nobody (it fails
  before its first call); both weigh ``Params.trace_abort_weight``, with ``trace_share_floor`` as scale.
  *Who stopped* (:func:`abort_owners`): a stop at a callee blames the callee when the callee changed
  itself or several callers stop at it (``Params.trace_abort_callers``), else the caller (role
  ``stop``): it gives up or raises after an answer the callee gives as before;
- **unanswered**: ``edge:<caller>-><service>.orphan_ratio`` — the caller's client calls that got no
  server span from the service (it crashed): blames the callee, which has no spans of its own to show it;
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
(40, 'edge:web->db.net_p95', 'link')
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from watchkeeper.rca.scoring import Array, MetricScore, MetricSpec, Params, finite, score_metric

__all__ = ["TraceScore", "abort_owners", "assign_stops", "caller_side", "describe", "score_series", "trace_role",
           "trace_score"]


def trace_role(metric: str, params: Params) -> tuple[str, MetricSpec] | None:
    """``(role, spec)`` of a trace series by its name, ``None`` when it is not scored.

    >>> [trace_role(m, Params())[0] for m in ("trace.self_p95", "edge:a->b.net_p50", "trace.error_ratio",
    ...                                       "edge:a->b.latency_p99", "edge:a->b.last_share",
    ...                                       "edge:a->b.orphan_ratio")]
    ['self', 'link', 'errors', 'latency', 'abort', 'unanswered']
    >>> trace_role("trace.rate", Params()), trace_role("op:GET /.latency_p95", Params())
    (None, None)
    """
    prefix, _, name = metric.rpartition(".")
    if not prefix or prefix.startswith("op:"):
        return None
    if name == "error_ratio":
        return "errors", MetricSpec(1, params.trace_error_floor)
    if name == "orphan_ratio" and prefix.startswith("edge:"):
        return "unanswered", MetricSpec(1, params.trace_error_floor)
    if name == "no_call_share" or (name == "last_share" and prefix.startswith("edge:")):
        return "abort", MetricSpec(1, params.trace_share_floor)
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


Scored = list[tuple[str, str, MetricScore]]


def score_series(series: Mapping[str, tuple[Array, Array]], onset: float, params: Params) -> Scored:
    """``(metric, role, score)`` of every scored trace series of one service."""
    scored: Scored = []
    for metric, (t, v) in series.items():
        role = trace_role(metric, params)
        if role is None:
            continue
        ms = score_metric(t, v, onset, params, role[1])
        if ms is not None:
            scored.append((metric, role[0], ms))
    return scored


def caller_of(metric: str) -> str | None:
    """The caller of an edge series (``edge:a->b.x`` → ``a``), else ``None``."""
    if not metric.startswith("edge:"):
        return None
    return metric[5:].partition("->")[0]


def caller_side(scored: Mapping[str, Scored]) -> dict[str, float]:
    """Per caller: the link rise common to *all* its callees (the median over its outgoing edges of
    each edge's largest link z, when it calls two or more services). Slow client spans towards every
    callee say the caller itself is slow (its CPU, its connection pool), not each link."""
    out_links: dict[str, dict[str, float]] = {}
    for callee, items in scored.items():
        for metric, role, m in items:
            caller = caller_of(metric)
            if role == "link" and caller is not None:
                per = out_links.setdefault(caller, {})
                per[callee] = max(per.get(callee, 0.0), m.z)
    common = {}
    for caller, per in out_links.items():
        if len(per) >= 2:
            zs = sorted(per.values())
            common[caller] = zs[(len(zs) - 1) // 2]
    return common


#: The roles of a service's own series that say it changed itself (its time, its errors, the link to it,
#: calls it left unanswered): a callee showing one owns the stops at it.
_OWN_ROLES = frozenset({"self", "errors", "link", "unanswered"})


def abort_owners(scored: Mapping[str, Scored], params: Params, changed: Collection[str] = ()) -> dict[str, str]:
    """Who stopped, per rising ``edge:<caller>-><callee>.last_share`` (z ≥ ``params.threshold``: more of the
    caller's requests end with their call to the callee). The **callee** owns the stop (a wrong answer, an
    error) when it changed itself — a series of its own rose (:data:`_OWN_ROLES`, its own requests calling
    nobody, or its requests now stopping at one of *its* callees), or it is in ``changed`` (its logs, say) —
    or when at least ``params.trace_abort_callers`` callers stop at it (a wrong answer reaches every caller).
    Otherwise the **caller** owns it: it gives up or raises after an answer the callee gives as before.
    ``trace_abort_callers`` 1: always the callee (the rule before this one).

    >>> from watchkeeper.rca.scoring import MetricScore
    >>> rise = MetricScore(50.0, 0.0, 0.0, 0.01, 0.5)
    >>> one = {"pay": [("edge:web->pay.last_share", "abort", rise)]}
    >>> abort_owners(one, Params()), abort_owners(one, Params(trace_abort_callers=1))
    ({'edge:web->pay.last_share': 'web'}, {'edge:web->pay.last_share': 'pay'})
    >>> abort_owners(one, Params(), changed={"pay"})  # pay's own logs moved
    {'edge:web->pay.last_share': 'pay'}
    >>> two = {"pay": [("edge:web->pay.last_share", "abort", rise), ("edge:api->pay.last_share", "abort", rise)]}
    >>> sorted(set(abort_owners(two, Params()).values()))
    ['pay']
    """
    rising: dict[str, tuple[str, str]] = {}
    moved = set(changed)
    for callee, items in scored.items():
        for metric, role, m in items:
            if m.z < params.threshold:
                continue
            caller = caller_of(metric)
            if role == "abort" and caller is not None:
                rising[metric] = (caller, callee)
                moved.add(caller)  # the caller's own requests changed: they now stop elsewhere
            elif role in _OWN_ROLES or role == "abort":
                moved.add(callee)
    stopped_by: dict[str, set[str]] = {}
    for caller, callee in rising.values():
        stopped_by.setdefault(callee, set()).add(caller)
    return {metric: callee if callee in moved or len(stopped_by[callee]) >= params.trace_abort_callers else caller
            for metric, (caller, callee) in rising.items()}


def assign_stops(scored: Mapping[str, Scored], params: Params, changed: Collection[str] = ()) -> dict[str, Scored]:
    """``scored`` with every stop its caller owns (:func:`abort_owners`) moved onto the caller, role ``stop``."""
    owners = abort_owners(scored, params, changed)
    out: dict[str, Scored] = {s: [] for s in scored}
    for callee, items in scored.items():
        for metric, role, m in items:
            owner = owners.get(metric, callee)
            if owner == callee:
                out[callee].append((metric, role, m))
            else:
                out.setdefault(owner, []).append((metric, "stop", m))
    return out


def trace_score(series: Mapping[str, tuple[Array, Array]] | Scored, onset: float, params: Params,
                common: Mapping[str, float] | None = None, own_common: float = 0.0) -> TraceScore:
    """Score one service's trace series (see the module docstring). ``common``: the caller-side rise
    of each caller (:func:`caller_side`), taken off the link time of its calls into this service;
    ``own_common``: this service's own caller-side rise, which blames it."""
    scored = score_series(series, onset, params) if isinstance(series, Mapping) else series
    common = common or {}
    weighted = []
    for name, role, m in scored:
        z = m.z
        if role == "link":
            z = max(z - common.get(caller_of(name) or "", 0.0), 0.0)
        elif role == "latency":
            z *= params.trace_latency_weight
        elif role in ("abort", "stop"):
            z *= params.trace_abort_weight
        weighted.append((name, role, m, z))
    if own_common > 0:
        weighted.append(("client spans to every callee", "caller", MetricScore(own_common, None, 0.0, 1.0, 0.0),
                         own_common))
    blame = max((w for _, r, _, w in weighted if r != "latency"), default=0.0)
    latency = max((m.z for _, r, m, _ in weighted if r == "latency"), default=0.0)
    weighted.sort(key=lambda x: -x[3])
    onsets = [m.onset_at for _, _, m, w in weighted if m.onset_at is not None and w >= params.threshold]
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
    if role == "caller":
        return f"its calls to every callee slowed on its own side (link z {m.z:.3g} on all of them): it is slow"
    if role == "link":
        caller, _, callee = prefix.removeprefix("edge:").partition("->")
        return (f"calls {caller} → {callee} spend {m.peak:.3g} s on the link ({stat}; was {m.median:.3g} s) "
                f"while {callee} serves them no slower: the link to {callee} is slow")
    if role == "self":
        return f"its own time (callees excluded) rose to {m.peak:.3g} s ({stat}; was {m.median:.3g} s)"
    if role == "abort":
        if prefix.startswith("edge:"):
            caller, _, callee = prefix.removeprefix("edge:").partition("->")
            return (f"{m.peak:.0%} of {caller}'s requests now end with their call to {callee} (was {m.median:.0%}): "
                    f"{callee} stops them (its answer ends them)")
        return f"{m.peak:.0%} of its requests now call no other service (was {m.median:.0%}): it fails before calling"
    if role == "stop":
        caller, _, callee = prefix.removeprefix("edge:").partition("->")
        return (f"{m.peak:.0%} of its requests now end with their call to {callee} (was {m.median:.0%}) while "
                f"{callee} shows no change of its own and stops no other caller: {caller} stops there itself")
    if role == "unanswered":
        caller, _, callee = prefix.removeprefix("edge:").partition("->")
        return (f"{m.peak:.0%} of {caller}'s calls to {callee} got no answer from it (no server span; "
                f"was {m.median:.0%}): {callee} is down or not answering")
    if role == "errors":
        where = "calls into it from " + prefix.removeprefix("edge:").partition("->")[0] if prefix.startswith(
            "edge:") else "its requests"
        return f"{where} fail: error ratio {m.peak:.3g} (was {m.median:.3g})"
    where = "as " + prefix.removeprefix("edge:").partition("->")[0] + " sees it" if prefix.startswith(
        "edge:") else "server side"
    return f"latency {stat} {where} rose to {m.peak:.3g} s (was {m.median:.3g} s; includes its callees)"
