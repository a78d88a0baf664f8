"""The console in a real browser (Debian's Chromium driven by Playwright): sign in, open an incident,
see its cause, approve the pending action, watch it run and the incident resolve; a viewer cannot
approve; a form without its CSRF token is refused; no page logs a console error. The screenshots are taken here: into a temporary directory, or into
docs/screenshots/ (the README's) only with WATCHKEEPER_SCREENSHOTS=docs, so a test run leaves a clean
clone clean."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from conftest import need
from fixtures.console import PASSWORD, add_users, fire, runbooks_dir
from fixtures.threadserver import ThreadServer
from watchkeeper.model import Cause
from watchkeeper.ranking import with_series
from watchkeeper.server import create_app
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PAGES = ["/console/incidents", "/console/approvals", "/console/runbooks", "/console/silences",
         "/console/silences/new?matchers=team%3D%22shop%22", "/console/kpis", "/console/audit?verify=true",
         "/console/deadletters"]

pytestmark = pytest.mark.e2e


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Watchkeeper, ThreadServer]]:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium; make test installs it as root)")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wk.db'}", runbooks_dir=runbooks_dir(tmp_path),
                        console={"secure_cookies": False}, responder_interval_seconds=0.2)  # type: ignore[arg-type]
    wk = Watchkeeper(settings, metrics=False)
    wk.upgrade()
    add_users(wk)
    try:
        with ThreadServer(create_app(wk, watch=False, rank=False)) as server:
            yield wk, server
    finally:
        wk.close()


def shots_dir(setting: str | None, temporary: Path) -> Path:
    """Where the screenshots go: ``docs/screenshots/`` when ``WATCHKEEPER_SCREENSHOTS=docs``, else
    ``temporary`` (unset or empty); any other value is a mistake worth a sentence."""
    if setting == "docs":
        return DOCS_SHOTS
    if not setting:
        return temporary
    raise pytest.UsageError(f"WATCHKEEPER_SCREENSHOTS={setting!r}: use 'docs' (retake docs/screenshots/) or leave "
                            "it unset (screenshots go to a temporary directory)")


def test_screenshots_go_to_docs_only_when_asked(tmp_path: Path) -> None:
    assert shots_dir(None, tmp_path) == shots_dir("", tmp_path) == tmp_path
    assert shots_dir("docs", tmp_path) == DOCS_SHOTS and DOCS_SHOTS.parts[-2:] == ("docs", "screenshots")
    with pytest.raises(pytest.UsageError, match="use 'docs'"):
        shots_dir("yes", tmp_path)


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shots_dir(os.environ.get("WATCHKEEPER_SCREENSHOTS"), tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def browser() -> Iterator[Any]:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium; make test installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, browser: Any, base: str, shots: Path) -> None:
        self.shots = shots
        self.context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"{self.page.url}: {m.text}") if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"{self.page.url}: {e}"))

    def sign_in(self, name: str) -> None:
        self.page.goto("/console/login")
        self.page.get_by_label("User name").fill(name)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/console/incidents")

    def shot(self, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def _causes() -> list[Cause]:
    """The causes as the ranker stores them: evidence with ``series`` thinned by ``ranking.with_series``."""
    onset = time.time() - 180
    t = np.arange(onset - 3600, time.time(), 5.0)
    latency = np.where(t < onset, 0.12 + 0.01 * (np.arange(t.size) % 3), 2.4 + 0.1 * (np.arange(t.size) % 2))
    errors = np.where(t < onset + 30, 0.0, 0.35)
    top = [{"metric": "latency_p95_s", "z": 11.2, "baseline": 0.13, "peak": 2.5, "onset_at": onset},
           {"metric": "error_ratio", "z": 7.0, "baseline": 0.0, "peak": 0.35, "onset_at": onset + 30}]
    causes = [Cause("web", "service", 4.2, 0.91, "baro-v1", {"top_metrics": top, "first_anomaly_at": onset}),
              Cause("db", "service", 1.1, 0.06, "baro-v1", {})]
    return with_series(causes, {"web": {"latency_p95_s": (t, latency), "error_ratio": (t, errors)}}, onset, 300, 300)


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


def test_sign_in_see_the_cause_approve_and_watch_it_resolve(
    site: tuple[Watchkeeper, ThreadServer], browser: Any, shots: Path,
) -> None:
    wk, server = site
    incident = fire(wk)
    for n in range(3):  # some history for the list and the KPIs
        fire(wk, f"Latency{n}", service=f"svc{n}", resource=f"svc{n}-1:80")
    wk.governance.set_causes(incident, _causes(), "test")
    _wait(lambda: any(a["incident_id"] == incident for a in wk.governance.approvals("pending")),
          "the responder to ask for an approval")

    me = Watched(browser, server.url, shots)
    me.page.goto("/console/login")
    me.shot("login")
    assert me.page.evaluate("document.activeElement.name") == "username"  # typing can start at once
    me.sign_in("approver")
    me.shot("incidents")
    me.page.keyboard.press("Tab")  # the keyboard's first stop skips the navigation
    assert me.page.evaluate("document.activeElement.textContent") == "Skip to content"
    me.page.get_by_role("link", name="web Down").first.click()
    me.page.wait_for_url(f"**/console/incidents/{incident}")
    causes = me.page.locator("tr.cause")
    assert causes.first.locator("b").inner_text() == "web" and "91 %" in causes.first.inner_text()
    assert me.page.locator("tr.cause svg polyline").count() == 2
    me.shot("incident")

    card = me.page.locator("[id^=approval-]").first
    card.get_by_label("Comment").fill("checked the cause; go")
    card.get_by_role("button", name="Approve").click()
    me.page.wait_for_url(f"**/console/incidents/{incident}?done=approve")
    assert "Approval recorded." in me.page.locator(".flash").inner_text()
    # the worker runs it; the page's live part (polled every 5 s) shows the run, then the resolution
    me.page.locator("#last-action .succeeded").wait_for(timeout=30_000)
    wk.ingest("events", orjson.dumps({"service": "web", "name": "Down", "summary": "web Down",
                                      "resource": "web-1:8080", "status": "resolved",
                                      "labels": {"team": "shop"}}), "application/json", "test")
    me.page.locator("#status.s-resolved").wait_for(timeout=30_000)
    me.page.reload()
    assert "restarted web-1:8080" in (me.page.locator(".action-run").text_content() or "")
    me.shot("incident-resolved")
    assert wk.incident(incident)["status"] == "resolved"
    assert me.errors == []


def test_every_page_without_console_errors_and_a_viewer_cannot_approve(
    site: tuple[Watchkeeper, ThreadServer], browser: Any, shots: Path,
) -> None:
    wk, server = site
    incident = fire(wk)
    _wait(lambda: wk.governance.approvals("pending"), "an approval request")

    admin = Watched(browser, server.url, shots)
    admin.sign_in("admin")
    for path in PAGES:
        got = admin.page.goto(path)
        assert got is not None and got.status == 200, path
        assert admin.page.locator(".api code").count() >= 1, path  # every page names its API call
    admin.page.goto(f"/console/incidents/{incident}")
    link = Accounts(wk.db, wk.clock, wk.settings.console).approval_link(
        wk.governance.approvals("pending")[0]["id"], "approve")
    got = admin.page.goto(link)
    assert got is not None and got.status == 200 and "Opening this page changed nothing" in admin.page.content()
    admin.page.goto("/console/approvals")
    admin.shot("approvals")
    admin.page.goto("/console/silences/new?matchers=team%3D%22shop%22&duration=2h&comment=deploy")
    assert "It would mute 1 firing alert now" in admin.page.content()
    admin.shot("silence-preview")
    admin.page.goto("/console/kpis")
    admin.shot("kpis")
    admin.page.goto("/console/audit?verify=true")
    assert "hash chain intact" in admin.page.locator("#verdict").inner_text()
    admin.shot("audit")
    # a form post without its CSRF token (another site's form would look like this) is refused
    refused = admin.context.request.post(f"{server.url}/console/incidents/{incident}/acknowledge",
                                         form={"comment": "no token"})
    assert refused.status == 403 and "CSRF" in refused.text()
    assert wk.incident(incident)["status"] == "open"
    assert admin.errors == []

    viewer = Watched(browser, server.url, shots)
    viewer.sign_in("viewer")
    viewer.page.goto(f"/console/incidents/{incident}")
    assert viewer.page.get_by_role("button", name="Approve").count() == 0
    assert "Only an approver can decide" in viewer.page.content()
    [pending] = wk.governance.approvals("pending")
    token = viewer.page.locator("input[name=csrf]").first.get_attribute("value")
    forced = viewer.context.request.post(f"{server.url}/console/approvals/{pending['id']}/approve",
                                         form={"csrf": token or ""})
    assert forced.status == 403 and "may not approve" in forced.text()
    assert wk.governance.approvals("pending")[0]["id"] == pending["id"]
    assert viewer.errors == []
