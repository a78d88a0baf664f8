"""Human corrections to grouping — move, merge, split — through the API, the CLI and the KPI."""

from __future__ import annotations

from typing import Any

import orjson
from typer.testing import CliRunner

from conftest import Api
from watchkeeper.cli import app
from watchkeeper.service import Role


def fire(api: Api, service: str, fp: str) -> int:
    body = {"service": service, "name": fp, "summary": f"{fp} on {service}", "fingerprint": fp}
    r = api.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                        headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    return int(r.json()["incidents"][0])


def members(api: Api, incident_id: int) -> list[tuple[str, str]]:
    view = api.client.get(f"/api/v1/incidents/{incident_id}", headers=api.headers(Role.VIEWER)).json()
    return [(a["fingerprint"], a["reason"]) for a in view["alerts"]]


def test_move_merge_split_and_the_kpi(api: Api) -> None:
    h = api.headers(Role.OPERATOR)
    db = fire(api, "db", "a")
    assert fire(api, "db", "b") == db and fire(api, "db", "c") == db
    web = fire(api, "web", "w")
    # "b" did not belong with the database: move it to the web incident
    r = api.client.post("/api/v1/alerts/b/move", headers=h, json={"incident": web})
    assert r.status_code == 200 and ("b", "human") in members(api, web)
    assert [fp for fp, _ in members(api, db)] == ["a", "c"]
    # "c" was unrelated too: split it off into a new incident
    new = api.client.post(f"/api/v1/incidents/{db}/split", headers=h, json={"fingerprints": ["c"]}).json()
    assert new["status"] == "open" and [a["fingerprint"] for a in new["alerts"]] == ["c"]
    # the web and database incidents were one problem after all: merge
    merged = api.client.post(f"/api/v1/incidents/{db}/merge", headers=h, json={"into": web}).json()
    assert sorted(a["fingerprint"] for a in merged["alerts"]) == ["a", "b", "w"]
    assert sorted(merged["services"]) == ["db", "web"]
    gone = api.client.get(f"/api/v1/incidents/{db}", headers=h).json()
    assert gone["status"] == "resolved" and gone["alerts"] == []
    api.client.post(f"/api/v1/incidents/{new['id']}/resolve", headers=h)
    assert fire(api, "db", "d") == web  # the merged incident now answers for the database too
    kpis = api.client.get("/api/v1/kpis", headers=api.headers(Role.VIEWER)).json()
    assert kpis["grouping"] == {"auto_joined": 3, "moved_out": 2, "merges": 1, "precision": 1 / 3}
    assert api.service.verify_audit().ok
    kinds = [t["kind"] for t in api.client.get(f"/api/v1/incidents/{web}", headers=h).json()["timeline"]]
    assert "alert.moved" in kinds and "incident.merged" in kinds


def test_bad_corrections_are_clear_4xx(api: Api) -> None:
    h = api.headers(Role.OPERATOR)
    db = fire(api, "db", "a")
    fire(api, "db", "b")
    checks: list[tuple[Any, int, str]] = [
        (api.client.post("/api/v1/alerts/nope/move", headers=h, json={"incident": db}), 404, "no alert"),
        (api.client.post("/api/v1/alerts/a/move", headers=h, json={"incident": db}), 409, "already in that incident"),
        (api.client.post("/api/v1/alerts/a/move", headers=h, json={"incident": 99}), 404, "no incident 99"),
        (api.client.post(f"/api/v1/incidents/{db}/split", headers=h, json={"fingerprints": ["zz"]}), 422, "zz"),
        (api.client.post(f"/api/v1/incidents/{db}/split", headers=h, json={"fingerprints": ["a", "b"]}), 422,
         "leave the incident empty"),
        (api.client.post(f"/api/v1/incidents/{db}/merge", headers=h, json={"into": db}), 422, "itself"),
        (api.client.post(f"/api/v1/incidents/{db}/merge", headers=api.headers(Role.VIEWER), json={"into": 2}), 403,
         "may not operate"),
    ]
    for response, status, message in checks:
        assert response.status_code == status, response.text
        assert message in response.json()["error"]


def test_cli(api: Api) -> None:
    db = fire(api, "db", "a")
    fire(api, "db", "b")
    web = fire(api, "web", "w")
    env = {"WATCHKEEPER_DATABASE_URL": api.service.settings.database_url, "COLUMNS": "200"}
    runner = CliRunner()
    assert runner.invoke(app, ["incidents", "move", "b", "--to", str(web)], env=env).exit_code == 0
    assert "split from" in runner.invoke(app, ["incidents", "split", str(web), "b"], env=env).stdout
    assert "merged into" in runner.invoke(app, ["incidents", "merge", str(db), "--into", str(web)], env=env).stdout
    assert "grouping precision" in runner.invoke(app, ["kpi"], env=env).stdout
