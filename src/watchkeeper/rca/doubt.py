"""Reasons the top cause's calibrated confidence cannot stand yet: what the ranking could not rule out.

The confidence model (:mod:`watchkeeper.rca.calibration`) reads the top score and its margin, and was
fitted on finished faults, one at a time; it cannot know that evidence is still missing or that a near
tie is a coin flip. Three doubts cap the top cause's confidence — the ranking itself is unchanged:

* **a near tie** — the runner-up scores more than ``1 / Params.tie_margin`` of the top: the top's
  confidence is at most ``0.5 + 0.5 · log(top / second) / log(tie_margin)`` (0.5 for equal scores, no cap
  from ``tie_margin`` × the runner-up up);
* **a callee not seen yet** — one signal (metrics, traces) of a direct callee of the top had data before
  the onset and has not been observed through the top's first anomaly plus that signal's slack (its
  sampling step, at most ``Params.simultaneous_cap_s``: the graph step lets a callee first seen anomalous
  that much later explain its caller, so until then the graph step cannot have decided; and a slow link
  shows only in the callee's spans): at most ``Params.doubt_cap``;
* **a change below** — a service the top depends on (directly or not) changed within ``Params.window_s``
  of the onset and the top did not: the change can break the top's calls without its own service
  showing it yet (or ever, e.g. a wrong return value): at most ``Params.doubt_cap``.

>>> import networkx as nx
>>> from watchkeeper.rca.scoring import Params
>>> tie_cap(43.1, 42.0, Params()) < 0.55, tie_cap(100.0, 10.0, Params())
(True, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from watchkeeper.rca.scoring import Array, ChangeLike, Params, finest_step


def tie_cap(top: float, second: float, p: Params) -> float:
    """The most the top cause's confidence can be beside a runner-up scoring ``second`` (1: no cap)."""
    if p.tie_margin <= 1.0 or top <= 0.0 or second <= 0.0 or top >= p.tie_margin * second:
        return 1.0
    return 0.5 + 0.5 * math.log(max(top, second) / second) / math.log(p.tie_margin)


def unseen_callees(
    top: str, graph: nx.DiGraph, series: Sequence[Mapping[str, Mapping[str, tuple[Array, Array]]]],
    since: float, onset: float, cap_s: float,
) -> list[str]:
    """Direct callees of ``top`` of which one signal (a group of ``series``: metrics, traces) had data before
    ``onset`` and has not been seen through ``since`` plus that signal's slack (its finest sampling step, at
    most ``cap_s``): not yet seen through the time in which that signal could still explain ``top``."""
    if top not in graph:
        return []
    out = []
    for callee in graph.successors(top):
        c = str(callee)
        for group in series:
            times = [t[np.isfinite(t)] for t in (np.asarray(t, dtype=np.float64) for t, _ in group.get(c, {}).values())]
            if not any(bool(np.any(t < onset)) for t in times):
                continue  # this signal never observed the callee: nothing would come, the ranking cannot wait
            slack = min(finest_step(group.get(c, {})), cap_s) if cap_s > 0 else 0.0  # as the graph step's
            last = max((float(t.max()) for t in times if t.size), default=-math.inf)
            if last < since + slack - 1e-6:
                out.append(c)
                break
    return sorted(out)


def changes_below(top: str, graph: nx.DiGraph, changes: Sequence[ChangeLike], onset: float, p: Params
                  ) -> list[dict[str, Any]]:
    """Changes within ``window_s`` of ``onset`` on services ``top`` depends on, when ``top`` itself did not
    change then."""
    near = [c for c in changes if abs(c.at - onset) <= p.window_s]
    if top not in graph or any(c.service == top for c in near):
        return []
    below = nx.descendants(graph, top)
    return [{"service": c.service, "at": c.at, "description": c.description}
            for c in sorted(near, key=lambda c: (c.at, c.service)) if c.service in below]


def doubts(
    order: Sequence[str], scores: Mapping[str, float], first: Mapping[str, float | None], graph: nx.DiGraph,
    series: Sequence[Mapping[str, Mapping[str, tuple[Array, Array]]]], changes: Sequence[ChangeLike],
    onset: float, p: Params,
) -> tuple[float, dict[str, Any]]:
    """``(cap, reasons)`` for the top of ``order``: the most its confidence can be, and why (empty: 1.0)."""
    if not order:
        return 1.0, {}
    top = order[0]
    reasons: dict[str, Any] = {}
    cap = 1.0
    if len(order) > 1:
        tie = tie_cap(scores[top], scores[order[1]], p)
        if tie < 1.0:
            reasons["near_tie_with"] = order[1]
            cap = min(cap, tie)
    if p.await_callees:
        began = first.get(top)
        waiting = unseen_callees(top, graph, series, onset if began is None else began, onset, p.simultaneous_cap_s)
        if waiting:
            reasons["callees_not_seen_yet"] = waiting
            cap = min(cap, p.doubt_cap)
    if p.doubt_changes_below:
        changed = changes_below(top, graph, changes, onset, p)
        if changed:
            reasons["changed_below"] = changed
            cap = min(cap, p.doubt_cap)
    return cap, reasons
