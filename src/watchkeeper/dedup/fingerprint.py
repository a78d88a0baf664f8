"""Deduplicate events by fingerprint. Pure: state is passed in, time comes from the event."""

from __future__ import annotations

from collections.abc import MutableMapping
from enum import StrEnum
from typing import NamedTuple

from watchkeeper.model import Alert, Event, Status


class DedupReason(StrEnum):
    """What one event did to its alert."""

    NEW = "new"
    REPEAT = "repeat"
    RESOLVED = "resolved"
    REFIRED = "refired"
    ALREADY_RESOLVED = "already_resolved"
    RESOLVED_UNSEEN = "resolved_unseen"
    STALE = "stale"

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT = {
    DedupReason.NEW: "first event of this fingerprint: a new alert",
    DedupReason.REPEAT: "same fingerprint still firing: count and last seen updated",
    DedupReason.RESOLVED: "resolved event closed a firing alert",
    DedupReason.REFIRED: "fired again after it had resolved",
    DedupReason.ALREADY_RESOLVED: "resolved again: already resolved, count updated",
    DedupReason.RESOLVED_UNSEEN: "resolved event for a fingerprint never seen firing",
    DedupReason.STALE: "firing event older than the alert's resolution: ignored",
}


class DedupResult(NamedTuple):
    """What one event did (a NamedTuple: immutable, and cheap to make once per event)."""

    alert: Alert
    reason: DedupReason
    #: Only ``count`` and ``last_seen`` changed (a plain repeat): storage may write just those.
    counted_only: bool = False

    @property
    def fires(self) -> bool:
        """The alert started firing with this event (it needs an incident)."""
        return self.reason is DedupReason.NEW or self.reason is DedupReason.REFIRED


class Deduplicator:
    """Fold events into alerts keyed by fingerprint.

    >>> from datetime import UTC, datetime, timedelta
    >>> from watchkeeper.model import EventKind, Severity
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def ev(status, at):
    ...     return Event("api", EventKind.ALERT, "fp1", status, Severity.WARNING, "Down", "db", "",
    ...                  {}, "db down", t, None, at)
    >>> alerts, dedup = {}, Deduplicator()
    >>> [dedup.observe(ev(s, t + timedelta(seconds=i)), alerts).reason.value
    ...  for i, s in enumerate([Status.FIRING, Status.FIRING, Status.RESOLVED])]
    ['new', 'repeat', 'resolved']
    >>> alerts["fp1"].count
    3
    """

    def observe(self, event: Event, alerts: MutableMapping[str, Alert]) -> DedupResult:
        # Runs once per ingested event: enum members and the result's constructor are bound at
        # module level (``Status.FIRING`` is an attribute lookup on the enum class each time).
        alert = alerts.get(event.fingerprint)
        if alert is None:
            alert = alert_of(event)
            alerts[event.fingerprint] = alert
            if event.status is _RESOLVED:
                alert.resolved_at = event.ends_at or event.received_at
                return _result(DedupResult, (alert, _RESOLVED_UNSEEN, False))
            return _result(DedupResult, (alert, _NEW, False))

        alert.count += 1
        if event.received_at > alert.last_seen:
            alert.last_seen = event.received_at
        if event.status is _RESOLVED:
            if alert.status is _RESOLVED:
                return _result(DedupResult, (alert, _ALREADY_RESOLVED, False))
            alert.status = _RESOLVED
            alert.resolved_at = event.ends_at or event.received_at
            return _result(DedupResult, (alert, _RESOLVED_NOW, False))
        if alert.status is _FIRING:  # a repeat: did its description change? (``_refresh``, inline)
            if event.reference or (alert.severity is event.severity and alert.summary == event.summary
                                   and alert.labels == event.labels):
                return _result(DedupResult, (alert, _REPEAT, True))
            _refresh(alert, event)
            return _result(DedupResult, (alert, _REPEAT, False))
        if alert.resolved_at is not None and event.starts_at < alert.resolved_at:
            return _result(DedupResult, (alert, _STALE, False))
        alert.status = _FIRING
        alert.resolved_at = None
        alert.first_seen = event.starts_at
        if not event.reference:
            _refresh(alert, event)
        return _result(DedupResult, (alert, _REFIRED, False))


_FIRING, _RESOLVED = Status.FIRING, Status.RESOLVED
_NEW, _REPEAT, _RESOLVED_NOW, _REFIRED = DedupReason.NEW, DedupReason.REPEAT, DedupReason.RESOLVED, DedupReason.REFIRED
_ALREADY_RESOLVED, _RESOLVED_UNSEEN, _STALE = (
    DedupReason.ALREADY_RESOLVED, DedupReason.RESOLVED_UNSEEN, DedupReason.STALE)
#: ``DedupResult(alert, reason, counted_only)`` without the generated ``__new__``'s overhead.
_result = tuple.__new__


def alert_of(event: Event) -> Alert:
    """The alert an event would create (also used to compute correlation keys up front)."""
    return Alert(
        fingerprint=event.fingerprint,
        source=event.source,
        name=event.name,
        service=event.service,
        resource=event.resource,
        severity=event.severity,
        status=event.status,
        labels=event.labels,
        summary=event.summary,
        first_seen=event.starts_at,
        last_seen=event.received_at,
    )


def _refresh(alert: Alert, event: Event) -> bool:
    """Take the event's description; say whether anything changed."""
    if alert.severity is event.severity and alert.summary == event.summary and alert.labels == event.labels:
        return False
    alert.severity = event.severity
    alert.summary = event.summary
    alert.labels = event.labels
    return True
