"""Decision latency of a new incident while a slow runbook runs: the split responder/worker
(today's ``Governance.start``) against the single loop it replaced (respond, then work, in one
thread), both measured in the same run, on the same database. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/governance.py [--rounds 5] [--runbook-seconds 2] [--postgres-url URL]

Each round opens an incident whose ``auto`` runbook sleeps ``--runbook-seconds``; once that
runbook is running, a second incident (another service, a runbook that needs approval) opens and
the time until its decision is in the database is measured (polled every millisecond).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml

from watchkeeper.execute.executors import StepContext, StepResult, registry
from watchkeeper.governance import Governance
from watchkeeper.model import Cause
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import governance as store

INTERVAL = 0.05  # the responder/worker poll interval of both modes


class Sleeper:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()

    def __call__(self, _args: dict[str, Any], _ctx: StepContext) -> StepResult:
        self.started.set()
        time.sleep(self.seconds)
        return StepResult(True, "slept")


def runbooks(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for rb_id, alert, autonomy in (("slow", "Slow", "auto"), ("ask", "Down", "approve")):
        (directory / f"{rb_id}.yaml").write_text(yaml.safe_dump({
            "id": rb_id, "title": rb_id, "risk": "low", "autonomy": autonomy, "selector": {"alertnames": [alert]},
            "steps": [{"name": "go", "python": {"executor": "sleeper", "args": {}}}]}))
    return directory


class SingleLoop:
    """The loop before the split: decide, then act, in one thread."""

    def __init__(self, gov: Governance, interval: float) -> None:
        self.gov, self.interval = gov, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.gov.respond()
            self.gov.work()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(url: str, mode: str, rounds: int, seconds: float, workdir: Path) -> list[float]:
    wk = Watchkeeper(Settings(database_url=url))
    wk.upgrade()
    sleeper = Sleeper(seconds)
    gov = Governance.from_directory(wk.db, lambda: datetime.now(UTC), runbooks(workdir / "runbooks"),
                                    executors=registry(extra={"sleeper": sleeper}))
    loop: Any = SingleLoop(gov, INTERVAL) if mode == "single loop" else None
    if loop is None:
        gov.start(INTERVAL)
    else:
        loop.start()
    latencies = []
    try:
        for n in range(rounds):
            sleeper.started.clear()
            slow = fire(wk, "Slow", f"{mode[:5]}-slow-{n}")
            gov.set_causes(slow, [Cause(f"{mode[:5]}-slow-{n}", confidence=0.99)], "bench")
            if not sleeper.started.wait(30):
                raise SystemExit("the slow runbook never started")
            time.sleep(0.05)
            second = fire(wk, "Down", f"{mode[:5]}-second-{n}")
            started = time.perf_counter()
            wait(lambda i=second: decided(wk, i))
            latencies.append(time.perf_counter() - started)
            wait(lambda i=slow: finished(wk, i))
    finally:
        if loop is None:
            gov.stop()
        else:
            loop.stop()
        wk.close()
    return latencies


def fire(wk: Watchkeeper, name: str, service: str) -> int:
    body = {"service": service, "name": name, "summary": name, "fingerprint": f"{service}-{name}"}
    return wk.ingest("events", orjson.dumps(body), "application/json", "bench").incidents[0]


def decided(wk: Watchkeeper, incident: int) -> bool:
    with wk.db.read() as conn:
        return bool(store.decision_records(conn, incident))


def finished(wk: Watchkeeper, incident: int) -> bool:
    with wk.db.read() as conn:
        return all(a["status"] not in ("queued", "running") for a in store.actions_of(conn, incident))


def wait(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.001)


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    if url is None:
        yield None
        return
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"wk_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL skipped: {exc}".splitlines()[0])
        yield None
        return
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runbook-seconds", type=float, default=2.0)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"decision latency of a second incident while a {args.runbook_seconds:g} s runbook runs "
          f"({args.rounds} rounds, poll interval {INTERVAL * 1000:.0f} ms)")
    print(f"{'database':<11} {'mode':<22} {'median ms':>10} {'p95 ms':>9} {'max ms':>9}")
    with tempfile.TemporaryDirectory() as tmp, postgres(None if args.no_postgres else args.postgres_url) as pg:
        urls = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")] + ([("PostgreSQL", pg)] if pg else [])
        for label, url in urls:
            for mode in ("single loop", "split (responder+worker)"):
                got = measure(url, mode, args.rounds, args.runbook_seconds, Path(tmp) / label / mode[:5])
                ms = sorted(x * 1000 for x in got)
                p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
                print(f"{label:<11} {mode:<22} {statistics.median(ms):>10.1f} {p95:>9.1f} {ms[-1]:>9.1f}")


if __name__ == "__main__":
    main()
