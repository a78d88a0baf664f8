"""What ServiceNow, Jira and Teams share, pure: the ticket view of an outbox message, and the
changes made in a ticket that come back to our incidents.

A system's adapter (``servicenow.mapping``, ``jira.mapping``) turns a record or a webhook into
:class:`Inbound` changes, each with an idempotency key; :func:`plan` turns a wanted state into
lifecycle actions without ever moving an incident backwards; ``itsm_apply.apply`` applies a batch in
one transaction — each change once (its key is stored with its effect), audited as the person
who made it there (``servicenow:beth.anglin``), and marked with ``via`` so no integration sends
it back where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from watchkeeper.errors import InputError
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause, Incident, IncidentStatus, Severity, utc

#: Marks our own notes on a ticket; a note carrying it never comes back as a comment.
MARKER = "[Watchkeeper]"


class Field(StrEnum):
    STATE = "state"
    ASSIGNEE = "assignee"
    NOTE = "note"


class Outcome(StrEnum):
    APPLIED = "applied"
    NO_CHANGE = "no_change"  # already so here (e.g. resolved twice)
    DUPLICATE = "duplicate"  # its key was handled before (a retried webhook, a re-polled record)
    UNLINKED = "unlinked"  # no incident of ours is linked to that ticket
    REFUSED = "refused"  # the incident cannot take it (said in ``detail``)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One change made in an external system, to apply to the linked incident."""

    system: str
    external_id: str
    key: str
    actor: str
    field: Field
    #: Field.STATE: the state it means here; ASSIGNEE: the name; NOTE: the text.
    value: str
    #: A sentence about where it came from (``INC0010001 state 6 (Resolved)``), for the audit log.
    detail: str = ""
    #: The incident the ticket says it belongs to (its ``correlation_id``, its label): believed
    #: only when what we stored on creating the ticket agrees (see :func:`apply`).
    claimed: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    change: Inbound
    outcome: Outcome
    incident_id: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of an incident's timeline, as a ticket note shows it."""

    seq: int
    at: datetime
    actor: str
    kind: str
    text: str

    def line(self) -> str:
        """``2026-11-22 06:00:00Z incident.acknowledged by token:alice: on it``"""
        tail = f": {self.text}" if self.text else ""
        return f"{self.at:%Y-%m-%d %H:%M:%S}Z {self.kind} by {self.actor}{tail}"


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket is made from: the incident, its top cause, and timeline entries to write."""

    incident: Incident
    cause: Cause | None
    entries: tuple[Entry, ...]
    #: The audit record of the newest entry (0: none).
    last_seq: int = 0

    @property
    def ref(self) -> str:
        """Our id as it goes into ``correlation_id`` / a label: ``watchkeeper:42``."""
        return f"watchkeeper:{self.incident.id}"

    def summary(self) -> str:
        cause = (f"Probable cause: {self.cause.component} ({self.cause.kind}), confidence "
                 f"{self.cause.confidence:.0%}." if self.cause else "No ranked cause yet.")
        return (f"Watchkeeper incident {self.incident.id}: {self.incident.title}\n"
                f"Severity: {self.incident.severity.value}. Services: {', '.join(self.incident.services) or '-'}.\n"
                f"{cause}")


#: Audit payload keys that hold the words of a timeline entry.
_TEXT_KEYS = ("text", "comment", "assignee", "detail", "reason")


def ticket(payload: Mapping[str, Any]) -> Ticket:
    """The ticket's view of an outbox message payload (``incident``, ``cause``, ``change``: the
    snapshot taken when the change committed). The change is the one timeline entry to write.

    >>> p = {"incident": {"id": 3, "title": "db down", "status": "acknowledged", "severity": "critical",
    ...      "services": ["db"], "assignee": None, "opened_at": "2026-11-22T06:00:00+00:00"},
    ...      "cause": {"component": "db", "kind": "service", "confidence": 0.9, "model": "baro"},
    ...      "change": {"kind": "incident.acknowledged", "seq": 9, "actor": "token:alice",
    ...                 "at": "2026-11-22T06:05:00+00:00", "payload": {"comment": "on it"}}}
    >>> t = ticket(p)
    >>> t.incident.status.value, t.cause.component, t.entries[0].line()
    ('acknowledged', 'db', '2026-11-22 06:05:00Z incident.acknowledged by token:alice: on it')
    """
    snap = payload.get("incident") or {}
    try:
        opened = _time(snap.get("opened_at"))
        incident = Incident(
            id=int(snap["id"]), title=str(snap.get("title") or ""), status=IncidentStatus(snap["status"]),
            severity=Severity.parse(snap.get("severity")), services=[str(s) for s in snap.get("services") or []],
            opened_at=opened, last_activity_at=opened, assignee=snap.get("assignee"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"an outbox message without a usable incident snapshot: {exc}") from exc
    found = payload.get("cause")
    cause = None
    if isinstance(found, Mapping) and found.get("component"):
        cause = Cause(str(found["component"]), str(found.get("kind") or "service"),
                      confidence=float(found.get("confidence") or 0.0), model=str(found.get("model") or ""))
    entries: tuple[Entry, ...] = ()
    change = payload.get("change")
    if isinstance(change, Mapping) and change.get("kind"):
        text = words(str(change["kind"]), change.get("payload") or {})
        entries = (Entry(int(change.get("seq") or 0), _time(change.get("at")), str(change.get("actor") or "?"),
                         str(change["kind"]), text),)
    return Ticket(incident, cause, entries, entries[-1].seq if entries else 0)


def words(kind: str, payload: Mapping[str, Any]) -> str:
    """What a timeline entry says, in a few words (the audit payload's own text, or what the
    governance records mean).

    >>> words("incident.causes_ranked", {"causes": [{"component": "db", "kind": "service", "confidence": 0.9}]})
    'probable cause db (service), confidence 90%'
    >>> words("approval.requested", {"approval_id": 4, "runbook_id": "restart", "risk": "high"})
    'runbook restart (risk high) waits for approval #4'
    >>> words("incident.commented", {"text": "on it"})
    'on it'
    """
    if not isinstance(payload, Mapping):
        return ""
    try:
        if kind == "incident.causes_ranked":
            top = (payload.get("causes") or [{}])[0]
            return (f"probable cause {top['component']} ({top.get('kind', 'service')}), confidence "
                    f"{float(top.get('confidence') or 0):.0%}")
        if kind == "approval.requested":
            return (f"runbook {payload['runbook_id']} (risk {payload.get('risk', '?')}) waits for approval "
                    f"#{payload['approval_id']}")
        if kind == "action.finished":
            return f"runbook {payload['runbook_id']}: {payload.get('status', 'finished')}"
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        pass
    found = next((str(payload[k]) for k in _TEXT_KEYS if payload.get(k)), "")
    if not found and payload.get("runbook_id"):
        found = f"runbook {payload['runbook_id']}"
    return found


def came_from(payload: Mapping[str, Any]) -> str | None:
    """The system a message's change came from (``servicenow`` for a state set there), or None."""
    change = payload.get("change") or {}
    inner = change.get("payload") if isinstance(change, Mapping) else None
    via = inner.get("via") if isinstance(inner, Mapping) else None
    return str(via) if via else None


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value))
    raise ValueError(f"not a time: {value!r}")


_RANK = {IncidentStatus.OPEN: 0, IncidentStatus.ACKNOWLEDGED: 1, IncidentStatus.MITIGATED: 2,
         IncidentStatus.RESOLVED: 3}
_TO = {IncidentStatus.ACKNOWLEDGED: Action.ACKNOWLEDGE, IncidentStatus.MITIGATED: Action.MITIGATE,
       IncidentStatus.RESOLVED: Action.RESOLVE}


def plan(now: IncidentStatus, wanted: IncidentStatus) -> list[Action]:
    """The lifecycle actions that bring an incident in state ``now`` to what the ticket says.

    Forward only, except that a ticket worked on again reopens a resolved incident; a ticket
    still "New" does not take back an acknowledgement.

    >>> S = IncidentStatus
    >>> plan(S.OPEN, S.RESOLVED), plan(S.RESOLVED, S.RESOLVED)
    ([<Action.RESOLVE: 'resolve'>], [])
    >>> plan(S.RESOLVED, S.ACKNOWLEDGED)
    [<Action.REOPEN: 'reopen'>, <Action.ACKNOWLEDGE: 'acknowledge'>]
    >>> plan(S.MITIGATED, S.ACKNOWLEDGED), plan(S.ACKNOWLEDGED, S.OPEN), plan(S.RESOLVED, S.OPEN)
    ([], [], [<Action.REOPEN: 'reopen'>])
    """
    if now is IncidentStatus.RESOLVED and wanted is not IncidentStatus.RESOLVED:
        return [Action.REOPEN] + ([_TO[wanted]] if wanted in _TO else [])
    if _RANK[wanted] > _RANK[now]:
        return [_TO[wanted]]
    return []
