"""The portfolio over HTTP, and the issue's end-to-end acceptance: a use case in its pilot collects
20 shadow decisions from real incidents, the gate proposes promotion, a viewer cannot approve it,
an approver can; a harmful action afterwards demotes it automatically; every step is audited and
the audit chain verifies."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from conftest import Clock
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper

RUNBOOK = {
    "id": "restart", "title": "Restart", "risk": "low", "autonomy": "approve",
    "selector": {"alertnames": ["Down"]},
    "parameters": {"instance": {"from": "alert.resource", "pattern": "[a-z0-9-]+:[0-9]+"}},
    "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print('{{ params.instance }}')"]}}],
}
USE_CASE = {
    "id": "auto-restart", "title": "Auto-restart crashed services",
    "owners": {"business_sponsor": "dana", "technical_lead": "alice", "operations_leader": "bob"},
    "capabilities": ["remediation"], "services": ["web"], "runbooks": ["restart"],
    "success_criteria": [
        {"kpi": "shadow_agreement", "op": ">=", "target": 0.95, "min_samples": 20,
         "text": ">= 95 % agreement with humans over >= 20 shadow decisions"},
        {"kpi": "harmful_actions", "op": "<=", "target": 0, "text": "0 harmful"},
    ],
    "readiness": [{"name": "support model", "criterion": "on-call owns the runbook"}],
    "evaluation": {"days": 30},
}


class Client:
    def __init__(self, wk: Watchkeeper, client: TestClient) -> None:
        self.wk = wk
        self.client = client
        self.tokens = {role: wk.create_token(role, f"{role.value}-1", "test") for role in Role}
        self.tokens_2 = {Role.APPROVER: wk.create_token(Role.APPROVER, "approver-2", "test")}

    def call(self, method: str, path: str, role: Role, body: Any = None, status: int = 200, *,
             second: bool = False) -> Any:
        token = (self.tokens_2 if second else self.tokens)[role]
        got = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                  json=body)
        assert got.status_code == status, (method, path, got.status_code, got.text)
        return got.json() if got.content else None


@pytest.fixture
def api(tmp_path: Path, make_service: Any, db_url: str) -> Iterator[Client]:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    wk: Watchkeeper = make_service(db_url, runbooks_dir=directory, gate_guard_seconds=0.05)
    # the responder is driven by the test; the gate guard runs on its own, as in serve
    with TestClient(create_app(wk, upgrade=False, responder=False, watch=False, rank=False)) as client:
        yield Client(wk, client)


def fire(api: Client, n: int) -> int:
    body = {"service": "web", "name": "Down", "summary": f"web down {n}", "resource": f"web-{n}:8080",
            "fingerprint": f"web-down-{n}"}
    got = api.client.post("/api/v1/ingest/events", content=orjson.dumps(body), headers={
        "Authorization": f"Bearer {api.tokens[Role.INGEST]}", "Content-Type": "application/json"})
    assert got.status_code == 202, got.text
    return int(got.json()["incidents"][0])


def effective(api: Client) -> str:
    shown = api.call("GET", "/api/v1/usecases/auto-restart", Role.VIEWER)
    [runbook] = shown["runbooks"]
    return str(runbook["effective"])


def test_pilot_to_assisted_and_back_on_harm(api: Client, clock: Clock) -> None:
    # the use case enters the portfolio, then its pilot through an approved gate
    made = api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": USE_CASE})
    assert made["stage"] == "proposed" and made["runbooks"][0] == {
        "id": "restart", "declared": "approve", "effective": "shadow", "use_cases": {"auto-restart": "proposed"}}
    to_pilot = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    api.call("POST", f"/api/v1/gates/{to_pilot['id']}/approve", Role.APPROVER)
    assert api.call("GET", "/api/v1/usecases/auto-restart", Role.VIEWER)["stage"] == "pilot"

    # 20 real incidents: each decided in shadow, each resolved by a human who says what fixed it
    for n in range(20):
        clock.advance(minutes=10)
        incident = fire(api, n)
        made = api.wk.governance.respond()
        assert made == 1, (incident, api.call("GET", f"/api/v1/incidents/{incident}", Role.VIEWER))
        [decision] = api.call("GET", f"/api/v1/incidents/{incident}", Role.VIEWER)["decisions"]
        assert decision["verdict"] == "shadow" and decision["inputs"]["declared_autonomy"] == "approve"
        if n == 18:  # before the 20th: too little evidence, the gate holds
            [early] = api.call("GET", "/api/v1/gates/evaluation", Role.VIEWER)
            assert early["move"] == "hold" and early["reason"] == "insufficient_evidence"
        api.call("POST", f"/api/v1/incidents/{incident}/resolve", Role.OPERATOR, {"fixed_by": "restart"})

    # the gate proposes the promotion; a viewer and the proposer cannot approve it, an approver can
    [evaluated] = api.call("POST", "/api/v1/gates/evaluate", Role.APPROVER, {"use_case": "auto-restart"})
    assert evaluated["move"] == "promote" and evaluated["to"] == "assisted"
    agreement = next(c for c in evaluated["criteria"] if c["kpi"] == "shadow_agreement")
    assert agreement == {**agreement, "value": 1.0, "samples": 20, "result": "met"}
    proposal = evaluated["proposal_id"]
    [pending] = api.call("GET", "/api/v1/gates", Role.VIEWER)
    assert pending["id"] == proposal and pending["proposed_by"] == "token:approver-1"
    refused = api.call("POST", f"/api/v1/gates/{proposal}/approve", Role.VIEWER, status=403)
    assert "has role viewer" in refused["error"]
    four_eyes = api.call("POST", f"/api/v1/gates/{proposal}/approve", Role.APPROVER, status=403)
    assert "four-eyes" in four_eyes["error"]
    assert effective(api) == "shadow"
    approved = api.call("POST", f"/api/v1/gates/{proposal}/approve", Role.APPROVER, {"comment": "20/20"},
                        second=True)
    assert approved["status"] == "approved" and approved["decided_by"] == "token:approver-2"
    assert effective(api) == "approve"
    [listed] = api.call("GET", "/api/v1/runbooks", Role.VIEWER)
    assert (listed["autonomy"], listed["effective_autonomy"]) == ("approve", "approve")

    # assisted: the runbook asks for approval, runs, and a human judges the run harmful
    clock.advance(minutes=10)
    incident = fire(api, 99)
    api.wk.governance.respond()
    [asked] = api.call("GET", "/api/v1/approvals", Role.VIEWER)
    api.call("POST", f"/api/v1/approvals/{asked['id']}/approve", Role.APPROVER)
    assert api.wk.governance.work() == 1
    assert api.call("GET", f"/api/v1/incidents/{incident}", Role.VIEWER)["actions"][0]["status"] == "succeeded"
    api.call("POST", f"/api/v1/incidents/{incident}/resolve", Role.OPERATOR,
             {"fixed_by": "manual", "harmful": ["restart"], "comment": "the restart dropped live sessions"})

    # the server's gate guard demotes it on its own, and the runbook is back at shadow
    deadline = time.monotonic() + 10
    while api.call("GET", "/api/v1/usecases/auto-restart", Role.VIEWER)["stage"] != "pilot":
        assert time.monotonic() < deadline, "the gate guard did not demote the use case"
        time.sleep(0.05)
    assert effective(api) == "shadow"
    assert api.call("GET", "/api/v1/runbooks", Role.VIEWER)[0]["effective_autonomy"] == "shadow"
    clock.advance(minutes=10)
    later = fire(api, 100)
    api.wk.governance.respond()
    [shadowed] = api.call("GET", f"/api/v1/incidents/{later}", Role.VIEWER)["decisions"]
    assert shadowed["verdict"] == "shadow"

    # every step is in the audit log, and the chain verifies
    kinds = [r.kind for r in _records(api.wk)]
    for kind in ("usecase.created", "gate.proposed", "gate.approved", "usecase.promoted", "decision.scored",
                 "runbook.autonomy_changed", "action.harmful", "usecase.demoted"):
        assert kind in kinds, kind
    assert kinds.index("action.harmful") < kinds.index("usecase.demoted")
    demoted = next(r for r in _records(api.wk) if r.kind == "usecase.demoted")
    assert demoted.actor == "gate" and demoted.payload["reason"] == "criterion_failed_in_production"
    assert demoted.payload["failed"] == ["0 harmful"]
    changed = [r.payload for r in _records(api.wk) if r.kind == "runbook.autonomy_changed"]
    assert [(c["from"], c["to"]) for c in changed] == [("shadow", "approve"), ("approve", "shadow")]
    assert _disagreements(api.wk) == []
    verified = api.call("GET", "/api/v1/audit/verify", Role.ADMIN)
    assert verified["ok"] is True and verified["checked"] == len(kinds)


def _records(wk: Watchkeeper) -> list[Any]:
    from watchkeeper.storage import audit

    with wk.db.read() as conn:
        return list(audit.records(conn))


def _disagreements(wk: Watchkeeper) -> list[str]:
    from watchkeeper.server.value_api import portfolio_of

    return portfolio_of(wk).disagreements()


def test_no_pilot_without_owners_and_criteria(api: Client) -> None:
    bare = {"id": "noise", "title": "Alert noise reduction", "owners": {"technical_lead": "alice"}}
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": bare})
    refused = api.call("POST", "/api/v1/usecases/noise/propose", Role.OPERATOR, status=409)
    assert refused["error"] == ("use case 'noise' cannot leave proposed: a pilot needs owners and success "
                                "criteria (owners missing: business_sponsor, operations_leader; no success criteria)")
    assert refused["status"] == 409


def test_criteria_frozen_after_the_pilot_change_only_as_an_audited_version(api: Client) -> None:
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": USE_CASE})
    proposal = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    api.call("POST", f"/api/v1/gates/{proposal['id']}/approve", Role.APPROVER)
    looser = {**USE_CASE, "success_criteria": [{"kpi": "shadow_agreement", "op": ">=", "target": 0.8}]}
    frozen = api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": looser}, status=409)
    assert "frozen since the pilot started" in frozen["error"] and "--new-version" in frozen["error"]
    renamed = api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": {**USE_CASE, "title": "Restarts"}})
    assert renamed["version"] == 1 and renamed["doc"]["title"] == "Restarts"
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": looser, "new_version": True,
                                                          "reason": "x"}, status=403)
    no_reason = api.call("POST", "/api/v1/usecases", Role.APPROVER, {"use_case": looser, "new_version": True},
                         status=422)
    assert "needs a reason" in no_reason["error"]
    done = api.call("POST", "/api/v1/usecases", Role.APPROVER,
                    {"use_case": looser, "new_version": True, "reason": "weekly job: 20 takes months"})
    assert done["version"] == 2 and done["stage"] == "pilot"
    assert [v["version"] for v in done["versions"]] == [1, 2]
    assert done["versions"][1]["reason"] == "weekly job: 20 takes months"
    [versioned] = [r for r in _records(api.wk) if r.kind == "usecase.versioned"]
    assert versioned.payload["changed"] == ["success_criteria"] and versioned.actor == "token:approver-1"
    assert versioned.payload["before"]["success_criteria"][0]["target"] == 0.95


def test_use_case_approvers_and_runbook_ceiling(api: Client) -> None:
    only_carol = {**USE_CASE, "approvers": ["carol"]}
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": only_carol})
    proposal = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    refused = api.call("POST", f"/api/v1/gates/{proposal['id']}/approve", Role.APPROVER, status=403)
    assert "not an approver of use case 'auto-restart' (its approvers: carol)" in refused["error"]
    carol = api.wk.create_token(Role.APPROVER, "carol", "test")
    got = api.client.post(f"/api/v1/gates/{proposal['id']}/reject", headers={"Authorization": f"Bearer {carol}"},
                          json={"comment": "not this quarter"})
    assert got.status_code == 200 and got.json()["status"] == "rejected"
    again = api.client.post(f"/api/v1/gates/{proposal['id']}/approve", headers={"Authorization": f"Bearer {carol}"})
    assert again.status_code == 409


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"use_case": {"id": "x", "title": "X", "runbooks": ["nope"]}}, 422, "runbooks that do not exist: nope"),
    ({"use_case": {"id": "x", "title": "X", "stage": "autonomous"}}, 422, "starts at 'proposed'"),
    ({"use_case": {"id": "../etc", "title": "X"}}, 422, "body.use_case.id: String should match pattern"),
    ({"use_case": "not a mapping"}, 422, "use_case"),
    ({"use_case": {"id": "x", "title": "X", "success_criteria": [{"kpi": "mttr_change", "op": "<=",
                                                                    "target": "-30 %"}]}}, 422,
     "body.use_case.success_criteria.0.target"),
    ({}, 422, "use_case"),
])
def test_hostile_input_gets_a_clear_4xx(api: Client, body: Any, status: int, words: str) -> None:
    got = api.call("POST", "/api/v1/usecases", Role.OPERATOR, body, status=status)
    assert words in got["error"] and got["status"] == status


def test_unknown_things_are_404(api: Client) -> None:
    assert "no use case 'nope'" in api.call("GET", "/api/v1/usecases/nope", Role.VIEWER, status=404)["error"]
    api.call("GET", "/api/v1/usecases/Bad%20Id", Role.VIEWER, status=422)
    assert "no gate proposal 7" in api.call("POST", "/api/v1/gates/7/approve", Role.APPROVER, status=404)["error"]
    api.call("POST", "/api/v1/gates/0/approve", Role.APPROVER, status=422)
    api.call("GET", "/api/v1/gates?status=bogus", Role.VIEWER, status=422)


def test_priorities_measure_data_readiness_and_flag_duplicates(tmp_path: Path, make_service: Any,
                                                               sqlite_url: str, clock: Clock) -> None:
    wk: Watchkeeper = make_service(sqlite_url, topology={"services": {"web": {"depends_on": ["db"]}}})
    with TestClient(create_app(wk, upgrade=False, responder=False, watch=False, rank=False)) as client:
        api = Client(wk, client)
        incident = fire(api, 1)
        api.call("POST", f"/api/v1/incidents/{incident}/acknowledge", Role.OPERATOR)
        clock.advance(minutes=5)
        api.call("POST", f"/api/v1/incidents/{incident}/resolve", Role.OPERATOR)
        noise = {"id": "noise", "title": "Alert noise reduction", "capabilities": ["noise_reduction"],
                 "services": ["web"], "scores": {"business_impact": "high", "implementation_complexity": "high",
                                                 "organizational_alignment": "high", "risk_of_failure": "high",
                                                 "strategic_fit": "medium"}}
        forecast = {"id": "disk", "title": "Disk capacity forecasting", "capabilities": ["forecasting"],
                    "services": ["web"], "scores": {"business_impact": "medium", "data_readiness": "high"}}
        again = {**noise, "id": "noise-2", "title": "Fewer pages"}
        for doc in (noise, forecast, again):
            api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": doc})
        found = api.call("GET", "/api/v1/portfolio/priorities", Role.VIEWER)
    ranked = {r["id"]: r for r in found["ranked"]}
    assert ranked["noise"]["data_readiness"] == {"level": "high", "completeness": 1.0, "source": "measured",
                                                 "signals": {"alerts": 1.0, "incidents": 1.0}}
    assert ranked["noise"]["category"] == "quick_win"
    # stated "high", but Watchkeeper watches no metric of web: measured low
    assert ranked["disk"]["data_readiness"]["signals"] == {"metrics": 0.0}
    assert ranked["disk"]["levels"]["data_readiness"] == "low"
    assert ranked["disk"]["category"] == "future_consideration"
    assert [r["id"] for r in found["ranked"]][-1] == "disk"
    assert [d["text"] for d in found["duplicates"]] == ["noise and noise-2 both cover noise_reduction for web"]
    assert found["rubric"]["implementation_complexity"]["high"] == "leverages existing tools, < 3 months"


MODEL = {"kind": "rca", "name": "external", "version": "v3", "params": {"window": "10m"},
         "train_start": "2026-11-01T00:00:00Z", "train_end": "2026-11-08T00:00:00Z",
         "scores": {"held_out": {"top1": 0.81}, "in_sample": {"top1": 0.9}},
         "baseline": [i / 100 for i in range(100)]}


def test_models_drift_and_the_gate_that_acts_on_it(api: Client) -> None:
    made = api.call("POST", "/api/v1/models", Role.OPERATOR, MODEL, status=201)
    assert made["version"] == "v3" and made["baseline_size"] == 100 and "baseline" not in made
    again = api.call("POST", "/api/v1/models", Role.OPERATOR, MODEL, status=409)
    assert "already registered" in again["error"]
    bad = api.call("POST", "/api/v1/models", Role.OPERATOR, {**MODEL, "kind": "oracle"}, status=422)
    assert bad["error"].startswith("invalid request: body.kind")
    assert api.call("GET", "/api/v1/models/rca/external", Role.VIEWER)["scores"]["held_out"] == {"top1": 0.81}
    assert [m["name"] for m in api.call("GET", "/api/v1/models?kind=rca", Role.VIEWER)] == ["external"]
    api.call("GET", "/api/v1/models/rca/nope", Role.VIEWER, status=404)

    # a use case that names the model and wants no drift, promoted to assisted on its evidence
    case = {"id": "rca-assist", "title": "Ranked causes for on-call", "models": ["rca:external"],
            "owners": {"business_sponsor": "d", "technical_lead": "a", "operations_leader": "b"},
            "success_criteria": [{"kpi": "drift_events", "op": "<=", "target": 0, "text": "no drift"}],
            "readiness": [{"name": "support model", "met": True}]}
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": case})
    for stage in ("pilot", "assisted"):
        proposal = api.call("POST", "/api/v1/usecases/rca-assist/propose", Role.OPERATOR, status=201)
        assert proposal["to_stage"] == stage
        api.call("POST", f"/api/v1/gates/{proposal['id']}/approve", Role.APPROVER)

    stable = api.call("POST", "/api/v1/models/rca/external/drift", Role.OPERATOR,
                      {"scores": [i / 100 + 0.001 for i in range(100)]})
    assert stable["reason"] == "stable" and stable["drift_id"] is None
    drifted = api.call("POST", "/api/v1/models/rca/external/drift", Role.OPERATOR,
                       {"scores": [0.5 + i / 200 for i in range(100)]})
    assert drifted["drifted"] is True and drifted["psi"] > 0.25 and drifted["drift_id"] == 1
    [event] = api.call("GET", "/api/v1/drift?model=rca:external", Role.VIEWER)
    assert event["version"] == "v3" and event["signal"] == "scores"
    deadline = time.monotonic() + 10
    while api.call("GET", "/api/v1/usecases/rca-assist", Role.VIEWER)["stage"] != "pilot":
        assert time.monotonic() < deadline, "the gate guard did not act on the drift event"
        time.sleep(0.05)
    demoted = next(r for r in _records(api.wk) if r.kind == "usecase.demoted")
    assert demoted.payload["failed"] == ["no drift"]
    no_scores = api.call("POST", "/api/v1/models/rca/external/drift", Role.OPERATOR, {}, status=422)
    assert "needs the recent scores" in no_scores["error"]


def test_a_decision_names_the_model_version_it_used(api: Client) -> None:
    api.call("POST", "/api/v1/models", Role.OPERATOR, MODEL, status=201)
    incident = fire(api, 1)
    api.call("PUT", f"/api/v1/incidents/{incident}/causes", Role.OPERATOR,
             {"causes": [{"component": "web", "confidence": 0.97, "model": "external"}]})
    api.wk.governance.respond()
    [decision] = api.call("GET", f"/api/v1/incidents/{incident}", Role.VIEWER)["decisions"]
    assert decision["inputs"]["model_versions"] == {"rca:external": "v3", api.wk.correlation_model.key:
                                                    api.wk.correlation_model.version}
    assert decision["inputs"]["policy_version"] == "policy-v1"


def test_a_proposal_for_a_use_case_that_changed_since_is_superseded(api: Client) -> None:
    api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": USE_CASE})
    proposal = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    again = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    assert again["id"] == proposal["id"]  # the same promotion already waits: no second proposal
    stricter = {**USE_CASE, "success_criteria": [*USE_CASE["success_criteria"],
                                                 {"kpi": "remediation_success", "op": ">=", "target": 0.9}]}
    assert api.call("POST", "/api/v1/usecases", Role.OPERATOR, {"use_case": stricter})["version"] == 2
    stale = api.call("POST", f"/api/v1/gates/{proposal['id']}/approve", Role.APPROVER, status=409)
    assert "changed since proposal" in stale["error"]
    [old] = api.call("GET", "/api/v1/gates?status=superseded", Role.VIEWER)
    assert old["id"] == proposal["id"]
    fresh = api.call("POST", "/api/v1/usecases/auto-restart/propose", Role.OPERATOR, status=201)
    assert fresh["use_case_version"] == 2
    assert api.call("POST", f"/api/v1/gates/{fresh['id']}/approve", Role.APPROVER)["status"] == "approved"
