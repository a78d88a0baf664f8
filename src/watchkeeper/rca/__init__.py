"""Root-cause ranking: which service most likely caused an incident, with a calibrated confidence.

``rank(incident_services, evidence)`` scores every candidate service by the largest robust z-score of
its metrics after the onset against the hour before (BARO's scorer, :mod:`watchkeeper.rca.scoring`),
and as well, when the evidence has them, of its trace RED series (:mod:`watchkeeper.rca.signals`: its
own time, the errors it returns, the link time of calls into it, its latency as a symptom) and of its
log templates (:mod:`watchkeeper.rca.logs`); combines the three signals (``Params.signal_mix``),
multiplies in recent change events, discounts services whose anomaly is explained by an earlier
anomalous callee (in the configured graph merged with the one the traces show) or by a slow link to one
callee (and ranks such a caller, and the callers it explains, below that callee), and those whose anomaly
began more than ``Params.late_after_s`` after the first anomalous service's (temporal precedence), and returns
:class:`~watchkeeper.model.Cause` objects sorted best first, each with a JSON-able explanation that
names which signal said what (``evidence["signals"]``). Pure: no IO.

>>> import networkx as nx, numpy as np
>>> t = np.arange(0.0, 4000.0, 60.0)
>>> flat = np.ones_like(t) + 0.01 * np.sin(t)
>>> ev = Evidence(
...     graph=nx.DiGraph([("web", "db")]),
...     metrics={"web": {"latency": (t, np.where(t >= 3600, 2.0, flat))},
...              "db": {"cpu": (t, np.where(t >= 3600, 9.0, flat))}},
...     onset=3600.0)
>>> [c.component for c in rank(["web"], ev)]
['db', 'web']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from watchkeeper.model import Cause
from watchkeeper.rca.calibration import CALIBRATION, confidences
from watchkeeper.rca.doubt import doubts
from watchkeeper.rca.logs import LogAnomaly, log_score
from watchkeeper.rca.scoring import (
    PLAIN,
    Array,
    ChangeLike,
    MetricScore,
    MetricSpec,
    Params,
    finest_step,
    finite,
    score_metric,
)
from watchkeeper.rca.signals import TraceScore, assign_stops, caller_of, caller_side, score_series, trace_score

MODEL = "baro-v1"

__all__ = ["MODEL", "Cause", "Change", "ChangeLike", "Evidence", "LogAnomaly", "MetricSpec", "Params", "rank"]


@dataclass(frozen=True, slots=True)
class Change:
    """A change event (deploy, rollback, config) on a service."""

    at: float
    service: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the ranker looks at; ``graph`` edges are caller → callee. ``specs`` says, by metric
    name (the keys of each service's ``metrics``), which side of a metric is harmful and its smallest
    scale; a metric without a spec counts both ways with the relative floor. ``traces`` are RED series
    by service named as :mod:`watchkeeper.traces.red` names them (edge series on the callee);
    ``trace_graph`` the call graph the spans show (merged with ``graph``); ``log_anomalies`` a score per
    service, or a :class:`LogAnomaly` that also says which templates."""

    graph: nx.DiGraph
    metrics: Mapping[str, Mapping[str, tuple[Array, Array]]]
    onset: float
    changes: Sequence[ChangeLike] = ()
    log_anomalies: Mapping[str, float | LogAnomaly] = field(default_factory=dict)
    specs: Mapping[str, MetricSpec] = field(default_factory=dict)
    traces: Mapping[str, Mapping[str, tuple[Array, Array]]] = field(default_factory=dict)
    trace_graph: nx.DiGraph | None = None

    def topology(self) -> nx.DiGraph:
        """The configured graph merged with the one the traces show."""
        if self.trace_graph is None or not self.trace_graph.number_of_nodes():
            return self.graph
        merged = nx.DiGraph()
        merged.add_nodes_from(self.graph.nodes)
        merged.add_nodes_from(self.trace_graph.nodes)
        merged.add_edges_from(self.graph.edges)
        merged.add_edges_from(self.trace_graph.edges)
        return merged


def candidates(incident_services: Sequence[str] | None, evidence: Evidence, graph: nx.DiGraph | None = None
               ) -> list[str]:
    """The services to rank: the incident's services and everything they depend on, or all known services."""
    graph = evidence.topology() if graph is None else graph
    if incident_services is None:
        names = set(evidence.metrics) | set(graph.nodes) | set(evidence.log_anomalies) | set(evidence.traces)
    else:
        names = set(incident_services)
        for s in incident_services:
            if s in graph:
                names |= nx.descendants(graph, s)
    return sorted(str(n) for n in names)


def rank(
    incident_services: Sequence[str] | None,
    evidence: Evidence,
    *,
    params: Params | None = None,
    calibration: dict[str, Any] | None = None,
) -> list[Cause]:
    """Rank candidate root-cause services, best first (see the module docstring)."""
    p = params or Params()
    graph = evidence.topology()
    names = candidates(incident_services, evidence, graph)
    per_service: dict[str, dict[str, MetricScore]] = {}
    for s in names:
        scored = {}
        for metric, (t, v) in evidence.metrics.get(s, {}).items():
            ms = score_metric(t, v, evidence.onset, p, evidence.specs.get(metric, PLAIN))
            if ms is not None:
                scored[metric] = ms
        per_service[s] = scored
    trace_items = {s: score_series(evidence.traces[s], evidence.onset, p) for s in names if evidence.traces.get(s)}
    logged = {s for s, a in evidence.log_anomalies.items() if log_score(a) >= p.threshold}  # changed by its logs
    trace_items = assign_stops(trace_items, p, logged)
    common = caller_side(trace_items)
    traced: dict[str, TraceScore] = {
        s: trace_score(trace_items.get(s, []), evidence.onset, p, common, common.get(s, 0.0))
        for s in names if s in trace_items or s in common}

    metric_base = {s: max((m.z for m in own.values()), default=0.0) for s, own in per_service.items()}
    logs = {s: log_score(evidence.log_anomalies[s]) for s in names if s in evidence.log_anomalies}

    def combined(s: str, metric_z: float) -> float:
        """A service's signals joined: its metric z, its traces (weighted) and its logs."""
        return _combine((metric_z, p.trace_weight * traced[s].score if s in traced else 0.0, logs.get(s, 0.0)), p)

    base = {s: combined(s, metric_base[s]) for s in names}
    first: dict[str, float | None] = {}
    for s, own in per_service.items():
        onsets = [m.onset_at for m in own.values() if m.onset_at is not None]
        trace_onset = traced[s].onset_at if s in traced else None
        if trace_onset is not None:
            onsets.append(trace_onset)
        log_doc = evidence.log_anomalies.get(s)
        if isinstance(log_doc, LogAnomaly) and log_doc.first_at is not None and log_doc.score >= p.threshold:
            onsets.append(log_doc.first_at)
        first[s] = min(onsets, default=None)
    slack = {s: min(finest_step(evidence.metrics.get(s, {}), evidence.traces.get(s, {})), p.simultaneous_cap_s)
             for s in names} if p.simultaneous_cap_s > 0 else {}
    slow_edges = _slow_edges(trace_items, common, p) if p.edge_explains else {}
    score: dict[str, float] = {}
    why: dict[str, dict[str, Any]] = {}
    starts = [(t, s) for s, t in first.items() if t is not None and base[s] >= p.threshold]
    earliest = min(starts, default=None)
    for s in names:
        value = base[s]
        reasons: dict[str, Any] = {}
        explained_by = _explained_by(s, graph, base, first, p, slack)
        inherited: dict[str, list[str]] = {}
        if explained_by:  # then s is in the graph
            anomalous = [str(u) for u in graph.successors(s) if base.get(str(u), 0.0) >= p.threshold]
            inherited = _inherited(per_service, s, anomalous, p)
        if inherited:  # what is left of its own: the metrics its callees do not explain, traces and logs;
            # an inherited anomaly still says the service is anomalous, at the threshold's strength only: above
            # the services that show nothing, below any anomaly of its own
            left = max((m.z for name, m in per_service[s].items() if name not in inherited), default=0.0)
            value = combined(s, max(left, p.threshold))
            reasons["inherited"] = [{"metric": name, "from": us} for name, us in sorted(inherited.items())]
        log_value = logs.get(s, 0.0)
        if log_value > metric_base[s] and log_value >= (traced[s].score if s in traced else 0.0):
            reasons["log_anomaly"] = finite(log_value)
        suspects = [
            c for c in evidence.changes
            if c.service == s and evidence.onset - p.change_window_s <= c.at < evidence.onset + p.window_s
        ]
        if suspects and value >= p.threshold:
            value *= p.change_boost
            reasons["changes"] = [{"at": c.at, "description": c.description} for c in suspects]
        if slow_edges.get(s):
            explained_by = sorted(set(explained_by) | set(slow_edges[s]))
            reasons["slow_link_to"] = slow_edges[s]
        if explained_by:
            reasons["explained_by"] = explained_by
            value *= p.graph_discount
        began = first[s]
        if earliest is not None and began is not None and base[s] >= p.threshold and (
                began - earliest[0] > p.late_after_s):  # a later symptom, not where it started
            reasons["later_than"] = {"service": earliest[1], "by_s": finite(began - earliest[0])}
            value *= p.late_discount
        callers = sorted(
            str(u) for u in (graph.predecessors(s) if s in graph else ())
            if base.get(str(u), 0.0) >= p.threshold
        )
        if callers and base[s] >= p.threshold:
            reasons["explains_anomalous_callers"] = callers
        reasons["signals"] = _signals(s, per_service[s], metric_base[s], traced.get(s),
                                      evidence.log_anomalies.get(s))
        score[s] = value
        why[s] = reasons

    if p.explained_below in ("edge", "all"):
        _rank_below(names, score, why, slow_edges, p)
    order = sorted(names, key=lambda s: (-score[s], first[s] if first[s] is not None else float("inf"), s))
    conf = confidences([score[s] for s in order], calibration or CALIBRATION)
    cap, doubted = doubts(order, score, first, graph, (evidence.metrics, evidence.traces), evidence.changes,
                          evidence.onset, p)
    if doubted:  # what the ranking could not rule out: the top's confidence, never its place
        why[order[0]]["doubts"] = {**doubted, "calibrated": finite(conf[0]), "cap": finite(cap)}
        conf[0] = min(conf[0], cap)
    onset_rank = {s: i + 1 for i, s in enumerate(sorted((s for s in names if first[s] is not None),
                                                         key=lambda s: (first[s], s)))}
    causes = []
    for s, c in zip(order, conf, strict=True):
        top = sorted(per_service[s].items(), key=lambda kv: -kv[1].z)[:3]
        evidence_doc: dict[str, Any] = {
            "score": finite(score[s]),
            "metric_score": finite(metric_base[s]),
            "top_metrics": [
                {"metric": name, "z": finite(m.z), "baseline": finite(m.median), "peak": finite(m.peak),
                 "onset_at": m.onset_at}
                for name, m in top
            ],
            "first_anomaly_at": first[s],
            "onset_order": onset_rank.get(s),
            **why[s],
        }
        causes.append(Cause(component=s, kind="service", score=finite(score[s]), confidence=round(c, 4),
                            model=MODEL, evidence=evidence_doc))
    return causes


def _combine(signals: tuple[float, ...], p: Params) -> float:
    """The strongest signal, plus ``signal_mix`` × the others (0: the strongest alone; 1: their sum)."""
    top = max(signals)
    return top + p.signal_mix * (sum(signals) - top)


def _signals(
    s: str, metrics: Mapping[str, MetricScore], metric_base: float, traced: TraceScore | None,
    log: float | LogAnomaly | None,
) -> dict[str, Any]:
    """Which signal said what about ``s``: each signal's score and its top items."""
    out: dict[str, Any] = {}
    if metrics:
        top = sorted(metrics.items(), key=lambda kv: -kv[1].z)[:3]
        out["metrics"] = {"score": finite(metric_base),
                          "top": [{"metric": name, "z": finite(m.z), "baseline": finite(m.median),
                                   "peak": finite(m.peak)} for name, m in top]}
    if traced is not None:
        out["traces"] = {"score": finite(traced.score), "blame": finite(traced.blame),
                         "latency": finite(traced.latency), "top": traced.top}
    if log is not None:
        out["logs"] = {"score": finite(log_score(log)),
                       "templates": [dict(t) for t in log.templates] if isinstance(log, LogAnomaly) else []}
    return out


def _explained_by(
    s: str, graph: nx.DiGraph, base: Mapping[str, float], first: Mapping[str, float | None], p: Params,
    slack: Mapping[str, float] | None = None,
) -> list[str]:
    """Anomalous direct callees of ``s`` that became anomalous no later than ``s`` did, to within the
    callee's ``slack`` (its sampling step, capped: ``Params.simultaneous_cap_s``)."""
    own = first.get(s)
    if s not in graph or own is None or base.get(s, 0.0) < p.threshold:
        return []
    out = []
    for callee in graph.successors(s):
        t = first.get(str(callee))
        late = (slack or {}).get(str(callee), 0.0)
        if t is not None and t <= own + late + 1e-6 and base.get(str(callee), 0.0) >= p.threshold:
            out.append(str(callee))
    return sorted(out)


def _inherited(per_service: Mapping[str, Mapping[str, MetricScore]], s: str, callees: Sequence[str],
               p: Params) -> dict[str, list[str]]:
    """The anomalous metrics of ``s`` that its anomalous ``callees`` account for: the same metric moved the
    same way in them, by at least 1 / ``inherit_tolerance`` of its rise *in sum* — a caller that calls two
    slow callees one after the other waits for both (``metric → the callees``).

    >>> m = lambda z, median, peak: MetricScore(z, 0.0, median, 1.0, peak)
    >>> svc = {"api": {"lat": m(900.0, 0.02, 2.3), "cpu": m(2.0, 0.1, 0.2)},
    ...        "db": {"lat": m(800.0, 0.01, 2.3)}, "cache": {"lat": m(700.0, 0.01, 2.3)}}
    >>> _inherited(svc, "api", ["db"], Params())
    {'lat': ['db']}
    >>> svc["api"]["lat"] = m(900.0, 0.02, 4.6)  # twice one callee's rise: both callees' together
    >>> _inherited(svc, "api", ["db"], Params()), _inherited(svc, "api", ["cache", "db"], Params())
    ({}, {'lat': ['cache', 'db']})
    """
    if p.inherit_tolerance <= 0:
        return {}
    out: dict[str, list[str]] = {}
    for name, mine in per_service.get(s, {}).items():
        if mine.z < p.threshold:
            continue
        rise = mine.peak - mine.median
        total, sources = 0.0, []
        for u in sorted(callees):
            theirs = per_service.get(u, {}).get(name)
            if theirs is None or theirs.z < p.threshold or (theirs.peak - theirs.median) * rise <= 0:
                continue
            total += abs(theirs.peak - theirs.median)
            sources.append(u)
        if sources and abs(rise) <= p.inherit_tolerance * total:
            out[name] = sources
    return out


def _rank_below(names: Sequence[str], score: dict[str, float], why: Mapping[str, dict[str, Any]],
                slow_edges: Mapping[str, Sequence[str]], p: Params) -> None:
    """An explained caller scores at most ``graph_discount`` × what explains it, callees first, to a fixpoint
    (scores only fall, so it ends): with ``explained_below`` "edge", a caller explained by a slow link and
    the callers explained by such a caller; with "all", every explained caller. Each capped cause says so
    (``ranked_below``)."""
    capped: set[str] = set()
    for _ in range(len(names)):
        changed = False
        for s in names:
            by = why[s].get("explained_by") or ()
            if p.explained_below == "edge":
                by = [c for c in by if c in slow_edges.get(s, ()) or c in capped]
            below = [c for c in by if c in score]
            cap = min((score[c] * p.graph_discount for c in below), default=None)
            if cap is not None and score[s] > cap + 1e-12:
                score[s], changed = cap, True
                capped.add(s)
                why[s]["ranked_below"] = sorted(below)
        if not changed:
            break


def _slow_edges(trace_items: Mapping[str, Any], common: Mapping[str, float], p: Params) -> dict[str, list[str]]:
    """Callers whose call to one callee got slow on the link (``edge:caller->callee.net_*`` z ≥ threshold)
    while they are not slow themselves (their own time and their calls to every callee flat): the caller's
    latency is that edge's, whatever the onset order."""
    own: dict[str, float] = {s: max((m.z for _, role, m in items if role == "self"), default=0.0)
                             for s, items in trace_items.items()}
    out: dict[str, set[str]] = {}
    for callee, items in trace_items.items():
        for metric, role, m in items:
            caller = caller_of(metric)
            if role != "link" or caller is None or caller == callee or m.z < p.threshold:
                continue
            if max(own.get(caller, 0.0), common.get(caller, 0.0)) < p.threshold:
                out.setdefault(caller, set()).add(callee)
    return {s: sorted(c) for s, c in out.items()}
