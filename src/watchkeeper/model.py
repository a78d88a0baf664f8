"""Domain types shared by every stage.

Plain dataclasses: no IO, no framework. Times are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    ALERT = "alert"
    LOG = "log"
    ANOMALY = "anomaly"
    FORECAST = "forecast"
    CHANGE = "change"
    TRACE = "trace"


class Status(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


#: Faster than ``Status(value)`` on the hot path.
STATUS_BY_VALUE: dict[str, Status] = {s.value: s for s in Status}


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: ``Severity.CRITICAL.rank > Severity.INFO.rank``."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: object) -> Severity:
        """Map the many spellings sources use onto four levels.

        >>> Severity.parse("P1"), Severity.parse("warn"), Severity.parse(None)
        (<Severity.CRITICAL: 'critical'>, <Severity.WARNING: 'warning'>, <Severity.WARNING: 'warning'>)
        """
        if value is None:
            return cls.WARNING
        exact = _SEVERITY_ALIASES.get(value) if isinstance(value, str) else None
        return exact or _SEVERITY_ALIASES.get(str(value).strip().lower(), cls.WARNING)

    @classmethod
    def known(cls, value: str) -> bool:
        """Whether ``value`` is one of the four levels or a documented alias of one.

        >>> Severity.known("P1"), Severity.known("apocalyptic")
        (True, False)
        """
        return value.strip().lower() in _SEVERITY_ALIASES

    @classmethod
    def spellings(cls) -> list[str]:
        """Every accepted spelling, lower case (the four levels and their aliases)."""
        return sorted(_SEVERITY_ALIASES)


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}
_SEVERITY_ALIASES = {
    "critical": Severity.CRITICAL, "crit": Severity.CRITICAL, "fatal": Severity.CRITICAL,
    "page": Severity.CRITICAL, "p1": Severity.CRITICAL, "sev1": Severity.CRITICAL,
    "high": Severity.ERROR, "error": Severity.ERROR, "err": Severity.ERROR, "major": Severity.ERROR,
    "p2": Severity.ERROR, "sev2": Severity.ERROR,
    "warning": Severity.WARNING, "warn": Severity.WARNING, "medium": Severity.WARNING,
    "minor": Severity.WARNING, "p3": Severity.WARNING, "sev3": Severity.WARNING,
    "info": Severity.INFO, "informational": Severity.INFO, "low": Severity.INFO, "none": Severity.INFO,
    "ok": Severity.INFO, "p4": Severity.INFO, "p5": Severity.INFO, "sev4": Severity.INFO,
}


class ChangeKind(StrEnum):
    """What a change event on a service was (the changes API's ``kind``; stored as its value)."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    CONFIG = "config"
    FLAG = "flag"


class HoldReason(StrEnum):
    """Why an alert is kept out of incidents for now (stored in ``alerts.held``; audited as ``alert.held``)."""

    SILENCED = "silenced"  # a silence's matchers mute it (maintenance)
    INHIBITED = "inhibited"  # a firing alert of an inhibit rule's source side mutes it
    FLAPPING = "flapping"  # it changed state too often within the flapping window


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive values are taken to be UTC). A ValueError
    says when the conversion leaves the years 1-9999.

    >>> utc(datetime.fromisoformat("9999-12-31T23:59:59-01:00"))
    Traceback (most recent call last):
    ...
    ValueError: 9999-12-31T23:59:59-01:00 is outside the years 1-9999 once converted to UTC
    """
    if dt.tzinfo is UTC:
        return dt
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{dt.isoformat()} is outside the years 1-9999 once converted to UTC") from None


@dataclass(slots=True)
class Event:
    """One normalized observation from any source. A value: never modified after creation (use
    ``dataclasses.replace``). Not ``frozen`` only because a frozen ``__init__`` costs ~2 µs per
    event on the ingest hot path."""

    source: str
    kind: EventKind
    fingerprint: str
    status: Status
    severity: Severity
    name: str
    service: str
    resource: str
    labels: Mapping[str, str]
    summary: str
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The event names an existing condition by fingerprint and describes nothing itself (a
    #: PagerDuty acknowledge or resolve without payload): it must not overwrite labels or severity.
    reference: bool = False


@dataclass(slots=True)
class Alert:
    """The deduplicated state of one fingerprint."""

    fingerprint: str
    source: str
    name: str
    service: str
    resource: str
    severity: Severity
    status: Status
    labels: Mapping[str, str]
    summary: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    resolved_at: datetime | None = None
    incident_id: int | None = None
    join_reason: str | None = None
    #: Why the alert is held out of incidents (silenced, inhibited, flapping), or None.
    held: HoldReason | None = None
    #: Times of its recent state changes (firing ↔ resolved), for flapping detection.
    changes: list[datetime] = field(default_factory=list)


@dataclass(slots=True)
class Incident:
    """Alerts grouped by correlation, with a lifecycle."""

    id: int
    title: str
    status: IncidentStatus
    severity: Severity
    services: list[str]
    opened_at: datetime
    last_activity_at: datetime
    firing_count: int = 0
    alert_count: int = 0
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    assignee: str | None = None
    #: The source's ``startsAt`` of the first alert (never after ``opened_at``); None if unknown.
    started_at: datetime | None = None
    #: The first acknowledgement and mitigation ever: a reopen clears ``acknowledged_at``, not these.
    first_acknowledged_at: datetime | None = None
    first_mitigated_at: datetime | None = None
    #: Correlation keys its alerts are indexed under (``labels:service=web``, ``service:web`` …).
    keys: list[str] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED


@dataclass(frozen=True, slots=True)
class Membership:
    """Why one alert joined one incident."""

    incident_id: int
    fingerprint: str
    joined_at: datetime
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Cause:
    """A candidate root cause with a calibrated confidence (from a ranker or a human)."""

    component: str
    kind: str = "service"  # service | resource | metric | change
    score: float = 0.0
    confidence: float = 0.0
    model: str = "manual"
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """One state change a stage made, with its machine-readable reason: what the audit log stores."""

    kind: str
    subject: str
    at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the hash-chained, append-only audit log."""

    seq: int
    at: datetime
    actor: str
    kind: str
    subject: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str
