"""First correlation strategy: alerts of one service within a time window share an incident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watchkeeper.model import Alert, Incident


class JoinReason(StrEnum):
    """Why an alert went to the incident it went to."""

    NEW_INCIDENT = "new_incident"
    SAME_SERVICE = "same_service"
    STILL_OPEN = "still_open"


@dataclass(frozen=True, slots=True)
class Join:
    """The correlator's answer: join ``incident_id`` (None: open a new incident)."""

    incident_id: int | None
    reason: JoinReason
    detail: str


class ServiceWindowCorrelator:
    """Join the active incident of the alert's service if it saw activity within ``window``.

    >>> from datetime import UTC, datetime, timedelta
    >>> from watchkeeper.model import IncidentStatus, Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> inc = Incident(7, "db down", IncidentStatus.OPEN, Severity.WARNING, ["db"], t, t)
    >>> alert = Alert("fp2", "api", "Slow", "db", "", Severity.WARNING, Status.FIRING, {}, "slow", t, t)
    >>> c = ServiceWindowCorrelator(timedelta(minutes=5))
    >>> c.observe(alert, {7: inc}, {"db": 7}, t + timedelta(minutes=4)).incident_id
    7
    >>> c.observe(alert, {7: inc}, {"db": 7}, t + timedelta(minutes=6)).reason.value
    'new_incident'
    """

    def __init__(self, window: timedelta) -> None:
        self.window = window

    def observe(
        self,
        alert: Alert,
        incidents: Mapping[int, Incident],
        active_by_service: Mapping[str, int],
        now: datetime,
    ) -> Join:
        own = incidents.get(alert.incident_id) if alert.incident_id is not None else None
        if own is not None and own.is_active:
            return Join(own.id, JoinReason.STILL_OPEN, f"fired again while incident {own.id} was active")
        candidate_id = active_by_service.get(alert.service)
        candidate = incidents.get(candidate_id) if candidate_id is not None else None
        if candidate is not None and candidate.is_active:
            gap = now - candidate.last_activity_at
            if gap <= self.window:
                return Join(
                    candidate.id,
                    JoinReason.SAME_SERVICE,
                    f"service {alert.service!r}: last activity {_secs(gap)} ago, window {_secs(self.window)}",
                )
            return Join(
                None,
                JoinReason.NEW_INCIDENT,
                f"service {alert.service!r}: incident {candidate.id} quiet for {_secs(gap)} "
                f"(window {_secs(self.window)})",
            )
        return Join(None, JoinReason.NEW_INCIDENT, f"no active incident for service {alert.service!r}")


def _secs(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"
