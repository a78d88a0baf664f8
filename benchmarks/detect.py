"""Streaming detection throughput: points per second per core, against a numpy baseline.

Each detector scores then learns every point of a synthetic metric (a daily cycle at one point
per minute, noise, a few spikes) through the anomaly filter, one point at a time, as it would
run online. Two baselines over the same points, in the same run: a trivial streaming loop (an
exponentially weighted mean and a comparison per point: the cost of the Python loop itself) and
a plain-numpy rolling z-score (vectorised, the whole series at once: a ceiling, not a streaming
detector). Times are this process's CPU time (points per second *per core*, whatever else the
machine runs); each figure is the best of three runs. Prints figures, asserts nothing.

    .venv/bin/python benchmarks/detect.py            # 200,000 points
    .venv/bin/python benchmarks/detect.py --quick    # 20,000 points
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.context import LikelihoodContext
from watchkeeper.detect.default import DEFAULT
from watchkeeper.detect.filter import AnomalyFilter
from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.detect.spatial import RangeLikelihood

#: Each figure is the best of this many runs (the machine may be shared).
REPEATS = 3
#: The issue's speed target for the default detector, points per second per core.
TARGET = 200_000


def synthetic(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float) * 60.0
    x = 100 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 2, n)
    x[rng.choice(n, n // 2000, replace=False)] += 60
    return t, x


def rolling_z(x: np.ndarray, window: int = 64) -> np.ndarray:
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    mean = (c1[window:-1] - c1[: -window - 1]) / window
    var = (c2[window:-1] - c2[: -window - 1]) / window - mean * mean
    z = np.zeros_like(x)
    z[window:] = np.abs(x[window:] - mean) / np.sqrt(np.maximum(var, 1e-12))
    return z


def trivial_loop(times: list[float], values: list[float]) -> int:
    """The cheapest streaming detector: an exponentially weighted mean and one comparison."""
    mean, hits = 0.0, 0
    for _t, x in zip(times, values, strict=True):
        if abs(x - mean) > 50.0:
            hits += 1
        mean += 0.01 * (x - mean)
    return hits


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} points/s  ({seconds * 1e6 / n:.2f} µs/point)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    t, x = synthetic(n)
    tl, xl = t.tolist(), x.tolist()

    base = math.inf
    for _ in range(REPEATS):
        start = time.process_time()
        rolling_z(x)
        base = min(base, time.process_time() - start)
    print(f"baseline numpy rolling z-score (vectorised, window 64): {rate(n, base)}")
    loop = math.inf
    for _ in range(REPEATS):
        start = time.process_time()
        trivial_loop(tl, xl)
        loop = min(loop, time.process_time() - start)
    print(f"baseline trivial streaming loop (EW mean + compare):    {rate(n, loop)}")

    for name, det, max_skip in ((f"default ({DEFAULT.version})", DEFAULT.build(), DEFAULT.max_skip),
                                ("RobustSeasonal", RobustSeasonal(), AnomalyFilter.max_skip),
                                ("Cusum", Cusum(), AnomalyFilter.max_skip),
                                ("likelihood+context", LikelihoodContext(), 0),
                                ("likelihood+range", RangeLikelihood(), 0),
                                ("+range relearn", RangeLikelihood(relearn=True), 0)):
        took = math.inf
        for _ in range(REPEATS):
            # The default (AnomalyLikelihood) learns every point: max_skip=0, as shipped.
            step = AnomalyFilter(det.clone(), series="bench", max_skip=max_skip).step
            start = time.process_time()
            for ti, xi in zip(tl, xl, strict=True):
                step(xi, ti)
            took = min(took, time.process_time() - start)
        print(f"{name:<20} streaming, score+learn per point:  {rate(n, took)}"
              f"  = {loop / took * 100:.2f}% of the trivial loop's rate")
        if name.startswith("default"):
            print(f"{'':<20} target {TARGET:,} points/s per core: {'met' if n / took >= TARGET else 'NOT met'}"
                  f" ({n / took / TARGET:.2f} × the target)")

    # The default where its fast paths help least: the same points without a daily season (a
    # random walk: the rolling median, no seasonal medians found ahead), and the two calls a
    # watch makes (score_one, then learn_one after its gate) instead of the filter's one pass.
    walk = (100.0 + np.cumsum(np.random.default_rng(8).normal(0.0, 1.0, n))).tolist()
    for name, values, two_calls in (("default, no season", walk, False),
                                    ("default, two calls", xl, True)):
        took = math.inf
        for _ in range(REPEATS):
            det = DEFAULT.build()
            score, learn = det.score_one, det.learn_one
            step = AnomalyFilter(det, series="bench", max_skip=DEFAULT.max_skip).step
            start = time.process_time()
            if two_calls:
                for ti, xi in zip(tl, values, strict=True):
                    score(xi, ti)
                    learn(xi, ti)
            else:
                for ti, xi in zip(tl, values, strict=True):
                    step(xi, ti)
            took = min(took, time.process_time() - start)
        print(f"{name:<20} score+learn per point:             {rate(n, took)}"
              f"  = {loop / took * 100:.2f}% of the trivial loop's rate ({n / took / TARGET:.2f} × the target)")

    m = n // 10
    rows = np.random.default_rng(1).normal(size=(m, 19))
    took = math.inf
    for _ in range(REPEATS):
        mz = MaxZ()
        start = time.process_time()
        for i in range(m):
            mz.score_one(rows[i], float(i))
            mz.learn_one(rows[i], float(i))
        took = min(took, time.process_time() - start)
    print(f"MaxZ (19 metrics) streaming, score+learn per vector:  {rate(m, took)} (vectors)")


if __name__ == "__main__":
    main()
