"""Governance over HTTP and the CLI: causes, runbooks, approvals (roles, four-eyes), dry runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from conftest import Api
from watchkeeper.cli import app, unix_user
from watchkeeper.service import Role, Watchkeeper

RUNBOOK = {
    "id": "restart", "title": "Restart", "risk": "high", "autonomy": "approve",
    "selector": {"alertnames": ["Down"]},
    "parameters": {"instance": {"from": "alert.resource", "pattern": "[a-z0-9-]+:[0-9]+"}},
    "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print('{{ params.instance }}')"]}}],
}


@pytest.fixture
def gov_api(tmp_path: Path, make_service: Any, sqlite_url: str) -> Any:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    wk: Watchkeeper = make_service(sqlite_url, runbooks_dir=directory)
    api = Api(wk)
    with api.client:
        yield api, directory, sqlite_url


def fire(api: Api) -> int:
    body = {"service": "web", "name": "Down", "summary": "web down", "resource": "web-1:8080"}
    r = api.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                        headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    assert r.status_code == 202
    return int(r.json()["incidents"][0])


def test_causes_runbooks_and_approvals_over_http(gov_api: Any) -> None:
    api, _, _ = gov_api
    incident = fire(api)
    r = api.client.put(f"/api/v1/incidents/{incident}/causes", headers=api.headers(Role.OPERATOR),
                       json={"causes": [{"component": "web", "confidence": 0.97}]})
    assert r.status_code == 200 and r.json()["causes"][0]["confidence"] == 0.97
    bad = api.client.put(f"/api/v1/incidents/{incident}/causes", headers=api.headers(Role.OPERATOR),
                         json={"causes": [{"component": "web", "confidence": 1.5}]})
    assert bad.status_code == 422
    listed = api.client.get("/api/v1/runbooks", headers=api.headers(Role.VIEWER)).json()
    assert listed[0]["id"] == "restart" and listed[0]["evidence"]["breaker_open"] is False
    dry = api.client.post("/api/v1/runbooks/restart/run", headers=api.headers(Role.OPERATOR),
                          json={"incident": incident, "dry_run": True}).json()
    assert dry["params"] == {"instance": "web-1:8080"} and dry["plan"]["steps"][0]["argv"][-1] == "print('web-1:8080')"
    api.service.governance.respond()
    [pending] = api.client.get("/api/v1/approvals", headers=api.headers(Role.VIEWER)).json()
    assert pending["runbook_id"] == "restart" and pending["risk"] == "high"
    denied = api.client.post(f"/api/v1/approvals/{pending['id']}/approve", headers=api.headers(Role.OPERATOR))
    assert denied.status_code == 403
    ok = api.client.post(f"/api/v1/approvals/{pending['id']}/approve", headers=api.headers(Role.APPROVER),
                         json={"comment": "looked at it"}).json()
    assert ok["status"] == "approved" and "action_id" in ok
    again = api.client.post(f"/api/v1/approvals/{pending['id']}/reject", headers=api.headers(Role.ADMIN))
    assert again.status_code == 409
    api.service.governance.stop()  # the server's own worker may have claimed it: let that run finish
    api.service.governance.work()  # ... or run it here
    view = api.client.get(f"/api/v1/incidents/{incident}", headers=api.headers(Role.VIEWER)).json()
    assert view["actions"][0]["status"] == "succeeded" and view["status"] == "mitigated"
    assert api.client.get("/api/v1/runbooks/nope", headers=api.headers(Role.VIEWER)).status_code == 404


def test_manual_high_risk_run_needs_someone_else(gov_api: Any) -> None:
    api, _, _ = gov_api
    incident = fire(api)
    requested = api.client.post("/api/v1/runbooks/restart/run", headers=api.headers(Role.APPROVER),
                                json={"incident": incident}).json()
    r = api.client.post(f"/api/v1/approvals/{requested['approval_id']}/approve", headers=api.headers(Role.APPROVER))
    assert r.status_code == 403 and "four-eyes" in r.json()["error"]
    assert api.client.post(f"/api/v1/approvals/{requested['approval_id']}/approve",
                           headers=api.headers(Role.ADMIN)).json()["status"] == "approved"


def test_cli_runbooks_and_approvals(gov_api: Any) -> None:
    api, directory, url = gov_api
    incident = fire(api)
    env = {"WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_RUNBOOKS_DIR": str(directory), "COLUMNS": "200"}
    (directory.parent / "wk.yaml").write_text(f"cli_users: {{{unix_user()}: ops}}\n")  # votes need an identity
    env["WATCHKEEPER_CONFIG"] = str(directory.parent / "wk.yaml")
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    assert "restart" in cli("runbooks", "list").stdout
    shown = orjson.loads(cli("runbooks", "show", "restart").stdout)
    assert shown["risk"] == "high" and shown["evidence"]["shadow_decisions"] == 0
    plan = orjson.loads(cli("runbooks", "run", "restart", "--incident", str(incident), "--dry-run").stdout)
    assert plan["params"]["instance"] == "web-1:8080"
    asked = cli("runbooks", "run", "restart", "--incident", str(incident)).stdout
    # the id is the server's: the responder may already have asked for an approval of its own
    found = re.search(r"approval (\d+) requested", asked)
    assert found, asked
    approval = found.group(1)
    assert "four-eyes" in cli("approvals", "approve", approval, code=2).stderr  # same CLI user asked for it
    assert "restart" in cli("approvals", "list").stdout
    assert f"approval {approval}: rejected" in cli("approvals", "reject", approval, "--comment", "withdrawn").stdout
    schema = orjson.loads(cli("runbooks", "schema").stdout)
    assert schema["title"] == "Runbook"
    assert "no runbook 'nope'" in cli("runbooks", "show", "nope", code=2).stderr


def test_the_incident_list_carries_the_top_causes(gov_api: Any) -> None:
    api, _directory, _url = gov_api
    incident = fire(api)
    causes = [{"component": c, "confidence": p, "model": "test"} for c, p in
              (("db", 0.9), ("web", 0.05), ("cache", 0.03), ("queue", 0.02))]
    assert api.client.put(f"/api/v1/incidents/{incident}/causes", json={"causes": causes},
                          headers=api.headers(Role.OPERATOR)).status_code == 200
    [listed] = [i for i in api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).json()
                if i["id"] == incident]
    assert [c["component"] for c in listed["causes"]] == ["db", "web", "cache"]  # the top three, best first
    assert listed["causes"][0]["confidence"] == 0.9
