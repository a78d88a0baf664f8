"""What ServiceNow and Jira share: changes made there come back to our incidents.

A system's adapter (``servicenow.mapping``, ``jira.mapping``) turns a record or a webhook into
:class:`Inbound` changes, each with an idempotency key; :func:`plan` turns a wanted state into
lifecycle actions without ever moving an incident backwards; :func:`apply` applies a batch in
one transaction — each change once (its key is stored with its effect), audited as the person
who made it there (``servicenow:beth.anglin``), and marked with ``via`` so no integration sends
it back where it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from watchkeeper import lifecycle
from watchkeeper.errors import Conflict, InputError, NotFound
from watchkeeper.lifecycle import Action
from watchkeeper.model import Cause, Change, Incident, IncidentStatus
from watchkeeper.storage import Database, audit, ingest, queries
from watchkeeper.storage import governance as gov_store
from watchkeeper.storage import itsm as store

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
class Facts:
    """What a ticket is made from: the incident now, its top cause, and the timeline entries not
    yet written to that ticket (never those that came from it)."""

    incident: Incident
    cause: Cause | None
    entries: tuple[Entry, ...]
    #: The newest audit record of the incident read (written or left out): the next ``after_seq``.
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


def facts(conn: Connection, incident_id: int, system: str, after_seq: int = 0) -> Facts:
    """The incident ``incident_id`` and its timeline after ``after_seq``, leaving out entries
    that came from ``system`` itself (so its own changes are not written back to it)."""
    incident = queries.get_incident(conn, incident_id)
    causes = gov_store.causes_of(conn, incident_id)
    entries = []
    last = after_seq
    for r in audit.records(conn, subject=f"incident:{incident_id}", after=after_seq):
        last = r.seq
        if r.payload.get("via") == system:
            continue
        text = next((str(r.payload[k]) for k in _TEXT_KEYS if r.payload.get(k)), "")
        entries.append(Entry(r.seq, r.at, r.actor, r.kind, text))
    return Facts(incident, causes[0] if causes else None, tuple(entries), last)


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


def apply(db: Database, clock: Callable[[], datetime], changes: Sequence[Inbound]) -> list[Result]:
    """Apply inbound changes in one write transaction; each key at most once, ever."""
    now = clock()
    results: list[Result] = []
    with db.write() as conn:
        for change in changes:
            if store.seen(conn, change.system, change.key):
                results.append(Result(change, Outcome.DUPLICATE))
                continue
            link = store.link_by_external(conn, change.system, change.external_id)
            if link is None:
                result = Result(change, Outcome.UNLINKED, None, f"no incident is linked to {change.external_id}")
            else:
                result = _apply_one(conn, change, link.incident_id, now)
            store.remember(conn, change.system, change.key, now, result.incident_id, result.outcome.value)
            results.append(result)
    return results


def _apply_one(conn: Connection, change: Inbound, incident_id: int, now: datetime) -> Result:
    try:
        incident = queries.get_incident(conn, incident_id)
    except NotFound:
        return Result(change, Outcome.UNLINKED, None, f"incident {incident_id} no longer exists")
    if change.field is Field.STATE:
        steps = [(a, "") for a in plan(incident.status, IncidentStatus(change.value))]
    elif change.field is Field.ASSIGNEE:
        steps = [(Action.ASSIGN, change.value)]
    else:
        steps = [(Action.COMMENT, change.value)]
    actor = f"{change.system}:{change.actor}"
    made: list[Change] = []
    try:
        for action, text in steps:
            found = lifecycle.apply(incident, action, actor, now, text)
            if found is not None:
                payload = {**found.payload, "via": change.system, "external_id": change.external_id}
                if change.detail:
                    payload["detail"] = change.detail
                made.append(Change(found.kind, found.subject, found.at, payload))
    except (Conflict, InputError) as exc:
        return Result(change, Outcome.REFUSED, incident_id, str(exc))
    if not made:
        return Result(change, Outcome.NO_CHANGE, incident_id)
    if any(c.kind != "incident.commented" for c in made):
        ingest.save_incident(conn, incident)
    audit.append(conn, actor, made)
    return Result(change, Outcome.APPLIED, incident_id)
