"""What tracing costs a lab service: a two-service lab (``a`` calls ``b``) run three ways in the same
run — no export (the baseline: the services still create spans, for their log ids), OTLP export to a
live receiver, and OTLP export to a port where nothing listens — each measured by the wall time of
``--requests`` sequential ``GET /`` on ``a`` (median and p90) and the CPU seconds both services
spent per request (from ``/proc/<pid>/stat``). Figures are ratios to the baseline.

    nice .venv/bin/python benchmarks/lab_otel.py            # about a minute

No load generator (``--rps`` is the smallest the lab takes and ``b`` sees it too, so the CPU per
request includes that trickle in all three runs alike); the machine is shared, so compare the
ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from watchkeeper.lab import Lab
from watchkeeper.lab.net import free_ports, request
from watchkeeper.lab.spans import SpanSink

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def run(endpoint: str | None, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp) / "lab")
        lab.up(rps=0.2, monitoring=False, otlp_endpoint=endpoint, services=("a", "b"), edges=[("a", "b")])
        try:
            url = lab.endpoints()["a"] + "/"
            pids = [int(e["pid"]) for e in lab.state()["services"].values()]
            for _ in range(20):  # warm up
                request("GET", url, timeout=10.0)
            cpu0 = sum(cpu_seconds(p) for p in pids)
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                status, _ = request("GET", url, timeout=10.0)
                times.append(time.perf_counter() - t)
                assert status == 200, status
            time.sleep(1.5)  # the last export batch
            cpu = sum(cpu_seconds(p) for p in pids) - cpu0
        finally:
            lab.down()
    times.sort()
    return {"median_ms": statistics.median(times) * 1e3, "p90_ms": times[int(0.9 * len(times))] * 1e3,
            "cpu_ms_per_request": cpu / requests * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    sink = SpanSink().start()
    try:
        rows = {"no export (baseline)": run(None, args.requests),
                "export to a live receiver": run(sink.url, args.requests),
                "export to a dead port": run(f"http://127.0.0.1:{free_ports(1)[0]}", args.requests)}
    finally:
        sink.stop()
    base = rows["no export (baseline)"]
    print(f"{args.requests} sequential GET / on a → b; spans received by the live receiver: {sink.received}")
    print(f"{'':28} {'median ms':>10} {'p90 ms':>8} {'CPU ms/req':>11}   ratios to the baseline")
    for name, r in rows.items():
        print(f"{name:28} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} {r['cpu_ms_per_request']:11.2f}   "
              f"median ×{r['median_ms'] / base['median_ms']:.2f}, p90 ×{r['p90_ms'] / base['p90_ms']:.2f}, "
              f"CPU ×{r['cpu_ms_per_request'] / base['cpu_ms_per_request']:.2f}")


if __name__ == "__main__":
    main()
