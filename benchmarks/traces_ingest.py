"""Trace ingest benchmark: spans per second into Watchkeeper, durable, against baselines of the same run.

One run measures, on this machine:

1. baseline: protobuf decoding alone (``otlp.decode_protobuf`` of 512-span exports), one core;
2. in process, one thread: ``Traces.export`` — decode, commit the spans (SQLite WAL with
   ``synchronous=FULL``; PostgreSQL when reachable), RED aggregation, RED rows and trace anomalies;
3. over HTTP: ``watchkeeper serve`` as a subprocess, ``--clients`` concurrent exporters posting
   protobuf exports of ``--batch`` spans (gzip, as the OpenTelemetry exporter sends them); the
   server's CPU seconds are read from ``/proc`` so that spans per CPU-second of the server (the
   "per core" figure) is reported beside the wall-clock rate.

It prints figures and ratios and asserts nothing about time. Everything runs on 127.0.0.1.

    .venv/bin/python benchmarks/traces_ingest.py --quick   # about 30 s
    .venv/bin/python benchmarks/traces_ingest.py           # about 1-2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import yaml

from watchkeeper.service import Watchkeeper
from watchkeeper.service.traces import Traces
from watchkeeper.settings import Settings
from watchkeeper.traces import otlp
from watchkeeper.traces.spans import Span

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SERVICES = [f"svc-{i:02d}" for i in range(12)]


def make_exports(n_exports: int, batch: int, start: float, seed: int = 1) -> list[bytes]:
    """``n_exports`` protobuf exports of ``batch`` spans each: traces of 4 spans down a call chain of
    services (server span, client span, callee's server span, a child), about 1 ms apart."""
    rng = random.Random(seed)
    out, t, n = [], start, 0
    for _ in range(n_exports):
        spans: list[Span] = []
        while len(spans) < batch:
            n += 1
            trace = uuid.UUID(int=rng.getrandbits(128) | 1).hex
            a, b = rng.sample(SERVICES, 2)
            ids = [f"{rng.getrandbits(64) | 1:016x}" for _ in range(4)]
            d = 0.005 + rng.random() * 0.02
            spans += [Span(trace, ids[0], None, a, "GET /api", t, d + 0.004, rng.random() < 0.01, "server"),
                      Span(trace, ids[1], ids[0], a, f"call {b}", t + 0.001, d + 0.001, False, "client"),
                      Span(trace, ids[2], ids[1], b, "POST /work", t + 0.0015, d, False, "server"),
                      Span(trace, ids[3], ids[2], b, "db.query", t + 0.002, d / 2, False, "client")]
            t += 0.001
        out.append(otlp.encode(spans[:batch]))
    return out


def decode_rate(exports: list[bytes]) -> float:
    started = time.process_time()
    spans = sum(len(otlp.decode_protobuf(body).spans) for body in exports)
    return spans / (time.process_time() - started)


def in_process_rate(url: str, exports: list[bytes]) -> tuple[float, float, int]:
    """(spans per wall second, spans per CPU second, RED rows written) of ``Traces.export`` in one thread."""
    wk = Watchkeeper(Settings(database_url=url), metrics=False)
    try:
        wk.upgrade()
        traces = Traces(wk)
        wall, cpu = time.perf_counter(), time.process_time()
        spans = sum(len(traces.export(body, otlp.PROTOBUF, None).spans) for body in exports)
        traces.flush(final=True)
        return spans / (time.perf_counter() - wall), spans / (time.process_time() - cpu), traces.red_rows
    finally:
        wk.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def serving(folder: Path, url: str) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A ``watchkeeper serve`` on 127.0.0.1 with its database at ``url`` (config and log in ``folder``),
    answering /healthz: ``(process, base URL, ingest token)``; terminated on leaving."""
    script = Path(sys.executable).parent / "watchkeeper"
    port = _free_port()
    config = folder / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({"database_url": url, "port": port, "log_level": "warning"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    token = subprocess.run([str(script), "--config", str(config), "token", "create", "--role", "ingest"],
                           capture_output=True, check=True, env=env, timeout=120).stdout.decode().split()[-1]
    with (folder / "serve.log").open("wb") as log:
        server = subprocess.Popen([str(script), "--config", str(config), "serve"], cwd=folder, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            with httpx.Client(trust_env=False, timeout=30) as client:
                while True:
                    try:
                        if client.get(f"{base}/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"serve did not start; see {folder / 'serve.log'}")
                    time.sleep(0.2)
            yield server, base, token
        finally:
            server.terminate()
            server.wait(30)


def http_rate(folder: Path, url: str, exports: list[bytes], clients: int) -> tuple[float, float, float, float]:
    """(spans per wall second, spans per server CPU second, server CPU seconds per wall second — the
    cores it used —, the server's peak RSS in MiB) into one ``watchkeeper serve`` process."""
    with serving(folder, url) as (server, base, token):
        bodies = [gzip.compress(b, compresslevel=1) for b in exports]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": otlp.PROTOBUF, "Content-Encoding": "gzip"}

        def send(share: list[bytes]) -> int:
            with httpx.Client(trust_env=False, timeout=60) as client:
                for body in share:
                    r = client.post(f"{base}/v1/traces", content=body, headers=headers)
                    r.raise_for_status()
            return len(share)

        cpu, wall = _cpu_seconds(server.pid), time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            sent = sum(pool.map(send, [bodies[i::clients] for i in range(clients)]))
        wall, cpu = time.perf_counter() - wall, _cpu_seconds(server.pid) - cpu
        spans = sent * len(otlp.decode_protobuf(exports[0]).spans)
        return spans / wall, spans / max(cpu, 1e-9), cpu / wall, _peak_rss_mib(server.pid)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_schema() -> tuple[str, str] | None:
    try:
        with psycopg.connect(DEFAULT_PG, autocommit=True, connect_timeout=3) as conn:
            name = f"wk_bench_{uuid.uuid4().hex[:8]}"
            conn.execute(f'CREATE SCHEMA "{name}"')
    except psycopg.Error:
        return None
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{name}"


def _drop(name: str) -> None:
    with psycopg.connect(DEFAULT_PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer exports")
    parser.add_argument("--batch", type=int, default=512, help="spans per export (the SDK's default batch)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    n = 40 if args.quick else 160
    exports = make_exports(n, args.batch, datetime.now(UTC).timestamp() - 600)
    total = n * args.batch
    print(f"{n} exports of {args.batch} spans ({total:,} spans), {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f} at start (other processes share this machine: figures vary run to run)")
    base = decode_rate(exports)
    print(f"baseline  protobuf decode alone            {base:>10,.0f} spans/CPU-s")
    pg = None if args.no_postgres else _pg_schema()
    with tempfile.TemporaryDirectory(prefix="wk-traces-bench-") as tmp:
        folder = Path(tmp)
        targets = [("sqlite", f"sqlite:///{folder / 'inproc.db'}")] + ([("postgres", pg[1])] if pg else [])
        try:
            for name, url in targets:
                wall, cpu, red = in_process_rate(url, exports)
                print(f"in process {name:<9} export, durable     {wall:>10,.0f} spans/s  {cpu:>10,.0f} spans/CPU-s"
                      f"  ({cpu / base:.2f} x decode; {red} RED rows)")
            for name, url in [("sqlite", f"sqlite:///{folder / 'serve.db'}")] + ([("postgres", pg[1])] if pg else []):
                wall, cpu, cores, rss = http_rate(folder, url, exports, args.clients)
                print(f"HTTP serve {name:<9}{args.clients} clients, gzip {wall:>10,.0f} spans/s  {cpu:>10,.0f} "
                      f"spans per server CPU-s  ({cpu / base:.2f} x decode; one server process using "
                      f"{cores:.2f} cores; peak RSS {rss:.0f} MiB)")
        finally:
            if pg:
                _drop(pg[0])
    print(f"load {os.getloadavg()[0]:.2f} at the end; target: >= 20,000 spans/s per core into the server, durable")


if __name__ == "__main__":
    main()
