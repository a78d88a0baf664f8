"""Log ingest benchmark: log lines per second into Watchkeeper, durable (committed to SQLite with
``synchronous=FULL``), against a baseline measured in the same run.

Three rates, one process, one core (the CPU time of this process is printed beside the wall time):

1. baseline: the raw insert ceiling, DBAPI ``executemany`` of ready rows into ``log_lines`` and a
   commit per batch (no parsing, no mining, no counts);
2. ``LogIngest.submit``: the template miner per service, per-minute counts and template upserts,
   raw lines, anomaly bookkeeping, one commit per batch (what syslog and file inputs call);
3. OTLP: an ``ExportLogsServiceRequest`` in protobuf decoded, then ``submit`` (what ``POST /v1/logs``
   does after reading the body; HTTP itself not included).

Lines are synthetic (seeded): 40 templates of web, database and auth lines with numbers, ids and
addresses as parameters, across 5 services. It prints figures and asserts nothing about time.

    .venv/bin/python benchmarks/logs_ingest.py             # 200,000 lines per rate
    .venv/bin/python benchmarks/logs_ingest.py --lines 20000   # a smoke check
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from watchkeeper.logs.config import LogsConfig
from watchkeeper.logs.record import LogRecord, level_of
from watchkeeper.service import Watchkeeper
from watchkeeper.service.logs import LogIngest
from watchkeeper.settings import Settings
from watchkeeper.storage.types import sqlite_stamp

SERVICES = ("cart", "checkout", "payment", "auth", "frontend")
WORDS = ("GET", "POST", "user", "order", "session", "cache", "replica", "shard", "token", "queue")
TEMPLATES = [
    "{w} /api/v1/{w2}/{n} 200 {ms}ms", "INFO connection from {ip} port {n} accepted",
    "WARN slow query on {w2} took {ms} ms rows={n}", "ERROR {w2} {id} failed: timeout after {ms}ms",
    "user {id} logged in from {ip}", "session {id} expired after {n} seconds",
    "cache {w2} hit ratio {n}% size {ms}", "replica {n} lag {ms}ms behind primary",
] + [f"worker {{n}} processed batch {{id}} of {k} items in {{ms}}ms" for k in range(32)]


def lines(n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(TEMPLATES).format(
            w=rng.choice(WORDS), w2=rng.choice(WORDS), n=rng.randrange(10_000), ms=rng.randrange(1, 5000),
            ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}", id=f"{rng.getrandbits(48):x}")
        out.append((rng.choice(SERVICES), text))
    return out


def fresh(folder: Path, name: str) -> Watchkeeper:
    wk = Watchkeeper(Settings(database_url=f"sqlite:///{folder / name}"), metrics=False)
    wk.upgrade()
    return wk


def timed(run: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000, help="lines per commit (one OTLP request, one UDP drain)")
    args = parser.parse_args()
    data = lines(args.lines)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    print(f"{args.lines:,} lines in batches of {args.batch:,}; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (shared machine: compare ratios, not rates)")
    with tempfile.TemporaryDirectory(prefix="wk-logs-bench-") as tmp:
        folder = Path(tmp)

        wk = fresh(folder, "baseline.db")
        sql = ("INSERT INTO log_lines (received_at, at, service, template_id, severity, input, line, size) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

        def baseline() -> None:
            for batch in batches:
                stamp = sqlite_stamp(datetime.now(UTC))
                rows = [(stamp, stamp, s, "-", "info", "bench", text, len(text)) for s, text in batch]
                with wk.db.write() as conn:
                    conn.exec_driver_sql(sql, rows)

        base_wall, base_cpu = timed(baseline)
        wk.close()

        wk = fresh(folder, "submit.db")
        logs = LogIngest(wk, LogsConfig())

        def submit() -> None:
            for batch in batches:
                at = datetime.now(UTC)
                logs.submit([LogRecord(s, at, text, level_of(text), "bench") for s, text in batch])

        sub_wall, sub_cpu = timed(submit)
        templates = len(logs.store.templates(limit=10_000))
        stored = logs.store.size()[0]
        wk.close()

        wk = fresh(folder, "otlp.db")
        logs = LogIngest(wk, LogsConfig())
        bodies = []
        for batch in batches:
            by_service: dict[str, list[PbRecord]] = {}
            for s, text in batch:
                by_service.setdefault(s, []).append(PbRecord(time_unix_nano=time.time_ns(), severity_number=9,
                                                             body=AnyValue(string_value=text)))
            bodies.append(ExportLogsServiceRequest(resource_logs=[ResourceLogs(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=s))]),
                scope_logs=[ScopeLogs(log_records=recs)]) for s, recs in by_service.items()]).SerializeToString())

        def otlp() -> None:
            for body in bodies:
                logs.otlp(body, "application/x-protobuf")

        otlp_wall, otlp_cpu = timed(otlp)
        wk.close()

    n = args.lines
    print(f"{'path':<44}{'lines/s':>12}{'per CPU-s':>12}{'vs baseline':>13}")
    for name, wall, cpu in (("baseline: executemany + commit", base_wall, base_cpu),
                            ("LogIngest.submit (mine, count, store)", sub_wall, sub_cpu),
                            ("OTLP protobuf decode + submit", otlp_wall, otlp_cpu)):
        print(f"{name:<44}{n / wall:>12,.0f}{n / cpu:>12,.0f}{base_wall / wall:>12.2f}x")
    print(f"(submit: {stored:,} lines stored, {templates} templates; target: 50,000 lines/s per core)")


if __name__ == "__main__":
    main()
