"""The KPIs a stage gate uses: pure functions over what the server stores.

The evidence is read from storage by the portfolio (shadow decisions and how humans scored
them, action runs and which were judged harmful, approval requests, incidents with their
lifecycle times, alert counts, drift events) and handed here as plain values. A KPI without
enough evidence is ``None``: a gate never judges on nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from watchkeeper.value.usecase import Kpi


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    runbook_id: str
    at: datetime
    outcome: str | None  # agreed | different_action | would_have_harmed | None (not scored yet)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    runbook_id: str
    at: datetime
    status: str  # succeeded | failed | rolled_back | interrupted | queued | running | …
    harmful: bool = False


@dataclass(frozen=True, slots=True)
class IncidentTimes:
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class ForecastEvent:
    """One stored forecast event (``watch`` forecasts): its series+threshold fingerprint, when it was
    received, firing or resolved, and the predicted time to the crossing (0: already crossed)."""

    fingerprint: str
    at: datetime
    status: str  # firing | resolved
    crossing_in_seconds: float | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything a gate measures for one use case over one window (and its baseline)."""

    shadow: Sequence[ShadowDecision] = ()
    actions: Sequence[ActionOutcome] = ()
    approvals: Sequence[str] = ()  # final statuses of approval requests: approved | rejected | expired
    incidents: Sequence[IncidentTimes] = ()
    baseline: Sequence[IncidentTimes] = ()
    alerts: int = 0
    incident_count: int = 0
    drift_events: int = 0
    forecasts: Sequence[ForecastEvent] = ()
    #: crossings before this are not counted (the forecasts are read from earlier, to see their warnings)
    forecasts_since: datetime | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Measure:
    """One KPI's value (None: not enough evidence) and how many samples it rests on."""

    value: float | None
    samples: int


FINISHED = ("succeeded", "failed", "rolled_back", "rollback_failed", "interrupted")


def shadow_volume(decisions: Iterable[ShadowDecision]) -> Measure:
    """Scored shadow decisions (the ones a human has judged).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> shadow_volume([ShadowDecision("r", t, "agreed"), ShadowDecision("r", t, None)])
    Measure(value=1.0, samples=1)
    """
    n = sum(1 for d in decisions if d.outcome is not None)
    return Measure(float(n), n)


def shadow_agreement(decisions: Iterable[ShadowDecision]) -> Measure:
    """Share of scored shadow decisions that agreed with what the human did.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> shadow_agreement([ShadowDecision("r", t, "agreed"), ShadowDecision("r", t, "different_action")])
    Measure(value=0.5, samples=2)
    >>> shadow_agreement([])
    Measure(value=None, samples=0)
    """
    scored = [d for d in decisions if d.outcome is not None]
    if not scored:
        return Measure(None, 0)
    return Measure(sum(d.outcome == "agreed" for d in scored) / len(scored), len(scored))


def harmful_actions(decisions: Iterable[ShadowDecision], actions: Iterable[ActionOutcome]) -> Measure:
    """Shadow decisions that would have harmed plus actions a human judged harmful. Zero is a
    measurement, not a lack of one: its sample count is the decisions and actions looked at."""
    decisions, actions = list(decisions), list(actions)
    harm = sum(d.outcome == "would_have_harmed" for d in decisions) + sum(a.harmful for a in actions)
    return Measure(float(harm), len(decisions) + len(actions))


def remediation_success(actions: Iterable[ActionOutcome]) -> Measure:
    """Share of finished actions that succeeded (queued or running ones are not judged).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> remediation_success([ActionOutcome("r", t, "succeeded"), ActionOutcome("r", t, "failed"),
    ...                      ActionOutcome("r", t, "running")])
    Measure(value=0.5, samples=2)
    """
    done = [a for a in actions if a.status in FINISHED]
    if not done:
        return Measure(None, 0)
    return Measure(sum(a.status == "succeeded" for a in done) / len(done), len(done))


def approval_rate(statuses: Iterable[str]) -> Measure:
    """Share of decided approval requests that a human approved (expired counts as not approved;
    pending and superseded ones are not decided)."""
    decided = [s for s in statuses if s in ("approved", "rejected", "expired")]
    if not decided:
        return Measure(None, 0)
    return Measure(sum(s == "approved" for s in decided) / len(decided), len(decided))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_seconds(incidents: Iterable[IncidentTimes], what: str) -> tuple[float | None, int]:
    """Mean seconds from opening to acknowledgement (``mtta``) or resolution (``mttr``)."""
    ends = [(i.opened_at, i.acknowledged_at if what == "mtta" else i.resolved_at) for i in incidents]
    seconds = [(end - start).total_seconds() for start, end in ends if end is not None and end >= start]
    return _mean(seconds), len(seconds)


def relative_change(baseline: float | None, current: float | None) -> float | None:
    """``(current - baseline) / baseline``: -0.3 is 30 % less.

    >>> relative_change(100.0, 70.0)
    -0.3
    >>> relative_change(0.0, 5.0) is None, relative_change(None, 5.0) is None
    (True, True)
    """
    if baseline is None or current is None or baseline <= 0:
        return None
    return round((current - baseline) / baseline, 6)


def time_change(baseline: Iterable[IncidentTimes], current: Iterable[IncidentTimes], what: str) -> Measure:
    """Relative change of MTTA or MTTR against the baseline; samples: the fewer of the two sides.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> before = [IncidentTimes(t, None, t + timedelta(minutes=60))]
    >>> after = [IncidentTimes(t, None, t + timedelta(minutes=30)), IncidentTimes(t, None, None)]
    >>> time_change(before, after, "mttr")
    Measure(value=-0.5, samples=1)
    """
    base, n_base = mean_seconds(baseline, what)
    now, n_now = mean_seconds(current, what)
    change = relative_change(base, now)
    return Measure(change, min(n_base, n_now) if change is not None else 0)


def noise_reduction(alerts: int, incidents: int) -> Measure:
    """``1 - incidents / alerts``: 0.9 means ten alerts became one incident.

    >>> noise_reduction(100, 10)
    Measure(value=0.9, samples=100)
    >>> noise_reduction(0, 0)
    Measure(value=None, samples=0)
    """
    if alerts <= 0:
        return Measure(None, 0)
    return Measure(round(1 - incidents / alerts, 6), alerts)


def forecast_lead_times(events: Iterable[ForecastEvent], since: datetime | None = None) -> list[float]:
    """Seconds from each warning's first firing forecast to the crossing it warned of, per series.

    A warning is a run of firing forecasts of one fingerprint, ended by a resolved one; its crossing
    is its first firing forecast saying the series has already crossed (``crossing_in_seconds`` 0).
    A crossing no forecast warned of before (the first event of the run has already crossed) has lead
    0: a miss counts against the KPI. A warning that resolved without a crossing has no lead (a false
    alarm is not a lead time). Only crossings at or after ``since`` count.

    >>> from datetime import UTC, timedelta as d
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> run = [(0, 7200), (1, 3600), (2, 0), (3, 0)]  # hours after t, predicted seconds to the crossing
    >>> forecast_lead_times([ForecastEvent("a", t + d(hours=h), "firing", s) for h, s in run])
    [7200.0]
    """
    runs: dict[str, tuple[datetime | None, bool]] = {}  # fingerprint -> (first firing of the run, crossed)
    leads: list[float] = []
    for e in sorted(events, key=lambda e: (e.at, e.fingerprint)):
        start, crossed = runs.get(e.fingerprint, (None, False))
        if e.status != "firing":
            runs[e.fingerprint] = (None, False)
            continue
        start = start or e.at
        if not crossed and e.crossing_in_seconds is not None and e.crossing_in_seconds <= 0:
            if since is None or e.at >= since:
                leads.append((e.at - start).total_seconds())
            crossed = True
        runs[e.fingerprint] = (start, crossed)
    return leads


def forecast_lead_time(events: Iterable[ForecastEvent], since: datetime | None = None) -> Measure:
    """Median seconds the forecasts warned before the crossings they predicted (misses count as 0);
    samples: the crossings.

    >>> from datetime import UTC, timedelta as d
    >>> t = datetime(2026, 11, 1, tzinfo=UTC)
    >>> forecast_lead_time([ForecastEvent("a", t, "firing", 600), ForecastEvent("a", t + d(minutes=10), "firing", 0),
    ...                     ForecastEvent("b", t, "firing", 0)])
    Measure(value=300.0, samples=2)
    >>> forecast_lead_time([])
    Measure(value=None, samples=0)
    """
    leads = forecast_lead_times(events, since)
    if not leads:
        return Measure(None, 0)
    return Measure(float(statistics.median(leads)), len(leads))


def measure(kpi: Kpi, evidence: Evidence) -> Measure:
    """One KPI from the evidence."""
    if kpi is Kpi.SHADOW_VOLUME:
        return shadow_volume(evidence.shadow)
    if kpi is Kpi.SHADOW_AGREEMENT:
        return shadow_agreement(evidence.shadow)
    if kpi is Kpi.HARMFUL_ACTIONS:
        return harmful_actions(evidence.shadow, evidence.actions)
    if kpi is Kpi.REMEDIATION_SUCCESS:
        return remediation_success(evidence.actions)
    if kpi is Kpi.APPROVAL_RATE:
        return approval_rate(evidence.approvals)
    if kpi is Kpi.MTTA_CHANGE:
        return time_change(evidence.baseline, evidence.incidents, "mtta")
    if kpi is Kpi.MTTR_CHANGE:
        return time_change(evidence.baseline, evidence.incidents, "mttr")
    if kpi is Kpi.NOISE_REDUCTION:
        return noise_reduction(evidence.alerts, evidence.incident_count)
    if kpi is Kpi.DRIFT_EVENTS:
        return Measure(float(evidence.drift_events), 1)
    if kpi is Kpi.FORECAST_LEAD_TIME:
        return forecast_lead_time(evidence.forecasts, evidence.forecasts_since)
    raise AssertionError(kpi)  # pragma: no cover - every Kpi is handled above


def measure_all(evidence: Evidence) -> dict[Kpi, Measure]:
    return {kpi: measure(kpi, evidence) for kpi in Kpi}
