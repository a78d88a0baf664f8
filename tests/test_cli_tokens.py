"""``watchkeeper token create/list/revoke/rotate`` as a user runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from watchkeeper.cli import app
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings

Invoke = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Invoke:
    runner = CliRunner()
    env = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}", "COLUMNS": "200"}

    def invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    invoke.db = env["WATCHKEEPER_DATABASE_URL"]  # type: ignore[attr-defined]
    return invoke


def listed(cli: Invoke) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in map(orjson.loads, cli("token", "list", "--json").stdout.splitlines())}


def test_create_list_rotate_revoke(cli: Invoke) -> None:
    made = cli("token", "create", "--role", "viewer", "--name", "board", "--expires", "30d")
    secret = made.stdout.strip().splitlines()[-1]
    assert "token 1 'board' with role viewer, expires 20" in made.stderr
    row = listed(cli)["board"]
    assert row["state"] == "active" and row["expires_at"] is not None and row["last_used_at"] is None
    table = cli("token", "list").stdout
    assert all(h in table for h in ("expires", "last used", "revoked", "active")) and secret not in table

    rotated = cli("token", "rotate", "1", "--grace", "1h")
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert new_secret.startswith("wk_") and new_secret != secret
    assert "old one is valid for 1h more; new token 2 with role viewer" in rotated.stderr
    wk = Watchkeeper(Settings(database_url=cli.db))  # type: ignore[attr-defined]
    try:
        assert wk.authenticate(f"Bearer {secret}").name == "board"  # within its grace period
        assert wk.authenticate(f"Bearer {new_secret}").name == "board"
    finally:
        wk.close()
    assert cli("token", "revoke", "2").stdout.strip() == "token 2 revoked"
    assert "no unrevoked token with id 2" in cli("token", "revoke", "2", code=2).stderr
    assert "no unrevoked token with id 2" in cli("token", "rotate", "2", code=2).stderr


def test_default_expiry_is_ninety_days(cli: Invoke) -> None:
    cli("token", "create", "--role", "operator", "--name", "oncall")
    row = listed(cli)["oncall"]
    expires, created = (datetime.fromisoformat(row[k]) for k in ("expires_at", "created_at"))
    assert expires - created == timedelta(days=90)


@pytest.mark.parametrize(("args", "message"), [
    (("--role", "admin", "--expires", "never"), "only ingest tokens may never expire"),
    (("--role", "viewer", "--expires", "soon"), "'soon' is not a span like 90d"),
    (("--role", "viewer", "--expires", "0d"), "must be longer than zero"),
    (("--role", "viewer", "--expires", "99999d"), "longer than the limit of 3650 days"),
])
def test_bad_expiry_is_exit_2_with_a_sentence(cli: Invoke, args: tuple[str, ...], message: str) -> None:
    assert message in cli("token", "create", *args, code=2).stderr


def test_never_expiring_ingest_token_stays_so_when_rotated(cli: Invoke) -> None:
    cli("token", "create", "--role", "ingest", "--name", "alertmanager", "--expires", "never")
    assert listed(cli)["alertmanager"]["expires_at"] is None
    assert "revoked now" in cli("token", "rotate", "1").stderr
    rows = [orjson.loads(line) for line in cli("token", "list", "--json").stdout.splitlines()]
    assert [(r["id"], r["state"], r["expires_at"]) for r in rows] == [(1, "revoked", None), (2, "active", None)]
    assert "--grace: '5 minutes' is not a span" in cli("token", "rotate", "2", "--grace", "5 minutes", code=2).stderr
    assert "longer than the limit of 7 days" in cli("token", "rotate", "2", "--grace", "8d", code=2).stderr


def test_watchkeeper_token_in_the_environment_is_a_setting_not_an_error(tmp_path: Path) -> None:
    """WATCHKEEPER_TOKEN (for votes and --url) must not make local commands fail as an unknown setting."""
    env = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}", "WATCHKEEPER_TOKEN": "wk_x"}
    result = CliRunner().invoke(app, ["incidents", "list"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def test_token_list_fits_80_columns(tmp_path: Path) -> None:
    env = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}", "COLUMNS": "80"}
    runner = CliRunner()
    for args in (["--role", "ingest", "--name", "alertmanager", "--expires", "never"],
                 ["--role", "approver", "--name", "alice"]):
        assert runner.invoke(app, ["token", "create", *args], env=env).exit_code == 0
    assert runner.invoke(app, ["token", "revoke", "1"], env=env).exit_code == 0
    shown = runner.invoke(app, ["token", "list"], env=env).stdout
    assert max(len(line) for line in shown.splitlines()) <= 80
    rows = [line.split() for line in shown.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[-1]) for r in rows] == [("1", "alertmanager", "revoked"), ("2", "alice", "active")]
