"""Who may call what: every route of the app against one table (and the README's), token expiry
and rotation over HTTP, and the ``WWW-Authenticate`` challenge on every 401."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from conftest import Clock
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper

PUBLIC = None
#: Every route of the app and the least role that may call it (None: no token needed).
ROLE_OF: dict[tuple[str, str], str | None] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static-offline-docs/{path}"): PUBLIC,
    ("POST", "/api/v1/ingest/alertmanager"): "ingest",
    ("POST", "/api/v1/ingest/grafana"): "ingest",
    ("POST", "/api/v1/ingest/pagerduty"): "ingest",
    ("POST", "/api/v1/ingest/events"): "ingest",
    ("POST", "/api/v1/ingest/prometheus"): "ingest",
    ("POST", "/api/v2/alerts"): "ingest",
    ("GET", "/api/v1/incidents"): "viewer",
    ("GET", "/api/v1/incidents/{incident_id}"): "viewer",
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/mitigate"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/reopen"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): "operator",
    ("PUT", "/api/v1/incidents/{incident_id}/causes"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/merge"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/split"): "operator",
    ("POST", "/api/v1/alerts/{fingerprint}/move"): "operator",
    ("GET", "/api/v1/silences"): "viewer",
    ("POST", "/api/v1/silences"): "operator",
    ("DELETE", "/api/v1/silences/{silence_id}"): "operator",
    ("GET", "/api/v1/runbooks"): "viewer",
    ("GET", "/api/v1/runbooks/{runbook_id}"): "viewer",
    ("POST", "/api/v1/runbooks/{runbook_id}/run"): "operator",
    ("POST", "/api/v1/runbooks/{runbook_id}/enable"): "approver",
    ("GET", "/api/v1/approvals"): "viewer",
    ("POST", "/api/v1/approvals/{approval_id}/approve"): "approver",
    ("POST", "/api/v1/approvals/{approval_id}/reject"): "approver",
    ("POST", "/api/v1/incidents/{incident_id}/assign"): "operator",
    ("POST", "/api/v1/incidents/{incident_id}/comments"): "operator",
    ("GET", "/api/v1/kpis"): "viewer",
    ("GET", "/api/v1/deadletters"): "admin",
    ("GET", "/api/v1/audit/verify"): "admin",
    ("POST", "/api/v1/ingest/changes"): "ingest",
    ("GET", "/api/v1/changes"): "viewer",
    ("GET", "/api/v1/topology"): "viewer",
    ("GET", "/api/v1/outbox"): "viewer",
    ("POST", "/api/v1/outbox/{message_id}/retry"): "operator",
    ("POST", "/api/v1/integrations/slack/interactivity"): PUBLIC,  # Slack's signature is the credential
    ("POST", "/api/v1/integrations/servicenow/inbound"): "operator",
    ("POST", "/api/v1/integrations/jira/webhook"): "operator",  # or Jira's signature instead of a token
    ("GET", "/api/v1/usecases"): "viewer",
    ("POST", "/api/v1/usecases"): "operator",
    ("GET", "/api/v1/usecases/{case_id}"): "viewer",
    ("GET", "/api/v1/portfolio/priorities"): "viewer",
    ("POST", "/api/v1/usecases/{case_id}/propose"): "operator",
    ("GET", "/api/v1/gates"): "viewer",
    ("GET", "/api/v1/gates/evaluation"): "viewer",
    ("POST", "/api/v1/gates/evaluate"): "operator",
    ("POST", "/api/v1/gates/{proposal_id}/approve"): "approver",
    ("POST", "/api/v1/gates/{proposal_id}/reject"): "approver",
    ("GET", "/api/v1/models"): "viewer",
    ("POST", "/api/v1/models"): "operator",
    ("GET", "/api/v1/models/{kind}/{name}"): "viewer",
    ("POST", "/api/v1/models/{kind}/{name}/drift"): "operator",
    ("GET", "/api/v1/drift"): "viewer",
    ("POST", "/v1/traces"): "ingest",
    ("GET", "/api/v1/traces/red"): "viewer",
    ("GET", "/api/v1/traces/{trace_id}"): "viewer",
    ("POST", "/v1/logs"): "ingest",
    ("GET", "/api/v1/logs/templates"): "viewer",
    ("GET", "/api/v1/logs/counts"): "viewer",
}
#: The roles that hold each least role's rights (admin holds every right).
HOLDERS = {
    "ingest": {Role.INGEST, Role.ADMIN},
    "viewer": {Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.ADMIN},
    "operator": {Role.OPERATOR, Role.APPROVER, Role.ADMIN},
    "approver": {Role.APPROVER, Role.ADMIN},
    "admin": {Role.ADMIN},
}
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], db_url: str) -> Watchkeeper:
    return make_service(db_url)


@pytest.fixture
def client(wk: Watchkeeper) -> Iterator[TestClient]:
    with TestClient(create_app(wk, upgrade=False, responder=False)) as c:
        yield c


def routes(wk: Watchkeeper) -> list[tuple[str, str]]:
    found = []
    for route in create_app(wk, upgrade=False, responder=False).routes:
        if isinstance(route, Mount):  # static files (the offline docs' assets): GET anything below it
            found.append(("GET", f"{route.path}/{{path}}"))
            continue
        assert isinstance(route, (APIRoute, Route)), route
        if route.path.startswith("/console"):
            # the web console signs people in with a session cookie, not a bearer token: its
            # routes and their roles are walked in tests/server/console/test_console.py
            continue
        found += [(m, route.path) for m in sorted(route.methods or ()) if m not in ("HEAD", "OPTIONS")]
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_table_names_every_route_and_only_routes(wk: Watchkeeper) -> None:
    found = routes(wk)
    assert len(found) == len(set(found))
    assert sorted(set(found) - set(ROLE_OF)) == [], "a route missing from ROLE_OF: give it its role"
    assert sorted(set(ROLE_OF) - set(found)) == [], "ROLE_OF names a route the app does not have"


def test_every_route_admits_exactly_the_roles_of_the_table(wk: Watchkeeper, client: TestClient) -> None:
    tokens = {role: wk.create_token(role, f"walk-{role.value}", "test") for role in Role}
    checked = 0
    for method, path in routes(wk):
        least = ROLE_OF[(method, path)]
        anonymous = client.request(method, concrete(path))
        if least is PUBLIC:
            assert anonymous.status_code not in (401, 403), (method, path)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="watchkeeper"'
        for role, token in tokens.items():
            got = client.request(method, concrete(path), headers={"Authorization": f"Bearer {token}"})
            if role in HOLDERS[least]:
                assert got.status_code not in (401, 403), (method, path, role, got.text)
            else:
                assert got.status_code == 403, (method, path, role, got.text)
                assert f"has role {role.value}" in got.json()["error"]
                assert 'error="insufficient_scope"' in got.headers["www-authenticate"]
            checked += 1
    assert checked == 5 * sum(1 for least in ROLE_OF.values() if least is not PUBLIC)


def _readme_rows() -> list[tuple[str, list[str], str]]:
    """(method, paths, role) for every row of the README's role table, paths as written there:
    ``{a,b}`` alternatives expanded, a path without ``/api`` relative to the one before it."""
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"[A-Z]+(/[A-Z]+)*", cells[0]):
            continue
        methods, roles = cells[0].split("/"), [r.strip() for r in cells[2].split("/")]
        paths: list[str] = []
        for written in re.findall(r"`(/[^`]*)`", cells[1]):
            written = written.split("?")[0]
            if not written.startswith("/api") and paths:
                written = paths[-1].rsplit("/", 1)[0] + written
            pending = [written]
            while pending:
                one = pending.pop()
                alt = re.search(r"\{([^{}]*,[^{}]*)\}", one)
                if alt is None:
                    paths.append(one)
                else:
                    pending += [one[:alt.start()] + o + one[alt.end():] for o in alt.group(1).split(",")]
        for n, method in enumerate(methods):
            rows.append((method, paths, roles[min(n, len(roles) - 1)]))
    return rows


def test_the_readme_role_table_agrees() -> None:
    rows = _readme_rows()
    assert rows, "the README has no role table"
    shape = re.compile(r"\{[^}]+\}")
    for (method, path), least in ROLE_OF.items():
        if least is PUBLIC:
            continue
        said = {role for m, paths, role in rows if m == method
                and shape.sub("{}", path) in {shape.sub("{}", p) for p in paths}}
        assert said == {least}, f"README says {said or 'nothing'} for {method} {path}; the app: {least}"


# -- expiry and rotation over HTTP -------------------------------------------------------------
def test_an_expired_token_gets_a_401_saying_so(wk: Watchkeeper, client: TestClient, clock: Clock) -> None:
    made = wk.issue_token(Role.VIEWER, "grafana-board", "test", "1d")
    auth = {"Authorization": f"Bearer {made.secret}"}
    assert client.get("/api/v1/incidents", headers=auth).status_code == 200
    clock.advance(days=1)  # the cached principal is checked again: no stale grace
    got = client.get("/api/v1/incidents", headers=auth)
    assert got.status_code == 401
    assert "'grafana-board'" in got.json()["error"] and "expired at 2026-11-23 06:00:00Z" in got.json()["error"]
    assert f"token rotate {made.id}" in got.json()["error"]
    assert got.headers["www-authenticate"].startswith('Bearer realm="watchkeeper", error="invalid_token"')


def test_default_expiry_is_the_setting(make_service: Callable[..., Watchkeeper], sqlite_url: str,
                                       clock: Clock) -> None:
    wk = make_service(sqlite_url, token_default_days=7)
    made = wk.issue_token(Role.OPERATOR, "oncall", "test")
    assert made.expires_at == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # the clock starts 2026-11-22 06:00
    clock.advance(days=7)
    assert [i.state(clock.now).value for i in wk.token_infos()] == ["expired"]


@pytest.mark.parametrize(("header", "code"), [
    ("Bearer wk_nope", 'error="invalid_token"'), ("Basic dXNlcjpwYXNz", 'error="invalid_request"'),
])
def test_every_401_challenges(client: TestClient, header: str, code: str) -> None:
    got = client.get("/api/v1/kpis", headers={"Authorization": header})
    assert got.status_code == 401
    assert got.headers["www-authenticate"].startswith('Bearer realm="watchkeeper", ' + code)


def test_rotation_with_grace_keeps_the_old_token_until_it_ends(
    wk: Watchkeeper, client: TestClient, clock: Clock,
) -> None:
    old = wk.issue_token(Role.INGEST, "alertmanager", "test", "never")
    new = wk.rotate_token(old.id, "test", grace="1h")
    assert (new.name, new.role, new.expires_at) == ("alertmanager", Role.INGEST, None)
    for secret in (old.secret, new.secret):
        got = client.post("/api/v1/ingest/events", content=b"[]", headers={"Authorization": f"Bearer {secret}"})
        assert got.status_code != 401, got.text
    clock.advance(hours=1)
    assert client.post("/api/v1/ingest/events", content=b"[]",
                       headers={"Authorization": f"Bearer {old.secret}"}).status_code == 401
    assert client.post("/api/v1/ingest/events", content=b"[]",
                       headers={"Authorization": f"Bearer {new.secret}"}).status_code != 401
    kinds = [r.kind for r in _audit(wk)]
    assert kinds.count("token.rotated") == 1


def test_rotation_without_grace_revokes_at_once(wk: Watchkeeper, client: TestClient) -> None:
    old = wk.issue_token(Role.ADMIN, "ops", "test", "30d")
    auth = {"Authorization": f"Bearer {old.secret}"}
    assert client.get("/api/v1/audit/verify", headers=auth).status_code == 200
    new = wk.rotate_token(old.id, "test")
    assert client.get("/api/v1/audit/verify", headers=auth).status_code == 401
    assert client.get("/api/v1/audit/verify", headers={"Authorization": f"Bearer {new.secret}"}).status_code == 200
    states = {i.id: i.state(wk.clock()).value for i in wk.token_infos()}
    assert states[old.id] == "revoked" and states[new.id] == "active"


def test_last_use_is_recorded(wk: Watchkeeper, client: TestClient, clock: Clock) -> None:
    made = wk.issue_token(Role.VIEWER, "board", "test")
    assert [i.last_used_at for i in wk.token_infos()] == [None]
    client.get("/api/v1/kpis", headers={"Authorization": f"Bearer {made.secret}"})
    assert [i.last_used_at for i in wk.token_infos()] == [clock.now]


def _audit(wk: Watchkeeper) -> list[object]:
    from watchkeeper.storage import audit

    with wk.db.read() as conn:
        return list(audit.records(conn))
