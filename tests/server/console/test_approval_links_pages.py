"""Signed approval links in the console: opening one changes nothing; a signed-in approver's POST
votes once, through the same service call as the API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import Clock
from fixtures.console import Browser, console_service, fire
from watchkeeper.approval_links import new_nonce, sign
from watchkeeper.server.console.accounts import Accounts
from watchkeeper.service import Watchkeeper


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], db_url: str, tmp_path: Path) -> Watchkeeper:
    return console_service(make_service, db_url, tmp_path)


@pytest.fixture
def accounts(wk: Watchkeeper) -> Accounts:
    return Accounts(wk.db, wk.clock, wk.settings.console)


@pytest.fixture
def pending(wk: Watchkeeper) -> int:
    fire(wk)
    wk.governance.respond()
    [request] = wk.governance.approvals("pending")
    return int(request["id"])



def test_opening_a_link_changes_nothing_and_asks_to_sign_in(
    wk: Watchkeeper, accounts: Accounts, pending: int, browser: Callable[[str], Browser],
) -> None:
    link = accounts.approval_link(pending, "approve")
    preview = browser("").get(link, follow_redirects=False)  # a chat client's link preview
    assert preview.status_code == 303 and preview.headers["location"].startswith("/console/login?next=")
    page = browser("approver").get(link)
    assert page.status_code == 200 and "Approve: run restart on incident" in page.text
    assert "Opening this page changed nothing" in page.text
    assert wk.governance.approvals("pending")[0]["id"] == pending


def test_an_approver_approves_once_and_the_action_runs(
    wk: Watchkeeper, accounts: Accounts, pending: int, browser: Callable[[str], Browser],
) -> None:
    link = accounts.approval_link(pending, "approve")
    b = browser("approver")
    got = b.post(link, {"comment": "go"})
    assert got.status_code == 303 and "done=approve" in got.headers["location"]
    [done] = wk.governance.approvals("approved")
    assert done["id"] == pending and done["votes"][0]["actor"] == "user:approver"
    assert done["votes"][0]["comment"] == "go"
    again = b.post(link)
    assert again.status_code == 409 and "used already" in again.text
    page = browser("approver2").get(link).text
    assert "This link was used by user:approver" in page
    wk.governance.work()
    incident = wk.incident(done["incident_id"])
    assert incident["actions"][0]["status"] == "succeeded"
    assert "restarted web-1:8080" in incident["actions"][0]["result"]["steps"][0]["output"]


def test_a_reject_link_rejects(wk: Watchkeeper, accounts: Accounts, pending: int,
                               browser: Callable[[str], Browser]) -> None:
    assert browser("admin").post(accounts.approval_link(pending, "reject")).status_code == 303
    assert [a["id"] for a in wk.governance.approvals("rejected")] == [pending]


def test_roles_csrf_expiry_and_forgery(
    wk: Watchkeeper, accounts: Accounts, pending: int, browser: Callable[[str], Browser], clock: Clock,
) -> None:
    link = accounts.approval_link(pending, "approve")
    assert browser("operator").post(link).status_code == 403
    approver = browser("approver")
    assert approver.post(link, csrf=False).status_code == 403
    forged = sign(b"someone else's secret, 32 bytes!", pending, "approve", clock.now + timedelta(hours=1),
                  new_nonce())
    got = approver.post(f"/console/approve/{forged}")
    assert got.status_code == 403 and "not genuine" in got.text
    clock.advance(hours=25)  # link_hours: 24
    approver.sign_in("approver")  # the session ended too (12 h)
    got = approver.post(link)
    assert got.status_code == 410 and "expired" in got.text
    assert wk.governance.approvals("pending")[0]["id"] == pending


def test_a_refused_vote_leaves_the_link_usable(
    wk: Watchkeeper, accounts: Accounts, pending: int, browser: Callable[[str], Browser],
) -> None:
    link = accounts.approval_link(pending, "approve")
    wk.governance.vote(pending, "token:someone", False, "no")  # decided elsewhere first
    got = browser("approver").post(link)
    assert got.status_code == 409 and "already rejected" in got.text
    assert accounts.nonce_used(link.rsplit("/", 1)[1]) is None


def test_the_generated_secret_is_made_once_and_shared(wk: Watchkeeper) -> None:
    one = Accounts(wk.db, wk.clock, wk.settings.console).secret()
    two = Accounts(wk.db, wk.clock, wk.settings.console).secret()
    assert one == two and len(one) >= 32


def test_the_setting_secret_wins(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    wk = make_service(sqlite_url, console={"secret": "a configured secret of some length"})
    assert Accounts(wk.db, wk.clock, wk.settings.console).secret() == b"a configured secret of some length"
