"""Durable intake side by side with Alertmanager: the same alerts, the same load generator, one run.

A real Alertmanager (Debian's ``prometheus-alertmanager``: in memory, not durable) takes 10,000
distinct alerts on its own ``/api/v2/alerts``; ``watchkeeper serve`` (SQLite in a temp dir, or
PostgreSQL with ``--postgres-url``) takes the very same bodies on ``/api/v2/alerts``, answering
2xx only after the commit that holds them. Both are driven by ``wrk -c 8`` with a Lua script
cycling through the prebuilt bodies, for a bounded duration, at 10 and at 100 alerts per body.

It prints alerts/s for both and the ratio, the CPU each server used (cores), idle and peak RSS,
and checks afterwards that every acknowledged alert is in Watchkeeper's database. Without
``wrk`` it falls back to a Python load generator (httpx, 8 connections) and says so. It asserts
nothing about time. Everything listens on 127.0.0.1.

    .venv/bin/python benchmarks/intake_vs_alertmanager.py                  # ~2 minutes
    .venv/bin/python benchmarks/intake_vs_alertmanager.py --duration 5 --sizes 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from ingest import (  # benchmarks/ is on sys.path when this script runs
    free_port,
    load_average,
    pg_schema,
    probe_postgres,
)
from watchkeeper.sources.base import fingerprint_of
from watchkeeper.storage.db import Database

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TICKS = os.sysconf("SC_CLK_TCK")

# One Lua state per wrk thread: each starts at its own offset and cycles through every body.
LUA = r"""
local bodies, n, i = {}, 0, 0
local dir, auth = os.getenv("BENCH_BODIES"), os.getenv("BENCH_AUTH")
local count = tonumber(os.getenv("BENCH_COUNT"))
for k = 0, count - 1 do
  local f = assert(io.open(dir .. "/" .. k .. ".json", "rb"))
  bodies[k + 1] = f:read("*a")
  f:close()
end
local headers = {["Content-Type"] = "application/json"}
if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
local threads = 0
function setup(thread) thread:set("offset", threads); threads = threads + 1 end
function init(args) i = (offset or 0) * math.floor(count / tonumber(os.getenv("BENCH_THREADS"))) end
function request()
  i = i + 1
  return wrk.format("POST", "/api/v2/alerts", headers, bodies[(i % count) + 1])
end
function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"read_errors": %d, "connect_errors": %d, "write_errors": %d, "micros": %d, "p99_us": %d}\n',
    summary.requests, summary.errors.status, summary.errors.timeout, summary.errors.read,
    summary.errors.connect, summary.errors.write, summary.duration, latency:percentile(99)))
end
"""


def alerts(count: int, run: str) -> list[dict[str, object]]:
    """``count`` distinct firing alerts in Alertmanager's API v2 ``postableAlerts`` shape."""
    starts = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    services = [f"svc-{k:02d}" for k in range(40)]
    names = ("HighLatency", "ErrorRate", "DiskFull", "PodCrashLooping", "TargetDown")
    return [
        {
            "labels": {
                "alertname": names[k % len(names)],
                "service": services[k % len(services)],
                "instance": f"10.0.{k // 250}.{k % 250}:9100",
                "severity": ("warning", "critical")[k % 2],
                "bench": run,
                "id": str(k),
            },
            "annotations": {"summary": f"alert {k} of the intake benchmark"},
            "startsAt": starts,
            "generatorURL": f"http://prometheus.local/graph?g0.expr=up%7Bid%3D%22{k}%22%7D",
        }
        for k in range(count)
    ]


def write_bodies(items: list[dict[str, object]], size: int, into: Path) -> int:
    into.mkdir(parents=True, exist_ok=True)
    bodies = [items[k : k + size] for k in range(0, len(items), size)]
    for k, body in enumerate(bodies):
        (into / f"{k}.json").write_bytes(orjson.dumps(body))
    return len(bodies)


# -- processes --------------------------------------------------------------------------------
def family(pid: int) -> list[int]:
    """``pid`` and its descendants (serve spawns the intake drainer)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split())
    return out


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def memory_mib(pid: int, key: str) -> float:
    """Summed VmRSS (now) or VmHWM (peak) of the process family, MiB."""
    return sum(by_role_mib(pid, key).values())


def by_role_mib(pid: int, key: str) -> dict[str, float]:
    """VmRSS or VmHWM of ``pid`` and of each descendant (MiB), by :func:`role`."""
    out: dict[str, float] = {}
    for p in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    out[role(p, pid) or f"pid {p}"] = int(line.split()[1]) / 1024
    return out


def role(pid: int, api: int) -> str | None:
    """Which of serve's processes ``pid`` is: the API, the intake drainer, multiprocessing's tracker."""
    if pid == api:
        return "api"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    if b"resource_tracker" in cmdline:
        return "tracker"
    if b"watchkeeper.service.drainer" in cmdline or b"spawn_main" in cmdline:  # spawn_main: before 2026-12-04
        return "drainer"
    return None


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # bounded
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after 90 s:\n{log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    pid: int
    base: str
    auth: str  # an Authorization header, or ""


@contextlib.contextmanager
def started(
    command: list[str], log: Path, ready: str, label: str, port: int, auth: str = "", env: dict[str, str] | None = None
) -> Iterator[Target]:
    """Run ``command`` (logging to ``log``) until the block ends; ``ready``: the path that answers 200 once
    it listens on ``port``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}{ready}", proc, log, label)
            yield Target(label, proc.pid, base, auth)
        finally:
            stop(proc)


@contextlib.contextmanager
def alertmanager(workdir: Path) -> Iterator[Target]:
    config = workdir / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    command = [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with started(command, workdir / "alertmanager.log", "/-/ready", "Alertmanager", port) as target:
        yield target


@contextlib.contextmanager
def floor(workdir: Path) -> Iterator[Target]:
    """``asgi_floor.py``: one uvicorn process that reads each body and answers 202, storing nothing."""
    port = free_port()
    command = [sys.executable, str(Path(__file__).with_name("asgi_floor.py")), str(port)]
    with started(command, workdir / "floor.log", "/", "Python floor", port) as target:
        yield target


@contextlib.contextmanager
def watchkeeper(workdir: Path, url: str) -> Iterator[Target]:
    exe = Path(sys.executable).parent / "watchkeeper"
    env = {**os.environ, "WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_LOG_LEVEL": "warning"}
    env.pop("WATCHKEEPER_CONFIG", None)
    made = subprocess.run(
        [str(exe), "token", "create", "--role", "ingest", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0 or not made.stdout.strip():
        raise RuntimeError(f"watchkeeper token create failed: {made.stderr.strip()}")
    token = made.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with started(command, workdir / "serve.log", "/healthz", "Watchkeeper", port, f"Bearer {token}", env) as target:
        yield target


# -- load -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Load:
    ok_requests: int
    failed: int
    seconds: float
    p99_ms: float
    generator: str


def drive_wrk(target: Target, bodies: Path, count: int, args: argparse.Namespace, script: Path) -> Load:
    env = {
        **os.environ,
        "BENCH_BODIES": str(bodies),
        "BENCH_COUNT": str(count),
        "BENCH_AUTH": target.auth,
        "BENCH_THREADS": str(args.threads),
    }
    run = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{args.duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            target.base,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=False,
    )
    line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT ")), None)
    if run.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr.strip()} {run.stdout[-500:]}")
    got = json.loads(line[7:])
    failed = got["status_errors"] + got["timeouts"] + got["read_errors"] + got["write_errors"]
    return Load(got["requests"] - got["status_errors"], failed, got["micros"] / 1e6, got["p99_us"] / 1000, "wrk")


def drive_python(target: Target, bodies: Path, count: int, args: argparse.Namespace) -> Load:
    """The fallback when ``wrk`` is absent: httpx on asyncio, the same connections and bodies."""
    payloads = [(bodies / f"{k}.json").read_bytes() for k in range(count)]
    headers = {"content-type": "application/json", **({"authorization": target.auth} if target.auth else {})}

    async def main() -> Load:
        ok = failed = 0
        latencies: list[float] = []
        deadline = time.perf_counter() + args.duration
        limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
        async with httpx.AsyncClient(base_url=target.base, headers=headers, limits=limits, timeout=10) as client:

            async def worker(offset: int) -> None:
                nonlocal ok, failed
                i = offset * (count // args.connections)
                while time.perf_counter() < deadline:
                    i += 1
                    sent = time.perf_counter()
                    try:
                        answer = await client.post("/api/v2/alerts", content=payloads[i % count])
                    except httpx.HTTPError:
                        failed += 1
                        continue
                    latencies.append(time.perf_counter() - sent)
                    if answer.status_code < 300:
                        ok += 1
                    else:
                        failed += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(args.connections)))
            took = time.perf_counter() - started
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
        return Load(ok, failed, took, p99, "python (httpx; wrk not installed)")

    return asyncio.run(main())


@dataclass(frozen=True, slots=True)
class Measured:
    label: str
    size: int
    load: Load
    cores: float
    idle_mib: float
    peak_mib: float
    drain_s: float = 0.0
    peaks: dict[str, float] = field(default_factory=dict)  # each process's peak, by role
    commits: str = ""  # Watchkeeper's journal group commits, from its /metrics

    @property
    def alerts_per_s(self) -> float:
        return self.load.ok_requests * self.size / self.load.seconds

    @property
    def processed_per_s(self) -> float:
        """Acknowledged alerts over the load's time plus the time to process the backlog left."""
        return self.load.ok_requests * self.size / (self.load.seconds + self.drain_s)


def measure(target: Target, size: int, bodies: Path, count: int, args: argparse.Namespace, script: Path) -> Measured:
    time.sleep(1.0)  # settle after start-up
    idle = memory_mib(target.pid, "VmRSS")
    cpu0 = cpu_seconds(target.pid)
    if shutil.which("wrk") and not args.python_load:
        load = drive_wrk(target, bodies, count, args, script)
    else:
        load = drive_python(target, bodies, count, args)
    cores = (cpu_seconds(target.pid) - cpu0) / load.seconds
    drain = wait_drained(target) if target.label == "Watchkeeper" else 0.0
    peaks = by_role_mib(target.pid, "VmHWM")
    commits = group_commits(target.base) if target.label == "Watchkeeper" else ""
    return Measured(target.label, size, load, cores, idle, sum(peaks.values()), drain, peaks, commits)


def group_commits(base: str) -> str:
    """Where a request's durability wait goes, from ``serve``'s ``/metrics``: the journal's group commits,
    bodies per commit, a commit's mean time (fsync included) and a group's oldest request's mean wait."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    sums = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("watchkeeper_intake_") and s.name.endswith(("_sum", "_count"))}
    groups = sums.get("watchkeeper_intake_commit_seconds_count", 0.0)
    if not groups:
        return "no group commit seen in /metrics"
    return (f"{groups:,.0f} group commits of {sums['watchkeeper_intake_group_bodies_sum'] / groups:.1f} bodies; "
            f"a commit {sums['watchkeeper_intake_commit_seconds_sum'] / groups * 1000:.2f} ms, its oldest request's "
            f"wait from append to commit {sums['watchkeeper_intake_wait_seconds_sum'] / groups * 1000:.2f} ms (means)")


def wait_drained(target: Target, limit: float = 180.0) -> float:
    """Seconds until Watchkeeper's intake journal is empty (alerts acknowledged, not yet
    correlated and committed to the database), read from /healthz; bounded by ``limit``."""
    return drained(target.base, limit)


def drained(base: str, limit: float = 180.0) -> float:
    """Seconds until the intake journal of the ``serve`` at ``base`` is empty (``/healthz``), bounded by ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        details = httpx.get(f"{base}/healthz", timeout=10).json().get("details", {})
        if not details.get("intake", {}).get("backlog", 0):
            break
        time.sleep(0.2)
    return time.monotonic() - started


def verify(url: str, items: list[dict[str, object]], acknowledged: int, in_flight: int) -> str:
    """Every acknowledged alert is in the database. Each alert sent is one event row, so the rows
    number at least the alerts acknowledged, and at most that plus what was in flight when the load
    stopped (committed, never answered): a lost alert could hide only behind those."""
    db = Database(url)
    try:
        with db.read() as conn:
            events = int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())
            present = {r[0] for r in conn.execute(text("SELECT fingerprint FROM alerts"))}
    finally:
        db.dispose()
    wanted = {fingerprint_of(a["labels"]) for a in items}  # type: ignore[arg-type]
    verdict = "OK" if acknowledged <= events <= acknowledged + in_flight and present <= wanted else "LOST"
    return (
        f"{verdict}: {events:,} event rows for {acknowledged:,} acknowledged alerts "
        f"(+{events - acknowledged:,} committed, in flight at the stop; at most {in_flight:,}); "
        f"{len(present & wanted):,}/{len(wanted):,} distinct alerts stored"
    )


def run(args: argparse.Namespace) -> int:
    if not Path(ALERTMANAGER).exists():
        print(f"{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager", file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("note: wrk is not installed (apt-get install wrk): using the Python load generator instead")
    results: list[tuple[Measured, Measured, str]] = []
    floors: dict[int, Measured] = {}
    with tempfile.TemporaryDirectory(prefix="wk-intake-") as tmp:
        work = Path(tmp)
        script = work / "cycle.lua"
        script.write_text(LUA)
        for size in args.sizes:
            tag = uuid.uuid4().hex[:8]
            items = alerts(args.alerts, tag)
            bodies = work / f"bodies-{size}"
            count = write_bodies(items, size, bodies)
            am_dir = work / f"am-{size}"
            am_dir.mkdir()
            with alertmanager(am_dir) as target:
                am = measure(target, size, bodies, count, args, script)
            if args.floor:
                with floor(am_dir) as target:
                    floors[size] = measure(target, size, bodies, count, args, script)
            wk_dir = work / f"wk-{size}"
            wk_dir.mkdir()
            with database(args, wk_dir) as url, watchkeeper(wk_dir, url) as target:
                wk = measure(target, size, bodies, count, args, script)
                results.append((am, wk, verify(url, items, wk.load.ok_requests * size, args.connections * size)))
    engine = "PostgreSQL" if args.postgres_url else "SQLite"
    print(
        f"\nload: {results[0][0].load.generator}, {args.connections} connections, {args.duration} s per run, "
        f"{args.alerts:,} distinct alerts; Watchkeeper on {engine}; load average {load_average()}"
    )
    print(
        "alerts/s: acknowledged (2xx) alerts per second of load; cores: CPU seconds per second of load, all "
        "processes; RSS summed over the server's processes"
    )
    print(
        f"{'body':>6} {'server':<13} {'alerts/s':>10} {'ratio':>7} {'p99 ms':>8} {'cores':>6} "
        f"{'idle MiB':>9} {'peak MiB':>9} {'failed':>7}"
    )
    for am, wk, verdict in results:
        for m in (am, *([floors[am.size]] if am.size in floors else []), wk):
            ratio = m.alerts_per_s / am.alerts_per_s if am.alerts_per_s else float("nan")
            print(
                f"{m.size:>6} {m.label:<13} {m.alerts_per_s:>10,.0f} {ratio:>6.2f}x {m.load.p99_ms:>8.1f} "
                f"{m.cores:>6.2f} {m.idle_mib:>9.0f} {m.peak_mib:>9.0f} {m.load.failed:>7}"
            )
        if wk.drain_s:
            print(
                f"{'':>6} Watchkeeper: {wk.drain_s:.1f} s after the load to correlate and commit the backlog; "
                f"processed end to end {wk.processed_per_s:,.0f} alerts/s "
                f"({wk.processed_per_s / am.alerts_per_s:.2f}x Alertmanager's intake)"
            )
        if wk.commits:
            print(f"{'':>6} journal: {wk.commits}")
        if len(wk.peaks) > 1:
            print(f"{'':>6} peak RSS by process: " + ", ".join(f"{r} {m:.0f}" for r, m in wk.peaks.items()) + " MiB")
        print(f"{'':>6} durability: {verdict}")
    return 0 if all(v.startswith("OK") for _, _, v in results) else 1


@contextlib.contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """SQLite in ``workdir``, or a fresh PostgreSQL schema dropped afterwards."""
    if not args.postgres_url:
        yield f"sqlite:///{workdir / 'watchkeeper.db'}"
        return
    pg, said = probe_postgres(args.postgres_url)
    if pg is None:
        raise RuntimeError(said)
    with pg_schema(pg) as (_schema, url):
        yield url


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=10_000, help="distinct alerts (default 10,000)")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 10],
        help="alerts per body, comma separated (default 100,10)",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per server and size")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="run Watchkeeper on PostgreSQL (a fresh schema, dropped afterwards), e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also drive benchmarks/asgi_floor.py: one uvicorn process that reads each body and answers 202, "
        "storing nothing (the most one Python process on this stack takes)",
    )
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even with wrk")
    return parser.parse_args(argv)


print = functools.partial(print, flush=True)


if __name__ == "__main__":
    sys.exit(run(parse_args(None)))
