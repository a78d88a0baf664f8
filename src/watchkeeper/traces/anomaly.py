"""Trace anomalies: a service's or an edge's latency p95 or error ratio leaving its baseline → events.

The detectors are the watches' (:class:`~watchkeeper.watch.engine.WatchEngine` over the shipped
detectors of :mod:`watchkeeper.detect`, default: the likelihood detector and its threshold): one
series per service (its served calls) and per edge (calls into the callee as its caller saw them),
scored at each RED step that had at least ``min_calls`` calls, harmful side up, with a floor under
which a deviation never counts. An anomaly window opens with a firing ``Event(kind=trace)`` on the
service (an edge's: on the callee, ``labels.edge`` naming it) and resolves after three calm steps.
The server adds exemplar trace ids to the evidence (``exemplars``: failed spans first, then the slowest).

>>> from watchkeeper.traces.config import TraceAnomalies
>>> from watchkeeper.traces.rows import RedRow
>>> a = Anomalies(TraceAnomalies(detector="robust", options={"window": 16, "season": "none", "warmup": 5}))
>>> quiet = [RedRow(60.0 * i, 60.0, "service", "db", "db", 100, 0, 0.01, 0.02 + 0.0001 * (i % 2), 0.03)
...          for i in range(1, 40)]
>>> [e for r in quiet for e in a.observe([r])]
[]
>>> fired = a.observe([RedRow(2400.0, 60.0, "service", "db", "db", 100, 0, 0.01, 0.9, 1.0)])
>>> [(e.kind.value, e.status.value, e.service, e.name, e.raw["metric"]) for e in fired]
[('trace', 'firing', 'db', 'trace.latency_p95', 'latency_p95')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import groupby

from watchkeeper.model import Event, EventKind
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.traces.config import TraceAnomalies
from watchkeeper.traces.rows import EDGE, SERVICE, RedRow
from watchkeeper.watch.config import Watch
from watchkeeper.watch.engine import WatchEngine

SOURCE = "traces"
#: What is scored: ``(metric of a row, event name)``.
METRICS = (("latency_p95", "trace.latency_p95"), ("error_ratio", "trace.error_ratio"))


class Anomalies:
    """One :class:`WatchEngine` per scored metric; ``observe(rows)`` → trace events."""

    def __init__(self, cfg: TraceAnomalies) -> None:
        self.cfg = cfg
        floors = {"latency_p95": cfg.latency_floor_s, "error_ratio": cfg.error_floor}
        self.engines = {
            metric: WatchEngine(Watch(
                name=name, query=f"traces: {metric} of each service and edge", service_label="service",
                resource_label="edge", direction="up", detector=cfg.detector, options=cfg.options,
                floor=floors[metric], severity=cfg.severity, rca=False))
            for metric, name in METRICS
        }

    def observe(self, rows: Sequence[RedRow]) -> list[Event]:
        """Score the rows of closed steps (any order); the events they open or close."""
        scored = sorted((r for r in rows if r.scope in (SERVICE, EDGE) and r.count >= self.cfg.min_calls),
                        key=lambda r: r.at)
        events: list[Event] = []
        for at, group in groupby(scored, key=lambda r: r.at):
            step = list(group)
            for metric, engine in self.engines.items():
                points = [(_labels(r), r.at, r.value(metric)) for r in step]
                for e in engine.evaluate(points, now=at).events:
                    events.append(_as_trace(e, metric, step[0].step))
        return events


def _labels(r: RedRow) -> dict[str, str]:
    return {"service": r.service, "edge": r.name} if r.scope == EDGE else {"service": r.service}


def _as_trace(e: Event, metric: str, step: float) -> Event:
    labels = dict(e.labels)
    edge = labels.get("edge")
    what = f"calls {edge}" if edge else f"{e.service}'s served calls"
    summary = e.summary.replace(f"{e.name}: {e.service}", f"{metric} of {what}", 1)
    return replace(e, source=SOURCE, kind=EventKind.TRACE, fingerprint=fingerprint_of(labels, namespace=SOURCE),
                   summary=summary, raw={**e.raw, "signal": "traces", "metric": metric, "edge": edge, "step": step})


__all__ = ["METRICS", "SOURCE", "Anomalies"]
