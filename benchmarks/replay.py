"""Replay throughput: ``watchkeeper replay`` in process, on one core, over a large synthetic JSONL.

Writes a JSONL of Alertmanager webhook bodies (with ``received_at``) to a temporary file, then
times, on the same file and in the same run:

1. ``orjson.loads`` of every line (the decode-only baseline);
2. :func:`watchkeeper.replay.replay` with the default config (labels ``group_by: [service]``,
   mentions, host);
3. :func:`watchkeeper.replay.replay` with labels + topology (hops 2, the synthetic graph) + text
   (scope any), as in ``correlation_lab/configs/labels-topology-text.yaml``;
4. every strategy: the default ones + topology + text.

The storm: ``--services`` services in a random dependency DAG; overlapping faults, each on a root
service and its dependents (up to 2 hops), each affected service firing 1–2 alert names on 1–6
instances; every (alertname, service) group is notified firing, repeated, then resolved, as
Alertmanager does with ``group_by: [alertname, service]``. It prints figures and asserts nothing.

    .venv/bin/python benchmarks/replay.py                  # 200,000 alerts
    .venv/bin/python benchmarks/replay.py --alerts 20000   # smoke check
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingest import _fixtures, _stamp, one_core  # benchmarks/ is on sys.path when this script runs
from watchkeeper.correlate.config import CorrelationConfig
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.replay import replay
from watchkeeper.sources import registry

ROOT = Path(__file__).resolve().parents[1]
ALERT_NAMES = ["ServiceDown", "HighErrorRate", "HighLatency", "DependencyErrors", "SaturationHigh"]
SEVERITY = {"ServiceDown": "critical", "HighErrorRate": "warning", "HighLatency": "warning",
            "DependencyErrors": "warning", "SaturationHigh": "info"}
TARGET = 20_000  # alerts/s, the target


WORDS = ["amber", "azure", "brisk", "calm", "dusk", "ember", "fern", "frost", "gale", "harbor", "iris", "jade",
         "kelp", "lunar", "maple", "noble", "ochre", "pine", "quartz", "raven", "sable", "tidal", "umber", "velvet",
         "willow"]
KINDS = ["api", "auth", "billing", "cache", "catalog", "db", "gateway", "index", "ledger", "mail", "media", "queue",
         "search", "store", "web"]


def service_name(i: int) -> str:
    """Names without digits, so the text strategy's masking keeps them apart."""
    word, kind = divmod(i, len(KINDS))
    return f"{WORDS[word % len(WORDS)]}-{KINDS[kind]}" + ("" if word < len(WORDS) else f"-{'x' * (word // len(WORDS))}")


def make_graph(services: int, rng: random.Random) -> dict[str, list[str]]:
    names = [service_name(i) for i in range(services)]
    graph: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        if i >= 5:
            graph[name] = sorted({names[rng.randrange(i)] for _ in range(rng.randint(1, 3))})
    return graph


def make_storm(path: Path, alerts: int, graph: dict[str, list[str]], services: int, seed: int) -> tuple[int, int]:
    """Write the storm to ``path``; return (lines, alert objects)."""
    rng = random.Random(seed)
    am_alert, am_webhook = _fixtures()
    callers: dict[str, list[str]] = {}
    for svc, deps in graph.items():
        for dep in deps:
            callers.setdefault(dep, []).append(svc)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lines: list[tuple[datetime, bytes]] = []
    total, t = 0, start
    while total < alerts:
        t += timedelta(seconds=rng.uniform(5, 30))  # a new fault every ~17 s; each lasts 1–3 min
        root = service_name(rng.randrange(services))
        affected, frontier = [root], [root]
        for _ in range(2):
            frontier = [c for s in frontier for c in callers.get(s, [])][:3]
            affected += [s for s in frontier if s not in affected]
        duration = rng.uniform(60, 180)
        for n, service in enumerate(affected[:6]):
            for name in rng.sample(ALERT_NAMES, rng.randint(1, 2)):
                onset = t + timedelta(seconds=rng.uniform(2, 20))
                ends = onset + timedelta(seconds=duration)
                instances = [f"10.{n}.{len(lines) % 250}.{i}:9100" for i in range(rng.randint(1, 6))]
                summary = f"{name}: {service} on {{}} at {rng.randint(20, 99)}% of its threshold"
                firing = [am_alert(name, service, instance=i, starts=_stamp(onset), severity=SEVERITY[name],
                                   summary=summary.format(i)) for i in instances]
                resolved = [{**a, "status": "resolved", "endsAt": _stamp(ends)} for a in firing]
                for at, body in ((onset + timedelta(seconds=2), firing), (onset + timedelta(seconds=32), firing),
                                 (ends + timedelta(seconds=5), resolved)):
                    hook = am_webhook(*body)
                    hook["groupKey"] = f'{{}}:{{alertname="{name}", service="{service}"}}'
                    hook["received_at"] = _stamp(at)
                    lines.append((at, orjson.dumps(hook)))
                    total += len(body)
    lines.sort(key=lambda x: x[0])
    with path.open("wb") as fh:
        for _, line in lines:
            fh.write(line + b"\n")
    return len(lines), total


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall time and median CPU time (this process) of ``repeat`` runs, and the last result.
    On a shared machine the wall time counts other processes' turns on the pinned core; the CPU time
    does not (it still feels their caches)."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=200_000, help="alert objects in the synthetic file")
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    graph = make_graph(args.services, rng)
    sources = registry()
    configs: dict[str, PipelineConfig] = {
        "default (labels, mentions, host)": PipelineConfig(),
        "labels + topology + text": CorrelationConfig.model_validate({"strategies": [
            {"type": "labels", "group_by": ["service"]},
            {"type": "topology", "hops": 2, "graph": graph},
            {"type": "text", "scope": "any"},
        ]}).pipeline(),
        "every strategy (default + topology + text)": CorrelationConfig.model_validate({"strategies": [
            {"type": "labels", "group_by": ["service"]}, {"type": "mentions"}, {"type": "host"},
            {"type": "topology", "hops": 2, "graph": graph}, {"type": "text", "scope": "any"},
        ]}).pipeline(),
    }
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        path = Path(tmp) / "storm.jsonl"
        t0 = time.perf_counter()
        lines, alerts = make_storm(path, args.alerts, graph, args.services, args.seed)
        size = path.stat().st_size
        print(f"synthetic storm: {alerts:,} alerts in {lines:,} webhooks, {size / 1e6:.1f} MB, "
              f"{args.services} services (written in {time.perf_counter() - t0:.1f} s)")

        def decode() -> int:
            with path.open("rb") as fh:
                return sum(1 for line in fh if orjson.loads(line))

        def replayer(config: PipelineConfig) -> Callable[[], Any]:
            def run() -> Any:
                with path.open("rb") as fh:
                    return replay(fh, sources, config)
            return run

        rows: list[tuple[str, float, float, str]] = []
        with one_core() as pinned:
            print(f"measuring on one core ({pinned}), median of {args.repeat} runs each")
            seconds, cpu, _ = timed(decode, args.repeat)
            base, base_cpu = alerts / seconds, alerts / cpu
            rows.append(("orjson.loads only (baseline)", base, base_cpu, ""))
            for name, config in configs.items():
                seconds, cpu, result = timed(replayer(config), args.repeat)
                if result.bad or result.events != alerts:
                    raise SystemExit(f"{name}: {len(result.bad)} bad lines, {result.events} events of {alerts}")
                rows.append((f"replay, {name}", alerts / seconds, alerts / cpu,
                             f"{len(result.state.alerts):,} fingerprints -> {len(result.incidents):,} incidents"))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'pass':<{width}}  {'alerts/s':>10}  {'vs decode':>9}  {'target':>6}  {'CPU alerts/s':>12}  "
          f"{'vs decode':>9}  result")
    for name, rate, rate_cpu, note in rows:
        meets = "" if rate == base else ("yes" if rate >= TARGET else "no")
        print(f"{name:<{width}}  {rate:>10,.0f}  {rate / base:>8.1%}  {meets:>6}  {rate_cpu:>12,.0f}  "
              f"{rate_cpu / base_cpu:>8.1%}  {note}")
    print(f"\ntarget: >= {TARGET:,} alerts/s on one core (replay, dedup + correlate + lifecycle, in memory); "
          "alerts/s is wall time, CPU alerts/s this process's CPU time")


if __name__ == "__main__":
    main()
