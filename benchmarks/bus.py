"""Scale-out benchmark: NATS JetStream + PostgreSQL with 1, 2 and 4 ``watchkeeper worker``
processes, against the single-process embedded path measured in the same run.

1. baseline: the embedded default in one process — ``Watchkeeper.ingest`` of the same bodies on
   SQLite (what ``serve`` does per request, without HTTP), and the same on PostgreSQL;
2. worker throughput: the stream pre-filled with the same bodies (published and acknowledged),
   then N workers started; alerts/s from the first commit to the last (process start-up excluded);
3. end to end: ``serve --no-worker`` (API) + 2 workers, a bounded load generator posting 10-alert
   bodies at a fixed rate (default 1,000 alerts/s); latency from send to the alert's incident
   membership visible in the database (polled every 20 ms, so up to 20 ms of it is the poll);
4. memory: RSS of the API and of a worker idle, and their peak (VmHWM) after the load.

Every figure is printed as a ratio to the baseline of the same run; nothing is asserted. All
traffic goes to 127.0.0.1; it needs ``nats-server`` (it runs its own) and PostgreSQL.

    .venv/bin/python benchmarks/bus.py --quick      # smoke, about a minute
    .venv/bin/python benchmarks/bus.py              # about 3-4 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import text

from watchkeeper.bus import open_jetstream
from watchkeeper.bus.base import messages_of
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings

HOST = "127.0.0.1"
PG = "postgresql://postgres@127.0.0.1:5432/test"
#: The database the runs' schemas are made in (``--own-database``: a temporary one of the run's own).
DATABASE = ["test"]
BIN = Path(sys.executable).parent / "watchkeeper"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def bodies(n: int, per_body: int, tag: str) -> list[bytes]:
    """``n`` bodies of ``per_body`` distinct alerts over 200 services (a storm, every alert new)."""
    out = []
    for i in range(n):
        out.append(orjson.dumps({"events": [
            {"service": f"svc{(i * per_body + j) % 200}", "name": "HighLatency", "severity": "warning",
             "fingerprint": f"{tag}-{i}-{j}", "summary": f"alert {i}.{j}"} for j in range(per_body)]}))
    return out


@contextmanager
def schema() -> Iterator[str]:
    name, db = f"wk_bench_{uuid.uuid4().hex[:10]}", DATABASE[0]
    dsn = PG.rpartition("/")[0] + "/" + db
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def own_database() -> Iterator[None]:
    """A temporary database for the run: PostgreSQL's advisory locks are per database, so other
    installations' writers on ``test`` (other schemas, other work on this machine) do not hold
    the global write lock this run's writers wait for."""
    name = f"wk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    DATABASE[0] = name
    try:
        yield
    finally:
        DATABASE[0] = "test"
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def nats_server(workdir: Path) -> Iterator[str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    proc = subprocess.Popen([binary, "-a", HOST, "-p", str(port), "-js", "-sd", str(workdir / "js")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"nats://{HOST}:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def env_for(db_url: str, nats_url: str, partitions: int, stream: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    env.update({"WATCHKEEPER_DATABASE_URL": db_url, "WATCHKEEPER_BUS_URL": nats_url,
                "WATCHKEEPER_BUS_PARTITIONS": str(partitions), "WATCHKEEPER_BUS_STREAM": stream,
                "WATCHKEEPER_BUS_LEASE_SECONDS": "0.5", "WATCHKEEPER_LOG_LEVEL": "warning",
                "WATCHKEEPER_RETENTION_DAYS": "0", "WATCHKEEPER_BUS_MAX_MESSAGES": "5000000"})
    return env


def rss(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    now = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return now, peak


def committed(wk: Watchkeeper) -> int:
    with wk.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def baseline(url: str, data: list[bytes], per_body: int) -> float:
    wk = Watchkeeper(Settings(database_url=url))
    wk.upgrade()
    try:
        started = time.perf_counter()
        for body in data:
            wk.ingest("events", body, "application/json", "bench")
        return len(data) * per_body / (time.perf_counter() - started)
    finally:
        wk.close()


def start_workers(n: int, env: dict[str, str], workdir: Path, batch: int = 500) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (workdir / f"worker{i}.log").open("ab")
        procs.append(subprocess.Popen([str(BIN), "worker", "--batch", str(batch), "--no-loop"], env=env, cwd=workdir,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def workers_rate(n: int, data: list[bytes], per_body: int, partitions: int, workdir: Path,
                 src: str | None = None) -> float:
    """Alerts/s of ``n`` workers draining a pre-filled stream: the events committed after the first
    commit, over the time from the first commit to the last (commit times from ``bus_processed``;
    batches of 50 messages per partition, so a drain is many commits)."""
    stream = f"BENCH{uuid.uuid4().hex[:8]}".upper()
    with schema() as url, nats_server(workdir / f"nats-{stream}") as nats_url:
        env = env_for(url, nats_url, partitions, stream)
        if src is not None:  # the workers run another version of the code (--compare-src)
            env["PYTHONPATH"] = src
        settings = Settings(database_url=url, bus_url=nats_url, bus_partitions=partitions, bus_stream=stream,
                            bus_max_messages=5_000_000)
        wk = Watchkeeper(settings, metrics=False)
        wk.upgrade()
        bus = open_jetstream(settings, check=False)
        bus.init(5_000_000)
        try:
            total = 0
            for body in data:
                events = wk.accept("events", body, "application/json")
                for p, payload, mid in messages_of("events", "bench", events, uuid.uuid4().hex, partitions):
                    bus.publish(p, payload, mid)
                total += len(events)
            procs = start_workers(n, env, workdir, batch=50)
            try:
                deadline = time.monotonic() + 300
                while committed(wk) < total and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                stop(procs)
            with wk.db.read() as conn:
                rows = conn.execute(text("SELECT at, events FROM bus_processed ORDER BY at")).all()
            first, last = rows[0][0], rows[-1][0]
            after_first = sum(int(e) for at, e in rows if at > first)
            elapsed = (last - first).total_seconds()
            return after_first / elapsed if elapsed > 0 else float("nan")
        finally:
            bus.close()
            wk.close()


def end_to_end(rate: int, seconds: float, partitions: int, workdir: Path, *, bus: bool = True) -> dict[str, Any]:
    """With ``bus``: serve --no-worker + 2 workers on PostgreSQL; without: the embedded serve on SQLite."""
    stream = f"E2E{uuid.uuid4().hex[:8]}".upper()
    per_body = 10
    with schema() as pg_url, nats_server(workdir / f"nats-{stream}") as nats_url:
        url = pg_url if bus else f"sqlite:///{workdir / (stream + '.db')}"
        env = env_for(url, nats_url, partitions, stream)
        if not bus:
            del env["WATCHKEEPER_BUS_URL"]
        settings = Settings(database_url=url, bus_url=nats_url if bus else None, bus_partitions=partitions,
                            bus_stream=stream)
        wk = Watchkeeper(settings, metrics=False)
        wk.upgrade()
        if bus:
            setup = open_jetstream(settings, check=False)
            setup.init(5_000_000)
            setup.close()
        token = wk.create_token(Role.INGEST, "bench", "bench")
        port = free_port()
        api_log = (workdir / "api.log").open("ab")
        api = subprocess.Popen([str(BIN), "serve", *(["--no-worker"] if bus else []), "--port", str(port)], env=env,
                               cwd=workdir, stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True)
        workers = start_workers(2, env, workdir) if bus else []
        try:
            base = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/healthz", timeout=1, trust_env=False).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(2)  # workers own their partitions
            idle = {"api": rss(api.pid)[0], "worker": max((rss(w.pid)[0] for w in workers), default=0.0)}
            n = int(rate * seconds / per_body)
            data = bodies(n, per_body, "e2e")
            sent: dict[str, float] = {}
            seen: dict[str, float] = {}
            stop_poll = threading.Event()

            def poll() -> None:
                last = 0
                while not stop_poll.is_set():
                    with wk.db.read() as conn:
                        rows = conn.execute(text("SELECT id, fingerprint FROM incident_alerts WHERE id > :i"),
                                            {"i": last}).all()
                    now = time.perf_counter()
                    for rid, fp in rows:
                        seen.setdefault(str(fp), now)
                        last = max(last, int(rid))
                    stop_poll.wait(0.02)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            statuses: dict[str, int] = {}

            async def load() -> None:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, trust_env=False,
                                             limits=httpx.Limits(max_connections=32)) as client:
                    start = time.perf_counter()
                    tasks = []

                    async def one(i: int, body: bytes) -> None:
                        t = time.perf_counter()
                        try:
                            r = await client.post("/api/v1/ingest/events", content=body)
                        except httpx.HTTPError as exc:
                            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                            return
                        statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                        if r.status_code == 202:
                            for j in range(per_body):
                                sent[f"e2e-{i}-{j}"] = t

                    for i, body in enumerate(data):
                        delay = start + i * per_body / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(one(i, body)))
                    await asyncio.gather(*tasks)

            t0 = time.perf_counter()
            asyncio.run(load())
            offered = len(data) * per_body / (time.perf_counter() - t0)
            deadline = time.monotonic() + 120
            while len(seen.keys() & sent.keys()) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop_poll.set()
            poller.join(5)
            lat = sorted((seen[k] - sent[k]) * 1000 for k in sent if k in seen)

            def pct(q: float) -> float:
                return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

            peak = {"api": rss(api.pid)[1], "worker": max((rss(w.pid)[1] for w in workers), default=0.0)}
            return {"offered": offered, "accepted": len(sent), "visible": len(lat), "statuses": statuses,
                    "p50": pct(0.5), "p99": pct(0.99), "max": lat[-1] if lat else float("nan"),
                    "idle": idle, "peak": peak}
        finally:
            stop([*workers, api])
            wk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (smoke)")
    parser.add_argument("--bodies", type=int, default=None, help="bodies per throughput run")
    parser.add_argument("--per-body", type=int, default=10, help="alerts per body")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    parser.add_argument("--rate", type=int, default=1000, help="alerts/s of the end-to-end run")
    parser.add_argument("--seconds", type=float, default=None, help="length of the end-to-end run")
    parser.add_argument("--no-throughput", action="store_true", help="only the end-to-end runs (no baseline rates)")
    parser.add_argument("--no-e2e", action="store_true", help="only the throughput runs (no end-to-end runs)")
    parser.add_argument("--compare-src", default=None, metavar="DIR",
                        help="also run the workers from another checkout's src/ (e.g. `git archive main src`), "
                             "alternating with this one for each worker count: before/after in one run")
    parser.add_argument("--own-database", action="store_true",
                        help="run in a temporary database, apart from other work's advisory locks on 'test'")
    args = parser.parse_args()
    with own_database() if args.own_database else contextlib.nullcontext():
        run(args)


def run(args: argparse.Namespace) -> None:
    n = args.bodies or (300 if args.quick else 1500)
    seconds = args.seconds or (5 if args.quick else 15)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (other work shares them)")
    with tempfile.TemporaryDirectory(prefix="wk-bus-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_throughput:
            throughput(args, n, workdir)
        if args.no_e2e:
            return
        embedded = end_to_end(args.rate, seconds, args.partitions, workdir, bus=False)
        e2e = end_to_end(args.rate, seconds, args.partitions, workdir)
        for label, r in (("embedded serve on SQLite (baseline)", embedded),
                         ("serve --no-worker + 2 workers, NATS + PostgreSQL", e2e)):
            print(f"\nend to end, {label}: {args.rate} alerts/s offered for {seconds:g} s "
                  f"(achieved {r['offered']:.0f}/s; statuses {r['statuses']}):")
            print(f"  receipt -> incident visible: p50 {r['p50']:.0f} ms ({r['p50'] / embedded['p50']:.1f}x baseline), "
                  f"p99 {r['p99']:.0f} ms ({r['p99'] / embedded['p99']:.1f}x), max {r['max']:.0f} ms "
                  f"({r['visible']} of {r['accepted']} acknowledged alerts seen)")
            print(f"  RSS idle: API {r['idle']['api']:.0f} MiB, worker {r['idle']['worker']:.0f} MiB; "
                  f"peak: API {r['peak']['api']:.0f} MiB, worker {r['peak']['worker']:.0f} MiB")


def throughput(args: argparse.Namespace, n: int, workdir: Path) -> None:
    data = bodies(n, args.per_body, "tp")
    sqlite_rate = baseline(f"sqlite:///{workdir / 'base.db'}", data, args.per_body)
    with schema() as url:
        pg_rate = baseline(url, data, args.per_body)
    print(f"\nbaseline, embedded, one process, {n} bodies of {args.per_body} alerts:")
    print(f"  SQLite      {sqlite_rate:9.0f} alerts/s  = 1.00x")
    print(f"  PostgreSQL  {pg_rate:9.0f} alerts/s  = {pg_rate / sqlite_rate:.2f}x")
    print(f"\nNATS JetStream + PostgreSQL, {args.partitions} partitions, workers draining a pre-filled stream:")
    versions = [(f"{args.compare_src} ", args.compare_src), ("this src ", None)] if args.compare_src else [("", None)]
    one: dict[str | None, float] = {}
    for k in (int(x) for x in args.workers.split(",")):
        for label, src in versions:
            rate = workers_rate(k, data, args.per_body, args.partitions, workdir, src)
            one.setdefault(src, rate)
            print(f"  {label}{k} worker{'s' if k > 1 else ' '} {rate:9.0f} alerts/s  = {rate / sqlite_rate:.2f}x "
                  f"embedded SQLite, {rate / pg_rate:.2f}x embedded PostgreSQL, {rate / one[src]:.2f}x one worker",
                  flush=True)


if __name__ == "__main__":
    main()
