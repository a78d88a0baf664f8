"""Human corrections to grouping: move an alert, merge incidents, split an incident. Pure: the
caller loads the incidents and alerts, applies these, and stores the result; each returns the
Change the audit log keeps. Corrections are also the evidence for the human-judged grouping
precision KPI (``kpi.grouping``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from watchkeeper.errors import Conflict
from watchkeeper.model import Alert, Change, Incident, IncidentStatus, Status


class Correction(StrEnum):
    MOVED = "moved"      # an alert did not belong where the correlator put it (a precision error)
    MERGED = "merged"    # two incidents were one (a recall error)
    SPLIT = "split"      # alerts split off into a new incident (precision errors)


def transfer(alert: Alert, source: Incident, target: Incident) -> None:
    """Carry ``alert``'s weight from ``source`` to ``target``: the counts, its service, its severity
    (what a human move and an automatic split both do; the caller sets the alert's incident)."""
    source.alert_count = max(0, source.alert_count - 1)
    target.alert_count += 1
    if alert.status is Status.FIRING and alert.held is None:
        source.firing_count = max(0, source.firing_count - 1)
        target.firing_count += 1
    if alert.service not in target.services:
        target.services.append(alert.service)
    if alert.severity.rank > target.severity.rank:
        target.severity = alert.severity


def move(alert: Alert, source: Incident, target: Incident, actor: str, at: datetime, keys: Iterable[str]) -> Change:
    """Move ``alert`` from ``source`` to ``target``; ``keys`` are the alert's correlation keys.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity
    >>> t = datetime(2026, 11, 23, tzinfo=UTC)
    >>> a = Alert("f", "am", "Down", "db", "", Severity.CRITICAL, Status.FIRING, {}, "db down", t, t, incident_id=1)
    >>> src = Incident(1, "x", IncidentStatus.OPEN, Severity.CRITICAL, ["db"], t, t, firing_count=1, alert_count=1)
    >>> dst = Incident(2, "y", IncidentStatus.OPEN, Severity.WARNING, ["web"], t, t)
    >>> move(a, src, dst, "alice", t, ["labels:service=db"]).kind, a.incident_id, dst.services, src.status.value
    ('alert.moved', 2, ['web', 'db'], 'resolved')
    """
    if alert.incident_id != source.id:
        raise Conflict(f"alert {alert.fingerprint} is not in incident {source.id}")
    if source.id == target.id:
        raise Conflict("the alert is already in that incident")
    if not target.is_active:
        raise Conflict(f"incident {target.id} is resolved; reopen it first")
    transfer(alert, source, target)
    for key in keys:
        if key not in target.keys:
            target.keys.append(key)
    target.last_activity_at = max(target.last_activity_at, at)
    alert.incident_id, alert.join_reason = target.id, "human"
    emptied = source.alert_count == 0 and source.is_active
    if emptied:
        source.status, source.resolved_at = IncidentStatus.RESOLVED, at
    return Change("alert.moved", f"incident:{target.id}", at, {
        "fingerprint": alert.fingerprint, "from": source.id, "to": target.id, "incident_id": target.id,
        "correction": Correction.MOVED.value, "source_emptied": emptied, "by": actor})
