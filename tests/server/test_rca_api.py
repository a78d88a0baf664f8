"""Change events (``POST /api/v1/ingest/changes``, ``GET /api/v1/changes``, on incidents) and the
service graph (``GET /api/v1/topology``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from conftest import Api, Clock
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.watch.config import TopologyConfig

CHANGES = "/api/v1/ingest/changes"


def post(api: Api, body: object, role: Role = Role.INGEST, path: str = CHANGES):  # type: ignore[no-untyped-def]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return api.client.post(path, content=content, headers={**api.headers(role), "Content-Type": "application/json"})


def test_one_change_is_stored_audited_and_listed(api: Api, clock: Clock) -> None:
    r = post(api, {"service": "payment", "kind": "deploy", "version": "v2", "who": "ci",
                   "link": "https://ci.example/run/7", "description": "deploy v1→v2"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    listed = api.client.get("/api/v1/changes", headers=api.headers(Role.VIEWER)).json()
    assert [(c["service"], c["kind"], c["version"], c["who"]) for c in listed] == [("payment", "deploy", "v2", "ci")]
    assert listed[0]["at"].startswith(clock.now.strftime("%Y-%m-%dT%H:%M:%S"))  # "at" defaults to now
    with api.service.db.read() as conn:
        records = list(audit.records(conn, subject=f"change:{listed[0]['id']}"))
    assert [(r.kind, r.payload["service"], r.payload["version"]) for r in records] == [
        ("change.recorded", "payment", "v2")]


def test_a_batch_and_the_filters(api: Api) -> None:
    r = post(api, {"changes": [
        {"service": "payment", "kind": "config", "at": "2026-11-22T05:00:00Z"},
        {"service": "catalog", "kind": "flag", "at": "2026-11-22T05:30:00Z", "description": "new search on"},
        {"service": "payment", "kind": "rollback", "version": "v1", "at": "2026-11-22T06:00:00+00:00"},
    ]})
    assert r.status_code == 202 and r.json()["accepted"] == 3
    viewer = api.headers(Role.VIEWER)
    by_service = api.client.get("/api/v1/changes", params={"service": "payment"}, headers=viewer).json()
    assert [c["kind"] for c in by_service] == ["config", "rollback"]
    since = api.client.get("/api/v1/changes", params={"since": "2026-11-22T05:15:00Z"}, headers=viewer).json()
    assert [c["service"] for c in since] == ["catalog", "payment"]


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"service": "payment", "kind": "reboot"}, 422, "kind"),
    ({"kind": "deploy"}, 422, "service"),
    ({"service": "payment", "at": "yesterday"}, 422, "at"),
    ({"service": "payment", "colour": "red"}, 422, "colour"),
    ({"changes": []}, 422, "changes"),
    ([{"service": "payment"}], 422, "JSON object"),
    (b"{not json", 400, "malformed JSON"),
])
def test_bad_bodies_are_a_clear_4xx_and_kept(api: Api, body: object, status: int, needle: str) -> None:
    r = post(api, body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert api.client.get("/api/v1/changes", headers=api.headers(Role.VIEWER)).json() == []
    kept = api.client.get("/api/v1/deadletters", headers=api.headers(Role.ADMIN)).json()
    assert [d["source"] for d in kept] == ["changes"]


@pytest.mark.parametrize(("role", "method", "path"), [
    (Role.VIEWER, "post", CHANGES),
    (Role.INGEST, "get", "/api/v1/changes"),
    (Role.INGEST, "get", "/api/v1/topology"),
])
def test_roles(api: Api, role: Role, method: str, path: str) -> None:
    if method == "post":
        r = post(api, {"service": "payment"}, role=role)
    else:
        r = api.client.get(path, headers=api.headers(role))
    assert r.status_code == 403 and role.value in r.json()["error"]


def test_an_incident_shows_the_changes_on_its_services_before_its_onset(api: Api, clock: Clock) -> None:
    post(api, {"changes": [
        {"service": "db", "kind": "deploy", "version": "v9", "at": "2026-11-22T05:50:00Z"},  # 10 min before
        {"service": "db", "kind": "config", "at": "2026-11-22T03:00:00Z"},  # long before: not shown
        {"service": "web", "kind": "deploy", "at": "2026-11-22T05:55:00Z"},  # another service
    ]})
    ingested = api.client.post("/api/v1/ingest/alertmanager", content=orjson.dumps(am_webhook(am_alert("Slow", "db"))),
                               headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    incident = ingested.json()["incidents"][0]
    found = api.client.get(f"/api/v1/incidents/{incident}", headers=api.headers(Role.VIEWER)).json()
    assert [(c["service"], c["version"]) for c in found["changes"]] == [("db", "v9")]


@pytest.fixture
def graph_api(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path) -> Iterator[Api]:
    extra = tmp_path / "more.yaml"
    extra.write_text("services:\n  checkout: {depends_on: [payment, catalog]}\n  payment: {depends_on: [db]}\n")
    correlation = tmp_path / "correlation.yaml"
    correlation.write_text("strategies:\n  - type: topology\n    graph:\n      web: [checkout]\n      payment: [db]\n")
    wk = make_service(sqlite_url, correlation_config=correlation, topology=TopologyConfig.model_validate(
        {"services": {"web": {"depends_on": ["checkout"]}}, "file": str(extra)}))
    a = Api(wk)
    with a.client:
        yield a


def test_topology_merges_settings_file_and_correlation(graph_api: Api) -> None:
    doc = graph_api.client.get("/api/v1/topology", headers=graph_api.headers(Role.VIEWER)).json()
    assert [n["id"] for n in doc["nodes"]] == ["catalog", "checkout", "db", "payment", "web"]
    edges = {(e["source"], e["target"]): e["sources"] for e in doc["edges"]}
    assert edges == {("checkout", "catalog"): ["file"], ("checkout", "payment"): ["file"],
                     ("payment", "db"): ["file", "correlation"], ("web", "checkout"): ["settings", "correlation"]}


def test_empty_topology(api: Api) -> None:
    assert api.client.get("/api/v1/topology", headers=api.headers(Role.VIEWER)).json() == {"nodes": [], "edges": []}


def test_resolve_through_the_api_records_the_true_cause(api: Api) -> None:
    ingested = api.client.post("/api/v1/ingest/alertmanager", content=orjson.dumps(am_webhook(am_alert("Slow", "db"))),
                               headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    incident = ingested.json()["incidents"][0]
    r = api.client.post(f"/api/v1/incidents/{incident}/resolve", json={"cause": "db", "comment": "disk full"},
                        headers=api.headers(Role.OPERATOR))
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert any(t["kind"] == "incident.cause_confirmed" and t["component"] == "db" for t in r.json()["timeline"])
    bad = api.client.post(f"/api/v1/incidents/{incident}/resolve", json={"cause": ""},
                          headers=api.headers(Role.OPERATOR))
    assert bad.status_code == 422 and "cause" in bad.json()["error"]


def test_openapi_documents_the_change_bodies(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/ingest/changes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = [s["$ref"] for s in body["anyOf"]]
    assert refs == ["#/components/schemas/ChangeIn", "#/components/schemas/ChangeBatch"]
    schemas = spec["components"]["schemas"]
    assert schemas["ChangeIn"]["properties"]["kind"]["$ref"] == "#/components/schemas/ChangeKind"
    assert schemas["ChangeKind"]["enum"] == ["deploy", "rollback", "config", "flag"]
    assert schemas["ChangeBatch"]["properties"]["changes"]["items"]["$ref"] == "#/components/schemas/ChangeIn"


def test_a_bad_topology_file_stops_start_up_with_a_sentence(make_service: Callable[..., Watchkeeper],
                                                           sqlite_url: str, tmp_path: Path) -> None:
    from watchkeeper.errors import ConfigError
    from watchkeeper.server import create_app

    bad = tmp_path / "graph.yaml"
    bad.write_text("services:\n  web: {depends_on: db}\n")
    wk = make_service(sqlite_url, topology=TopologyConfig.model_validate({"file": str(bad)}))
    with pytest.raises(ConfigError, match=r"graph\.yaml: service 'web': depends_on must be a list"):
        create_app(wk, upgrade=False)


def test_times_are_iso_8601_text_as_everywhere_else(api: Api) -> None:
    r = post(api, {"service": "payment", "at": 1795330800})
    assert r.status_code == 422 and "at" in r.json()["error"]
