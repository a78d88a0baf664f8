"""The command line, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.cli import app
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}", "COLUMNS": "200"}

    def invoke(*args: str, code: int = 0):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    invoke.db = env["WATCHKEEPER_DATABASE_URL"]  # type: ignore[attr-defined]
    return invoke


def seed(url: str) -> None:
    wk = Watchkeeper(Settings(database_url=url))
    wk.upgrade()
    wk.ingest("alertmanager", orjson.dumps(am_webhook(am_alert("InstanceDown", "db", fingerprint="fp-db"))),
              "application/json", "test")
    wk.close()


def test_token_create_prints_the_token_last(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("token", "create", "--role", "ingest", "--name", "alertmanager")
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("wk_") and len(token) > 30
    wk = Watchkeeper(Settings(database_url=cli.db))
    assert wk.authenticate(f"Bearer {token}").role.value == "ingest"
    with wk.db.read() as conn:  # stored hashed, never in clear
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert token not in stored
    wk.close()
    listed = cli("token", "list").stdout
    assert "alertmanager" in listed and token not in listed


def test_token_create_rejects_unknown_role(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("token", "create", "--role", "god", code=2)
    assert "god" in result.stderr


def test_incident_commands(cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli.db)
    assert "InstanceDown on db" in cli("incidents", "list").stdout
    shown = orjson.loads(cli("incidents", "show", "1", "--json").stdout)
    assert shown["alerts"][0]["fingerprint"] == "fp-db"
    assert "acknowledged" in cli("incidents", "ack", "1", "--comment", "looking").stdout
    assert "bob" in cli("incidents", "assign", "1", "bob").stdout
    cli("incidents", "comment", "1", "restarted postgres")
    assert "resolved" in cli("incidents", "resolve", "1").stdout
    text = cli("incidents", "show", "1").stdout
    assert "incident.commented" in text and "new_incident" in text
    missing = cli("incidents", "show", "42", code=2)
    assert "no incident 42" in missing.stderr
    conflict = cli("incidents", "ack", "1", code=2)
    assert "reopen it first" in conflict.stderr
    lines = cli("incidents", "list", "--status", "resolved", "--json").stdout.strip().splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [1]


def test_kpi_and_audit_verify(cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli.db)
    cli("incidents", "resolve", "1")
    data = orjson.loads(cli("kpi", "--json").stdout)
    assert data["incidents"] == 1 and data["mttr"]["count"] == 1
    assert "MTTR" in cli("kpi").stdout
    assert cli("audit", "verify").stdout.startswith("OK")
    engine = sa.create_engine(cli.db)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    broken = cli("audit", "verify", code=1)
    assert "seq=2" in broken.stderr


def test_deadletter_list(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wk = Watchkeeper(Settings(database_url=cli.db))
    wk.upgrade()
    with pytest.raises(Exception, match="malformed JSON"):
        wk.ingest("alertmanager", b"{nope", "application/json", "test")
    wk.close()
    rows = [orjson.loads(line) for line in cli("deadletter", "list", "--json").stdout.splitlines()]
    assert rows[0]["body"] == "{nope" and rows[0]["status"] == 400


def test_bad_settings_are_a_sentence_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["kpi"], env={"WATCHKEEPER_CORRELATION_WINDOW_SECONDS": "soon"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid settings:\n")
    assert "WATCHKEEPER_CORRELATION_WINDOW_SECONDS: correlation_window_seconds: Input should be a valid number" \
        in result.stderr


def test_replay_writes_the_evaluation_format(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = am_alert("InstanceDown", "db", fingerprint="fp-db")
    lines = [
        {**am_webhook(db), "received_at": "2026-11-22T06:00:00Z"},
        {**am_webhook(am_alert("HighLatency", "db", fingerprint="fp-lat")), "received_at": "2026-11-22T06:01:00Z"},
        {**am_webhook(am_alert("Errors", "web", fingerprint="fp-web")), "received_at": "2026-11-22T06:01:30Z"},
        # began 10 s after fp-web (another alert of web): one fault; a distant onset would be another
        {"events": [{"service": "web", "summary": "5xx", "name": "Errors5xx", "fingerprint": "fp-native",
                     "starts_at": "2026-11-22T06:00:10Z"}], "received_at": "2026-11-22T06:02:00Z"},
        {**am_webhook({**db, "status": "resolved", "endsAt": "2026-11-22T06:03:00Z"}), "received_at": "2026-11-22T06:03:00Z"},
    ]
    src = tmp_path / "storm.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n{broken\n")
    out = tmp_path / "incidents.jsonl"
    result = cli("replay", str(src), "--out", str(out))
    assert "line 6: skipped: malformed JSON" in result.stderr
    records = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [1, 2]
    assert records[0]["services"] == ["db"] and records[0]["opened_at"] == "2026-11-22T06:00:00Z"
    assert [(a["fingerprint"], a["reason"]) for a in records[0]["alerts"]] == [
        ("fp-db", "new_incident"), ("fp-lat", "same_service")]
    assert [a["fingerprint"] for a in records[1]["alerts"]] == ["fp-web", "fp-native"]
    assert records[0]["resolved_at"] is None  # fp-lat still firing
    strict = cli("replay", str(src), "--strict", code=2)
    assert "line 6" in strict.stderr


def test_replay_without_received_at_uses_event_time(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = am_alert("A", "db", fingerprint="a", starts="2026-11-22T06:00:00Z")
    b = am_alert("B", "db", fingerprint="b", starts="2026-11-22T07:00:00Z")
    src = tmp_path / "s.jsonl"
    src.write_bytes(orjson.dumps(am_webhook(a)) + b"\n" + orjson.dumps(am_webhook(b)) + b"\n")
    records = [orjson.loads(line) for line in cli("replay", str(src)).stdout.splitlines()]
    assert len(records) == 2  # an hour apart: two incidents


def test_replay_of_nothing_readable_fails(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "junk.jsonl"
    src.write_text('{"hello": "world"}\n')
    result = cli("replay", str(src), code=2)
    assert "unknown format" in result.stderr and "no line" in result.stderr


def test_an_unknown_status_filter_is_an_error_not_an_empty_table(cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli.db)
    bad = cli("incidents", "list", "--status", "bogus", code=2)
    assert "'bogus' is not one of" in bad.stderr
    assert "InstanceDown" in cli("incidents", "list", "--status", "open").stdout


def test_serve_on_a_busy_port_fails_with_a_sentence_before_listening(cli) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), code=2)
    assert "listening" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_help_shows_no_bool_type_for_flags_and_sub_apps_no_completion_flags() -> None:
    for args in (["incidents", "list", "--help"], ["--help"], ["lab", "--help"], ["metrics", "--help"],
                 ["eval", "--help"]):
        shown = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
        assert shown.exit_code == 0, args
        assert "<bool>" not in shown.stdout, args
        assert "--install-completion" not in shown.stdout, args


def test_tables_keep_ids_whole_at_80_columns(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runbooks = tmp_path / "rb"
    runbooks.mkdir()
    (runbooks / "a.yaml").write_text(
        "id: restart-the-payment-gateway-service\ntitle: Restart the payment gateway service and wait for it"
        " to answer its health check again\nselector: {services: [pay]}\nrisk: low\nautonomy: shadow\n"
        "steps:\n  - name: s\n    command: {argv: ['true']}\n")
    env = {"WATCHKEEPER_DATABASE_URL": cli.db, "COLUMNS": "80"}
    listed = CliRunner().invoke(app, ["runbooks", "list", "--dir", str(runbooks)], env=env)
    assert listed.exit_code == 0, listed.stderr
    assert "restart-the-payment-gateway-service" in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    empty = CliRunner().invoke(app, ["runbooks", "list", "--dir", str(tmp_path)], env=env)
    assert empty.exit_code == 0 and "no runbooks configured" in empty.stderr and "runbooks_dir" in empty.stderr


def test_a_command_that_creates_a_new_database_says_so(tmp_path: Path) -> None:
    env = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "COLUMNS": "200"}
    first = CliRunner().invoke(app, ["incidents", "list"], env=env)
    assert first.exit_code == 0 and "note: no database at" in first.stderr and "fresh.db" in first.stderr
    again = CliRunner().invoke(app, ["incidents", "list"], env=env)
    assert again.exit_code == 0 and "no database" not in again.stderr
