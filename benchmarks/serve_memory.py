"""Memory of ``watchkeeper serve`` through an alert storm: the API process and the intake drainer.

Starts a real ``watchkeeper serve`` on 127.0.0.1 (SQLite in a temp dir) and reads, per process,
RSS (``/proc/PID/status`` VmRSS, peak VmHWM) and PSS (``/proc/PID/smaps_rollup``): idle after
start-up (no drainer yet: it is spawned at the first body), settled after one small body (the
drainer now runs), then during a storm of ``--distinct`` distinct alerts in Alertmanager API v2
bodies (``--per-body`` alerts each, ``--connections`` concurrent posters), sampled every 0.1 s
until the intake journal is drained (``/healthz``), and after it. The baseline, measured in the
same run: a bare ``python -c pass``, ``import fastapi, sqlalchemy`` (the floor of any FastAPI +
SQLAlchemy service) and ``import watchkeeper.server.app``.

``--compare-src DIR`` runs everything a second time with ``PYTHONPATH=DIR`` (another checkout's
``src``, e.g. from ``git archive``) in the same venv: before and after in one run. ``--env K=V``
adds a variant with that environment (e.g. ``MALLOC_ARENA_MAX=2``). It asserts nothing about time.

    .venv/bin/python benchmarks/serve_memory.py --distinct 10000
    .venv/bin/python benchmarks/serve_memory.py --distinct 10000 --compare-src /tmp/base/src --env MALLOC_ARENA_MAX=2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from ingest import free_port, load_average  # benchmarks/ is on sys.path when this script runs
from intake_vs_alertmanager import alerts, drained, family, role, stop, wait_ready

ROLES = ("api", "drainer", "tracker")


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (``/proc/PID/status``) and Pss (``smaps_rollup``), KiB; {} when gone."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    except OSError:
        return {}
    return out


def snapshot(api: int) -> dict[str, dict[str, int]]:
    """Per role: VmRSS, VmHWM, Pss of serve's processes now."""
    found: dict[str, dict[str, int]] = {}
    for pid in family(api):
        name = role(pid, api)
        if name is not None:
            got = status_kib(pid)
            if got:
                found[name] = got
    return found


@dataclass
class Sampler:
    """Samples every 0.1 s in a thread: the highest PSS per role, and the highest RSS and PSS
    of the API + drainer pair at one instant."""

    api: int
    pss: dict[str, int] = field(default_factory=dict)
    pair_rss: int = 0
    pair_pss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)

    def sample(self) -> None:
        now = snapshot(self.api)
        for name, got in now.items():
            self.pss[name] = max(self.pss.get(name, 0), got.get("Pss", 0))
        pair = [now[n] for n in ("api", "drainer") if n in now]
        self.pair_rss = max(self.pair_rss, sum(g.get("VmRSS", 0) for g in pair))
        self.pair_pss = max(self.pair_pss, sum(g.get("Pss", 0) for g in pair))

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)
            self.sample()


# -- the baseline -----------------------------------------------------------------------------------
PROBE = (
    "import pathlib;{code};"
    "s=pathlib.Path('/proc/self/status').read_text().splitlines();"
    "r=[l for l in s if l.startswith(('VmRSS','VmHWM'))];"
    "p=[l for l in pathlib.Path('/proc/self/smaps_rollup').read_text().splitlines() if l.startswith('Pss:')];"
    "print(' '.join(l.split()[1] for l in r+p))"
)


def probe(code: str, env: dict[str, str]) -> tuple[float, float, float]:
    """RSS, peak RSS and PSS (MiB) of a fresh interpreter after ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], env=env, capture_output=True, text=True, timeout=120,
        check=True,
    )
    rss, hwm, pss = (int(x) / 1024 for x in done.stdout.split())
    return rss, hwm, pss


# -- serve ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def serve(workdir: Path, env: dict[str, str]) -> Iterator[tuple[int, str, str]]:
    """A ``watchkeeper serve`` on SQLite in ``workdir``: (pid, base URL, Authorization header)."""
    exe = Path(sys.executable).parent / "watchkeeper"
    env = {**env, "WATCHKEEPER_DATABASE_URL": f"sqlite:///{workdir / 'wk.db'}", "WATCHKEEPER_LOG_LEVEL": "warning"}
    env.pop("WATCHKEEPER_CONFIG", None)
    made = subprocess.run(
        [str(exe), "token", "create", "--role", "ingest", "--name", "bench"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    if made.returncode != 0 or not made.stdout.strip():
        raise RuntimeError(f"watchkeeper token create failed: {made.stderr.strip()}")
    token = made.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/healthz", proc, log, "watchkeeper serve")
            yield proc.pid, base, f"Bearer {token}"
        finally:
            stop(proc)


def post_all(base: str, auth: str, bodies: list[bytes], connections: int) -> tuple[int, int]:
    """Every body once, ``connections`` at a time; 503s are retried after a pause. (accepted, refused)."""
    headers = {"content-type": "application/json", "authorization": auth}

    async def main() -> tuple[int, int]:
        ok = refused = 0
        todo = list(reversed(bodies))
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

            async def worker() -> None:
                nonlocal ok, refused
                while todo:
                    body = todo.pop()
                    for _ in range(100):  # bounded retries of a 503 (backlog full)
                        answer = await client.post("/api/v2/alerts", content=body)
                        if answer.status_code != 503:
                            break
                        await asyncio.sleep(0.5)
                    if answer.status_code < 300:
                        ok += 1
                    else:
                        refused += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
        return ok, refused

    return asyncio.run(main())


@dataclass
class Run:
    label: str
    baseline: dict[str, tuple[float, float, float]]
    idle: dict[str, dict[str, int]]
    settled: dict[str, dict[str, int]]
    peak: dict[str, dict[str, int]]  # VmHWM per role at the end
    peak_pss: dict[str, int]
    pair_rss: int
    pair_pss: int
    after: dict[str, dict[str, int]]
    storm_s: float
    drain_s: float
    accepted: int
    refused: int


def one_run(label: str, env: dict[str, str], args: argparse.Namespace) -> Run:
    baseline = {
        "python -c pass": probe("pass", env),
        "import fastapi, sqlalchemy": probe("import fastapi, sqlalchemy", env),
        "import watchkeeper.server.app": probe("import watchkeeper.server.app", env),
    }
    items = alerts(args.distinct, uuid.uuid4().hex[:8])
    bodies = [orjson.dumps(items[k : k + args.per_body]) for k in range(0, len(items), args.per_body)]
    with tempfile.TemporaryDirectory(prefix="wk-mem-") as tmp, serve(Path(tmp), env) as (pid, base, auth):
        time.sleep(args.settle)
        idle = snapshot(pid)
        post_all(base, auth, [orjson.dumps(alerts(1, "warm-" + uuid.uuid4().hex[:8]))], 1)
        drained(base, 300.0)
        time.sleep(args.settle)
        settled = snapshot(pid)
        sampler = Sampler(pid)
        with sampler.running():
            started = time.monotonic()
            accepted, refused = post_all(base, auth, bodies, args.connections)
            storm_s = time.monotonic() - started
            drain_s = drained(base, 300.0)
        peak = snapshot(pid)
        time.sleep(args.settle)
        after = snapshot(pid)
    return Run(label, baseline, idle, settled, peak, sampler.pss, sampler.pair_rss, sampler.pair_pss, after,
               storm_s, drain_s, accepted, refused)


def mib(kib: int | None) -> str:
    return f"{kib / 1024:7.0f}" if kib else f"{'-':>7}"


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(f"\n{args.distinct:,} distinct alerts, {args.per_body} per body, {args.connections} connections; "
          f"SQLite; load average {load_average()} (1 min), {Path('/proc/loadavg').read_text().strip()}")
    print("baseline (a fresh interpreter, MiB): RSS / peak RSS / PSS")
    for run in runs:
        for what, (rss, hwm, pss) in run.baseline.items():
            print(f"  {run.label:<18} {what:<32} {rss:6.0f} {hwm:6.0f} {pss:6.0f}")
    print("\nserve, MiB: idle = after start-up; settled = after one body (drainer spawned); "
          "peak = storm high-water mark (RSS: VmHWM; PSS: sampled every 0.1 s); after = settled after the storm")
    print(f"{'variant':<18} {'process':<8} {'idle RSS':>8} {'settled':>8} {'set.PSS':>8} {'peakRSS':>8} "
          f"{'peakPSS':>8} {'afterRSS':>8}")
    for run in runs:
        for name in ROLES:
            print(f"{run.label:<18} {name:<8} {mib(run.idle.get(name, {}).get('VmRSS')):>8} "
                  f"{mib(run.settled.get(name, {}).get('VmRSS')):>8} {mib(run.settled.get(name, {}).get('Pss')):>8} "
                  f"{mib(run.peak.get(name, {}).get('VmHWM')):>8} {mib(run.peak_pss.get(name)):>8} "
                  f"{mib(run.after.get(name, {}).get('VmRSS')):>8}")
        print(f"{run.label:<18} {'pair':<8} {'':>8} {'':>8} {'':>8} {mib(run.pair_rss):>8} {mib(run.pair_pss):>8}"
              f"   (API + drainer at one instant, sampled)")
        print(f"{run.label:<18} storm: {run.accepted:,} bodies accepted, {run.refused} refused, posted in "
              f"{run.storm_s:.1f} s, drained {run.drain_s:.1f} s later")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--distinct", type=int, default=10_000, help="distinct alerts in the storm (10,000)")
    parser.add_argument("--per-body", type=int, default=100, help="alerts per body (100)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent posters (8)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before an idle reading (2)")
    parser.add_argument("--compare-src", type=Path, default=None,
                        help="also run with PYTHONPATH=DIR (another checkout's src) in the same venv")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="also run this tree with K=V in the environment (repeatable, one variant each)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    base_env = dict(os.environ)
    base_env.pop("PYTHONPATH", None)
    variants: list[tuple[str, dict[str, str]]] = []
    if args.compare_src is not None:
        variants.append(("compared", {**base_env, "PYTHONPATH": str(args.compare_src.resolve())}))
    variants.append(("this tree", base_env))
    for pair in args.env:
        key, _, value = pair.partition("=")
        variants.append((pair, {**base_env, key: value}))
    runs = []
    for label, env in variants:
        print(f"running: {label}")
        runs.append(one_run(label, env, args))
    report(runs, args)
    return 0 if all(r.refused == 0 for r in runs) else 1


print = functools.partial(print, flush=True)


if __name__ == "__main__":
    sys.exit(run(parse_args(None)))
