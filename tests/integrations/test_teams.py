"""Teams through a Workflows webhook stand-in: Adaptive Card messages on the wire, within 28 KB,
and Approve / Reject as signed console links that approve nothing until a signed-in approver
posts the page (a link preview's GET changes nothing; each link acts once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from fixtures.console import Browser, add_users, csrf_of, fire, runbooks_dir
from integrations.itsm_standins import Teams
from watchkeeper import approval_links
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.itsm import Entry, Ticket
from watchkeeper.integrations.routing import Route
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.integrations.teams.card import LIMIT, message, size
from watchkeeper.model import Cause, Incident, IncidentStatus, Severity
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import outbox as outbox_store

PUBLIC = "http://testserver"


@pytest.fixture
def teams() -> Iterator[Teams]:
    stand = Teams().start()
    yield stand
    stand.stop()


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path, teams: Teams) -> Watchkeeper:
    url = f"{teams.url}/workflows/7c1d/triggers/manual/paths/invoke?api-version=1&sig={teams.sig}"
    config = IntegrationsConfig.model_validate({"targets": {"oncall": {
        "type": "teams", "webhook_url": url, "public_url": PUBLIC, "timeout_seconds": 2}}})
    made = make_service(sqlite_url, runbooks_dir=runbooks_dir(tmp_path), console={"secure_cookies": False},
                        integrations=config, routes=[Route.model_validate({"to": ["oncall"]})])
    add_users(made)
    return made


def delivery(browser: Browser) -> Integrations:
    found: Integrations = browser.client.app.state.integrations  # type: ignore[attr-defined]
    return found


def test_cards_on_the_wire(wk: Watchkeeper, teams: Teams) -> None:
    browser = Browser(wk)
    with browser.client:
        incident = fire(wk)
        assert delivery(browser).delivery.drain() == 1
    [seen] = teams.requests
    body = seen.json()
    assert seen.headers["content-type"] == "application/json"
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == f"Incident {incident}: web Down"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Watchkeeper",
                                "url": f"{PUBLIC}/console/incidents/{incident}"}]


def test_a_wrong_signature_is_dead_and_the_url_never_shown(wk: Watchkeeper, teams: Teams) -> None:
    teams.sig = "rotated"
    browser = Browser(wk)
    with browser.client:
        fire(wk)
        delivery(browser).delivery.drain()
    with wk.db.read() as conn:
        [found] = outbox_store.messages(conn)
    assert found["status"] == "dead" and "HTTP 401" in found["last_error"]
    assert "sig=" not in found["last_error"] and "Zm9vYmFy" not in found["last_error"]


@pytest.mark.parametrize("fault", [502, (429, 3), "reset"])
def test_injected_failures_are_retried(wk: Watchkeeper, teams: Teams, fault: Any) -> None:
    browser = Browser(wk)
    teams.faults.append(fault)
    with browser.client:
        fire(wk)
        integrations = delivery(browser)
        integrations.notifiers["oncall"].http.sleep = lambda _s: None  # type: ignore[attr-defined]
        assert integrations.delivery.drain() == 1
    assert len(teams.cards) == 1


def test_approve_and_reject_are_signed_links_a_preview_cannot_use(wk: Watchkeeper, teams: Teams) -> None:
    approver = Browser(wk)
    with approver.client:
        incident = fire(wk)
        wk.governance.respond()
        [pending] = wk.governance.approvals("pending")
        assert delivery(approver).delivery.drain() >= 2
        card = next(c for c in teams.cards if any(a["title"].startswith("Approve") for a in c["actions"]))
        links = {a["title"].split()[0]: a["url"] for a in card["actions"] if a["title"].split()[0] in
                 ("Approve", "Reject")}
        assert set(links) == {"Approve", "Reject"}
        secret = Accounts(wk.db, wk.clock, wk.settings.console).secret()
        claims = {k: approval_links.verify(secret, urlsplit(u).path.rsplit("/", 1)[1], wk.clock())
                  for k, u in links.items()}
        assert {k: (c.approval_id, c.decision) for k, c in claims.items()} == {
            "Approve": (pending["id"], "approve"), "Reject": (pending["id"], "reject")}
        approve_path = urlsplit(links["Approve"]).path
        # a chat client's link preview: no session, a plain GET
        preview = Browser(wk)
        with preview.client:
            assert preview.get(approve_path, follow_redirects=False).status_code in (303, 401)
        approver.sign_in("approver")
        page = approver.get(approve_path)
        assert page.status_code == 200
        assert wk.governance.approvals("pending")[0]["id"] == pending["id"]  # looking decided nothing
        done = approver.post(approve_path, {"csrf": csrf_of(page.text)})
        assert done.status_code == 303 and done.headers["location"].startswith(f"/console/incidents/{incident}")
        assert wk.governance.approvals("pending") == []
        again = approver.post(approve_path, {"csrf": csrf_of(page.text)})
        assert again.status_code == 409  # each link acts once


def _ticket(title: str, lines: int, text: str) -> Ticket:
    t0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    incident = Incident(9, title, IncidentStatus.OPEN, Severity.CRITICAL, ["db"], t0, t0)
    entries = tuple(Entry(i, t0, "token:bot", "incident.commented", text) for i in range(lines))
    return Ticket(incident, Cause("db", confidence=0.97), entries)


@pytest.mark.parametrize(("title", "lines", "text"), [
    ("small", 3, "ok"), ("many lines", 400, "x" * 300), ("a huge title " * 5000, 2, "y"),
    ("🔥" * 20_000, 50, "ü" * 5000),
])
def test_every_card_fits_28_kb_and_says_when_it_was_cut(title: str, lines: int, text: str, teams: Teams) -> None:
    body = message(_ticket(title, lines, text), [], f"{PUBLIC}/console/incidents/9")
    raw = orjson.dumps(body)
    assert size(body) == len(raw) <= LIMIT
    cut = len(orjson.dumps(message(_ticket(title, lines, text), [], None, limit=10**9))) > LIMIT
    assert ("Cut to fit Teams' 28 KB limit" in raw.decode()) == cut
    import httpx

    url = f"{teams.url}/workflows/x/triggers/manual/paths/invoke?sig={teams.sig}"
    assert httpx.post(url, content=raw, headers={"Content-Type": "application/json"}).status_code == 202
