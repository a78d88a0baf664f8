"""``POST /api/v2/alerts`` on the embedded default, with real processes: senders keep posting while
``watchkeeper serve`` is killed with SIGKILL (its drainer child is left orphaned mid-batch); after a
restart every alert that was acknowledged with 202 is stored exactly once — nothing lost, nothing
counted twice — and the journal drains to empty."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from e2e.servers import Servers, http, start_watchkeeper, wait_until, watchkeeper_command

pytestmark = pytest.mark.e2e

PER_BODY = 10


def body(sender: int, n: int) -> list[dict[str, object]]:
    """``PER_BODY`` distinct alerts, named by sender and body number (each alert once in the whole run)."""
    return [{"labels": {"alertname": "Down", "service": f"svc{k % 5}", "instance": f"s{sender}-b{n}-a{k}"},
             "annotations": {"summary": "down"}, "startsAt": "2026-12-03T10:00:00Z"} for k in range(PER_BODY)]


@pytest.mark.parametrize("drainer", ["process", "thread"])
def test_kill_9_loses_no_acknowledged_alert_and_counts_none_twice(tmp_path: Path, drainer: str) -> None:
    """Either drainer (``intake_drainer``): a child process left orphaned mid-batch, or a thread killed with the API."""
    with Servers() as servers:
        wk = start_watchkeeper(servers, tmp_path / "wk", roles=("ingest",), env={"WATCHKEEPER_INTAKE_DRAINER": drainer})
        acknowledged: set[str] = set()
        lock, stop = threading.Lock(), threading.Event()

        def send(sender: int) -> None:
            n = 0
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    alerts = body(sender, n)
                    n += 1
                    try:
                        answer = client.post(f"{wk.url}/api/v2/alerts", json=alerts, headers=wk.headers("ingest"))
                    except httpx.HTTPError:
                        continue  # the server is down: nothing was acknowledged
                    if answer.status_code == 202:
                        with lock:
                            acknowledged.update(str(a["labels"]["instance"]) for a in alerts)  # type: ignore[index]
                    else:
                        assert answer.status_code == 503, answer.text  # back-pressure is the only refusal
                        time.sleep(0.05)

        senders = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(4)]
        for t in senders:
            t.start()
        wait_until(lambda: len(acknowledged) >= 2_000, what="2,000 acknowledged alerts", timeout=60,
                   servers=servers)
        proc = wk.server.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)  # the API process only: a drainer child is orphaned
        time.sleep(1.0)
        stop.set()
        for t in senders:
            t.join(10)
        wk.server.stop()
        with lock:
            before = len(acknowledged)
        assert before >= 2_000

        wk.server.start()  # the new drainer resumes from what the journal holds
        with http() as client:
            def drained() -> bool:
                details = client.get(f"{wk.url}/healthz").json().get("details", {})
                return details.get("intake", {}).get("backlog", 1) == 0

            wait_until(drained, what="the intake journal to drain", timeout=120, servers=servers)
        wk.server.stop()

    with sqlite3.connect(tmp_path / "wk" / "watchkeeper.db") as db:
        rows = [r[0] for r in db.execute("SELECT json_extract(labels, '$.instance') FROM events")]
    stored = set(rows)
    assert len(rows) == len(stored), "an alert was stored twice"
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged alerts were lost"
    # bodies journalled whose answer never arrived may be stored too: whole bodies, never parts
    assert len(stored) % PER_BODY == 0


def children(pid: int) -> dict[int, str]:
    """``pid``'s child processes: their pids and command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not reaped
    except OSError:
        return True


def test_serve_drains_in_one_child_and_stops_it(tmp_path: Path) -> None:
    """The drainer is the API's only child (no multiprocessing resource tracker beside it), started at
    the first body; a graceful stop drains what is left and ends it."""
    with Servers() as servers:
        wk = start_watchkeeper(servers, tmp_path / "wk", roles=("ingest",))
        proc = wk.server.proc
        assert proc is not None
        assert children(proc.pid) == {}  # nobody posted yet: no drainer
        with http() as client:
            answer = client.post(f"{wk.url}/api/v2/alerts", json=body(0, 0), headers=wk.headers("ingest"))
            assert answer.status_code == 202, answer.text
            wait_until(lambda: client.get(f"{wk.url}/healthz").json()["details"]["intake"]["backlog"] == 0,
                       what="the intake journal to drain", timeout=60, servers=servers)
        [(drainer, command)] = children(proc.pid).items()
        assert "watchkeeper.service.drainer" in command
        wk.server.stop()
        wait_until(lambda: gone(drainer), what="the drainer to exit", timeout=30, servers=servers)
    with sqlite3.connect(tmp_path / "wk" / "watchkeeper.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == PER_BODY


def test_serve_drains_in_a_thread_of_its_own_when_told(tmp_path: Path) -> None:
    """``intake_drainer: thread`` (less memory, slower intake): one process; the journal drains the same."""
    with Servers() as servers:
        wk = start_watchkeeper(servers, tmp_path / "wk", roles=("ingest",),
                               env={"WATCHKEEPER_INTAKE_DRAINER": "thread"})
        proc = wk.server.proc
        assert proc is not None
        with http() as client:
            for n in range(3):
                answer = client.post(f"{wk.url}/api/v2/alerts", json=body(n, n), headers=wk.headers("ingest"))
                assert answer.status_code == 202, answer.text
            wait_until(lambda: client.get(f"{wk.url}/healthz").json()["details"]["intake"]["backlog"] == 0,
                       what="the intake journal to drain", timeout=60, servers=servers)
            assert children(proc.pid) == {}  # no drainer process
        wk.server.stop()
    with sqlite3.connect(tmp_path / "wk" / "watchkeeper.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3 * PER_BODY


def test_a_drainer_that_is_neither_is_refused_with_a_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "WATCHKEEPER_INTAKE_DRAINER": "fork",
           "WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}"}
    result = subprocess.run([str(watchkeeper_command()), "serve", "--port", "0"], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2 and "intake_drainer" in result.stderr and "process" in result.stderr
