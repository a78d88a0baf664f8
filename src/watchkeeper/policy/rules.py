"""``decide(proposal, context, config) -> Decision``: ordered rules, the first that applies wins."""

from __future__ import annotations

from watchkeeper.policy.base import (
    Autonomy,
    Context,
    Decision,
    PolicyConfig,
    Proposal,
    Reason,
    Verdict,
)


def decide(proposal: Proposal, context: Context, config: PolicyConfig) -> Decision:
    """The policy. Pure and total: every input gets exactly one verdict with its reason.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.policy import Risk
    >>> p = Proposal(1, "restart-web", "web", Autonomy.AUTO, Risk.LOW, confidence=0.97)
    >>> d = decide(p, Context(datetime(2026, 11, 23, tzinfo=UTC)), PolicyConfig())
    >>> d.verdict.value, d.reason.value
    ('auto', 'all_checks_passed')
    >>> decide(p, Context(datetime(2026, 11, 23, tzinfo=UTC), running_on_service=1),
    ...        PolicyConfig()).reason.value
    'service_busy'
    """
    threshold = proposal.threshold if proposal.threshold is not None else config.confidence_threshold
    inputs: dict[str, object] = {
        "autonomy": proposal.autonomy.value, "risk": proposal.risk.value,
        "confidence": proposal.confidence, "threshold": threshold,
        "max_auto_risk": config.max_auto_risk.value, "limits": config.limits.model_dump(),
        "running_on_service": context.running_on_service,
        "running_of_runbook": context.running_of_runbook,
        "actions_last_hour": context.actions_last_hour,
        "runbook_actions_last_hour": context.runbook_actions_last_hour,
        "breaker_open": context.breaker_open, "mitigated": context.mitigated,
        "last_run_age_s": None if context.last_run_age_s is None else round(context.last_run_age_s, 3),
    }

    def verdict(v: Verdict, reason: Reason, rule: str, **extra: object) -> Decision:
        return Decision(v, reason, rule, threshold, {**inputs, **extra})

    if not proposal.params_valid:
        return verdict(Verdict.DENY, Reason.INVALID_PARAMETERS, "parameters", error=proposal.params_error)
    for window in config.maintenance:
        if window.covers(proposal.service, context.now):
            return verdict(Verdict.DENY, Reason.MAINTENANCE_WINDOW, "maintenance",
                           window=window.model_dump(mode="json"))
    if proposal.autonomy is Autonomy.SHADOW:
        return verdict(Verdict.SHADOW, Reason.AUTONOMY_SHADOW, "autonomy")
    if proposal.autonomy is Autonomy.SUGGEST:
        return verdict(Verdict.SUGGEST, Reason.AUTONOMY_SUGGEST, "autonomy")
    if context.breaker_open:
        return verdict(Verdict.SUGGEST, Reason.CIRCUIT_OPEN, "circuit_breaker")

    limits = config.limits
    if context.running_on_service >= limits.max_concurrent_per_service:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.SERVICE_BUSY, "blast_radius.service")
    if context.running_of_runbook >= limits.max_concurrent_per_runbook:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.RUNBOOK_BUSY, "blast_radius.runbook")
    if context.actions_last_hour >= limits.max_actions_per_hour:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.HOURLY_LIMIT, "rate.global")
    if context.runbook_actions_last_hour >= limits.max_runbook_actions_per_hour:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.RUNBOOK_HOURLY_LIMIT, "rate.runbook")
    if proposal.autonomy is Autonomy.APPROVE:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.AUTONOMY_APPROVE, "autonomy")
    if context.mitigated:  # one unattended fix per episode: a second one on top of it is a human's call
        return verdict(Verdict.NEEDS_APPROVAL, Reason.ALREADY_MITIGATED, "episode")
    if context.last_run_age_s is not None and context.last_run_age_s < limits.cooldown_seconds:
        # the same fix again before the last one could show its effect: a duplicate incident of the
        # same problem, or a fix that did not hold (a restart loop) — either way a human's call
        return verdict(Verdict.NEEDS_APPROVAL, Reason.COOLDOWN, "rate.cooldown")

    # autonomy == auto: every gate must hold, otherwise a human decides.
    if proposal.confidence is None:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.NO_CONFIDENCE, "confidence")
    if proposal.confidence < threshold:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.LOW_CONFIDENCE, "confidence")
    if proposal.risk.rank > config.max_auto_risk.rank:
        return verdict(Verdict.NEEDS_APPROVAL, Reason.RISK_TOO_HIGH, "risk")
    for window in config.freezes:
        if window.covers(proposal.service, context.now):
            return verdict(Verdict.NEEDS_APPROVAL, Reason.CHANGE_FREEZE, "freeze",
                           window=window.model_dump(mode="json"))
    return verdict(Verdict.AUTO, Reason.ALL_CHECKS_PASSED, "auto")
