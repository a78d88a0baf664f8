"""The policy, table-driven: every reason is reachable and says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watchkeeper.policy import Autonomy, Context, PolicyConfig, Proposal, Reason, Risk, Verdict, Window, decide

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = Proposal(7, "restart-web", "web", Autonomy.AUTO, Risk.LOW, confidence=0.97)
CTX = Context(NOW)
CFG = PolicyConfig()
HOUR = timedelta(hours=1)
WINDOW_NOW = {"start": NOW - HOUR, "end": NOW + HOUR}

CASES = [
    ("all-gates-pass", BASE, CTX, CFG, Verdict.AUTO, Reason.ALL_CHECKS_PASSED),
    ("bad-params", replace(BASE, params_valid=False, params_error="x"), CTX, CFG, Verdict.DENY, Reason.INVALID_PARAMETERS),
    ("maintenance", BASE, CTX, PolicyConfig(maintenance=[Window(**WINDOW_NOW, services=["w*"])]), Verdict.DENY,
     Reason.MAINTENANCE_WINDOW),
    ("maintenance-other-service", BASE, CTX, PolicyConfig(maintenance=[Window(**WINDOW_NOW, services=["db"])]),
     Verdict.AUTO, Reason.ALL_CHECKS_PASSED),
    ("maintenance-over", BASE, CTX, PolicyConfig(maintenance=[Window(start=NOW - 2 * HOUR, end=NOW)]), Verdict.AUTO,
     Reason.ALL_CHECKS_PASSED),
    ("shadow", replace(BASE, autonomy=Autonomy.SHADOW), CTX, CFG, Verdict.SHADOW, Reason.AUTONOMY_SHADOW),
    ("suggest", replace(BASE, autonomy=Autonomy.SUGGEST), CTX, CFG, Verdict.SUGGEST, Reason.AUTONOMY_SUGGEST),
    ("breaker-open", BASE, replace(CTX, breaker_open=True), CFG, Verdict.SUGGEST, Reason.CIRCUIT_OPEN),
    ("approve-level", replace(BASE, autonomy=Autonomy.APPROVE), CTX, CFG, Verdict.NEEDS_APPROVAL, Reason.AUTONOMY_APPROVE),
    ("service-busy", BASE, replace(CTX, running_on_service=1), CFG, Verdict.NEEDS_APPROVAL, Reason.SERVICE_BUSY),
    ("runbook-busy", BASE, replace(CTX, running_of_runbook=2), CFG, Verdict.NEEDS_APPROVAL, Reason.RUNBOOK_BUSY),
    ("hourly", BASE, replace(CTX, actions_last_hour=20), CFG, Verdict.NEEDS_APPROVAL, Reason.HOURLY_LIMIT),
    ("runbook-hourly", BASE, replace(CTX, runbook_actions_last_hour=10), CFG, Verdict.NEEDS_APPROVAL,
     Reason.RUNBOOK_HOURLY_LIMIT),
    ("already-mitigated", BASE, replace(CTX, mitigated=True), CFG, Verdict.NEEDS_APPROVAL, Reason.ALREADY_MITIGATED),
    ("cooldown", BASE, replace(CTX, last_run_age_s=299.0), CFG, Verdict.NEEDS_APPROVAL, Reason.COOLDOWN),
    ("cooldown-over", BASE, replace(CTX, last_run_age_s=300.0), CFG, Verdict.AUTO, Reason.ALL_CHECKS_PASSED),
    ("cooldown-off", BASE, replace(CTX, last_run_age_s=0.0), PolicyConfig(limits={"cooldown_seconds": 0}),
     Verdict.AUTO, Reason.ALL_CHECKS_PASSED),
    ("mitigated-shadow-still-records", replace(BASE, autonomy=Autonomy.SHADOW), replace(CTX, mitigated=True), CFG,
     Verdict.SHADOW, Reason.AUTONOMY_SHADOW),
    ("no-cause", replace(BASE, confidence=None), CTX, CFG, Verdict.NEEDS_APPROVAL, Reason.NO_CONFIDENCE),
    ("low-confidence", replace(BASE, confidence=0.949), CTX, CFG, Verdict.NEEDS_APPROVAL, Reason.LOW_CONFIDENCE),
    ("exactly-threshold", replace(BASE, confidence=0.95), CTX, CFG, Verdict.AUTO, Reason.ALL_CHECKS_PASSED),
    ("runbook-threshold", replace(BASE, confidence=0.9, threshold=0.85), CTX, CFG, Verdict.AUTO,
     Reason.ALL_CHECKS_PASSED),
    ("policy-threshold", replace(BASE, confidence=0.9), CTX, PolicyConfig(confidence_threshold=0.8), Verdict.AUTO,
     Reason.ALL_CHECKS_PASSED),
    ("risk-medium", replace(BASE, risk=Risk.MEDIUM), CTX, CFG, Verdict.NEEDS_APPROVAL, Reason.RISK_TOO_HIGH),
    ("risk-allowed", replace(BASE, risk=Risk.MEDIUM), CTX, PolicyConfig(max_auto_risk=Risk.MEDIUM), Verdict.AUTO,
     Reason.ALL_CHECKS_PASSED),
    ("freeze", BASE, CTX, PolicyConfig(freezes=[Window(**WINDOW_NOW)]), Verdict.NEEDS_APPROVAL, Reason.CHANGE_FREEZE),
    ("shadow-ignores-limits", replace(BASE, autonomy=Autonomy.SHADOW), replace(CTX, running_on_service=9), CFG,
     Verdict.SHADOW, Reason.AUTONOMY_SHADOW),
]


@pytest.mark.parametrize(("proposal", "context", "config", "verdict", "reason"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_decide(proposal: Proposal, context: Context, config: PolicyConfig, verdict: Verdict, reason: Reason) -> None:
    decision = decide(proposal, context, config)
    assert (decision.verdict, decision.reason) == (verdict, reason)
    assert decision.inputs["confidence"] == proposal.confidence
    assert decision.text == reason.text


def test_every_reason_is_covered_and_readable() -> None:
    covered = {c[5] for c in CASES}
    assert covered == set(Reason)
    assert all(len(r.text.split()) >= 5 for r in Reason)


def test_window_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        Window(start=NOW, end=NOW)
