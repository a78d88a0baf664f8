"""Four-eyes from the CLI: a vote needs an approver's token or a ``cli_users`` mapping of the OS
user (never ``$USER``), and one person cannot vote twice or approve their own request, whichever
channel each vote came through."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from conftest import Clock
from watchkeeper.cli import app, unix_user
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit

RUNBOOK = {
    "id": "restart", "title": "Restart", "risk": "high", "autonomy": "approve",
    "selector": {"alertnames": ["Down"]},
    "parameters": {"instance": {"from": "alert.resource", "pattern": "[a-z0-9-]+:[0-9]+"}},
    "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print('{{ params.instance }}')"]}}],
}
ME = unix_user()


class Setup:
    def __init__(self, tmp_path: Path, wk: Watchkeeper, client: TestClient, url: str, runbooks: Path) -> None:
        self.tmp_path, self.wk, self.client, self.url, self.runbooks = tmp_path, wk, client, url, runbooks
        self.tokens = {name: wk.create_token(role, name, "test") for name, role in (
            ("ingest", Role.INGEST), ("alice", Role.APPROVER), ("bob", Role.APPROVER), ("carol", Role.ADMIN),
            ("victor", Role.VIEWER))}

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def request_restart(self, by: str = "alice") -> int:
        """An incident, and a request to restart by ``by`` over the API: the approval's id."""
        body = {"service": "web", "name": "Down", "summary": "web down", "resource": "web-1:8080"}
        fired = self.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                                 headers={**self.auth("ingest"), "Content-Type": "application/json"})
        incident = fired.json()["incidents"][0]
        asked = self.client.post("/api/v1/runbooks/restart/run", headers=self.auth(by), json={"incident": incident})
        return int(asked.json()["approval_id"])

    def cli(self, *args: str, code: int = 0, token: str | None = None, cli_users: dict[str, str] | None = None,
            env: dict[str, str] | None = None) -> Result:
        config = self.tmp_path / "wk.yaml"
        config.write_text(yaml.safe_dump({"cli_users": cli_users or {}}))
        full = {"WATCHKEEPER_DATABASE_URL": self.url, "WATCHKEEPER_RUNBOOKS_DIR": str(self.runbooks),
                "WATCHKEEPER_CONFIG": str(config), "COLUMNS": "200", **(env or {})}
        if token is not None:
            full["WATCHKEEPER_TOKEN"] = token
        result = CliRunner().invoke(app, list(args), env=full, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    def actors(self, kind: str) -> list[str]:
        with self.wk.db.read() as conn:
            return [r.actor for r in audit.records(conn) if r.kind == kind]


@pytest.fixture
def setup(tmp_path: Path, make_service: Callable[..., Watchkeeper], sqlite_url: str, clock: Clock) -> Iterator[Setup]:
    clock.now = datetime.now(UTC)  # the CLI runs on the real clock: approvals must not have expired for it
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    (runbooks / "policy.yaml").write_text(yaml.safe_dump({"two_approvals_risk": "high"}))
    wk = make_service(sqlite_url, runbooks_dir=runbooks)
    with TestClient(create_app(wk, upgrade=False, responder=False)) as client:
        yield Setup(tmp_path, wk, client, sqlite_url, runbooks)


def test_a_vote_without_token_or_mapping_is_refused_saying_how(setup: Setup) -> None:
    approval = setup.request_restart()
    for args in (("approve", str(approval)), ("reject", str(approval))):
        said = setup.cli("approvals", *args, code=2).stderr
        assert f"needs an approver's identity, not the unix user {ME!r}" in said
        assert "--token" in said and "WATCHKEEPER_TOKEN" in said and f"cli_users: {{{ME}: YOUR_NAME}}" in said
    # $USER is no identity: a mapping for the name in $USER does not apply to the OS user
    said = setup.cli("approvals", "approve", str(approval), code=2, env={"USER": "bob", "LOGNAME": "bob"},
                     cli_users={"bob": "bob"}).stderr
    assert "needs an approver's identity" in said
    assert setup.actors("approval.voted") == []


@pytest.mark.parametrize(("who", "message"), [
    ("victor", "has role viewer, which may not approve"),
    ("nobody", "unknown or revoked token"),
])
def test_a_token_that_may_not_approve_is_exit_2(setup: Setup, who: str, message: str) -> None:
    approval = setup.request_restart()
    token = setup.tokens.get(who, "wk_not-a-token")
    said = setup.cli("approvals", "approve", str(approval), "--token", token, code=2).stderr
    assert message in said and "needs a token of role approver or admin" in said


def test_an_expired_token_cannot_vote(setup: Setup, clock: Clock) -> None:
    approval = setup.request_restart()
    clock.advance(hours=-2)  # made two hours ago (the CLI runs on the real clock), for an hour
    made = setup.wk.issue_token(Role.APPROVER, "dave", "test", "1h")
    said = setup.cli("approvals", "approve", str(approval), token=made.secret, code=2).stderr
    assert "'dave'" in said and "expired at" in said


def test_the_requester_cannot_approve_through_the_cli_by_token_or_mapping(setup: Setup) -> None:
    approval = setup.request_restart(by="alice")  # over the API, as token:alice
    assert "four-eyes rule" in setup.cli("approvals", "approve", str(approval), token=setup.tokens["alice"],
                                         code=2).stderr
    said = setup.cli("approvals", "approve", str(approval), cli_users={ME: "alice"}, code=2).stderr
    assert "four-eyes rule" in said and "(as token:alice)" in said


def test_one_person_gives_one_vote_whatever_the_channel(setup: Setup) -> None:
    approval = setup.request_restart(by="carol")
    first = setup.client.post(f"/api/v1/approvals/{approval}/approve", headers=setup.auth("bob"))
    assert first.json()["status"] == "pending"  # high risk: two approvals
    said = setup.cli("approvals", "approve", str(approval), cli_users={ME: "bob"}, code=2).stderr
    assert "already voted on this request (as token:bob)" in said
    assert "already voted" in setup.cli("approvals", "approve", str(approval), "--token", setup.tokens["bob"],
                                        code=2).stderr
    done = setup.cli("approvals", "approve", str(approval), token=setup.tokens["alice"]).stdout
    assert f"approval {approval}: approved; action" in done
    assert setup.actors("approval.voted") == ["token:bob", "token:alice"]


def test_a_mapped_unix_user_votes_and_the_audit_log_says_so(setup: Setup) -> None:
    approval = setup.request_restart(by="alice")
    assert f"approval {approval}: rejected" in setup.cli("approvals", "reject", str(approval), "--comment", "no",
                                                         cli_users={ME: "bob"}).stdout
    assert setup.actors("approval.voted") == [f"cli-user:bob via unix user {ME}"]


def test_the_cli_requester_is_the_os_user_or_its_mapping(setup: Setup) -> None:
    body = {"service": "web", "name": "Down", "summary": "web down", "resource": "web-1:8080"}
    setup.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                      headers={**setup.auth("ingest"), "Content-Type": "application/json"})
    asked = setup.cli("runbooks", "run", "restart", "--incident", "1", env={"USER": "bob", "LOGNAME": "bob"})
    assert "approval 1 requested" in asked.stdout
    assert setup.actors("approval.requested") == [f"cli:{ME}"]  # not $USER
    # the mapped name and the unix name are both this person: neither may approve the request
    said = setup.cli("approvals", "approve", "1", cli_users={ME: "erin"}, code=2).stderr
    assert "four-eyes rule" in said

