"""Ingest benchmark: how many Alertmanager alerts per second Watchkeeper takes, and at what latency.

One run measures, on this machine:

1. in process, one core: ``orjson.loads`` + ``AlertmanagerSource.normalize`` + ``Pipeline.observe``
   (dedup + correlate) over a realistic storm, with the decode-only rate as a baseline;
2. the raw insert ceiling: SQLAlchemy Core executemany of event-like rows into a plain table on
   SQLite (WAL, synchronous=FULL, through ``storage.db.Database``) and PostgreSQL, DBAPI-level
   executemany of ready tuples on SQLite (how the ingest path writes), and PostgreSQL ``COPY``;
3. durable ingest over HTTP: ``watchkeeper serve`` as a subprocess, batched webhooks from N
   concurrent clients, on SQLite and PostgreSQL;
4. latency at a fixed 1,000 alerts/s: send → 2xx (committed, so the incident is visible), checked
   on a sample by reading the incident back.

It prints figures and asserts nothing about time. All traffic goes to 127.0.0.1.

    .venv/bin/python benchmarks/ingest.py            # full run, under ~5 minutes
    .venv/bin/python benchmarks/ingest.py --quick    # smoke check, under ~40 s
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import itertools
import math
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import sqlalchemy
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Text, insert, make_url, text
from sqlalchemy import Table as SqlTable

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.model import Event
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.sources.alertmanager import AlertmanagerSource
from watchkeeper.storage.db import Database
from watchkeeper.storage.types import Json, UTCDateTime

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INGEST_PATH = "/api/v1/ingest/alertmanager"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: Nominal rows written per alert, used for every ratio to the insert ceiling: the event row,
#: the alert upsert (insert when new, update when known) and one audit record or membership.
ROWS_PER_ALERT = 3

ALERT_NAMES = ("HighErrorRate", "HighLatencyP99", "InstanceDown", "DiskWillFillIn4h")
SEVERITY = {"HighErrorRate": "error", "HighLatencyP99": "warning", "InstanceDown": "critical",
            "DiskWillFillIn4h": "warning"}
UNSET_TIME = "0001-01-01T00:00:00Z"

#: Wide enough for the summary tables when the output is a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 150)


# -- plan --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plan:
    storm_alerts: int  # in-process storm size
    batch: tuple[int, int]  # alerts per webhook in the in-process storm (as Alertmanager groups)
    fingerprints: int
    services: int
    raw_rows: int  # rows per raw-insert measurement
    raw_repeats: int  # each raw insert is measured this many times; the best is the ceiling
    raw_batches: tuple[int, ...]  # rows per transaction; 300 ≈ the rows of one 100-alert request
    http_alerts: int  # upper bound of the throughput storm (the deadline usually stops first)
    http_batch: int
    http_seconds: float
    clients: int
    rate_alerts: int  # fixed-rate latency: alerts per second
    rate_batches: tuple[int, ...]  # alerts per webhook at fixed rate, one latency run each
    rate_seconds: float

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        quick = bool(args.quick)
        return cls(
            storm_alerts=args.alerts or (20_000 if quick else 200_000),
            batch=(1, 50),
            fingerprints=args.fingerprints,
            services=args.services,
            raw_rows=10_000 if quick else 60_000,
            raw_repeats=1 if quick else 2,
            raw_batches=(300, 1_000),
            http_alerts=20_000 if quick else 150_000,
            http_batch=args.http_batch,
            http_seconds=3.0 if quick else 25.0,
            clients=args.clients,
            rate_alerts=1_000,
            rate_batches=(10,) if quick else (10, 100),
            rate_seconds=2.0 if quick else 10.0,
        )


# -- storm generation --------------------------------------------------------------------------
def _fixtures() -> tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]]]:
    """The test fixtures that build Alertmanager webhook v4 bodies as a real Alertmanager does."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from fixtures.alertmanager import am_alert, am_webhook

    return am_alert, am_webhook


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(slots=True)
class _Identity:
    name: str
    service: str
    instance: str
    severity: str
    fingerprint: str
    seen: bool = False
    firing: bool = False
    starts: str = UNSET_TIME
    ends: str = UNSET_TIME


@dataclass(slots=True)
class Storm:
    bodies: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    received: list[datetime] = field(default_factory=list)
    fingerprints: list[tuple[str, ...]] = field(default_factory=list)
    firing: int = 0
    resolved: int = 0

    @property
    def alerts(self) -> int:
        return self.firing + self.resolved

    @property
    def size_bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


class StormMaker:
    """A storm over a fixed set of fingerprints: fire, repeat, resolve, re-fire; hot services
    fire more often. Bodies are grouped by alertname, as ``group_by: [alertname]`` does."""

    def __init__(self, fingerprints: int, services: int, start: datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = start
        self.am_alert, self.am_webhook = _fixtures()
        self.by_name: dict[str, list[_Identity]] = {name: [] for name in ALERT_NAMES}
        for i in range(fingerprints):
            service = f"svc-{i % services:04d}"
            name = ALERT_NAMES[(i // services) % len(ALERT_NAMES)]
            instance = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:9100"
            severity = SEVERITY[name]
            fp = self.am_alert(name, service, instance=instance, severity=severity)["fingerprint"]
            self.by_name[name].append(_Identity(name, service, instance, severity, fp))
        self.names = [n for n, pop in self.by_name.items() if pop]
        # One in five fingerprints of each name is "hot" and drawn four times as often.
        self.cum_weights: dict[str, list[float]] = {}
        for name in self.names:
            pop = self.by_name[name]
            hot = max(1, len(pop) // 5)
            weights = (4.0 if j < hot else 1.0 for j in range(len(pop)))
            self.cum_weights[name] = list(itertools.accumulate(weights))

    def _pick(self, name: str, k: int) -> list[_Identity]:
        pop = self.by_name[name]
        chosen: dict[str, _Identity] = {}
        for ident in self.rng.choices(pop, cum_weights=self.cum_weights[name], k=2 * k):
            chosen.setdefault(ident.fingerprint, ident)
            if len(chosen) == k:
                return list(chosen.values())
        for ident in self.rng.sample(pop, len(pop)):  # rare top-up: bounded by the population
            chosen.setdefault(ident.fingerprint, ident)
            if len(chosen) == k:
                break
        return list(chosen.values())

    def _next(self, ident: _Identity) -> dict[str, Any]:
        at, rng = self.now, self.rng
        if not ident.seen:
            ident.seen, ident.firing = True, True
            ident.starts, ident.ends = _stamp(at - timedelta(seconds=rng.uniform(0, 30))), UNSET_TIME
        elif ident.firing:
            if rng.random() < 0.12:  # resolves
                ident.firing, ident.ends = False, _stamp(at)
        elif rng.random() < 0.75:  # re-fires after a resolve (else: a duplicate resolved notice)
            ident.firing, ident.starts, ident.ends = True, _stamp(at), UNSET_TIME
        return self.am_alert(
            ident.name, ident.service, instance=ident.instance,
            status="firing" if ident.firing else "resolved", starts=ident.starts, ends=ident.ends,
            fingerprint=ident.fingerprint, severity=ident.severity,
        )

    def make(self, alerts: int, batch: tuple[int, int], span: timedelta) -> Storm:
        lo, hi = max(1, batch[0]), max(1, batch[0], batch[1])
        step = span / max(1, round(alerts / ((lo + hi) / 2)))
        storm = Storm()
        while storm.alerts < alerts:  # every turn adds at least one alert
            self.now += step * self.rng.uniform(0.5, 1.5)
            name = self.rng.choice(self.names)
            k = min(self.rng.randint(lo, hi), alerts - storm.alerts, len(self.by_name[name]))
            body_alerts = [self._next(ident) for ident in self._pick(name, k)]
            firing = sum(1 for a in body_alerts if a["status"] == "firing")
            storm.firing += firing
            storm.resolved += len(body_alerts) - firing
            storm.bodies.append(orjson.dumps(self.am_webhook(*body_alerts)))
            storm.sizes.append(len(body_alerts))
            storm.received.append(self.now)
            storm.fingerprints.append(tuple(a["fingerprint"] for a in body_alerts))
        return storm


# -- helpers -----------------------------------------------------------------------------------
def progress_bar() -> Progress:
    return Progress(
        TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def note(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def load_average() -> str:
    """The 1-minute load average: other work on this machine skews every figure."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN when there is nothing to rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Pin this thread to one CPU (restored afterwards, before any subprocess is started)."""
    if not hasattr(os, "sched_getaffinity"):
        yield "not pinned (no sched_setaffinity here)"
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)


PF_KTHREAD = 0x00200000


def _foreign_ticks(exclude: set[int]) -> dict[int, int]:
    """utime + stime per live process, in clock ticks, leaving out ``exclude``, PostgreSQL and
    kernel threads."""
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, fields = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 1:].split()
        if len(fields) < 13 or comm == "postgres" or int(fields[6]) & PF_KTHREAD:
            continue
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


class OtherCpu:
    """The share of the machine's CPU that other processes (not this benchmark, its server,
    PostgreSQL or the kernel) used while a phase ran: they skew what it measures. Processes that
    exit during the phase are missed, so this is a lower bound. Linux only; NaN elsewhere."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.exclude = {os.getpid()} | ({server_pid} if server_pid is not None else set())
        self.share = math.nan
        self._start: dict[int, int] = {}
        self._t0 = 0.0
        self._ok = Path("/proc/self/stat").exists()

    def __enter__(self) -> OtherCpu:
        if self._ok:
            self._start, self._t0 = _foreign_ticks(self.exclude), time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self._ok:
            return
        end, elapsed = _foreign_ticks(self.exclude), time.monotonic() - self._t0
        used = sum(max(0, t - self._start.get(pid, 0)) for pid, t in end.items())
        if elapsed > 0:
            self.share = used / os.sysconf("SC_CLK_TCK") / (elapsed * (os.cpu_count() or 1))


def pct(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share:.0%}"


# -- 1. in process -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InProcess:
    alerts: int
    bodies: int
    decode: float  # alerts/s
    normalize: float  # alerts/s, decode + normalize
    pipeline: float  # alerts/s, decode + normalize + observe
    alerts_after_dedup: int
    incidents: int
    pinned: str


def bench_in_process(storm: Storm) -> InProcess:
    source = AlertmanagerSource()
    bodies, received, sizes = storm.bodies, storm.received, storm.sizes
    loads = orjson.loads
    rates: dict[str, float] = {}
    state = State()
    ids = itertools.count(1)

    def decode(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            loads(bodies[i])

    def normalize(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            source.normalize(loads(bodies[i]), received[i])

    pipeline = Pipeline(PipelineConfig(), lambda: next(ids))

    def full(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            pipeline.observe_all(source.normalize(loads(bodies[i]), received[i]), state)
            state.clear_changes()  # the server persists and drops these after every request

    passes: list[tuple[str, Callable[[int, int], None]]] = [
        ("orjson.loads only", decode), ("loads + normalize", normalize),
        ("loads + normalize + observe", full),
    ]
    chunk = 250
    with one_core() as pinned, progress_bar() as progress:
        for label, run in passes:
            task = progress.add_task(label, total=storm.alerts)
            gc.collect()
            elapsed = 0.0
            for lo in range(0, len(bodies), chunk):
                hi = min(len(bodies), lo + chunk)
                t0 = time.perf_counter()
                run(lo, hi)
                elapsed += time.perf_counter() - t0
                progress.update(task, advance=sum(sizes[lo:hi]))
            rates[label] = storm.alerts / elapsed
            progress.remove_task(task)
    return InProcess(
        storm.alerts, len(bodies), rates["orjson.loads only"], rates["loads + normalize"],
        rates["loads + normalize + observe"], len(state.alerts), len(state.incidents), pinned,
    )


# -- 2. raw insert ceiling ---------------------------------------------------------------------
RAW_COLUMNS = ("received_at", "source", "kind", "fingerprint", "status", "severity", "service",
               "summary", "starts_at", "ends_at", "labels", "raw")


def raw_table() -> SqlTable:
    """The events table's columns and types, without its secondary indexes: a plain table."""
    return SqlTable(
        "bench_raw_events", MetaData(),
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("received_at", UTCDateTime(), nullable=False),
        Column("source", String(64), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("fingerprint", String(256), nullable=False),
        Column("status", String(16), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("service", String(256), nullable=False),
        Column("summary", Text, nullable=False),
        Column("starts_at", UTCDateTime(), nullable=False),
        Column("ends_at", UTCDateTime()),
        Column("labels", Json, nullable=False),
        Column("raw", Json, nullable=False),
    )


def event_rows(storm: Storm, count: int) -> list[dict[str, Any]]:
    source = AlertmanagerSource()
    rows: list[dict[str, Any]] = []
    for body, at in itertools.cycle(zip(storm.bodies, storm.received, strict=True)):
        events: list[Event] = source.normalize(orjson.loads(body), at)
        rows.extend({
            "received_at": e.received_at, "source": e.source, "kind": e.kind.value,
            "fingerprint": e.fingerprint, "status": e.status.value, "severity": e.severity.value,
            "service": e.service, "summary": e.summary, "starts_at": e.starts_at,
            "ends_at": e.ends_at, "labels": dict(e.labels), "raw": e.raw,
        } for e in events)
        if len(rows) >= count:
            break
    return rows[:count]


def _timed_batches(url: str, table: SqlTable, count: int, batch: int, label: str,
                   write: Callable[[Connection, int, int], object]) -> float:
    """rows/s of ``write(conn, lo, hi)`` over ``count`` rows into ``table`` (created first), one
    ``Database.write()`` transaction (app engine, pragmas, locks) per batch."""
    db = Database(url)
    try:
        table.metadata.create_all(db.engine)
        with progress_bar() as progress:
            task = progress.add_task(label, total=count)
            gc.collect()
            t0 = time.perf_counter()
            for lo in range(0, count, batch):
                with db.write() as conn:
                    write(conn, lo, min(lo + batch, count))
                progress.update(task, advance=min(batch, count - lo))
            elapsed = time.perf_counter() - t0
    finally:
        db.dispose()
    return count / elapsed


def insert_executemany(url: str, rows: list[dict[str, Any]], batch: int, label: str) -> float:
    """rows/s: SQLAlchemy Core executemany, one transaction per batch."""
    table = raw_table()
    return _timed_batches(url, table, len(rows), batch, label,
                          lambda conn, lo, hi: conn.execute(insert(table), rows[lo:hi]))


def sqlite_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as SQLite stores them (times as ``UTCDateTime`` text, JSON as text), made once,
    before timing: the driver-level ceiling measures the database, not the conversion."""
    def stamp(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    return [(
        stamp(r["received_at"]), r["source"], r["kind"], r["fingerprint"], r["status"], r["severity"],
        r["service"], r["summary"], stamp(r["starts_at"]), stamp(r["ends_at"]),
        orjson.dumps(r["labels"]).decode(), orjson.dumps(r["raw"]).decode(),
    ) for r in rows]


def insert_driver(url: str, rows: list[tuple[Any, ...]], batch: int, label: str) -> float:
    """rows/s: DBAPI ``executemany`` of ready tuples (no SQLAlchemy per-row processing), one
    transaction per batch: the way the ingest path writes its rows."""
    table = raw_table()
    sql = (f"INSERT INTO {table.name} ({', '.join(RAW_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in RAW_COLUMNS)})")
    return _timed_batches(url, table, len(rows), batch, label,
                          lambda conn, lo, hi: conn.exec_driver_sql(sql, rows[lo:hi]))


def insert_copy(dsn: str, schema: str, rows: list[dict[str, Any]], batch: int, label: str) -> float:
    """rows/s: psycopg ``COPY ... FROM STDIN``, one transaction per batch, JSON encoded in the loop."""
    sql = f"COPY bench_raw_events ({', '.join(RAW_COLUMNS)}) FROM STDIN"
    dumps = orjson.dumps
    with psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={schema}") as conn, \
            progress_bar() as progress:
        task = progress.add_task(label, total=len(rows))
        gc.collect()
        t0 = time.perf_counter()
        for lo in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                for r in rows[lo:lo + batch]:
                    copy.write_row((
                        r["received_at"], r["source"], r["kind"], r["fingerprint"], r["status"],
                        r["severity"], r["service"], r["summary"], r["starts_at"], r["ends_at"],
                        dumps(r["labels"]).decode(), dumps(r["raw"]).decode(),
                    ))
            progress.update(task, advance=min(batch, len(rows) - lo))
        elapsed = time.perf_counter() - t0
    return len(rows) / elapsed


# -- PostgreSQL --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Postgres:
    url: str  # SQLAlchemy URL without a schema
    dsn: str  # libpq DSN for psycopg


def probe_postgres(url: str) -> tuple[Postgres | None, str]:
    parsed = make_url(url)
    if parsed.host not in LOOPBACK:
        return None, f"PostgreSQL skipped: {parsed.host!r} is not 127.0.0.1 (traffic stays local)"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"PostgreSQL skipped: not reachable at {parsed.host}:{parsed.port} ({first})"
    return Postgres(url, dsn), f"PostgreSQL {version[0] if version else '?'} at {parsed.host}:{parsed.port}"


@contextlib.contextmanager
def pg_schema(pg: Postgres) -> Iterator[tuple[str, str]]:
    """A fresh schema, dropped afterwards; yields (schema, SQLAlchemy URL whose search_path is it)."""
    schema = f"wk_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg.url else "?"
    try:
        yield schema, f"{pg.url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- 3 and 4. over HTTP ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Server:
    pid: int
    base: str
    ingest_token: str
    viewer_token: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _token_command(exe: Path, role: str) -> list[str]:
    return [str(exe), "token", "create", "--role", role, "--name", f"bench-{role}"]


def _token_of(role: str, returncode: int, stdout: str, stderr: str) -> str:
    lines = stdout.strip().splitlines()
    if returncode != 0 or not lines:
        raise RuntimeError(f"`watchkeeper token create --role {role}` failed: {stderr.strip()}")
    return lines[-1].strip()  # the token is the last line of stdout


@contextlib.contextmanager
def serve(url: str, workdir: Path, label: str) -> Iterator[Server]:
    """``watchkeeper serve`` on 127.0.0.1:<free port>, with an ingest and a viewer token made by
    ``watchkeeper token create``; every subprocess is ended in ``finally``."""
    exe = Path(sys.executable).parent / "watchkeeper"
    env = {**os.environ, "WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_LOG_LEVEL": "warning"}
    env.pop("WATCHKEEPER_CONFIG", None)
    # The first CLI call runs the migrations; after it, the viewer token and the server start together.
    made = subprocess.run(_token_command(exe, "ingest"), env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    ingest_token = _token_of("ingest", made.returncode, made.stdout, made.stderr)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / f"serve-{label}.log"
    with log_path.open("wb") as log:
        viewer = subprocess.Popen(_token_command(exe, "viewer"), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            out, err = viewer.communicate(timeout=120)
            viewer_token = _token_of("viewer", viewer.returncode, out, err)
            deadline = time.monotonic() + 60
            while True:  # bounded by the deadline
                if proc.poll() is not None:
                    raise RuntimeError(f"watchkeeper serve exited with {proc.returncode}:\n{_tail(log_path)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"watchkeeper serve not healthy after 60 s:\n{_tail(log_path)}")
                time.sleep(0.1)
            yield Server(proc.pid, base, ingest_token, viewer_token)
        finally:
            for child in (viewer, proc):
                if child.poll() is None:
                    child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=10)


def _headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class Throughput:
    alerts: int
    requests: int
    seconds: float
    statuses: dict[int, int]
    p50: float
    p99: float
    other_cpu: float = math.nan  # share of the machine used by other processes meanwhile

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds if self.seconds > 0 else 0.0


async def _throughput(server: Server, storm: Storm, clients: int, seconds: float, label: str) -> Throughput:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    work = iter(range(len(storm.bodies)))  # shared by the workers: each body is sent once
    accepted = 0
    async with httpx.AsyncClient(
        base_url=server.base, headers=_headers(server.ingest_token), limits=limits, timeout=60.0,
    ) as client:
        with progress_bar() as progress:
            task = progress.add_task(f"{label}: {clients} clients, seconds", total=round(seconds))
            start = time.perf_counter()
            deadline = start + seconds
            last = start

            async def worker() -> None:
                nonlocal accepted, last
                for i in work:
                    if time.perf_counter() >= deadline:
                        return
                    sent = time.perf_counter()
                    try:
                        response = await client.post(INGEST_PATH, content=storm.bodies[i])
                    except httpx.HTTPError:
                        statuses[0] += 1
                        continue
                    last = time.perf_counter()
                    statuses[response.status_code] += 1
                    if response.is_success:
                        accepted += storm.sizes[i]
                        latencies.append(last - sent)
                    progress.update(task, completed=min(seconds, last - start))

            await asyncio.gather(*(worker() for _ in range(clients)))
    return Throughput(accepted, sum(statuses.values()), last - start, dict(statuses),
                      percentile(latencies, 50), percentile(latencies, 99))


@dataclass(frozen=True, slots=True)
class Latency:
    target_alerts_per_s: int
    per_body: int
    sent: int
    alerts: int
    schedule_seconds: float  # from the first to the last scheduled send
    seconds: float  # from the first scheduled send to the last answer
    statuses: dict[int, int]
    p50: float  # scheduled send → 2xx (committed: the incident is visible)
    p99: float
    max: float
    max_send_lag: float  # how late the client itself was on its own schedule
    sample_every: int
    checked: int
    visible: int
    with_alert: int  # the incident read back lists one of the request's fingerprints
    visible_p50: float  # scheduled send → the GET of the incident answered
    visible_p99: float
    other_cpu: float = math.nan  # share of the machine used by other processes meanwhile

    @property
    def answered_rate(self) -> float:
        """Alerts per second from the first scheduled send to the last answer."""
        return self.alerts / self.seconds if self.seconds > 0 else 0.0

    @property
    def sustained(self) -> bool:
        """The server kept up: every request accepted, answered at 95 % of the offered rate or more."""
        accepted_all = self.statuses.get(202, 0) == self.sent
        return accepted_all and self.answered_rate >= 0.95 * self.target_alerts_per_s


async def _fixed_rate(server: Server, storm: Storm, alerts_per_s: int, label: str) -> Latency:
    per_body = max(1, round(sum(storm.sizes) / max(1, len(storm.bodies))))
    bodies_per_s = alerts_per_s / per_body
    every = max(1, round(bodies_per_s / 10))  # read back about ten incidents per second
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    visible_after: list[float] = []
    checks = Counter[str]()
    lag = 0.0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=120.0) as client:
        ingest_headers, viewer_headers = _headers(server.ingest_token), _headers(server.viewer_token)

        async def one(i: int, scheduled: float) -> None:
            try:
                response = await client.post(INGEST_PATH, content=storm.bodies[i], headers=ingest_headers)
            except httpx.HTTPError:
                statuses[0] += 1
                return
            done = time.perf_counter()
            statuses[response.status_code] += 1
            if not response.is_success:
                return
            latencies.append(done - scheduled)
            if i % every:
                return
            # 2xx is sent after the commit, so the incident must be readable right now.
            checks["checked"] += 1
            ids = response.json().get("incidents") or []
            if not ids:
                return
            try:
                got = await client.get(f"/api/v1/incidents/{ids[0]}", headers=viewer_headers)
            except httpx.HTTPError:
                return
            if got.status_code == 200 and got.json().get("id") == ids[0]:
                checks["visible"] += 1
                visible_after.append(time.perf_counter() - scheduled)
                members = {a.get("fingerprint") for a in got.json().get("alerts", [])}
                if members & set(storm.fingerprints[i]):
                    checks["with_alert"] += 1

        with progress_bar() as progress:
            task = progress.add_task(f"{label}: requests sent", total=len(storm.bodies))
            tasks: list[asyncio.Task[None]] = []
            start = time.perf_counter() + 0.05
            for i in range(len(storm.bodies)):  # open loop: sends on schedule, whatever the answers
                scheduled = start + i / bodies_per_s
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lag = max(lag, time.perf_counter() - scheduled)
                tasks.append(asyncio.create_task(one(i, scheduled)))
                progress.update(task, advance=1)
            await asyncio.gather(*tasks)
            end = time.perf_counter()
    sent = len(storm.bodies)
    return Latency(
        alerts_per_s, per_body, sent, sum(storm.sizes), (sent - 1) / bodies_per_s, end - start,
        dict(statuses), percentile(latencies, 50), percentile(latencies, 99),
        max(latencies, default=math.nan), lag, every, checks["checked"], checks["visible"],
        checks["with_alert"], percentile(visible_after, 50), percentile(visible_after, 99),
    )


@dataclass(frozen=True, slots=True)
class Http:
    label: str
    throughput: Throughput
    latencies: list[Latency]
    rows: dict[str, int]

    @property
    def rows_per_alert(self) -> float:
        """Measured: rows inserted into every table but ``alerts``, plus one alert upsert, per event."""
        events = self.rows.get("events", 0)
        if not events:
            return math.nan
        inserted = sum(n for t, n in self.rows.items() if t != "alerts")
        return inserted / events + 1


COUNTED = ("events", "alerts", "incidents", "incident_services", "incident_alerts", "audit_log")


def count_rows(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.read() as conn:
            return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED}
    finally:
        db.dispose()


def bench_http(url: str, label: str, plan: Plan, workdir: Path, seed: int) -> Http:
    maker = StormMaker(plan.fingerprints, plan.services, datetime.now(UTC) - timedelta(hours=2), seed)
    shape = (plan.http_batch, plan.http_batch)
    warm = maker.make(plan.http_batch * 5, shape, timedelta(minutes=1))
    load = maker.make(plan.http_alerts, shape, timedelta(hours=1))
    paced = [maker.make(round(plan.rate_alerts * plan.rate_seconds), (n, n), timedelta(minutes=10))
             for n in plan.rate_batches]
    note(f"{label}: starting `watchkeeper serve` (tokens from `watchkeeper token create`)")
    with serve(url, workdir, label) as server:
        asyncio.run(_throughput(server, warm, 1, 60.0, f"{label} warm-up"))
        meter = OtherCpu(server.pid)
        note(f"{label}: throughput, {plan.http_batch} alerts per body, {plan.clients} requests in flight, "
             f"{plan.http_seconds:g} s")
        with meter:
            tp = asyncio.run(_throughput(server, load, plan.clients, plan.http_seconds, f"{label} throughput"))
        tp = dataclasses.replace(tp, other_cpu=meter.share)
        note(f"  {tp.rate:,.0f} alerts/s accepted ({tp.alerts:,} alerts, {tp.requests:,} requests in "
             f"{tp.seconds:.1f} s; statuses {tp.statuses}; request p50 {ms(tp.p50)}, p99 {ms(tp.p99)}; "
             f"other processes used {pct(tp.other_cpu)} of the CPU meanwhile)")
        latencies: list[Latency] = []
        for storm in paced:
            per_body = storm.sizes[0] if storm.sizes else 0
            note(f"{label}: fixed rate {plan.rate_alerts:,} alerts/s as {per_body} alerts per body for "
                 f"{plan.rate_seconds:g} s")
            with meter:
                lat = asyncio.run(_fixed_rate(server, storm, plan.rate_alerts, f"{label} latency"))
            lat = dataclasses.replace(lat, other_cpu=meter.share)
            latencies.append(lat)
            note(f"  send→2xx p50 {ms(lat.p50)}, p99 {ms(lat.p99)}, max {ms(lat.max)}; statuses "
                 f"{lat.statuses}; answered at {lat.answered_rate:,.0f} alerts/s: "
                 f"{'kept up' if lat.sustained else 'FELL BEHIND'} (last answer {lat.seconds:.1f} s after "
                 f"the first send, schedule {lat.schedule_seconds:.1f} s); "
                 f"incident visible on read-back {lat.visible}/{lat.checked}; other processes used "
                 f"{pct(lat.other_cpu)} of the CPU meanwhile")
        rows = count_rows(url)
    return Http(label, tp, latencies, rows)


# -- report ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Results:
    in_process: InProcess | None = None
    #: (method, rows per transaction) → rows/s of each repeat
    raw: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    http: list[Http] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    other_cpu: dict[str, float] = field(default_factory=dict)  # phase → share used by other processes

    def ceiling(self, name: str) -> float | None:
        """The ceiling of a method: its best rate over every batch size and repeat."""
        runs = [rate for (method, _batch), values in self.raw.items() if method == name for rate in values]
        return max(runs) if runs else None


CEILINGS = ("SQLite executemany", "SQLite driver executemany", "PostgreSQL executemany", "PostgreSQL COPY")
SHORT = {"SQLite executemany": "÷ SQLite em", "SQLite driver executemany": "÷ SQLite drv",
         "PostgreSQL executemany": "÷ PG em", "PostgreSQL COPY": "÷ PG COPY"}


def summary(results: Results, plan: Plan, seconds: float) -> None:
    table = Table(title=f"Throughput ({seconds:.0f} s run)", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column(f"≙ rows/s (×{ROWS_PER_ALERT})", justify="right")
    for name in CEILINGS:
        table.add_column(SHORT[name], justify="right")
    table.add_column("others' CPU", justify="right")

    def ratios(rows_per_s: float) -> list[str]:
        out: list[str] = []
        for name in CEILINGS:
            ceiling = results.ceiling(name)
            out.append(f"{rows_per_s / ceiling:.2f}×" if ceiling else "-")
        return out

    def alerts_row(label: str, rate: float, other: str = "") -> None:
        rows = rate * ROWS_PER_ALERT
        table.add_row(label, f"{rate:,.0f} alerts/s", f"{rows:,.0f}", *ratios(rows), other)

    def runs(values: list[float]) -> str:
        return "" if len(values) < 2 else " (" + ", ".join(f"{v:,.0f}" for v in values) + ")"

    ip = results.in_process
    if ip is not None:
        other = pct(results.other_cpu.get("in-process", math.nan))
        alerts_row("1. in-process orjson.loads only (baseline)", ip.decode, other)
        alerts_row("1. in-process loads + normalize", ip.normalize, other)
        alerts_row("1. in-process loads + normalize + observe", ip.pipeline, other)
    for (name, batch), values in results.raw.items():
        best = max(values)
        mark = " ← ceiling" if best == results.ceiling(name) else ""
        table.add_row(f"2. raw {name}, {batch} rows/txn{runs(values)}{mark}",
                      f"{best:,.0f} rows/s", f"{best:,.0f}", *ratios(best),
                      pct(results.other_cpu.get("raw", math.nan)))
    for h in results.http:
        alerts_row(f"3. HTTP durable, {h.label}, {plan.http_batch}/body, {plan.clients} in flight",
                   h.throughput.rate, pct(h.throughput.other_cpu))
    console.print()
    console.print(table)

    lat_table = Table(title="Latency at a fixed rate: scheduled send → 2xx (committed ⇒ incident visible)",
                      title_justify="left")
    for column in ("4. database", "offered", "p50", "p99", "max", "answered at", "read-back visible",
                   "send→read p50 / p99", "others' CPU"):
        lat_table.add_column(column, justify="left" if column == "4. database" else "right")
    for h in results.http:
        for lat in h.latencies:
            lat_table.add_row(
                h.label, f"{lat.target_alerts_per_s:,}/s as {lat.per_body}/body",
                ms(lat.p50), ms(lat.p99), ms(lat.max),
                f"{lat.answered_rate:,.0f}/s" + ("" if lat.sustained else " (fell behind)"),
                f"{lat.visible}/{lat.checked} (1 in {lat.sample_every}; {lat.with_alert} list the alert)",
                f"{ms(lat.visible_p50)} / {ms(lat.visible_p99)}", pct(lat.other_cpu),
            )
    if results.http:
        console.print(lat_table)

    if ip is not None:
        console.print(
            f"In-process storm: {ip.alerts:,} alert events in {ip.bodies:,} webhooks "
            f"({plan.batch[0]}–{plan.batch[1]} alerts each), {plan.fingerprints:,} fingerprints over "
            f"{plan.services:,} services → {ip.alerts_after_dedup:,} alerts, {ip.incidents:,} incidents; "
            f"{ip.pinned}. Against the decode-only baseline of this run: normalize {ip.normalize / ip.decode:.3f}×, "
            f"normalize + observe {ip.pipeline / ip.decode:.3f}× the orjson.loads rate."
        )
    console.print(
        f"Ratios: alerts/s × {ROWS_PER_ALERT} rows per alert (the event row, the alert upsert, one audit "
        "record or membership) ÷ the best raw insert rate of this run for that method, over its batch sizes "
        "and repeats (em = SQLAlchemy Core executemany, drv = DBAPI executemany of ready tuples, as ingest writes; "
        "one Database.write() transaction per batch); "
        "above 1× is faster than the database inserted plain rows. \"Others' CPU\": the share of this "
        "machine's CPU that processes other than the benchmark, its server and PostgreSQL used during "
        "the phase (a lower bound); a high value means the figure is skewed low."
    )
    for h in results.http:
        counts = ", ".join(f"{t} {n:,}" for t, n in h.rows.items())
        console.print(
            f"{h.label} after the HTTP runs: {counts} → measured {h.rows_per_alert:.2f} rows written per "
            "alert (inserts into every table but alerts per event row, plus one alert upsert; incident "
            "row updates not counted)."
        )
    for line in results.notes:
        console.print(f"Note: {line}")


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small run, as a smoke check (~40 s)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL,
                        help="SQLAlchemy URL of a PostgreSQL on 127.0.0.1 (a fresh schema, then dropped)")
    parser.add_argument("--no-postgres", action="store_true", help="skip every PostgreSQL measurement")
    parser.add_argument("--alerts", type=int, default=0, help="in-process storm size (default 200,000)")
    parser.add_argument("--fingerprints", type=int, default=2_000)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8, help="HTTP requests in flight")
    parser.add_argument("--http-batch", type=int, default=100, help="alerts per webhook over HTTP")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)
    for name in ("fingerprints", "services", "clients", "http_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.alerts < 0:
        parser.error("--alerts must not be negative")
    return args


def raw_inserts(results: Results, plan: Plan, rows: list[dict[str, Any]], workdir: Path,
                pg: Postgres | None) -> None:
    def record(method: str, batch: int, rate: float) -> None:
        results.raw.setdefault((method, batch), []).append(rate)
        note(f"  {method}, {batch} rows/txn: {rate:,.0f} rows/s")

    sqlite_url = f"sqlite:///{workdir / 'raw.db'}"
    for batch in plan.raw_batches:
        for _ in range(plan.raw_repeats):
            rate = insert_executemany(sqlite_url, rows, batch, f"SQLite executemany, {batch}/txn")
            record("SQLite executemany", batch, rate)
    tuples = sqlite_tuples(rows)
    for batch in plan.raw_batches:
        for _ in range(plan.raw_repeats):
            rate = insert_driver(sqlite_url, tuples, batch, f"SQLite driver executemany, {batch}/txn")
            record("SQLite driver executemany", batch, rate)
    if pg is None:
        return
    with pg_schema(pg) as (schema, url):
        for batch in plan.raw_batches:
            for _ in range(plan.raw_repeats):
                rate = insert_executemany(url, rows, batch, f"PostgreSQL executemany, {batch}/txn")
                record("PostgreSQL executemany", batch, rate)
        for batch in plan.raw_batches:
            for _ in range(plan.raw_repeats):
                rate = insert_copy(pg.dsn, schema, rows, batch, f"PostgreSQL COPY, {batch}/txn")
                record("PostgreSQL COPY", batch, rate)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.make(args)
    started = time.perf_counter()
    results = Results()
    load_before = load_average()
    console.print(
        f"[bold]Watchkeeper ingest benchmark[/bold] ({'quick' if args.quick else 'full'}): "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {psycopg.__version__}, {os.cpu_count()} CPUs, {platform.machine()} {platform.system()}, "
        f"load average {load_before}"
    )
    pg: Postgres | None = None
    if args.no_postgres:
        results.notes.append("PostgreSQL skipped (--no-postgres)")
    else:
        pg, message = probe_postgres(args.postgres_url)
        note(message)
        if pg is None:
            results.notes.append(message)

    note(f"generating the in-process storm: {plan.storm_alerts:,} alert events")
    maker = StormMaker(plan.fingerprints, plan.services, datetime(2026, 11, 22, 6, tzinfo=UTC), args.seed)
    storm = maker.make(plan.storm_alerts, plan.batch, timedelta(hours=2))
    note(f"  {len(storm.bodies):,} webhooks, {storm.size_bytes / 1e6:.1f} MB, {storm.firing:,} firing "
         f"+ {storm.resolved:,} resolved")

    note("1. in process, one core: decode, normalize, dedup + correlate")
    with OtherCpu() as meter:
        ip = results.in_process = bench_in_process(storm)
    results.other_cpu["in-process"] = meter.share
    note(f"  orjson.loads {ip.decode:,.0f} alerts/s; + normalize {ip.normalize:,.0f}; "
         f"+ observe {ip.pipeline:,.0f} alerts/s ({ip.pinned})")

    repeats = f", best of {plan.raw_repeats}" if plan.raw_repeats > 1 else ""
    note(f"2. raw insert ceiling: {plan.raw_rows:,} event rows into a plain table{repeats}")
    rows = event_rows(storm, plan.raw_rows)
    del storm, maker
    with tempfile.TemporaryDirectory(prefix="wk-bench-") as tmp:
        workdir = Path(tmp)
        with OtherCpu() as meter:
            raw_inserts(results, plan, rows, workdir, pg)
        results.other_cpu["raw"] = meter.share
        del rows
        note("3–4. over HTTP, durable: `watchkeeper serve` subprocess on 127.0.0.1")
        sqlite_url = f"sqlite:///{workdir / 'wk.db'}"
        results.http.append(bench_http(sqlite_url, "SQLite", plan, workdir, args.seed + 1))
        if pg is not None:
            with pg_schema(pg) as (_schema, url):
                results.http.append(bench_http(url, "PostgreSQL", plan, workdir, args.seed + 2))

    results.notes.append(f"1-minute load average {load_before} at the start, {load_average()} at the end "
                         f"({os.cpu_count()} CPUs; the server, its clients and the database share them).")
    summary(results, plan, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
