"""Failure tests with real processes: two ``watchkeeper worker`` processes on one PostgreSQL and
a NATS of the test's own. kill -9 one in the middle of a stream → the other takes its partitions
over, and the one restarted gets its share back; PostgreSQL connections terminated during ingest
→ the workers retry and resume. Afterwards everything acknowledged is committed exactly once and
the incidents are those of a single-process replay of the same stream. Bounded by deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from bus.natsd import NatsServer, wait_for
from bus.streams import bodies, counts_of, events_stored, grouping_of, replay
from conftest import PG_DSN
from watchkeeper.bus import open_jetstream
from watchkeeper.bus.base import messages_of
from watchkeeper.bus.jetstream import JetStreamBus
from watchkeeper.model import Event
from watchkeeper.service import Watchkeeper
from watchkeeper.storage.bus import lock_classes

pytestmark = [pytest.mark.postgres]

PARTITIONS = 4
BODIES = 300


class Workers:
    """``watchkeeper worker`` processes with one environment; logs under ``workdir``."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        script = Path(sys.executable).parent / "watchkeeper"
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen([str(script), "worker", "--batch", "50"], env=self.env, cwd=self.workdir,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def logs(self) -> str:
        states = ", ".join(f"{name}: {'running' if proc.poll() is None else f'exited {proc.returncode}'}"
                           for name, proc in self.procs.items())
        return f"workers {states}\n" + "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.workdir.glob("*.log")))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def owners(stream: str) -> dict[int, int]:
    """Backend pid → partitions of ``stream`` it holds (the ownership locks)."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s "
            "AND objsubid = 2 AND granted GROUP BY pid", (lock_classes(stream)[0],)).fetchall()
    return {int(pid): int(n) for pid, n in rows}


def shares(service: Watchkeeper) -> list[int]:
    """How many partitions each worker of this test's stream owns, sorted."""
    return sorted(owners(service.settings.bus_stream).values())


def until(check: Callable[[], bool], service: Watchkeeper, workers: Workers, *, timeout: float, what: str) -> None:
    """``wait_for``, failing with what a reader needs: the partitions each worker holds and its log."""
    def alive_and(check: Callable[[], bool]) -> bool:
        if any(proc.poll() is not None for proc in workers.procs.values()):
            raise AssertionError(f"a worker exited while waiting for {what}")
        return check()

    try:
        wait_for(lambda: alive_and(check), timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: shares {shares(service)}\n{workers.logs()}") from None


def processed(service: Watchkeeper) -> int:
    from sqlalchemy import text

    with service.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM bus_processed")).scalar_one())


@pytest.fixture
def cluster(
    nats_server: NatsServer, pg_url: str, make_service: Callable[..., Watchkeeper], tmp_path: Path,
) -> Iterator[tuple[Watchkeeper, JetStreamBus, Workers, str]]:
    app_name = f"wkbus_{uuid.uuid4().hex[:10]}"
    stream = app_name.upper()  # its own stream name: its own lock classes on the shared database
    url = f"{pg_url}&application_name={app_name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    env.update({"WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_BUS_URL": nats_server.url,
                "WATCHKEEPER_BUS_PARTITIONS": str(PARTITIONS), "WATCHKEEPER_BUS_STREAM": stream,
                "WATCHKEEPER_BUS_LEASE_SECONDS": "0.5",
                "WATCHKEEPER_LOG_LEVEL": "info", "WATCHKEEPER_RETENTION_DAYS": "0"})
    init = subprocess.run([str(Path(sys.executable).parent / "watchkeeper"), "bus", "init"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert init.returncode == 0, init.stderr
    assert f"consumer wk-p{PARTITIONS - 1}" in init.stdout
    service = make_service(pg_url, bus_url=nats_server.url, bus_partitions=PARTITIONS, bus_stream=stream)
    bus = open_jetstream(service.settings)
    workers = Workers(env, tmp_path)
    try:
        yield service, bus, workers, app_name
    finally:
        workers.close()
        bus.close()


def publish_stream(service: Watchkeeper, bus: JetStreamBus, n: int, pace: float = 0.0) -> list[Event]:
    """What the API does: accept, then publish acknowledged; the events, in stream order."""
    sent: list[Event] = []
    for body in bodies(n):
        events = service.accept("events", orjson.dumps(body), "application/json")
        for p, payload, mid in messages_of("events", "token:test", events, uuid.uuid4().hex, PARTITIONS):
            bus.publish(p, payload, mid)
        sent.extend(events)
        if pace:
            time.sleep(pace)
    return sent


def reconcile(service: Watchkeeper, bus: JetStreamBus, sent: list[Event], workers: Workers) -> None:
    try:
        wait_for(lambda: events_stored(service) >= len(sent) and not any(bus.lag().values()),
                 timeout=120, what="every acknowledged event committed and acknowledged", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {events_stored(service)} of {len(sent)} events, lag {bus.lag()}\n"
                             f"{workers.logs()}") from None
    assert events_stored(service) == len(sent)  # nothing lost, nothing doubled
    grouping, counts = replay(service, sent)
    assert counts_of(service) == counts
    assert grouping_of(service) == grouping


def test_kill_9_a_worker_mid_stream(cluster: tuple[Watchkeeper, JetStreamBus, Workers, str]) -> None:
    service, bus, workers, _ = cluster
    workers.start("a")
    workers.start("b")
    until(lambda: shares(service) == [2, 2], service, workers, timeout=120, what="two workers sharing 4 partitions")
    sent: list[Event] = []
    publisher = threading.Thread(target=lambda: sent.extend(publish_stream(service, bus, BODIES, pace=0.005)))
    publisher.start()
    wait_for(lambda: processed(service) > 50, timeout=60, what="the workers to be mid-stream")
    workers.kill9("a")
    until(lambda: shares(service) == [PARTITIONS], service, workers, timeout=30, what="the survivor owning every partition")
    publisher.join(120)
    reconcile(service, bus, sent, workers)
    workers.start("a2")  # it returns: partitions move back
    until(lambda: shares(service) == [2, 2], service, workers, timeout=120, what="the partitions shared again")
    more = publish_stream(service, bus, 40)
    reconcile(service, bus, sent + more, workers)


def test_terminated_database_connections_are_retried(
    cluster: tuple[Watchkeeper, JetStreamBus, Workers, str],
) -> None:
    service, bus, workers, app_name = cluster
    workers.start("a")
    workers.start("b")
    until(lambda: shares(service) == [2, 2], service, workers, timeout=120, what="two workers sharing 4 partitions")
    sent: list[Event] = []
    publisher = threading.Thread(target=lambda: sent.extend(publish_stream(service, bus, BODIES, pace=0.005)))
    publisher.start()
    terminated = 0
    for turn in range(3):
        wait_for(lambda t=turn: processed(service) > 30 * (t + 1), timeout=60, what="progress before terminating")
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            terminated += len(conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (app_name,)).fetchall())
    assert terminated >= 2
    publisher.join(120)
    reconcile(service, bus, sent, workers)
    until(lambda: shares(service) == [2, 2], service, workers, timeout=120, what="the locks taken again")
