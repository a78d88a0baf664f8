"""The HTTP API: auth and roles, ingest of every format, bad input, incidents, KPIs, metrics."""

from __future__ import annotations

import re

import orjson
import pytest

from conftest import Api
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.service import Role

AM = "/api/v1/ingest/alertmanager"


def post(api: Api, body: object, role: Role = Role.INGEST, path: str = AM, **kw: object):  # type: ignore[no-untyped-def]
    return api.client.post(path, content=orjson.dumps(body), headers={
        **api.headers(role), "Content-Type": "application/json"}, **kw)


def test_health_and_metrics_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    post(api, am_webhook(am_alert("A", "db")))
    text = api.client.get("/metrics").text
    assert 'watchkeeper_events_ingested_total{source="alertmanager"} 1.0' in text
    assert "watchkeeper_open_incidents 1.0" in text
    assert "watchkeeper_pipeline_seconds_bucket" in text


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wk_nope"}, 401), ({"Authorization": "Basic abc"}, 401)],
)
def test_ingest_needs_a_valid_token(api: Api, headers: dict[str, str], status: int) -> None:
    r = api.client.post(AM, content=b"{}", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == status and r.json()["error"]


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        (Role.INGEST, "get", "/api/v1/incidents", False),
        (Role.VIEWER, "get", "/api/v1/incidents", True),
        (Role.VIEWER, "post", "/api/v1/incidents/1/acknowledge", False),
        (Role.OPERATOR, "post", "/api/v1/incidents/1/acknowledge", True),
        (Role.VIEWER, "get", "/api/v1/deadletters", False),
        (Role.ADMIN, "get", "/api/v1/deadletters", True),
        (Role.VIEWER, "get", "/api/v1/kpis", True),
    ],
)
def test_roles(api: Api, role: Role, method: str, path: str, allowed: bool) -> None:
    post(api, am_webhook(am_alert("A", "db")))
    r = getattr(api.client, method)(path, headers=api.headers(role))
    assert (r.status_code < 400) is allowed, r.text
    if not allowed:
        assert r.status_code == 403 and role.value in r.json()["error"]


def test_viewer_cannot_ingest(api: Api) -> None:
    assert post(api, am_webhook(am_alert("A", "db")), role=Role.VIEWER).status_code == 403


def test_ingest_and_read_back(api: Api) -> None:
    r = post(api, am_webhook(am_alert("A", "db", fingerprint="e63f6ea56086c8af"), am_alert("B", "db")))
    assert r.status_code == 202 and r.json() == {"accepted": 2, "incidents": [1], "opened": [1]}
    incidents = api.client.get("/api/v1/incidents", headers=api.headers(Role.VIEWER)).json()
    assert len(incidents) == 1
    alerts = incidents[0]["alerts"]
    assert alerts[0]["fingerprint"] == "e63f6ea56086c8af" and alerts[0]["reason"] == "new_incident"
    assert alerts[1]["reason"] == "same_service" and alerts[0]["labels"]["alertname"] == "A"
    one = api.client.get("/api/v1/incidents/1", headers=api.headers(Role.VIEWER)).json()
    assert one["timeline"][0]["kind"] == "incident.opened"


@pytest.mark.parametrize(
    ("query", "ids"),
    [("", [2, 1]), ("?status=open", [2]), ("?status=resolved", [1]), ("?service=web", [2]),
     ("?service=nope", []), ("?since=2099-01-01T00:00:00Z", [])],
)
def test_incident_filters(api: Api, query: str, ids: list[int]) -> None:
    db = am_alert("A", "db")
    post(api, am_webhook(db))
    post(api, am_webhook({**db, "status": "resolved", "endsAt": "2026-11-22T06:05:00Z"}))
    post(api, am_webhook(am_alert("B", "web")))
    r = api.client.get(f"/api/v1/incidents{query}", headers=api.headers(Role.VIEWER))
    assert [i["id"] for i in r.json()] == ids


def test_bad_query_parameters_are_422(api: Api) -> None:
    r = api.client.get("/api/v1/incidents?status=sleeping", headers=api.headers(Role.VIEWER))
    assert r.status_code == 422 and "status" in r.json()["error"]
    r = api.client.get("/api/v1/incidents/notanumber", headers=api.headers(Role.VIEWER))
    assert r.status_code == 422
    assert api.client.get("/api/v1/incidents/99", headers=api.headers(Role.VIEWER)).status_code == 404


def test_lifecycle_over_http(api: Api) -> None:
    post(api, am_webhook(am_alert("A", "db")))
    h = api.headers(Role.OPERATOR)
    assert api.client.post("/api/v1/incidents/1/acknowledge", headers=h, json={"comment": "mine"}).json()["status"] == "acknowledged"
    assert api.client.post("/api/v1/incidents/1/assign", headers=h, json={"assignee": "bob"}).json()["assignee"] == "bob"
    assert api.client.post("/api/v1/incidents/1/comments", headers=h, json={"text": "db restarted"}).status_code == 200
    assert api.client.post("/api/v1/incidents/1/mitigate", headers=h).json()["status"] == "mitigated"
    r = api.client.post("/api/v1/incidents/1/acknowledge", headers=h)
    assert r.status_code == 409 and "reopen" in r.json()["error"]
    assert api.client.post("/api/v1/incidents/1/resolve", headers=h).json()["status"] == "resolved"
    assert api.client.post("/api/v1/incidents/1/reopen", headers=h).json()["status"] == "open"
    timeline = api.client.get("/api/v1/incidents/1", headers=h).json()["timeline"]
    assert [t["kind"] for t in timeline] == [
        "incident.opened", "incident.acknowledged", "incident.assigned", "incident.commented",
        "incident.mitigated", "incident.resolved", "incident.reopened",
    ]
    assert all(t["actor"] == "token:test-operator" for t in timeline[1:])
    assert api.client.post("/api/v1/incidents/1/assign", headers=h, json={}).status_code == 422


BAD = [
    pytest.param(b'{"alerts": [{"labels": 7}', "application/json", 400, "malformed JSON", id="truncated-json"),
    pytest.param(b"\xff\xfe", "application/json", 400, "malformed JSON", id="not-utf8"),
    pytest.param(b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": 7, '
                 b'"startsAt": "2026-01-01T00:00:00Z"}]}', "application/json", 422, "alerts.0.labels",
                 id="labels-not-a-map"),
    pytest.param(b'{"status": "firing"}', "application/json", 422, "alerts", id="no-alerts"),
    pytest.param(b'{"version": "5", "status": "firing", "alerts": []}', "application/json", 422,
                 "version", id="unknown-version"),
    pytest.param(b'{"a": 1}', "text/plain", 415, "content type", id="not-json-content-type"),
    pytest.param(b'[1, 2]', "application/json", 422, "invalid Alertmanager webhook", id="a-list"),
]


@pytest.mark.parametrize(("body", "ctype", "status", "message"), BAD)
def test_bad_input_is_4xx_and_kept(api: Api, body: bytes, ctype: str, status: int, message: str) -> None:
    post(api, am_webhook(am_alert("A", "db")))  # something accepted before
    r = api.client.post(AM, content=body, headers={**api.headers(Role.INGEST), "Content-Type": ctype})
    assert r.status_code == status
    assert message in r.json()["error"]
    [dead] = api.service.dead_letters()
    assert dead["body"] == body and dead["status"] == status and message in dead["error"]
    assert len(api.service.incidents()) == 1  # nothing accepted was lost
    listed = api.client.get("/api/v1/deadletters", headers=api.headers(Role.ADMIN)).json()
    assert listed[0]["error"] == dead["error"]


def test_oversized_body_is_413_and_kept_truncated(make_service, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    wk = make_service(sqlite_url, max_body_bytes=1000)
    api = Api(wk)
    with api.client:
        body = orjson.dumps(am_webhook(*[am_alert(f"A{i}", "db") for i in range(20)]))
        r = api.client.post(AM, content=body, headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
        assert r.status_code == 413 and "limit of 1000" in r.json()["error"]
    [dead] = wk.dead_letters()
    assert dead["status"] == 413 and dead["size"] == len(body) and dead["truncated"]
    assert len(dead["body"]) <= 1000


def test_unknown_source_is_404(api: Api) -> None:
    r = post(api, {}, path="/api/v1/ingest/nagios")
    assert r.status_code == 404


def test_every_format_ingests(api: Api) -> None:
    grafana = {
        "receiver": "wk", "status": "firing", "orgId": 1, "version": "1", "groupKey": "g",
        "truncatedAlerts": 0, "title": "t", "state": "alerting", "message": "m",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://g",
        "alerts": [{"status": "firing", "labels": {"alertname": "CPU", "service": "api"},
                    "annotations": {"summary": "cpu high"}, "startsAt": "2026-11-22T06:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "g1"}],
    }
    pagerduty = {"routing_key": "secret-routing-key", "event_action": "trigger", "dedup_key": "pd1",
                 "payload": {"summary": "disk full", "source": "db-1", "severity": "critical",
                             "component": "postgres"}}
    native = {"events": [{"service": "billing", "summary": "queue backlog", "name": "Backlog"}]}
    for path, body in (("grafana", grafana), ("pagerduty", pagerduty), ("events", native)):
        r = post(api, body, path=f"/api/v1/ingest/{path}")
        assert r.status_code == 202, r.text
    incidents = api.service.incidents()
    assert sorted(s for i in incidents for s in i["services"]) == ["api", "billing", "postgres"]
    assert "secret-routing-key" not in orjson.dumps(incidents).decode()


def test_kpis(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    post(api, am_webhook(am_alert("A", "db")))
    post(api, am_webhook(am_alert("A", "db")))
    clock.advance(minutes=2)
    api.client.post("/api/v1/incidents/1/acknowledge", headers=api.headers(Role.OPERATOR))
    clock.advance(minutes=8)
    api.client.post("/api/v1/incidents/1/resolve", headers=api.headers(Role.OPERATOR))
    k = api.client.get("/api/v1/kpis", headers=api.headers(Role.VIEWER)).json()
    assert (k["events"], k["alerts"], k["incidents"]) == (2, 1, 1)
    assert k["mtta"]["mean"] == 120.0 and k["mttr"]["p90"] == 600.0 and k["dedup_ratio"] == 0.5
    empty = api.client.get("/api/v1/kpis?from=2030-01-01T00:00:00Z", headers=api.headers(Role.VIEWER)).json()
    assert empty["incidents"] == 0
    bad = api.client.get("/api/v1/kpis?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
                         headers=api.headers(Role.VIEWER))
    assert bad.status_code == 422


def test_openapi_documents_the_ingest_schemas(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"AlertmanagerWebhook", "WatchkeeperPayload", "WatchkeeperEvent"} <= set(schemas)
    body = spec["paths"]["/api/v1/ingest/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/WatchkeeperPayload"


def test_nul_characters_are_rejected_cleanly(api: Api) -> None:
    """PostgreSQL text cannot hold NUL; a label with one must not turn into a 500."""
    alert = am_alert("A", "db")
    alert["labels"]["weird"] = "a\x00b"
    alert["annotations"]["summary"] = "x\x00" * 10
    r = post(api, am_webhook(alert))
    assert r.status_code == 422 and "NUL" in r.json()["error"]
    assert api.service.dead_letters()[0]["status"] == 422
    # A backslash followed by "u0000" as plain text is not a NUL and is accepted.
    alert["labels"]["weird"] = "\\u0000"
    alert["annotations"]["summary"] = "fine"
    assert post(api, am_webhook(alert)).status_code == 202


def test_revoked_token_stops_working(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid tokens are cached for a few seconds; revoking from this process clears the cache, and
    another process's revocation takes effect once the cache entry is older than TOKEN_CACHE_SECONDS."""
    from watchkeeper.service import access as service_module  # the module that reads the constant

    h = api.headers(Role.VIEWER)
    assert api.client.get("/api/v1/incidents", headers=h).status_code == 200
    with api.service.db.read() as conn:
        import sqlalchemy as sa

        token_id = conn.execute(sa.text("SELECT id FROM api_tokens WHERE role = 'viewer'")).scalar_one()
    assert api.service.revoke_token(token_id, "test")
    assert api.client.get("/api/v1/incidents", headers=h).status_code == 401
    # a revocation done elsewhere (another process) is seen once the cached entry is stale
    admin = api.headers(Role.ADMIN)
    assert api.client.get("/api/v1/deadletters", headers=admin).status_code == 200
    with api.service.db.write() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET revoked_at = created_at WHERE role = 'admin'"))
    monkeypatch.setattr(service_module, "TOKEN_CACHE_SECONDS", 0.0)
    assert api.client.get("/api/v1/deadletters", headers=admin).status_code == 401


def test_a_misspelt_field_is_named_first_in_one_sentence(api: Api) -> None:
    r = post(api, {"summary": "disk full", "service": "db", "sevrity": "critical"}, path="/api/v1/ingest/events")
    assert r.status_code == 422
    assert r.json()["error"] == "invalid Watchkeeper event: sevrity: Extra inputs are not permitted"
    r = post(api, {"events": [{"summary": "x", "service": "db"}, {"summary": "y"}]}, path="/api/v1/ingest/events")
    assert r.status_code == 422 and r.json()["error"].startswith("invalid Watchkeeper event batch: events.1.service:")
    r = post(api, [{"summary": "x", "service": "db", "sevrity": "info"}], path="/api/v1/ingest/events")
    assert r.status_code == 422 and r.json()["error"].startswith("invalid list of Watchkeeper events: 0.sevrity:")


def test_an_unknown_severity_is_refused_naming_the_allowed_values(api: Api) -> None:
    r = post(api, {"summary": "x", "service": "db", "severity": "apocalyptic"}, path="/api/v1/ingest/events")
    assert r.status_code == 422
    assert "unknown severity 'apocalyptic'; use critical, error, warning or info" in r.json()["error"]
    ok = post(api, {"summary": "x", "service": "db", "severity": "P1"}, path="/api/v1/ingest/events")
    assert ok.status_code == 202, ok.text


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    missing = api.client.get("/api/v1/nope")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found", "status": 404}
    wrong = api.client.delete("/healthz")
    assert wrong.status_code == 405 and wrong.json() == {"error": "Method Not Allowed", "status": 405}
    assert "GET" in wrong.headers["allow"]


def test_the_api_docs_load_without_a_cdn(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text and "unpkg.com" not in page.text
    scripts = re.findall(r'src="([^"]+\.js)"', page.text)
    assert scripts and all(s.startswith("/") for s in scripts), scripts
    for asset in scripts + re.findall(r'href="([^"]+\.css)"', page.text):
        served = api.client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
    assert "cdn" not in api.client.get("/redoc").text.lower()


def test_a_body_without_content_type_is_json_and_a_form_is_415(api: Api) -> None:
    event = orjson.dumps({"summary": "x", "service": "db"})
    bare = api.client.post("/api/v1/ingest/events", content=event, headers=api.headers(Role.INGEST))
    assert bare.status_code == 202, bare.text
    form = api.client.post("/api/v1/ingest/events", content=event, headers={
        **api.headers(Role.INGEST), "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415 and "send application/json" in form.json()["error"]
