"""CPU of ``serve``'s watch loop: 1,000 series at a 15 s interval, as a share of one core.

Each evaluation of a watch is: decode Prometheus' JSON answer to an instant query, turn it into
samples (``PrometheusClient.parse_vector``), score and learn every series (``WatchEngine.evaluate``:
one detector per series, direction and floor, anomaly windows), and every ``--save-every``
evaluations serialise the changed detector state to JSON (what the store writes; the database
round trip is not counted). Here the answers are synthetic (a daily cycle plus noise per series,
rare spikes), fed to the engine in process: no HTTP, no database.

Baseline, same run, same bytes: ``json.loads`` of the very same responses — the least any
watcher must do with Prometheus' answer. Times are this process's CPU time, the best of three
runs; the share of a core is CPU seconds per evaluation divided by the interval. Detectors are
warmed up first (not timed), so the figures are the steady state. Prints figures, asserts nothing.

    .venv/bin/python benchmarks/watch.py            # 1,000 series, 200 timed evaluations per detector
    .venv/bin/python benchmarks/watch.py --quick    # 40 timed evaluations
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from watchkeeper.watch.config import Watch
from watchkeeper.watch.engine import WatchEngine
from watchkeeper.watch.prometheus import PrometheusClient

REPEATS = 3
WATCHES: dict[str, dict[str, Any]] = {
    "default (likelihood)": {"detector": "default", "options": {}},
    "robust, lab shape": {"detector": "robust", "options": {"window": 32, "season": "none", "warmup": 10},
                          "floor": 0.05},
}


def responses(series: int, evaluations: int, interval: float, seed: int = 3) -> list[bytes]:
    """Prometheus /api/v1/query bodies, one per evaluation, ``series`` series each."""
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000.0
    base = rng.uniform(0.05, 2.0, series)
    out = []
    for k in range(evaluations):
        t = t0 + k * interval
        values = base * (1.0 + 0.3 * math.sin(2 * math.pi * t / 86_400)) + rng.normal(0, 0.01, series)
        spikes = rng.random(series) < 0.001
        values[spikes] += 5.0
        result = [{"metric": {"__name__": "http_latency_p90", "service": f"svc-{i % 200}",
                              "instance": f"10.0.{i // 250}.{i % 250}:8080", "job": "api"},
                   "value": [t, repr(float(v))]} for i, v in enumerate(values)]
        out.append(json.dumps({"status": "success",
                               "data": {"resultType": "vector", "result": result}}).encode())
    return out


def best(fn: Any) -> float:
    seconds = math.inf
    for _ in range(REPEATS):
        start = time.process_time()
        fn()
        seconds = min(seconds, time.process_time() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--warmup", type=int, default=150, help="evaluations before timing")
    parser.add_argument("--evaluations", type=int, default=200, help="timed evaluations")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.evaluations, args.warmup = 40, 60
    n, interval = args.series, args.interval
    print(f"generating {args.warmup + args.evaluations} Prometheus answers of {n:,} series ...")
    bodies = responses(n, args.warmup + args.evaluations, interval)
    timed = bodies[args.warmup:]
    size = sum(len(b) for b in timed) / len(timed)
    print(f"{n:,} series, interval {interval:g} s, {len(timed)} timed evaluations, "
          f"{size / 1024:.0f} KiB per answer; CPU time, best of {REPEATS}\n")

    def decode() -> None:
        for body in timed:
            json.loads(body)

    base = best(decode) / len(timed)
    rows = [("baseline: json.loads of the answer", base, None)]

    def parse() -> None:
        for body in timed:
            PrometheusClient.parse_vector(json.loads(body))

    rows.append(("decode + parse_vector", best(parse) / len(timed), None))
    for label, spec in WATCHES.items():
        watch = Watch.model_validate({"name": "latency", "query": "q", "direction": "up", "interval": interval,
                                      **spec})
        fired = [0]

        def run(engine: WatchEngine, chunk: list[bytes], save: bool, fired: list[int] = fired) -> None:
            for k, body in enumerate(chunk, 1):
                samples = PrometheusClient.parse_vector(json.loads(body))
                result = engine.evaluate([(s.labels, s.at, s.value) for s in samples])
                fired[0] += sum(1 for e in result.events if e.status.value == "firing")
                if save and k % args.save_every == 0:
                    states, _ = engine.dump()
                    json.dumps(states)

        seconds = math.inf
        for _ in range(REPEATS):
            engine = WatchEngine(watch)
            run(engine, bodies[:args.warmup], save=False)
            engine.dump()
            fired[0] = 0
            start = time.process_time()
            run(engine, timed, save=True)
            seconds = min(seconds, time.process_time() - start)
        rows.append((f"full evaluation, {label}", seconds / len(timed), fired[0]))

    print(f"{'per evaluation':<46} {'CPU ms':>9} {'share of a core':>16} {'x baseline':>11} {'firing':>7}")
    for name, per_eval, firing in rows:
        share = per_eval / interval
        print(f"{name:<46} {per_eval * 1e3:>9.2f} {share:>15.3%} {per_eval / base:>11.1f} "
              f"{'' if firing is None else firing:>7}")
    print(f"\nper series and evaluation: {rows[-2][1] / n * 1e6:.1f} µs (default), {rows[-1][1] / n * 1e6:.1f} µs "
          f"(robust); target: the whole loop ≤ 5 % of one core")


if __name__ == "__main__":
    main()
