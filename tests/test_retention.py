"""Retention (issue 12 item 17): events and dead letters older than ``retention_days`` are deleted,
by ``watchkeeper db prune`` and by serve's hourly job; the prune is audited."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import Clock
from watchkeeper import retention
from watchkeeper.cli import app
from watchkeeper.errors import InputError
from watchkeeper.retention import Pruned, Pruner
from watchkeeper.service import Watchkeeper


def event(n: int) -> bytes:
    return orjson.dumps({"service": "db", "name": "Down", "summary": f"down {n}", "fingerprint": f"f{n}"})


def count(wk: Watchkeeper, table: str) -> int:
    with wk.db.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def fill(wk: Watchkeeper, n: int) -> None:
    for i in range(n):
        wk.ingest("events", event(i), "application/json", "test")
    with pytest.raises(InputError):  # kept as a dead letter
        wk.ingest("events", b"{not json", "application/json", "test")


def test_prune_deletes_only_what_is_older_than_the_retention(
    make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock,
) -> None:
    wk = make_service(db_url, retention_days=30)
    fill(wk, 3)
    clock.advance(days=20)
    fill(wk, 2)
    clock.advance(days=15)  # the first fill is now 35 days old, the second 15
    assert wk.prune() == Pruned(clock.now - timedelta(days=30), events=3, dead_letters=1)
    assert (count(wk, "events"), count(wk, "dead_letters")) == (2, 1)
    assert wk.prune() == Pruned(clock.now - timedelta(days=30))  # nothing more is old enough
    assert wk.prune(days=10) == Pruned(clock.now - timedelta(days=10), events=2, dead_letters=1)
    assert (count(wk, "events"), count(wk, "dead_letters")) == (0, 0)
    with wk.db.read() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT kind FROM audit_log ORDER BY seq"))]
    assert kinds.count("retention.pruned") == 2  # the two prunes that deleted something
    assert wk.verify_audit().ok
    assert count(wk, "alerts") == 3  # the alerts' state is not the events' history: it stays


def test_prune_works_in_chunks(
    make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retention, "CHUNK", 2)
    wk = make_service(sqlite_url, retention_days=1)
    fill(wk, 5)
    clock.advance(days=2)
    assert wk.prune().events == 5 and count(wk, "events") == 0


def test_cli_db_prune(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    runner = CliRunner()
    created = runner.invoke(app, ["db", "upgrade"], env={"WATCHKEEPER_DATABASE_URL": url})
    assert created.exit_code == 0, created.stderr
    result = runner.invoke(app, ["db", "prune", "--days", "7"], env={"WATCHKEEPER_DATABASE_URL": url})
    assert result.exit_code == 0, result.stderr
    assert "deleted 0 events and 0 dead letters received before" in result.stdout
    off = runner.invoke(app, ["db", "prune"], env={"WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_RETENTION_DAYS": "0"})
    assert off.exit_code == 0 and "retention is off" in off.stdout
    bad = runner.invoke(app, ["db", "prune", "--days", "-1"], env={"WATCHKEEPER_DATABASE_URL": url})
    assert bad.exit_code == 2


def test_pruner_runs_on_its_own_until_stopped() -> None:
    ran = threading.Event()
    calls: list[int] = []

    def prune() -> Pruned:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")  # logged; the next turn tries again
        ran.set()
        return Pruned(datetime(2026, 1, 1, tzinfo=UTC), 1, 0)

    pruner = Pruner(prune, interval=0.01, delay=0.0).start()
    try:
        assert ran.wait(5)
    finally:
        pruner.stop()
    assert len(calls) >= 2
    stopped_at = len(calls)
    assert not pruner._thread.is_alive() and len(calls) == stopped_at


def test_serve_runs_the_pruner_while_it_is_up(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import create_app

    def pruners() -> int:
        return sum(t.name == "watchkeeper-retention" and t.is_alive() for t in threading.enumerate())

    before = pruners()
    with TestClient(create_app(make_service(sqlite_url), upgrade=False)):
        assert pruners() == before + 1
    assert pruners() == before
    with TestClient(create_app(make_service(sqlite_url, retention_days=0, traces={"enabled": False}),
                               upgrade=False)):
        assert pruners() == before  # retention off: no job
    with TestClient(create_app(make_service(sqlite_url, retention_days=0), upgrade=False)):
        assert pruners() == before + 1  # events kept forever, but spans still have their window (traces)
    assert pruners() == before
