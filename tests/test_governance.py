"""Decide → act → record through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import yaml

from conftest import Clock
from watchkeeper.errors import AuthError, Conflict
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause
from watchkeeper.service import Watchkeeper

PY = sys.executable


def runbook(rb_id: str, *, autonomy: str = "auto", risk: str = "low", ok: bool = True, verify_ok: bool = True,
            marker: Path | None = None, **extra: Any) -> dict[str, Any]:
    touch = f"open({str(marker)!r}, 'a').write('{{{{ params.instance }}}}\\n')" if marker else "pass"
    return {
        "id": rb_id, "title": f"fix {rb_id}", "risk": risk, "autonomy": autonomy,
        "selector": {"alertnames": ["Down"]},
        "parameters": {"instance": {"from": "alert.resource", "pattern": "[a-z0-9-]+:[0-9]+"}},
        "steps": [{"name": "fix", "command": {"argv": [PY, "-c", touch if ok else "raise SystemExit(1)"]}}],
        "verify": {"check": {"name": "check", "command": {"argv": [PY, "-c", f"raise SystemExit({0 if verify_ok else 1})"]}},
                   "deadline": "1s", "interval": "100ms"},
        "rollback": [{"name": "undo", "command": {"argv": [PY, "-c", "print('undone')"]}}],
        "on_success": "resolve", **extra,
    }


def setup(tmp_path: Path, make_service: Callable[..., Watchkeeper], db_url: str, *runbooks: dict[str, Any],
          policy: dict[str, Any] | None = None) -> Watchkeeper:
    directory = tmp_path / "runbooks"
    directory.mkdir(exist_ok=True)
    for rb in runbooks:
        (directory / f"{rb['id']}.yaml").write_text(yaml.safe_dump(rb))
    if policy is not None:
        (directory / "policy.yaml").write_text(yaml.safe_dump(policy))
    return make_service(db_url, runbooks_dir=directory)


def fire(wk: Watchkeeper, service: str = "web", name: str = "Down", instance: str = "web-1:8080") -> int:
    body = {"service": service, "name": name, "summary": f"{service} is down", "resource": instance,
            "severity": "critical", "fingerprint": f"{service}-{name}-{instance}"}
    return wk.ingest("events", orjson.dumps(body), "application/json", "test").incidents[0]


def kinds(wk: Watchkeeper, incident_id: int) -> list[str]:
    return [t["kind"] for t in wk.incident(incident_id)["timeline"]]


def test_confident_cause_runs_automatically(tmp_path: Path, make_service: Any, db_url: str) -> None:
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", marker=marker))
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1
    assert wk.governance.work() == 1
    assert marker.read_text() == "web-1:8080\n"
    view = wk.incident(incident)
    assert view["status"] == "resolved"
    [decision] = view["decisions"]
    assert (decision["verdict"], decision["reason"]) == ("auto", "all_checks_passed")
    assert decision["inputs"]["cause"]["confidence"] == 0.99 and decision["inputs"]["threshold"] == 0.95
    [action] = view["actions"]
    assert (action["status"], action["verification"], action["trigger"]) == ("succeeded", "passed", "auto")
    assert kinds(wk, incident)[-6:] == ["incident.causes_ranked", "decision.made", "action.queued", "action.started",
                                        "action.finished", "incident.resolved"]
    assert wk.verify_audit().ok
    assert wk.governance.respond() == 0  # nothing new: no second decision


def test_without_a_cause_a_human_approves(tmp_path: Path, make_service: Any, db_url: str) -> None:
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", marker=marker))
    incident = fire(wk)
    wk.governance.respond()
    [pending] = wk.governance.approvals()
    assert pending["incident_id"] == incident and pending["params"] == {"instance": "web-1:8080"}
    assert wk.incident(incident)["decisions"][0]["reason"] == "no_confidence"
    assert wk.governance.work() == 0 and not marker.exists()
    result = wk.governance.vote(pending["id"], "token:bob", True, "go")
    assert result["status"] == "approved"
    assert wk.governance.work() == 1 and marker.exists()
    assert wk.incident(incident)["actions"][0]["trigger"] == "approved"
    with pytest.raises(Conflict, match="already approved"):
        wk.governance.vote(pending["id"], "token:carol", True)


def test_a_later_ranking_supersedes_an_untouched_approval(tmp_path: Path, make_service: Any, db_url: str) -> None:
    wk = setup(tmp_path, make_service, db_url, runbook("restart"))
    incident = fire(wk)
    wk.governance.respond()
    wk.governance.set_causes(incident, [Cause("web", confidence=0.97)], "rca")
    wk.governance.respond()
    assert [d["verdict"] for d in wk.incident(incident)["decisions"]] == ["needs_approval", "auto"]
    assert wk.governance.approvals("superseded")[0]["incident_id"] == incident
    assert wk.governance.approvals() == []


def test_a_new_top_cause_supersedes_the_untouched_approval_at_once(tmp_path: Path, make_service: Any,
                                                                  db_url: str) -> None:
    """Seen in ``watchkeeper demo``: a ranking named ``frontend`` (capped, so an approval was asked), the next
    named ``catalog``, and a vote 0.16 s later — before the responder's next pass — approved restarting
    ``frontend``. The request is superseded in the transaction that stores the new top cause; a vote on it is
    a 409. A request someone already voted on is theirs to finish."""
    wk = setup(tmp_path, make_service, db_url, runbook("restart"), runbook("two", risk="high"),
               policy={"two_approvals_risk": "high"})
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.5, model="baro-v1")], "rca")
    wk.governance.respond()
    pending = {a["runbook_id"]: a["id"] for a in wk.governance.approvals()}
    assert set(pending) == {"restart", "two"}
    wk.governance.vote(pending["two"], "token:bob", True)  # one of two approvals: still pending
    wk.governance.set_causes(incident, [Cause("web", confidence=0.5, model="baro-v1")], "rca")  # same top
    assert {a["runbook_id"] for a in wk.governance.approvals()} == {"restart", "two"}
    wk.governance.set_causes(incident, [Cause("db", confidence=0.9, model="baro-v1"),
                                        Cause("web", confidence=0.1, model="baro-v1")], "rca")
    assert [a["runbook_id"] for a in wk.governance.approvals("superseded")] == ["restart"]
    with pytest.raises(Conflict, match="already superseded"):
        wk.governance.vote(pending["restart"], "token:carol", True)
    assert [a["runbook_id"] for a in wk.governance.approvals()] == ["two"]
    superseded = [t for t in wk.incident(incident)["timeline"] if t["kind"] == "approval.superseded"]
    assert len(superseded) == 1 and "from web to db" in superseded[0]["reason"]
    assert wk.verify_audit().ok


def test_four_eyes_for_high_risk_manual_runs(tmp_path: Path, make_service: Any, db_url: str) -> None:
    wk = setup(tmp_path, make_service, db_url, runbook("failover", autonomy="suggest", risk="high"))
    incident = fire(wk)
    requested = wk.governance.run_manual("failover", incident, "cli:alice")
    with pytest.raises(AuthError, match="four-eyes"):
        wk.governance.vote(requested["approval_id"], "cli:alice", True)
    assert wk.governance.vote(requested["approval_id"], "cli:bob", True)["status"] == "approved"
    assert wk.governance.work() == 1


def test_two_approvals_when_policy_says_so(tmp_path: Path, make_service: Any, db_url: str) -> None:
    wk = setup(tmp_path, make_service, db_url, runbook("failover", autonomy="approve", risk="high"),
               policy={"two_approvals_risk": "high"})
    fire(wk)
    wk.governance.respond()
    [pending] = wk.governance.approvals()
    assert pending["required"] == 2
    assert wk.governance.vote(pending["id"], "cli:bob", True)["status"] == "pending"
    assert wk.governance.vote(pending["id"], "cli:carol", True)["status"] == "approved"


def test_approvals_expire(tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    wk = setup(tmp_path, make_service, db_url, runbook("restart", autonomy="approve"),
               policy={"approval_ttl_seconds": 60})
    incident = fire(wk)
    wk.governance.respond()
    [pending] = wk.governance.approvals()
    clock.advance(seconds=61)
    wk.governance.respond()
    assert wk.governance.approvals() == [] and wk.governance.approvals("expired")[0]["id"] == pending["id"]
    assert "approval.expired" in kinds(wk, incident)
    with pytest.raises(Conflict, match="expired"):
        wk.governance.vote(pending["id"], "cli:bob", True)


def test_failed_verification_rolls_back_escalates_and_opens_the_breaker(
    tmp_path: Path, make_service: Any, db_url: str
) -> None:
    wk = setup(tmp_path, make_service, db_url, runbook("restart", verify_ok=False), policy={"breaker_failures": 2})
    for n in range(3):
        incident = fire(wk, service=f"web{n}", instance=f"web-{n}:8080")
        wk.governance.set_causes(incident, [Cause(f"web{n}", confidence=0.99)], "rca")
        wk.governance.respond()
        wk.governance.work()
        view = wk.incident(incident)
        if n < 2:
            assert view["actions"][0]["status"] == "rolled_back" and view["actions"][0]["verification"] == "failed"
            assert view["status"] == "open" and "incident.escalated" in kinds(wk, incident)
            steps = view["actions"][0]["result"]["steps"]
            assert [s["phase"] for s in steps] == ["step", "verify", "rollback"] and steps[-1]["output"] == "undone\n"
        else:
            assert (view["decisions"][0]["verdict"], view["decisions"][0]["reason"]) == ("suggest", "circuit_open")
            assert view["actions"] == []
    assert wk.governance.evidence()["restart"]["breaker_open"]
    wk.governance.enable("restart", "cli:alice")
    assert not wk.governance.evidence()["restart"]["breaker_open"]
    assert wk.verify_audit().ok


def test_shadow_decisions_are_scored_against_humans(tmp_path: Path, make_service: Any, db_url: str) -> None:
    marker = tmp_path / "never.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", autonomy="shadow", marker=marker))
    outcomes = []
    for n, (fixed_by, harmful) in enumerate([("restart", []), ("manual", []), ("nothing", ["restart"])]):
        incident = fire(wk, instance=f"web-{n}:8080", service=f"web{n}")
        wk.governance.respond()
        assert wk.governance.work() == 0
        decision = wk.incident(incident)["decisions"][0]
        assert decision["verdict"] == "shadow"
        made = next(t for t in wk.incident(incident)["timeline"] if t["kind"] == "decision.made")
        assert made["would_run"]["steps"][0]["argv"][-1].endswith(f"'web-{n}:8080\\n')")
        wk.act(incident, Action.RESOLVE, "cli:alice", fixed_by=fixed_by, harmful=harmful)
        outcomes.append(wk.incident(incident)["decisions"][0]["outcome"])
    assert outcomes == ["agreed", "different_action", "would_have_harmed"]
    assert not marker.exists()
    evidence = wk.governance.evidence()["restart"]
    assert (evidence["shadow_decisions"], evidence["agreed"], evidence["shadow_precision"]) == (3, 1, 1 / 3)


def test_invalid_parameters_and_maintenance_deny(tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    window = {"start": clock.now.isoformat(), "end": clock.now.replace(year=2030).isoformat(), "services": ["db*"]}
    wk = setup(tmp_path, make_service, db_url, runbook("restart"), policy={"maintenance": [window]})
    bad = fire(wk, instance="web-1:8080; reboot")
    maint = fire(wk, service="db", instance="db-1:5432")
    wk.governance.respond()
    assert wk.incident(bad)["decisions"][0]["reason"] == "invalid_parameters"
    assert wk.incident(maint)["decisions"][0]["reason"] == "maintenance_window"
    assert wk.governance.work() == 0


@pytest.mark.parametrize(("services", "per_hour", "expected_max"), [(3, 50, 3), (12, 4, 4)],
                         ids=["blast-radius-per-service", "hourly-limit"])
def test_limits_hold_under_concurrent_storms(
    tmp_path: Path, make_service: Any, db_url: str, services: int, per_hour: int, expected_max: int
) -> None:
    """Many incidents arriving at once from many threads: blast radius and hourly limits hold.
    Queued actions never run here (no worker), so they stay active and keep counting."""
    wk = setup(tmp_path, make_service, db_url, runbook("restart"),
               policy={"limits": {"max_concurrent_per_service": 1, "max_concurrent_per_runbook": 100,
                                  "max_actions_per_hour": per_hour, "max_runbook_actions_per_hour": per_hour,
                                  "cooldown_seconds": 0}})
    errors: list[BaseException] = []

    def storm(worker: int) -> None:
        try:
            for n in range(6):
                service = f"svc{(worker * 7 + n) % services}"
                incident = fire(wk, service=service, instance=f"{service}-{worker}-{n}:80")
                wk.governance.set_causes(incident, [Cause(service, confidence=0.99)], "rca")
                wk.governance.respond()
                wk.act(incident, Action.RESOLVE, "test")  # the next alert of this service opens a new incident
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=storm, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    wk.governance.respond()
    with wk.db.read() as conn:
        rows = conn.execute(sa.text("SELECT service FROM action_runs")).scalars().all()
        acted = conn.execute(sa.text("SELECT count(DISTINCT incident_id) FROM action_runs")).scalar_one()
        autos = conn.execute(sa.text("SELECT count(*) FROM decisions WHERE verdict = 'auto'")).scalar_one()
        decided = conn.execute(sa.text("SELECT count(DISTINCT incident_id) FROM decisions")).scalar_one()
        incidents = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    assert 1 <= len(rows) <= expected_max, rows
    assert len(set(rows)) == len(rows), rows  # never two actions on one service
    assert autos == len(rows) == acted  # one action per auto decision, at most one per incident
    assert decided == incidents > expected_max  # every incident was decided on


def test_a_new_ranking_leaves_an_approval_that_confidence_did_not_cause(
        tmp_path: Path, make_service: Any, db_url: str) -> None:
    """A runbook that always needs approval (autonomy: approve) keeps its pending request when the
    ranking changes: superseding it without a new decision would leave nothing to approve."""
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("rollback", autonomy="approve", marker=marker))
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99)], "rca")
    wk.governance.respond()
    [pending] = wk.governance.approvals()
    wk.governance.set_causes(incident, [Cause("web", confidence=0.999), Cause("db", confidence=0.001)], "rca")
    wk.governance.respond()
    assert [p["id"] for p in wk.governance.approvals()] == [pending["id"]]
    assert wk.governance.approvals("superseded") == []
    assert wk.governance.vote(pending["id"], "token:bob", True)["status"] == "approved"
    assert wk.governance.work() == 1 and marker.exists()


def test_a_mitigated_incident_gets_no_second_unattended_fix(
        tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    """A fix is in (verified, the incident mitigated) while its alerts clear: an alert that joins now
    (the demo's error alert relabelled after a rollback) proposes another runbook, which waits for a
    human instead of running on top of the fix."""
    marker = tmp_path / "ran.txt"
    first = runbook("rollback", marker=marker, on_success="mitigate")
    second = runbook("restart", marker=marker)
    second["selector"] = {"alertnames": ["Errors"]}
    wk = setup(tmp_path, make_service, db_url, first, second)
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1 and wk.governance.work() == 1
    assert wk.incident(incident)["status"] == "mitigated"
    clock.advance(seconds=5)
    assert fire(wk, name="Errors") == incident
    assert wk.governance.respond() == 1 and wk.governance.work() == 0
    later = wk.incident(incident)["decisions"][-1]
    assert (later["runbook_id"], later["verdict"], later["reason"]) == ("restart", "needs_approval",
                                                                         "already_mitigated")
    assert later["inputs"]["mitigated"] is True
    assert marker.read_text() == "web-1:8080\n"  # the rollback's only
    [pending] = wk.governance.approvals()
    assert pending["runbook_id"] == "restart"


def test_the_same_fix_on_the_same_service_waits_out_its_cooldown(
        tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    """Two incidents of one fault (the demo's error burst on catalog opened one and reopened another):
    the first restart fixed it, the second incident's restart of the same service a second later
    waits for a human; after the cool-down the same fix runs unattended again."""
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", marker=marker),
               policy={"limits": {"cooldown_seconds": 60}})
    first = fire(wk, instance="web-1:8080")
    wk.governance.set_causes(first, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1 and wk.governance.work() == 1
    clock.advance(seconds=1)
    second = fire(wk, instance="web-2:8080")
    assert second != first
    wk.governance.set_causes(second, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1 and wk.governance.work() == 0
    [decision] = wk.incident(second)["decisions"]
    assert (decision["verdict"], decision["reason"]) == ("needs_approval", "cooldown")
    assert 0 < decision["inputs"]["last_run_age_s"] < 60
    assert marker.read_text() == "web-1:8080\n"  # the first restart only
    wk.act(second, Action.RESOLVE, "test")  # a human looked, and closed it
    clock.advance(seconds=120)
    third = fire(wk, instance="web-3:8080")
    assert third not in (first, second)
    wk.governance.set_causes(third, [Cause("web", confidence=0.99, model="test")], "test")
    wk.governance.respond()
    assert wk.governance.work() == 1
    [decision] = wk.incident(third)["decisions"]
    assert (decision["verdict"], decision["reason"]) == ("auto", "all_checks_passed")


def test_an_approval_request_is_withdrawn_when_its_incident_resolves(
        tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    """Nothing is left to approve once the problem is gone: a late approval would run a fix on a
    healthy service (the demo's stand-in approver did, 45 s after the incident resolved)."""
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", autonomy="approve", marker=marker))
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1
    [pending] = wk.governance.approvals()
    clock.advance(seconds=20)
    body = {"service": "web", "name": "Down", "summary": "web is down", "resource": "web-1:8080",
            "severity": "critical", "fingerprint": "web-Down-web-1:8080", "status": "resolved"}
    wk.ingest("events", orjson.dumps(body), "application/json", "test")
    assert wk.incident(incident)["status"] == "resolved"
    wk.governance.respond()
    assert wk.governance.approvals() == []
    [withdrawn] = wk.governance.approvals("expired")
    assert withdrawn["id"] == pending["id"]
    with pytest.raises(Conflict, match="already expired"):
        wk.governance.vote(pending["id"], "token:bob", True)
    assert wk.governance.work() == 0 and not marker.exists()
    [record] = [t for t in wk.incident(incident)["timeline"] if t["kind"] == "approval.expired"]
    assert "resolved before anyone decided" in orjson.dumps(record).decode()
    assert wk.verify_audit().ok


def test_a_reopened_incident_is_repaired_again(tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    """The problem came back (its alert refired and the incident reopened): what was decided and done
    before the reopen does not hold, so the runbook may run again (no cool-down here: it has its own test)."""
    marker = tmp_path / "ran.txt"
    wk = setup(tmp_path, make_service, db_url, runbook("restart", marker=marker),
               policy={"limits": {"cooldown_seconds": 0}})
    incident = fire(wk)
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1 and wk.governance.work() == 1
    body = {"service": "web", "name": "Down", "summary": "web is down", "resource": "web-1:8080",
            "severity": "critical", "fingerprint": "web-Down-web-1:8080"}
    clock.advance(seconds=20)
    wk.ingest("events", orjson.dumps({**body, "status": "resolved"}), "application/json", "test")
    assert wk.incident(incident)["status"] == "resolved"
    clock.advance(seconds=20)
    again = wk.ingest("events", orjson.dumps(body), "application/json", "test").incidents
    assert again == [incident] and "incident.reopened" in kinds(wk, incident)
    # decided again, after the reopen — as a new incident is before its ranking: the cause ranked
    # before the reopen was the earlier episode's, so nothing runs on it
    assert wk.governance.respond() == 1 and wk.governance.work() == 0
    [_, waiting] = wk.incident(incident)["decisions"]
    assert (waiting["reason"], waiting["inputs"]["cause"]) == ("no_confidence", None)
    clock.advance(seconds=5)  # ranked again on the episode that came back
    wk.governance.set_causes(incident, [Cause("web", confidence=0.99, model="test")], "test")
    assert wk.governance.respond() == 1
    assert wk.governance.work() == 1
    assert marker.read_text() == "web-1:8080\nweb-1:8080\n"
    assert [a["status"] for a in wk.incident(incident)["actions"]] == ["succeeded", "succeeded"]
    assert wk.governance.respond() == 0  # and only once per reopen


def test_a_cause_ranked_before_a_reopen_does_not_run_a_runbook_after_it(
        tmp_path: Path, make_service: Any, db_url: str, clock: Clock) -> None:
    """The alert that came back can have another cause (a caller's error alert refires for a fault
    elsewhere): a runbook aimed at the ranked cause waits for the new episode's ranking."""
    marker = tmp_path / "ran.txt"
    aimed = runbook("restart", marker=marker)
    aimed["selector"] = {"causes": {"min_confidence": 0.5}}
    aimed["parameters"] = {"instance": {"from": "cause.component"}}
    wk = setup(tmp_path, make_service, db_url, aimed)
    incident = fire(wk, "frontend", "Errors", "frontend-1:80")
    wk.governance.set_causes(incident, [Cause("payment", confidence=0.99, model="baro-v1")], "rca")
    assert wk.governance.respond() == 1 and wk.governance.work() == 1
    assert marker.read_text() == "payment\n"
    body = {"service": "frontend", "name": "Errors", "summary": "errors", "resource": "frontend-1:80",
            "severity": "critical", "fingerprint": "frontend-Errors-frontend-1:80"}
    clock.advance(seconds=30)
    wk.ingest("events", orjson.dumps({**body, "status": "resolved"}), "application/json", "test")
    clock.advance(seconds=60)
    assert wk.ingest("events", orjson.dumps(body), "application/json", "test").incidents == [incident]
    assert "incident.reopened" in kinds(wk, incident)
    assert wk.governance.respond() == 0 and wk.governance.work() == 0  # payment's ranking is stale
    assert marker.read_text() == "payment\n"
    clock.advance(seconds=5)
    wk.governance.set_causes(incident, [Cause("catalog", confidence=0.99, model="baro-v1")], "rca")
    assert wk.governance.respond() == 1 and wk.governance.work() == 1
    assert marker.read_text() == "payment\ncatalog\n"
