"""The portfolio's console pages: use cases with their gate, a use case's detail, deciding a gate
proposal (approver only, never its proposer, the use case's named approvers only; CSRF), models
and drift events; hostile input is a 4xx with a sentence."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.console import Browser, console_service
from watchkeeper.model_registry import Registry, Signal
from watchkeeper.portfolio import Portfolio
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit as audit_store
from watchkeeper.value.drift import ModelVersion
from watchkeeper.value.usecase import UseCase

CASE = {
    "id": "auto-restart", "title": "Auto-restart the web service",
    "owners": {"business_sponsor": "VP Ops", "technical_lead": "platform lead", "operations_leader": "on-call"},
    "capabilities": ["remediation"], "runbooks": ["restart"], "services": ["web"],
    "success_criteria": [{"kpi": "shadow_agreement", "op": ">=", "target": 0.95, "min_samples": 20,
                          "text": ">= 95 % agreement over >= 20 shadow decisions"},
                         {"kpi": "harmful_actions", "op": "<=", "target": 0, "text": "0 harmful actions"}],
    "readiness": [{"name": "support model", "criterion": "the owner is paged on every restart", "met": False}],
}


@pytest.fixture
def wk(make_service: Callable[..., Watchkeeper], sqlite_url: str, tmp_path: Path) -> Watchkeeper:
    return console_service(make_service, sqlite_url, tmp_path)



def apply(wk: Watchkeeper, **changes: object) -> Portfolio:
    portfolio = Portfolio.of(wk)
    portfolio.apply(UseCase.model_validate({**CASE, **changes}), "token:operator")
    return portfolio


def stage(wk: Watchkeeper) -> str:
    return str(Portfolio.of(wk).show("auto-restart")["stage"])


def test_use_cases_list_and_detail_show_owners_criteria_kpis_and_proposals(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    portfolio = apply(wk)
    proposal = portfolio.propose("auto-restart", "token:operator")
    viewer = browser("viewer")
    page = viewer.get("/console/usecases").text
    assert "Auto-restart the web service" in page and "VP Ops" in page and "on-call" in page
    assert "&gt;= 95 % agreement over &gt;= 20 shadow decisions" in page and "<code>shadow_agreement</code>" in page
    assert "Gate now: <b>promote</b> to pilot" in page and "1 pending" in page
    assert "<code>GET /api/v1/usecases" in page and 'href="/console/usecases"' in page  # in the navigation
    detail = viewer.get("/console/usecases/auto-restart").text
    assert f"#{proposal['id']}" in detail and "proposed → <b>pilot</b>" in detail and "token:operator" in detail
    assert "support model" in detail and "the owner is paged on every restart" in detail
    assert "<code>GET /api/v1/usecases/auto-restart</code>" in detail
    # a viewer sees the evidence, never the form
    assert "Only an approver can decide" in detail and f"/console/gates/{proposal['id']}/approve" not in detail
    gates = viewer.get("/console/gates").text
    assert f"proposal-{proposal['id']}" in gates and "<code>GET /api/v1/gates?status=pending</code>" in gates


def test_an_approver_approves_with_a_comment_and_it_is_audited(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    proposal = apply(wk).propose("auto-restart", "token:operator")
    approver = browser("approver")
    page = approver.get("/console/usecases/auto-restart").text
    assert f'action="/console/gates/{proposal["id"]}/approve"' in page
    got = approver.post(f"/console/gates/{proposal['id']}/approve",
                        {"comment": "owners and criteria in place", "back": "/console/usecases/auto-restart"})
    assert got.status_code == 303 and got.headers["location"] == "/console/usecases/auto-restart?done=approve"
    assert stage(wk) == "pilot"
    decided = Portfolio.of(wk).proposals(None)[0]
    assert decided["status"] == "approved" and decided["decided_by"] == "user:approver"
    assert decided["comment"] == "owners and criteria in place"
    with wk.db.read() as conn:
        kinds = [(r.kind, r.actor) for r in audit_store.records(conn)]
    assert ("gate.approved", "user:approver") in kinds and ("usecase.promoted", "user:approver") in kinds
    assert "Promotion approved." in approver.get(got.headers["location"]).text
    # decided once: a second vote is a 409 with a sentence, not a 500
    again = approver.post(f"/console/gates/{proposal['id']}/reject", {"comment": "late"})
    assert again.status_code == 409 and "already approved" in again.text


def test_reject_keeps_the_stage(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    proposal = apply(wk).propose("auto-restart", "token:operator")
    got = browser("approver").post(f"/console/gates/{proposal['id']}/reject", {"comment": "not before the freeze"})
    assert got.status_code == 303 and got.headers["location"] == "/console/gates?done=reject"
    assert stage(wk) == "proposed" and Portfolio.of(wk).proposals(None)[0]["status"] == "rejected"


def test_a_viewer_an_operator_and_the_proposer_cannot_approve(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    proposal = apply(wk).propose("auto-restart", "token:approver")  # proposed over the API by 'approver'
    for role in ("viewer", "operator"):
        got = browser(role).post(f"/console/gates/{proposal['id']}/approve", {"comment": "me"})
        assert got.status_code == 403 and "may not approve" in got.text, role
    own = browser("approver").post(f"/console/gates/{proposal['id']}/approve")
    assert own.status_code == 403 and "four-eyes" in own.text  # the same person in the console
    assert stage(wk) == "proposed"
    assert browser("approver2").post(f"/console/gates/{proposal['id']}/approve").status_code == 303
    assert stage(wk) == "pilot"


def test_only_the_named_approvers_of_a_use_case(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    proposal = apply(wk, approvers=["approver2"]).propose("auto-restart", "token:operator")
    got = browser("approver").post(f"/console/gates/{proposal['id']}/approve")
    assert got.status_code == 403 and "is not an approver of use case" in got.text
    assert browser("approver2").post(f"/console/gates/{proposal['id']}/approve").status_code == 303
    assert stage(wk) == "pilot"


def test_a_vote_without_the_csrf_token_is_refused_before_anything_happens(
    wk: Watchkeeper, browser: Callable[[str], Browser],
) -> None:
    proposal = apply(wk).propose("auto-restart", "token:operator")
    b = browser("approver")
    got = b.post(f"/console/gates/{proposal['id']}/approve", csrf=False)
    assert got.status_code == 403 and "CSRF" in got.text
    forged = b.client.post(f"/console/gates/{proposal['id']}/approve", data={"csrf": "x" * 40},
                           follow_redirects=False)
    assert forged.status_code == 403
    assert stage(wk) == "proposed"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/console/usecases/no-such-case", 404),
    ("GET", "/console/usecases/Bad%20Id", 422),
    ("GET", "/console/usecases/" + "a" * 300, 422),
    ("GET", "/console/gates?status=everything", 422),
    ("GET", "/console/models?kind=oracle", 422),
    ("GET", "/console/models?model=%3Cscript%3E", 422),
    ("POST", "/console/gates/0/approve", 422),
    ("POST", "/console/gates/99999999999/approve", 422),
    ("POST", "/console/gates/12345/approve", 404),
    ("POST", "/console/gates/1/maybe", 422),
])
def test_hostile_input_is_a_4xx_with_a_sentence(
    wk: Watchkeeper, browser: Callable[[str], Browser], method: str, path: str, status: int,
) -> None:
    b = browser("admin")
    got = b.get(path) if method == "GET" else b.post(path, {"comment": "x"})
    assert got.status_code == status, got.text[:300]
    assert 'class="problem"' in got.text and "<script>" not in got.text
    api = b.client.get(path, headers={"Accept": "application/json"}) if method == "GET" else None
    if api is not None:
        assert api.json()["status"] == status and api.json()["error"]


def test_a_huge_comment_is_refused(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    proposal = apply(wk).propose("auto-restart", "token:operator")
    got = browser("approver").post(f"/console/gates/{proposal['id']}/approve", {"comment": "x" * 10_001})
    assert got.status_code == 422 and stage(wk) == "proposed"


def test_models_page_shows_versions_scores_and_drift(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    registry = Registry(wk.db, wk.clock)
    registry.register(ModelVersion.model_validate({
        "kind": "detector", "name": "robust", "version": "v1", "params": {"threshold": 4.5},
        "train_start": datetime(2026, 9, 1, tzinfo=UTC), "train_end": datetime(2026, 10, 1, tzinfo=UTC),
        "scores": {"held_out": {"f1": 0.81}, "in_sample": {"f1": 0.9}},
        "baseline": [float(n % 10) / 10 for n in range(100)]}), "token:operator")
    drift = registry.drift("detector", "robust", signal=Signal.SCORES, scores=[0.95 + (n % 5) / 100 for n in range(100)],
                           actor="token:operator")
    assert drift["drifted"]
    b = browser("viewer")
    page = b.get("/console/models").text
    assert "<b>detector:robust</b>" in page and "{\"threshold\": 4.5}" in page and "{\"f1\": 0.81} / {\"f1\": 0.9}" in page
    assert "2026-09-01 00:00:00Z – 2026-10-01" in page and ">100<" in page  # training window, reference sample size
    assert "detector:robust</a>" in page and "<code>GET /api/v1/models and GET /api/v1/drift</code>" in page
    assert "No models registered" in b.get("/console/models?kind=rca").text
    assert "No drift events for detector:other" in b.get("/console/models?model=detector:other").text


def test_back_never_leaves_the_console(wk: Watchkeeper, browser: Callable[[str], Browser]) -> None:
    proposal = apply(wk).propose("auto-restart", "token:operator")
    got = browser("approver").post(f"/console/gates/{proposal['id']}/reject", {"back": "https://evil.example/"})
    assert got.status_code == 303 and got.headers["location"].startswith("/console/")
    assert "evil" not in got.headers["location"]
