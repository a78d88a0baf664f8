"""Log ingest benchmark: log lines per second into Watchkeeper, durable (committed to SQLite with
``synchronous=FULL``, and with ``--postgres-url`` to PostgreSQL), against a baseline measured in the
same run on the same database, and the peak RSS of the process.

Four rates, one process, one core (the CPU time of this process is printed beside the wall time):

1. baseline: the raw insert ceiling, DBAPI ``executemany`` (PostgreSQL: ``COPY``) of ready rows into
   ``log_lines`` and a commit per batch (no parsing, no mining, no counts);
2. ``LogIngest.submit``: the template miner per service, per-minute counts and template upserts,
   raw lines, anomaly bookkeeping, one commit per batch (what syslog and file inputs call);
3. OTLP: an ``ExportLogsServiceRequest`` in protobuf decoded, then ``submit`` (what ``POST /v1/logs``
   does after reading the body; HTTP itself not included);
4. the same request in the OTLP JSON mapping.

With ``--clients 1,4`` the OTLP requests (protobuf, then JSON) also go over HTTP to a real
``watchkeeper serve`` on 127.0.0.1 (SQLite, or the PostgreSQL of ``--postgres-url``), from N client
threads; lines per second of wall time and per CPU-second of the server process (``/proc``).

Lines are synthetic (seeded): 40 templates of web, database and auth lines with numbers, ids and
addresses as parameters, across 5 services. It prints figures and asserts nothing about time.

    .venv/bin/python benchmarks/logs_ingest.py             # 200,000 lines per rate
    .venv/bin/python benchmarks/logs_ingest.py --lines 20000   # a smoke check
    .venv/bin/python benchmarks/logs_ingest.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/logs_ingest.py --clients 1,4   # and through watchkeeper serve over HTTP
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from traces_ingest import _cpu_seconds, serving  # benchmarks/ is on sys.path when this script runs
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


def fresh(url: str) -> Watchkeeper:
    wk = Watchkeeper(Settings(database_url=url), metrics=False)
    wk.upgrade()
    return wk


def timed(run: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def otlp_bodies(batches: list[list[tuple[str, str]]]) -> list[bytes]:
    bodies = []
    for batch in batches:
        by_service: dict[str, list[PbRecord]] = {}
        for s, text in batch:
            by_service.setdefault(s, []).append(PbRecord(time_unix_nano=time.time_ns(), severity_number=9,
                                                         body=AnyValue(string_value=text)))
        bodies.append(ExportLogsServiceRequest(resource_logs=[ResourceLogs(
            resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=s))]),
            scope_logs=[ScopeLogs(log_records=recs)]) for s, recs in by_service.items()]).SerializeToString())
    return bodies


def json_bodies(bodies: list[bytes]) -> list[bytes]:
    """The same requests in the OTLP JSON mapping (what an exporter with ``encoding: json`` sends)."""
    return [json_format.MessageToJson(ExportLogsServiceRequest.FromString(b), indent=None,
                                    use_integers_for_enums=True).encode() for b in bodies]


def run_all(url: str, batches: list[list[tuple[str, str]]], bodies: list[bytes],
            jsons: list[bytes]) -> list[tuple[str, float, float]]:
    """(path, wall seconds, CPU seconds) of the four paths, each on an empty database at ``url``
    (``url`` is called with the path's name)."""
    wk = fresh(url.format(name="baseline"))
    sqlite = wk.db.is_sqlite
    columns = "received_at, at, service, template_id, severity, input, line, size"

    def baseline() -> None:
        for batch in batches:
            now = datetime.now(UTC)
            stamp = sqlite_stamp(now) if sqlite else now
            rows = [(stamp, stamp, s, "-", "info", "bench", text, len(text)) for s, text in batch]
            with wk.db.write() as conn:
                if sqlite:
                    conn.exec_driver_sql(f"INSERT INTO log_lines ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                else:
                    driver = conn.connection.driver_connection
                    assert driver is not None
                    with driver.cursor() as cursor, cursor.copy(f"COPY log_lines ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)

    out = [("baseline: raw insert + commit", *timed(baseline))]
    wk.close()

    wk = fresh(url.format(name="submit"))
    logs = LogIngest(wk, LogsConfig())

    def submit() -> None:
        for batch in batches:
            at = datetime.now(UTC)
            logs.submit([LogRecord(s, at, text, level_of(text), "bench") for s, text in batch])

    out.append(("LogIngest.submit (mine, count, store)", *timed(submit)))
    stored, templates = logs.store.size()[0], len(logs.store.templates(limit=10_000))
    wk.close()

    for name, label, media, sent in (("otlp", "protobuf", "application/x-protobuf", bodies),
                                     ("json", "JSON", "application/json", jsons)):
        wk = fresh(url.format(name=name))
        logs = LogIngest(wk, LogsConfig())

        def otlp(logs: LogIngest = logs, media: str = media, sent: list[bytes] = sent) -> None:
            for body in sent:
                logs.otlp(body, media)

        out.append((f"OTLP {label} decode + submit", *timed(otlp)))
        wk.close()
    print(f"(submit: {stored:,} lines stored, {templates} templates)")
    return out


def http_rates(folder: Path, url: str, requests: dict[str, list[bytes]], lines_sent: int,
               clients: list[int]) -> list[tuple[str, int, float, float]]:
    """(encoding, clients, lines per wall second, lines per server CPU-second) of the requests sent
    to one ``watchkeeper serve`` on 127.0.0.1 (its own database at ``url``), each 200 awaited."""
    otlp_json = "application/json"
    out = []
    with serving(folder, url) as (server, base, token):
        for media, bodies in requests.items():
            headers = {"Authorization": f"Bearer {token}", "Content-Type": media}

            def send(share: list[bytes], headers: dict[str, str] = headers) -> None:
                with httpx.Client(trust_env=False, timeout=120) as client:
                    for body in share:
                        client.post(f"{base}/v1/logs", content=body, headers=headers).raise_for_status()

            send(bodies[:1])  # warm: the server's first request of a kind (imports, miners) is not timed
            for n in clients:
                cpu, wall = _cpu_seconds(server.pid), time.perf_counter()
                with ThreadPoolExecutor(n) as pool:
                    list(pool.map(send, [bodies[i::n] for i in range(n)]))
                wall, cpu = time.perf_counter() - wall, _cpu_seconds(server.pid) - cpu
                encoding = "JSON" if media == otlp_json else "protobuf"
                out.append((encoding, n, lines_sent / wall, lines_sent / max(cpu, 1e-9)))
    return out


def _pg_schemas(url: str, names: list[str]) -> tuple[str, str]:
    """A fresh schema per path on the PostgreSQL at ``url``: (URL template with ``{name}``, prefix)."""
    prefix = f"wk_logs_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE SCHEMA "{prefix}_{name}"')
    sep = "&" if "?" in url else "?"
    return url + sep + f"options=-csearch_path%3D{prefix}_{{name}}", prefix


def _drop_pg(url: str, prefix: str, names: list[str]) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{prefix}_{name}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000, help="lines per commit (one OTLP request, one UDP drain)")
    parser.add_argument("--clients", default="", help="also over HTTP into watchkeeper serve from these numbers "
                        "of client threads, e.g. 1,4 (each count sends every request once)")
    parser.add_argument("--postgres-url", help="also on this PostgreSQL (a schema per path, dropped at the end), "
                        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    data = lines(args.lines)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
    bodies = otlp_bodies(batches)
    jsons = json_bodies(bodies)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    print(f"{args.lines:,} lines in batches of {args.batch:,}; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (shared machine: compare ratios, not rates)")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.lines
    names = ["baseline", "submit", "otlp", "json"] + (["http0"] if clients else [])
    with tempfile.TemporaryDirectory(prefix="wk-logs-bench-") as tmp:
        targets = [("SQLite (WAL, synchronous=FULL)", f"sqlite:///{Path(tmp)}/{{name}}.db")]
        pg = _pg_schemas(args.postgres_url, names) if args.postgres_url else None
        if pg:
            targets.append(("PostgreSQL (COPY)", pg[0]))
        try:
            for title, url in targets:
                print(f"-- {title}")
                results = run_all(url, batches, bodies, jsons)
                base_wall, base_cpu = results[0][1], results[0][2]
                print(f"{'path':<44}{'lines/s':>12}{'per CPU-s':>12}{'vs baseline':>13}{'(CPU)':>8}")
                for name, wall, cpu in results:
                    print(f"{name:<44}{n / wall:>12,.0f}{n / cpu:>12,.0f}{base_wall / wall:>12.2f}x"
                          f"{base_cpu / cpu:>7.2f}x")
                if clients:
                    print(f"{'over HTTP into watchkeeper serve':<44}{'lines/s':>12}{'per server CPU-s':>18}")
                    folder = Path(tmp) / f"serve-{title.split()[0]}"
                    folder.mkdir()
                    got = http_rates(folder, url.format(name="http0"), {"application/x-protobuf": bodies,
                                                                        "application/json": jsons}, n, clients)
                    for encoding, count, wall_rate, cpu_rate in got:
                        print(f"{f'OTLP {encoding}, {count} client(s)':<44}{wall_rate:>12,.0f}{cpu_rate:>18,.0f}")
        finally:
            if pg:
                _drop_pg(args.postgres_url, pg[1], names)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (it is the server here: miners, pipeline, storage) {rss:.0f} MiB; "
          f"{rss_before:.0f} MiB before ingesting (the generated lines and OTLP bodies held in memory)")
    print(f"load {os.getloadavg()[0]:.1f} at the end; target: 50,000 lines/s per core")


if __name__ == "__main__":
    main()
