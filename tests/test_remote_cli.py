"""``watchkeeper --url … --token …``: operators work incidents through a running server's API,
with no database file, and the server checks their role and names them in the audit log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog
from typer.testing import CliRunner

from e2e.servers import free_port
from fixtures.alertmanager import am_alert, am_webhook
from fixtures.threadserver import ThreadServer
from watchkeeper.cli import app
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Watchkeeper]]:
    # the server runs in this process: its access log must not land in the CLI's captured stdout
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(io.StringIO()))
    wk = Watchkeeper(Settings(database_url=f"sqlite:///{tmp_path / 'server.db'}"))
    wk.upgrade()
    with ThreadServer(create_app(wk, upgrade=False), access_log=False) as running:
        yield running.url, wk
    wk.close()
    structlog.reset_defaults()


def test_incident_commands_go_through_the_api_with_the_tokens_role(server: tuple[str, Watchkeeper],
                                                                   tmp_path: Path) -> None:
    url, wk = server
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("InstanceDown", "db"))), "application/json", "t")
    operator = wk.create_token(Role.OPERATOR, "alice", "test")
    viewer = wk.create_token(Role.VIEWER, "bob", "test")
    # no database file where the CLI runs: nothing is created, nothing is read locally
    env = {"WATCHKEEPER_URL": url, "WATCHKEEPER_TOKEN": operator, "COLUMNS": "200",
           "WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-exist.db'}"}
    runner = CliRunner()

    listed = runner.invoke(app, ["incidents", "list"], env=env)
    assert listed.exit_code == 0, listed.stderr
    assert "InstanceDown" in listed.stdout
    as_json = runner.invoke(app, ["incidents", "list", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.stderr
    incident = orjson.loads(as_json.stdout.splitlines()[0])
    acked = runner.invoke(app, ["incidents", "ack", str(incident["id"]), "--comment", "on it"], env=env)
    assert acked.exit_code == 0 and "acknowledged" in acked.stdout
    shown = runner.invoke(app, ["incidents", "show", str(incident["id"])], env=env)
    assert shown.exit_code == 0 and "token:alice" in shown.stdout  # the server names the token as the actor
    assert runner.invoke(app, ["kpi"], env=env).exit_code == 0
    assert not (tmp_path / "must-not-exist.db").exists()

    refused = runner.invoke(app, ["incidents", "resolve", str(incident["id"])], env={**env, "WATCHKEEPER_TOKEN": viewer})
    assert refused.exit_code == 2 and "role viewer" in refused.stderr
    nobody = runner.invoke(app, ["incidents", "list"], env={**env, "WATCHKEEPER_TOKEN": ""})
    assert nobody.exit_code == 2 and "needs a token" in nobody.stderr
    local = runner.invoke(app, ["token", "create", "--role", "admin"], env=env)
    assert local.exit_code == 2 and "not through --url" in local.stderr
    gone = runner.invoke(app, ["incidents", "list"], env={**env, "WATCHKEEPER_URL": f"http://127.0.0.1:{free_port()}"})
    assert gone.exit_code == 2 and "cannot reach the server" in gone.stderr


def test_resolve_with_the_true_cause_through_the_api(server: tuple[str, Watchkeeper], tmp_path: Path) -> None:
    url, wk = server
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("InstanceDown", "db"))), "application/json", "t")
    env = {"WATCHKEEPER_URL": url, "WATCHKEEPER_TOKEN": wk.create_token(Role.OPERATOR, "alice", "test"),
           "COLUMNS": "200", "WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-exist.db'}"}
    done = CliRunner().invoke(app, ["incidents", "resolve", "1", "--cause", "db"], env=env)
    assert done.exit_code == 0 and "resolved, caused by db" in done.stdout, (done.stdout, done.stderr)
    confirmed = [t for t in wk.incident(1)["timeline"] if t["kind"] == "incident.cause_confirmed"]
    assert [(t["actor"], t["component"]) for t in confirmed] == [("token:alice", "db")]
    assert not (tmp_path / "must-not-exist.db").exists()
