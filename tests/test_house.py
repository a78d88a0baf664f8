"""House-keeping (issue 12, item 24): the shape of the code, checked so it does not drift back.

The CLI is a package with one module per command group (each owning the ``typer.Typer`` registered
under its name), and no CLI module grows past about 400 lines again."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer

#: Command groups of the root CLI that live in a module of their own (``watchkeeper.cli.<module>``).
GROUPS = {
    "db": "db",
    "token": "token",
    "incidents": "incidents",
    "audit": "audit",
    "deadletter": "deadletter",
    "runbooks": "runbooks",
    "approvals": "approvals",
    "silences": "silences",
    "correlation": "correlation",
    "rca": "rca",
}
MAX_LINES = 400


def test_cli_is_a_package() -> None:
    import watchkeeper.cli

    assert hasattr(watchkeeper.cli, "__path__"), "watchkeeper.cli should be a package, not one module"
    assert importlib.util.find_spec("watchkeeper.cli.__main__") is not None  # python -m watchkeeper.cli
    assert importlib.util.find_spec("watchkeeper.cli.common") is not None
    assert isinstance(watchkeeper.cli.app, typer.Typer)


@pytest.mark.parametrize(("group", "module"), sorted(GROUPS.items()))
def test_every_command_group_has_its_module(group: str, module: str) -> None:
    from watchkeeper.cli import app

    registered = {info.name: info.typer_instance for info in app.registered_groups}
    owner = importlib.import_module(f"watchkeeper.cli.{module}")
    assert registered[group] is owner.app, f"'{group}' should be the app of watchkeeper.cli.{module}"
    assert owner.app.registered_commands, f"watchkeeper.cli.{module} holds no command"


def test_top_level_commands_live_in_their_module() -> None:
    from watchkeeper.cli import app, toplevel

    names = {info.callback.__name__ for info in app.registered_commands if info.callback is not None}
    assert {"serve", "replay", "kpi", "demo"} <= names
    assert {info.callback for info in toplevel.app.registered_commands} <= {
        info.callback for info in app.registered_commands}


def test_no_cli_module_is_over_400_lines() -> None:
    import watchkeeper.cli

    package = Path(watchkeeper.cli.__file__).parent
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in package.glob("*.py")}
    assert len(sizes) > len(GROUPS)
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_python_dash_m_runs_the_cli() -> None:
    """The demo starts serve as ``python -m watchkeeper.cli``: the package must keep answering it."""
    done = subprocess.run([sys.executable, "-m", "watchkeeper.cli", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert "incidents" in done.stdout


# -- hold reasons: an enum, stored and audited as the same text ---------------------------------
def _event(status: str, minute: int) -> Any:
    from watchkeeper.model import Event, EventKind, Severity, Status

    when = datetime(2026, 11, 23, 6, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return Event("t", EventKind.ALERT, "f", Status(status), Severity.WARNING, "Down", "db", "",
                 {"service": "db", "alertname": "Down"}, "db down", when, when if status == "resolved" else None, when)


def test_a_held_alert_says_why_with_an_enum_and_audits_plain_text() -> None:
    from watchkeeper.correlate.pipeline_config import PipelineConfig
    from watchkeeper.model import HoldReason
    from watchkeeper.pipeline import Pipeline, State
    from watchkeeper.suppress import FlapDetector

    ids = itertools.count(1)
    state = State()
    pipeline = Pipeline(PipelineConfig(flapping=FlapDetector(4, timedelta(minutes=10))), lambda: next(ids))
    for n, status in enumerate(["firing", "resolved", "firing", "resolved", "firing"]):
        pipeline.observe(_event(status, n), state)
    assert state.alerts["f"].held is HoldReason.FLAPPING
    [held] = [c for c in state.changes if c.kind == "alert.held"]
    assert held.payload["reason"] == "flapping" and type(held.payload["reason"]) is str  # the audit log's text
    pipeline.observe(_event("firing", 20), state)  # quiet for 16 minutes: released
    released = state.changes[-1]
    assert released.kind == "alert.released"
    assert released.payload["was_held"] == "flapping" and type(released.payload["was_held"]) is str


def test_a_silenced_alert_is_stored_as_text_and_read_back_as_the_enum(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from watchkeeper.model import HoldReason
    from watchkeeper.service import Watchkeeper
    from watchkeeper.settings import Settings
    from watchkeeper.storage import queries

    wk = Watchkeeper(Settings(database_url=f"sqlite:///{tmp_path / 'wk.db'}"), metrics=False)
    try:
        wk.upgrade()
        wk.add_silence(['service="db"'], wk.clock() + timedelta(hours=1), "test", "maintenance")
        body = {"summary": "db down", "service": "db", "name": "Down", "fingerprint": "fp-db"}
        wk.ingest("events", orjson.dumps(body), "application/json", "test")
        with wk.db.read() as conn:
            stored = conn.execute(sa.text("SELECT fingerprint, held FROM alerts")).all()
            [(fingerprint, text)] = stored
            alert = queries.get_alert(conn, fingerprint)
        assert text == "silenced"
        assert alert.held is HoldReason.SILENCED
        assert wk.incidents() == []
    finally:
        wk.close()


def test_hold_reasons_are_the_stored_values() -> None:
    from watchkeeper.model import HoldReason

    assert {r.value for r in HoldReason} == {"silenced", "inhibited", "flapping"}


def test_lab_error_is_a_watchkeeper_error() -> None:
    """The CLI turns every WatchkeeperError into one sentence and exit code 2: the lab's errors too."""
    from watchkeeper.errors import WatchkeeperError
    from watchkeeper.lab import LabError

    assert issubclass(LabError, WatchkeeperError)
