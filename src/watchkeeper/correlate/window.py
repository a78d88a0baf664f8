"""The correlator: the alert's own active incident, else the first strategy whose probe finds an
active incident with activity within the window, else a new incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.correlate.strategies import JoinReason, LabelGroup, Strategy
from watchkeeper.model import Alert, Incident


@dataclass(frozen=True, slots=True)
class Join:
    """The correlator's answer: join ``incident_id`` (None: open a new incident)."""

    incident_id: int | None
    reason: JoinReason
    detail: str


class Correlator:
    """Compose strategies; the first that finds an active incident within ``window`` wins.

    >>> from datetime import UTC, datetime, timedelta
    >>> from watchkeeper.model import IncidentStatus, Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> inc = Incident(7, "db down", IncidentStatus.OPEN, Severity.WARNING, ["db"], t, t)
    >>> alert = Alert("fp2", "api", "Slow", "db", "", Severity.WARNING, Status.FIRING, {}, "slow", t, t)
    >>> c = Correlator(timedelta(minutes=5))
    >>> c.observe(alert, {7: inc}, {"labels:service=db": 7}, t + timedelta(minutes=4)).incident_id
    7
    >>> c.observe(alert, {7: inc}, {"labels:service=db": 7}, t + timedelta(minutes=6)).reason.value
    'new_incident'
    """

    def __init__(self, window: timedelta, strategies: Sequence[Strategy] | None = None) -> None:
        self.window = window
        self.strategies: list[Strategy] = list(strategies) if strategies else [LabelGroup()]

    def index_keys(self, alert: Alert) -> list[str]:
        return [key for s in self.strategies for key in s.index(alert)]

    def probe_keys(self, alert: Alert) -> list[str]:
        return [p.key for s in self.strategies for p in s.probe(alert)]

    def keys(self, alert: Alert) -> list[str]:
        """``index_keys`` and ``probe_keys`` together (for loading state). A strategy may offer a
        cheaper ``keys(alert)`` (no probe details to format) that returns the same keys."""
        found: list[str] = []
        for strategy in self.strategies:
            fast = getattr(strategy, "keys", None)
            if fast is not None:
                found += fast(alert)
            else:
                found += strategy.index(alert)
                found += [p.key for p in strategy.probe(alert)]
        return found

    def observe(
        self, alert: Alert, incidents: Mapping[int, Incident], active: Mapping[str, int], now: datetime
    ) -> Join:
        own = incidents.get(alert.incident_id) if alert.incident_id is not None else None
        if own is not None and own.is_active:
            return Join(own.id, JoinReason.STILL_OPEN, f"fired again while incident {own.id} was active")
        quiet: list[str] = []
        for strategy in self.strategies:
            for probe in strategy.probe(alert):
                incident_id = active.get(probe.key)
                incident = incidents.get(incident_id) if incident_id is not None else None
                if incident is None or not incident.is_active:
                    continue
                gap = now - incident.last_activity_at
                if gap <= self.window:
                    when = f"incident {incident.id} active {_secs(gap)} ago (window {_secs(self.window)})"
                    return Join(incident.id, probe.reason, f"{probe.detail}: {when}")
                quiet.append(f"incident {incident.id} quiet for {_secs(gap)}")
        if quiet:
            return Join(None, JoinReason.NEW_INCIDENT, "; ".join(quiet) + f" (window {_secs(self.window)})")
        return Join(None, JoinReason.NEW_INCIDENT, f"no related active incident for service {alert.service!r}")


def _secs(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"

