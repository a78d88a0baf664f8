"""The console over HTTP (TestClient): sign-in, sessions, CSRF, roles, every page, hostile input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import Clock
from fixtures.console import PASSWORD, Browser, add_users, console_service, fire
from watchkeeper.errors import InputError
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause
from watchkeeper.server import create_app
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Watchkeeper

PAGES = ["/console/incidents", "/console/approvals", "/console/runbooks", "/console/silences",
         "/console/silences/new", "/console/kpis", "/console/audit", "/console/deadletters",
         "/console/usecases", "/console/gates", "/console/models", "/console/outbox"]


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path) -> Watchkeeper:
    return console_service(make_service, sqlite_url, tmp_path)



# -- signing in ---------------------------------------------------------------------------------
def test_signed_out_pages_go_to_the_sign_in_page(browser: Callable[[str], Browser]) -> None:
    b = browser("")
    for path in PAGES:
        got = b.get(path, follow_redirects=False)
        assert got.status_code == 303, path
        assert got.headers["location"].startswith("/console/login?next=%2Fconsole%2F")
    polled = b.get("/console/incidents", headers={"HX-Request": "true"}, follow_redirects=False)
    assert polled.status_code == 401 and polled.headers["HX-Redirect"].startswith("/console/login")


def test_sign_in_sets_a_safe_cookie_and_wrong_passwords_learn_nothing(browser: Callable[[str], Browser]) -> None:
    b = browser("")
    wrong = b.sign_in("operator", "not the password")
    nobody = b.sign_in("nobody", "not the password")
    assert wrong.status_code == nobody.status_code == 401
    assert "wrong user name or password" in wrong.text and "wrong user name or password" in nobody.text
    got = b.sign_in("operator")
    assert got.status_code == 303 and got.headers["location"] == "/console/incidents"
    cookie = got.headers["set-cookie"].lower()
    assert "wk_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "operator (operator)" in b.get("/console/incidents").text


def test_cookies_are_secure_by_default(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    wk = make_service(sqlite_url)
    add_users(wk)
    b = Browser(wk)
    with b.client:
        page = b.get("/console/login")
        assert "secure" in page.headers["set-cookie"].lower()


def test_next_never_leaves_the_console(browser: Callable[[str], Browser]) -> None:
    from fixtures.console import csrf_of

    for target in ("https://evil.example/", "//evil.example/", "/console/../api", "/\\evil"):
        b = browser("")
        page = b.get("/console/login")
        got = b.client.post("/console/login", data={"csrf": csrf_of(page.text), "username": "viewer",
                                                    "password": PASSWORD, "next": target}, follow_redirects=False)
        assert got.status_code == 303
        assert got.headers["location"].startswith("/console/"), target
        assert "evil" not in got.headers["location"] and ".." not in got.headers["location"]


def test_sessions_end_when_idle_when_old_and_when_the_user_is_disabled(
    wk: Watchkeeper, browser: Callable[[str], Browser], clock: Clock,
) -> None:
    b = browser("viewer")
    assert b.get("/console/incidents").status_code == 200
    clock.advance(minutes=61)  # idle_minutes: 60
    assert b.get("/console/incidents", follow_redirects=False).status_code == 303
    b.sign_in("viewer")
    for _ in range(13):  # active all along, but a session lives 12 h at most
        clock.advance(minutes=59)
        b.get("/console/incidents")
    assert b.get("/console/incidents", follow_redirects=False).status_code == 303
    b.sign_in("viewer")
    Accounts(wk.db, wk.clock, wk.settings.console).disable("viewer", "test")
    assert b.get("/console/incidents", follow_redirects=False).status_code == 303
    assert b.sign_in("viewer").status_code == 401


def test_sign_out_ends_the_session(browser: Callable[[str], Browser]) -> None:
    b = browser("viewer")
    cookie = b.client.cookies.get("wk_session")
    assert b.post("/console/logout").status_code == 303
    other = browser("")
    other.client.cookies.set("wk_session", cookie or "", path="/console")
    assert other.get("/console/incidents", follow_redirects=False).status_code == 303


# -- CSRF ---------------------------------------------------------------------------------------
def test_a_post_without_the_csrf_token_is_refused(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    b = browser("operator")
    for token in (None, "", "0" * 64, b.csrf[:-1] + ("0" if b.csrf[-1] != "0" else "1")):
        data = {} if token is None else {"csrf": token}
        got = b.post(f"/console/incidents/{incident}/acknowledge", data, csrf=False)
        assert got.status_code == 403 and "CSRF" in got.text
        assert got.headers["x-frame-options"] == "DENY" and "content-security-policy" in got.headers
    assert wk.incident(incident)["status"] == "open"
    assert b.post(f"/console/incidents/{incident}/acknowledge").status_code == 303
    assert wk.incident(incident)["status"] == "acknowledged"


def test_one_sessions_token_is_worthless_in_another(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    alice, bob = browser("operator"), browser("approver")
    got = bob.post(f"/console/incidents/{incident}/acknowledge", {"csrf": alice.csrf}, csrf=False)
    assert got.status_code == 403


def test_the_sign_in_form_needs_its_token_too(browser: Callable[[str], Browser]) -> None:
    b = browser("")
    got = b.client.post("/console/login", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False)
    assert got.status_code == 403 and "wk_session" not in got.headers.get("set-cookie", "")


def test_json_clients_get_the_api_error_shape(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    b = browser("operator")
    got = b.post(f"/console/incidents/{incident}/acknowledge", {}, csrf=False, headers={"Accept": "application/json"})
    assert got.status_code == 403
    assert got.json()["status"] == 403 and "CSRF" in got.json()["error"]


# -- roles --------------------------------------------------------------------------------------
#: Every console route and the least role that may use it (None: no sign-in needed). The API's
#: table is tests/server/test_auth.py's ROLE_OF; the console signs people in by cookie instead.
PUBLIC = None
CONSOLE_ROLE_OF: dict[tuple[str, str], str | None] = {
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/static/{name}"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): "viewer",
    ("GET", "/console/incidents"): "viewer",
    ("GET", "/console/incidents/{incident_id}"): "viewer",
    ("POST", "/console/incidents/{incident_id}/{action}"): "operator",
    ("GET", "/console/approvals"): "viewer",
    ("POST", "/console/approvals/{approval_id}/{decision}"): "approver",
    ("GET", "/console/approve/{token}"): "viewer",
    ("POST", "/console/approve/{token}"): "approver",
    ("GET", "/console/runbooks"): "viewer",
    ("POST", "/console/runbooks/{runbook_id}/enable"): "approver",
    ("GET", "/console/silences"): "viewer",
    ("GET", "/console/silences/new"): "operator",
    ("POST", "/console/silences"): "operator",
    ("POST", "/console/silences/{silence_id}/expire"): "operator",
    ("GET", "/console/kpis"): "viewer",
    ("GET", "/console/audit"): "admin",
    ("GET", "/console/deadletters"): "admin",
    ("GET", "/console/usecases"): "viewer",
    ("GET", "/console/usecases/{case_id}"): "viewer",
    ("GET", "/console/gates"): "viewer",
    ("POST", "/console/gates/{proposal_id}/{decision}"): "approver",
    ("GET", "/console/models"): "viewer",
    ("GET", "/console/outbox"): "viewer",
    ("POST", "/console/outbox/{message_id}/retry"): "operator",
}
ORDER = ["viewer", "operator", "approver", "admin"]


def test_the_table_names_every_console_route(wk: Watchkeeper) -> None:
    from fastapi.routing import APIRoute

    app = create_app(wk, upgrade=False, responder=False, watch=False, rank=False)
    found = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/console")
             for m in r.methods if m not in ("HEAD", "OPTIONS")}
    assert found == set(CONSOLE_ROLE_OF)


def test_each_role_gets_exactly_its_pages(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    wk.governance.respond()
    [pending] = wk.governance.approvals("pending")
    accounts = Accounts(wk.db, wk.clock, wk.settings.console)
    values = {"incident_id": incident, "action": "comment", "approval_id": pending["id"], "decision": "approve",
              "token": accounts.approval_link(pending["id"], "approve").rsplit("/", 1)[1], "runbook_id": "restart",
              "silence_id": 1, "name": "console.css", "case_id": "no-such-case", "proposal_id": 1,
              "message_id": 1}
    form = {"matchers": 'service="x"', "comment": "walk"}
    for role in ORDER:
        for (method, path), least in CONSOLE_ROLE_OF.items():
            b = browser(role)  # a fresh session each time: logout ends one
            concrete = path.format(**values)
            got = b.get(concrete, follow_redirects=False) if method == "GET" else b.post(concrete, form)
            if least is PUBLIC:  # (a 401 from the sign-in form: no user name and password in this form)
                assert got.status_code != 403, (role, method, path, got.text[:300])
            elif ORDER.index(role) >= ORDER.index(least):
                assert got.status_code not in (401, 403), (role, method, path, got.text[:300])
            else:
                assert got.status_code == 403, (role, method, path)
                assert f"has role {role}" in got.text
    anonymous = browser("")
    for (method, path), least in CONSOLE_ROLE_OF.items():
        if least is not PUBLIC and method == "GET":
            assert anonymous.get(path.format(**values), follow_redirects=False).status_code == 303, path


def test_a_viewer_cannot_approve(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    wk.governance.respond()
    [pending] = wk.governance.approvals("pending")
    viewer = browser("viewer")
    page = viewer.get(f"/console/incidents/{incident}").text
    assert "Only an approver can decide" in page and f"/console/approvals/{pending['id']}/approve" not in page
    got = viewer.post(f"/console/approvals/{pending['id']}/approve")
    assert got.status_code == 403 and "may not approve" in got.text
    assert wk.governance.approvals("pending")[0]["id"] == pending["id"]


# -- pages --------------------------------------------------------------------------------------
def test_every_page_renders_and_links_its_api_call(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    fire(wk)
    wk.governance.respond()
    b = browser("admin")
    for path in PAGES:
        got = b.get(path)
        assert got.status_code == 200, (path, got.text[:500])
        assert "<code>GET /api/v1/" in got.text or "<code>POST /api/v1/" in got.text, path
        assert got.headers["content-security-policy"].startswith("default-src 'self'")


def test_incident_detail_shows_alerts_causes_and_the_evidence_plot(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    incident = fire(wk)
    series = {"latency_p95": [[1_700_000_000 + 15 * n, 0.1 if n < 20 else 2.5] for n in range(40)]}
    wk.governance.set_causes(incident, [
        Cause("web", "service", 4.2, 0.91, "test", {"series": series, "first_anomaly_at": 1_700_000_300,
                                                    "top_metrics": [{"metric": "latency_p95", "z": 9.1,
                                                                     "baseline": 0.1, "peak": 2.5}]}),
        Cause("db", "service", 1.0, 0.05, "test", {}),
    ], "test")
    page = browser("viewer").get(f"/console/incidents/{incident}").text
    assert "Likely causes" in page and "<b>web</b>" in page and "91 %" in page
    assert "<svg" in page and "<polyline" in page and 'class="onset"' in page
    assert "web Down" in page and "opened" in page  # the alert and why it joined
    assert f"GET /api/v1/incidents/{incident}" in page
    operator_page = browser("operator").get(f"/console/incidents/{incident}").text
    # a silence made from it: the labels its alerts share
    assert "/console/silences/new?matchers=alertname%3D%22Down%22%0Aservice%3D%22web%22%0Ateam%3D%22shop%22" \
        in operator_page


def test_a_capped_confidence_says_what_was_not_ruled_out(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    """The approver sees why the top cause is not trusted (watchkeeper.rca.doubt)."""
    incident = fire(wk)
    doubts = {"callees_not_seen_yet": ["db"], "changed_below": [{"service": "db", "at": 1.0, "description": "deploy v2"}],
              "calibrated": 0.98, "cap": 0.5}
    wk.governance.set_causes(incident, [Cause("web", "service", 30.0, 0.5, "baro-v1", {"doubts": doubts})], "rca")
    page = browser("viewer").get(f"/console/incidents/{incident}").text
    assert "confidence capped at 50 %" in page and "calibrated 98 %" in page
    assert "not seen yet: db" in page and "changed below it: db (deploy v2)" in page


def test_the_ranker_s_series_shape_is_plotted_with_the_incident_onset_as_marker(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    """What ``ranking.with_series`` stores: ``series`` and ``series_onset``, no anomaly time of its own."""
    incident = fire(wk)
    series = {"latency": [[1_700_000_000.0 + 15 * n, 0.1 if n < 20 else 2.5] for n in range(41)]}
    wk.governance.set_causes(incident, [
        Cause("web", "service", 4.2, 0.91, "baro-v1", {"series": series, "series_onset": 1_700_000_300.0,
                                                       "first_anomaly_at": None}),
    ], "rca")
    page = browser("viewer").get(f"/console/incidents/{incident}").text
    assert "<polyline" in page and 'class="onset"' in page


def test_lifecycle_from_the_console_is_audited_as_the_user(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    b = browser("operator")
    for action in ("acknowledge", "mitigate", "resolve", "reopen"):
        got = b.post(f"/console/incidents/{incident}/{action}", {"comment": f"{action} it"})
        assert got.status_code == 303 and got.headers["location"] == f"/console/incidents/{incident}?done={action}"
    assert b.post(f"/console/incidents/{incident}/assign", {"assignee": "dana"}).status_code == 303
    assert b.post(f"/console/incidents/{incident}/comment", {"comment": "looking"}).status_code == 303
    view = wk.incident(incident)
    assert view["status"] == "open" and view["assignee"] == "dana"
    actors = {t["actor"] for t in view["timeline"] if t["kind"].startswith("incident.")}
    assert "user:operator" in actors
    # an action the state does not allow is a 4xx page with a sentence, never a 500
    b.post(f"/console/incidents/{incident}/mitigate")
    again = b.post(f"/console/incidents/{incident}/acknowledge")
    assert again.status_code == 409 and "already mitigated" in again.text and 'class="problem"' in again.text


def test_split_merge_and_move(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    first = fire(wk, "Down")
    fire(wk, "Slow")
    members = [a["fingerprint"] for a in wk.incident(first)["alerts"]]
    assert len(members) == 2
    b = browser("operator")
    got = b.post(f"/console/incidents/{first}/split", {"fingerprints": [members[1]]})
    assert got.status_code == 303
    new = int(got.headers["location"].split("/")[-1].split("?")[0])
    assert new != first and [a["fingerprint"] for a in wk.incident(new)["alerts"]] == [members[1]]
    assert b.post(f"/console/incidents/{new}/move", {"fingerprint": members[1], "to": first}).status_code == 303
    assert len(wk.incident(first)["alerts"]) == 2
    other = fire(wk, "Gone", service="db", resource="db-1:5432")
    assert b.post(f"/console/incidents/{other}/merge", {"into": first}).status_code == 303
    assert wk.incident(other)["status"] == "resolved"


def test_incident_list_filters_pages_by_keyset_and_refreshes(
    wk: Watchkeeper, browser: Callable[[str], Browser], clock: Clock,
) -> None:
    ids = []
    for n in range(60):
        clock.advance(minutes=10)  # past the correlation window: one incident each
        ids.append(fire(wk, f"Alert{n}", service="web" if n % 2 else "db", resource=f"h-{n}:1"))
    assert len(set(ids)) == 60
    b = browser("viewer")
    first = b.get("/console/incidents").text
    assert f">{ids[-1]}</a>" in first and f">{ids[10]}</a>" in first and f">{ids[9]}</a>" not in first
    assert 'hx-trigger="every 10s"' in first and f"before={ids[10]}" in first
    older = b.get(f"/console/incidents?before={ids[10]}").text
    assert f">{ids[9]}</a>" in older and f">{ids[10]}</a>" not in older and "hx-trigger" not in older
    web_only = b.get("/console/incidents?service=web").text
    assert f">{ids[1]}</a>" in web_only and f">{ids[2]}</a>" not in web_only
    partial = b.get("/console/incidents", headers={"HX-Request": "true"}).text
    assert partial.startswith('<tbody id="incident-rows"') and "<html" not in partial


def test_silence_preview_shows_what_it_would_mute_before_saving(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    fire(wk)
    b = browser("operator")
    preview = b.get("/console/silences/new", params={"matchers": 'team="shop"', "duration": "1h"}).text
    assert "It would mute 1 firing alert now" in preview and "Save this silence" in preview
    assert wk.silences() == []
    bad = b.get("/console/silences/new", params={"matchers": "team=~(["}).text
    assert 'class="problem"' in bad
    assert b.post("/console/silences", {"matchers": 'team="shop"', "duration": "1h", "comment": "deploy"}
                  ).status_code == 303
    [made] = wk.silences()
    assert made["created_by"] == "user:operator"
    assert b.post(f"/console/silences/{made['id']}/expire").status_code == 303
    assert wk.silences() == []


def test_kpis_audit_and_dead_letters(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    incident = fire(wk)
    wk.act(incident, Action.ACKNOWLEDGE, "test")
    with pytest.raises(InputError, match="malformed JSON"):
        wk.ingest("events", b"{not json", "application/json", "test")
    b = browser("admin")
    kpis = b.get("/console/kpis").text
    assert "Alerts → incidents" in kpis and "<svg" in kpis and "The numbers behind the charts" in kpis
    audit = b.get("/console/audit?verify=true").text
    assert 'id="verdict"' in audit and "hash chain intact" in audit
    dead = b.get("/console/deadletters").text
    assert "{not json" in dead and "malformed JSON" in dead


# -- hostile input ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/console/incidents/0", "/console/incidents/99999999999", "/console/incidents/abc",
    "/console/incidents?status=nonsense", "/console/incidents?before=-1", "/console/incidents?since=2026-13-45",
    "/console/incidents?since=yesterday", "/console/incidents?until=2026-01-01&since=2026-02-01",
    "/console/incidents?q=" + "x" * 500, "/console/approvals?status=%00", "/console/kpis?days=0",
    "/console/kpis?days=100000", "/console/static/../app.py", "/console/static/nope.js",
    "/console/audit?before=0", "/console/approve/" + "A" * 300, "/console/approve/not-a-token",
    "/console/incidents/424242",
])
def test_hostile_reads_are_4xx_pages(browser: Callable[[str], Browser], path: str) -> None:
    got = browser("admin").get(path)
    assert 400 <= got.status_code < 500, (path, got.status_code)
    assert "<h1>" in got.text or got.json()["status"] == got.status_code  # a page, or the API's shape


@pytest.mark.parametrize(("path", "form"), [
    ("/console/incidents/1/explode", {}), ("/console/incidents/1/assign", {"assignee": ""}),
    ("/console/incidents/1/comment", {"comment": "x" * 20_000}), ("/console/incidents/1/merge", {"into": "me"}),
    ("/console/incidents/1/split", {}), ("/console/incidents/1/split", {"fingerprints": ["nope"]}),
    ("/console/incidents/1/move", {"fingerprint": "nope", "to": 1}), ("/console/silences", {"matchers": ""}),
    ("/console/silences", {"matchers": 'a="b"', "duration": "forever"}),
    ("/console/silences", {"matchers": "a=~(["}), ("/console/silences/99/expire", {}),
    ("/console/approvals/99/approve", {}), ("/console/approvals/1/maybe", {}),
    ("/console/runbooks/nope/enable", {}), ("/console/incidents/1/acknowledge", {"comment": "\x00" * 10}),
])
def test_hostile_posts_are_4xx_pages(wk: Watchkeeper, browser: Callable[[str], Browser], path: str,
                                     form: dict[str, object]) -> None:
    fire(wk)
    got = browser("admin").post(path, form)
    assert 400 <= got.status_code < 500 or (got.status_code == 303 and "acknowledge" in path), (path, got.text[:300])


def test_a_malformed_form_body_is_a_400(browser: Callable[[str], Browser]) -> None:
    b = browser("admin")
    got = b.client.post("/console/logout", content=b"--x\r\nbroken", follow_redirects=False,
                        headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert got.status_code in (400, 403)


def test_clock_for_links_is_the_services(wk: Watchkeeper, clock: Clock) -> None:
    assert wk.clock() == clock.now
    clock.advance(seconds=1)
    assert wk.clock() - clock.now == timedelta(0)


# -- the trusted SSO header ---------------------------------------------------------------------
def _sso_client(wk: Watchkeeper, peer: str) -> TestClient:
    return TestClient(create_app(wk, upgrade=False, responder=False, watch=False, rank=False),
                      headers={"Accept": "text/html"}, client=(peer, 40000))


def test_sso_header_signs_in_only_from_an_allowed_proxy(
    make_service: Callable[..., Watchkeeper], sqlite_url: str,
) -> None:
    wk = make_service(sqlite_url, console={"secure_cookies": False, "sso_header": "X-Forwarded-User",
                                           "sso_proxies": ["127.0.0.1", "10.1.0.0/16"]})
    add_users(wk)
    with _sso_client(wk, "127.0.0.1") as proxy:
        got = proxy.get("/console/incidents", headers={"X-Forwarded-User": "viewer"}, follow_redirects=False)
        assert got.status_code == 200 and "viewer (viewer)" in got.text and "wk_session=" in got.headers["set-cookie"]
        nobody = proxy.get("/console/incidents", headers={"X-Forwarded-User": "mallory"}, follow_redirects=False)
        assert nobody.status_code in (200, 303)  # the cookie from before still holds; mallory is never signed in
        assert "mallory" not in nobody.text
    with _sso_client(wk, "127.0.0.1") as fresh:
        got = fresh.get("/console/incidents", headers={"X-Forwarded-User": "mallory"}, follow_redirects=False)
        assert got.status_code == 303
    with _sso_client(wk, "192.0.2.7") as elsewhere:  # not a proxy: the header is anyone's to forge
        got = elsewhere.get("/console/incidents", headers={"X-Forwarded-User": "admin"}, follow_redirects=False)
        assert got.status_code == 303


def test_sso_is_off_by_default(wk: Watchkeeper) -> None:
    with _sso_client(wk, "127.0.0.1") as c:
        for header in ("X-Forwarded-User", "X-Remote-User", "Remote-User"):
            assert c.get("/console/incidents", headers={header: "admin"}, follow_redirects=False).status_code == 303


@pytest.mark.parametrize("bad", [{"sso_proxies": ["not-an-ip"]}, {"sso_header": "X Bad"}, {"secret": "short"},
                                 {"session_hours": 0}, {"unknown": 1}])
def test_console_settings_are_checked(bad: dict[str, object], tmp_path: Path) -> None:
    import yaml

    from watchkeeper.errors import ConfigError
    from watchkeeper.settings import load_settings

    path = tmp_path / "wk.yaml"
    path.write_text(yaml.safe_dump({"console": bad}))
    with pytest.raises(ConfigError, match="console"):
        load_settings({}, path)
