"""RED series ⇄ RED rows: what :class:`~watchkeeper.traces.red.RedAggregator` flushes, as the rows the
server stores (one per step and per service, edge or operation), and those rows back as the series
the ranker reads — under the names :mod:`watchkeeper.traces.red` gives them.

A row holds the step's calls (``count``), ``errors`` and latency ``p50/p95/p99`` (seconds), plus
``extra``: the service's self time (``self_p50/p95``) or the edge's link time (``net_p50/p95``).
``at`` is the step's *end* (when its value is known), as in the series.

>>> import numpy as np
>>> t = np.array([60.0, 120.0])
>>> series = {"db": {"edge:web->db.rate": (t, np.array([0.5, 0.0])),
...                  "edge:web->db.error_ratio": (t, np.array([0.1, np.nan])),
...                  "edge:web->db.latency_p95": (t, np.array([0.2, np.nan]))}}
>>> rows = rows_of(series, 60.0)
>>> [(r.at, r.scope, r.name, r.service, r.count, r.errors, r.p95) for r in rows]
[(60.0, 'edge', 'web->db', 'db', 30, 3, 0.2)]
>>> back = series_of(rows)["db"]
>>> back["edge:web->db.rate"][1].tolist(), back["edge:web->db.error_ratio"][1].tolist()
([0.5], [0.1])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float64]]
Series = Mapping[str, Mapping[str, tuple[Array, Array]]]

#: Scopes of a row, by the series' metric prefix.
SERVICE, EDGE, OPERATION = "service", "edge", "operation"
_LATENCY = ("latency_p50", "latency_p95", "latency_p99")


@dataclass(frozen=True, slots=True)
class RedRow:
    """One step of one service, edge (``caller->callee``, kept on the callee) or operation."""

    at: float
    step: float
    scope: str
    name: str
    service: str
    count: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        """The series' metric prefix: ``trace``, ``edge:<caller->callee>`` or ``op:<operation>``."""
        return "trace" if self.scope == SERVICE else f"edge:{self.name}" if self.scope == EDGE else f"op:{self.name}"

    @property
    def caller(self) -> str | None:
        return self.name.split("->", 1)[0] if self.scope == EDGE else None

    def value(self, metric: str) -> float:
        """One metric of the row (``rate``, ``error_ratio``, ``latency_p95``, ``net_p95`` …); NaN if absent."""
        if metric == "rate":
            return self.count / self.step if self.step else math.nan
        if metric == "error_ratio":
            return self.errors / self.count if self.count else math.nan
        if metric in _LATENCY:
            found = (self.p50, self.p95, self.p99)[_LATENCY.index(metric)]
            return math.nan if found is None else found
        return float(self.extra.get(metric, math.nan))

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "step": self.step, "scope": self.scope, "name": self.name, "service": self.service,
                "count": self.count, "errors": self.errors, "rate": self.value("rate"),
                "error_ratio": self.errors / self.count if self.count else None,
                "p50": self.p50, "p95": self.p95, "p99": self.p99, **dict(self.extra)}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def rows_of(series: Series, step: float) -> list[RedRow]:
    """The rows of flushed series: one per service, prefix and step in which something was seen
    (calls, or the service's self time); steps without calls are left out."""
    out: list[RedRow] = []
    for service, metrics in series.items():
        by_prefix: dict[str, dict[str, tuple[Array, Array]]] = {}
        for metric, tv in metrics.items():
            prefix, _, name = metric.rpartition(".")
            by_prefix.setdefault(prefix, {})[name] = tv
        for prefix, named in by_prefix.items():
            if prefix == "trace":
                scope, key = SERVICE, service
            elif prefix.startswith("edge:"):
                scope, key = EDGE, prefix.removeprefix("edge:")
            elif prefix.startswith("op:"):
                scope, key = OPERATION, prefix.removeprefix("op:")
            else:
                continue
            times = next(iter(named.values()))[0]
            for i, at in enumerate(times.tolist()):
                def at_i(name: str, i: int = i, named: dict[str, tuple[Array, Array]] = named) -> float:
                    tv = named.get(name)
                    return float(tv[1][i]) if tv is not None and i < len(tv[1]) else math.nan

                rate = at_i("rate")
                count = round(rate * step) if math.isfinite(rate) else 0
                extra = {n: v for n, tv in named.items() if n not in ("rate", "error_ratio", *_LATENCY)
                         and i < len(tv[1]) and math.isfinite(v := float(tv[1][i]))}
                if count <= 0 and not extra:
                    continue
                ratio = at_i("error_ratio")
                errors = min(count, round(ratio * count)) if count and math.isfinite(ratio) else 0
                p50, p95, p99 = (_finite(at_i(n)) for n in _LATENCY)
                out.append(RedRow(float(at), float(step), scope, key, service, count, errors, p50, p95, p99, extra))
    return out


def series_of(rows: Sequence[RedRow]) -> dict[str, dict[str, tuple[Array, Array]]]:
    """``{service: {metric: (t, v)}}`` of stored rows, named as :mod:`watchkeeper.traces.red` names
    them. A step stored twice (the server restarted within it) is merged: calls and errors add up,
    percentiles keep the larger."""
    merged: dict[tuple[str, str, float], RedRow] = {}
    for r in rows:
        key = (r.service, r.prefix, r.at)
        seen = merged.get(key)
        if seen is None:
            merged[key] = r
            continue
        extra = {k: max(seen.extra.get(k, -math.inf), r.extra.get(k, -math.inf)) for k in {*seen.extra, *r.extra}}
        merged[key] = RedRow(r.at, r.step, r.scope, r.name, r.service, seen.count + r.count, seen.errors + r.errors,
                             _max(seen.p50, r.p50), _max(seen.p95, r.p95), _max(seen.p99, r.p99), extra)
    points: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for (service, prefix, at), r in sorted(merged.items()):
        into = points.setdefault(service, {})
        names = ([*(("rate", "error_ratio", *_LATENCY) if r.count else ()), *sorted(r.extra)])
        for name in names:
            t, v = into.setdefault(f"{prefix}.{name}", ([], []))
            t.append(at)
            v.append(r.value(name))
    return {s: {m: (np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64)) for m, (t, v) in ms.items()}
            for s, ms in points.items()}


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


__all__ = ["EDGE", "OPERATION", "SERVICE", "RedRow", "rows_of", "series_of"]
