"""``kill -9`` of ``serve`` in the middle of delivering the outbox: after a restart every message is
delivered — nothing lost; the only duplicates are messages delivered just before the kill, which
the receiver recognises by their delivery key (a real subprocess test, bounded in time)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import yaml

from e2e.servers import Server, clean_env, free_port, wait_until, watchkeeper_command
from integrations.conftest import HOOK_SECRET
from integrations.standins import StandIn
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import load_settings
from watchkeeper.storage import outbox as store

INCIDENTS = 60


@pytest.mark.e2e
def test_kill_9_mid_delivery_loses_nothing(tmp_path: Path, standins: dict[str, StandIn]) -> None:
    sink = standins["webhook"]
    sink.delay = 0.05  # slow enough that the kill lands mid-delivery
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path / 'wk.db'}",
        "integrations": {"targets": {"hook": {"type": "webhook", "url": sink.url + "/hook", "secret": HOOK_SECRET,
                                              "timeout_seconds": 5}},
                         "outbox": {"lease_seconds": 2, "poll_seconds": 0.1, "batch": 10, "workers": 2}},
        "routes": [{"to": ["hook"]}],
    }))
    settings = load_settings({}, config)
    wk = Watchkeeper(settings, metrics=False)
    wk.upgrade()
    try:  # the incidents (and so the messages) exist before serve starts; serve delivers them
        for n in range(INCIDENTS):
            wk.ingest("events", orjson.dumps({"service": f"svc-{n}", "name": "Down", "summary": "down"}),
                      "application/json", "test")
    finally:
        wk.close()
    port = free_port()
    server = Server("serve", [str(watchkeeper_command()), "--config", str(config), "serve", "--port", str(port)],
                    tmp_path, port, ready_path="/healthz", env=clean_env())
    server.start()
    try:
        wait_until(lambda: len(sink.accepted) >= 10, what="10 deliveries before the kill", timeout=30,
                   logs=server.log_tail)
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGKILL)  # kill -9, the whole process group
        server.proc.wait(timeout=10)
        server.stop()
        before = len(sink.accepted)
        assert before < INCIDENTS, "delivery finished before the kill: the test proves nothing"
        server.start()
        wait_until(lambda: len({s.headers["x-watchkeeper-delivery"] for s in sink.accepted}) >= INCIDENTS,
                   what=f"all {INCIDENTS} messages delivered after the restart", timeout=60, logs=server.log_tail)
        time.sleep(0.5)
    finally:
        server.stop()
    keys = Counter(s.headers["x-watchkeeper-delivery"] for s in sink.accepted)
    incidents = {s.json()["incident"]["id"] for s in sink.accepted}
    assert len(keys) == INCIDENTS and incidents == set(range(1, INCIDENTS + 1))  # nothing lost
    duplicates = sum(n - 1 for n in keys.values())
    assert duplicates <= 10 * 2, f"{duplicates} duplicates: more than two claimed batches"  # batch 10, 2 in flight
    check = Watchkeeper(settings, metrics=False)
    try:
        with check.db.read() as conn:
            assert {m["status"] for m in store.messages(conn, limit=1000)} == {"delivered"}
    finally:
        check.close()
    print(f"kill -9 after {before} deliveries: {INCIDENTS} delivered, {duplicates} duplicate(s) by key")
