"""Root-cause ranking time per incident with 200 candidate series, against a numpy baseline.

One incident whose candidates are every service of a synthetic service graph (50 services in layers, each calling two or
three of the next layer; 4 watches each → 200 candidate series of one hour of reference and five
minutes after the onset at a 15 s step, with noise, one degraded service deep in the graph, its
callers slowed by it, and a few recent deploys). Prometheus time is excluded: the series come from a
synthetic :class:`~watchkeeper.ranking.SeriesSource`. Two figures per run:

- **ranker**: what ``serve`` does per incident once the series are in: turn the range series into
  evidence (``ranking.collect``, with the watches' directions and floors) and ``rca.rank`` them with
  the graph, the changes and the calibration;
- **baseline**: the bare arithmetic of the scorer on the same arrays — ``np.median`` and
  ``np.percentile`` of each reference window and the largest deviation after the onset — with no
  graph, no changes, no explanation.

Times are this process's CPU time; median and p90 over the repeats. Prints figures, asserts nothing.

    .venv/bin/python benchmarks/rca.py            # 200 repeats
    .venv/bin/python benchmarks/rca.py --quick    # 20 repeats
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Sequence

import networkx as nx
import numpy as np

from watchkeeper import rca
from watchkeeper.ranking import collect
from watchkeeper.watch.config import Watch
from watchkeeper.watch.prometheus import RangeSeries

ONSET = 1_800_000_000.0
STEP = 15.0
REFERENCE, WINDOW = 3600.0, 300.0
WATCHES = [Watch(name="latency", query="q1", direction="up", floor=0.05),
           Watch(name="errors", query="q2", direction="up", floor=0.02),
           Watch(name="cpu", query="q3", direction="up", floor=0.15),
           Watch(name="up", query="q4", direction="down", floor=0.5)]


def graph(services: int, seed: int) -> nx.DiGraph:
    rng = np.random.default_rng(seed)
    names = [f"svc{i:02d}" for i in range(services)]
    layers = [names[i:i + 10] for i in range(0, services, 10)]
    g = nx.DiGraph()
    g.add_nodes_from(names)
    for upper, lower in itertools.pairwise(layers):
        for caller in upper:
            for callee in rng.choice(lower, size=min(len(lower), int(rng.integers(2, 4))), replace=False):
                g.add_edge(caller, str(callee))
    return g


class Synthetic:
    """A SeriesSource: per watch, one series per service, the culprit and its callers degraded."""

    def __init__(self, g: nx.DiGraph, culprit: str, seed: int) -> None:
        self.g, self.culprit = g, culprit
        self.rng = np.random.default_rng(seed)
        self.victims = nx.ancestors(g, culprit)

    def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        t = np.arange(start, end + 1e-9, step)
        after = t >= ONSET
        out = []
        for s in sorted(self.g.nodes):
            base = {"latency": 0.05, "errors": 0.001, "cpu": 0.3, "up": 1.0}[watch.name]
            v = base * (1 + 0.05 * self.rng.standard_normal(len(t))) if watch.name != "up" else np.ones(len(t))
            if s == self.culprit and watch.name in ("latency", "cpu"):
                v = np.where(after, v * 20, v)
            elif s in self.victims and watch.name == "latency":
                v = np.where(after, v * 3, v)
            out.append(RangeSeries({"service": s}, t, v))
        return out


def baseline(metrics: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> float:
    best = 0.0
    for per in metrics.values():
        for t, v in per.values():
            before = v[(t >= ONSET - REFERENCE) & (t < ONSET)]
            after = v[(t >= ONSET) & (t < ONSET + WINDOW)]
            med = float(np.median(before))
            q75, q25 = np.percentile(before, [75, 25])
            best = max(best, float(np.max(np.abs(after - med))) / max(float(q75 - q25), 1e-9))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 repeats instead of 200")
    parser.add_argument("--services", type=int, default=50, help="services (× 4 watches = candidate series)")
    args = parser.parse_args()
    repeats = 20 if args.quick else 200
    g = graph(args.services, 1)
    culprit = sorted(g.nodes)[-7]
    source = Synthetic(g, culprit, 2)
    changes = [rca.Change(ONSET - 600, culprit, "deploy v2"), rca.Change(ONSET - 900, "svc03", "config")]
    start, end = ONSET - REFERENCE, ONSET + WINDOW
    fetched = {w.name: source.series(w, start, end, STEP) for w in WATCHES}

    class Fetched:
        def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]:
            return fetched[watch.name]

    params = rca.Params(reference_s=REFERENCE, window_s=WINDOW)
    ranker_s, base_s = [], []
    causes: list[rca.Cause] = []
    metrics: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for _ in range(repeats):
        t0 = time.process_time()
        metrics, specs = collect(WATCHES, Fetched(), start, end, STEP, params.threshold)
        causes = rca.rank(None, rca.Evidence(g, metrics, ONSET, tuple(changes), specs=specs), params=params)
        ranker_s.append(time.process_time() - t0)
        t0 = time.process_time()
        baseline(metrics)
        base_s.append(time.process_time() - t0)
    series = sum(len(m) for m in metrics.values())
    points = sum(len(t) for m in metrics.values() for t, _v in m.values())

    def ms(xs: list[float], q: float) -> float:
        return 1000 * float(np.quantile(xs, q))

    print(f"RCA per incident: {series} candidate series ({points:,} points), {len(causes)} candidates ranked, "
          f"{repeats} repeats, CPU time")
    print(f"  ranker   median {ms(ranker_s, 0.5):7.2f} ms   p90 {ms(ranker_s, 0.9):7.2f} ms")
    print(f"  baseline median {ms(base_s, 0.5):7.2f} ms   p90 {ms(base_s, 0.9):7.2f} ms   "
          "(numpy median + percentile + max deviation over the same arrays)")
    print(f"  ratio ranker / baseline (medians): {statistics.median(ranker_s) / statistics.median(base_s):.2f}")
    print(f"  top cause: {causes[0].component} (planted: {culprit}), confidence {causes[0].confidence:.2f}")


if __name__ == "__main__":
    main()
