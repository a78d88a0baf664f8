"""ServiceNow's incident table ↔ our incidents, both ways. Pure: bodies for the Table API out,
:class:`~watchkeeper.integrations.itsm.Inbound` changes in.

Out (``/api/now/table/incident``): ``short_description``, ``description``, ``impact`` and
``urgency`` from severity (``config.IMPACT_URGENCY``), ``assignment_group``, ``correlation_id``
(``watchkeeper:42``), ``work_notes`` with the timeline, ``state``; on resolution ``close_code``
and ``close_notes``.

States (the incident table's default choices) and how ours map to them:

| ServiceNow `state` | its name | ours → there | there → ours |
|---|---|---|---|
| 1 | New | open | open (reopens a resolved incident) |
| 2 | In Progress | acknowledged, mitigated, reopened | acknowledged |
| 3 | On Hold | – | acknowledged |
| 6 | Resolved | resolved | resolved |
| 7 | Closed | – | resolved |
| 8 | Canceled | – | resolved |
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from watchkeeper.integrations.itsm import MARKER, Field, Inbound, Ticket
from watchkeeper.integrations.servicenow.config import ServiceNowConfig
from watchkeeper.model import IncidentStatus

SYSTEM = "servicenow"
#: Fields the poller asks for (with ``sysparm_display_value=all``).
POLL_FIELDS = ("sys_id", "number", "state", "assigned_to", "sys_updated_on", "sys_updated_by", "sys_mod_count",
               "correlation_id")
STATE_NAMES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"}
OUT_STATE = {IncidentStatus.OPEN: "1", IncidentStatus.ACKNOWLEDGED: "2", IncidentStatus.MITIGATED: "2",
             IncidentStatus.RESOLVED: "6"}
IN_STATE = {"1": IncidentStatus.OPEN, "2": IncidentStatus.ACKNOWLEDGED, "3": IncidentStatus.ACKNOWLEDGED,
            "6": IncidentStatus.RESOLVED, "7": IncidentStatus.RESOLVED, "8": IncidentStatus.RESOLVED}
#: The Table API's column sizes: longer values are cut (with an ellipsis), not refused there.
SHORT_DESCRIPTION = 160
CORRELATION_ID = 100
NOTE_LIMIT = 30_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notes(ticket: Ticket) -> str:
    """The timeline entries not yet on the ticket, as one work note ('' when there are none)."""
    if not ticket.entries:
        return ""
    return _cut(MARKER + "\n" + "\n".join(e.line() for e in ticket.entries), NOTE_LIMIT)


def create_body(ticket: Ticket, config: ServiceNowConfig) -> dict[str, str]:
    """The POST body of a new incident there.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Incident, Severity
    >>> t = datetime(2026, 11, 22, tzinfo=UTC)
    >>> inc = Incident(42, "checkout 5xx", IncidentStatus.OPEN, Severity.CRITICAL, ["checkout"], t, t)
    >>> body = create_body(Ticket(inc, None, ()), ServiceNowConfig(instance_url="https://x", username="u",
    ...                    password="p", assignment_group="g1"))
    >>> body["short_description"], body["impact"], body["urgency"], body["correlation_id"], body["state"]
    ('[Watchkeeper 42] checkout 5xx', '1', '1', 'watchkeeper:42', '1')
    """
    impact, urgency = config.impact_urgency[ticket.incident.severity]
    body = {
        "short_description": _cut(f"[Watchkeeper {ticket.incident.id}] {ticket.incident.title}", SHORT_DESCRIPTION),
        "description": ticket.summary(),
        "impact": str(impact), "urgency": str(urgency),
        "correlation_id": _cut(ticket.ref, CORRELATION_ID), "correlation_display": "Watchkeeper",
        "state": OUT_STATE[ticket.incident.status],
    }
    for key, value in (("assignment_group", config.assignment_group), ("caller_id", config.caller_id),
                       ("category", config.category)):
        if value:
            body[key] = value
    body.update(_resolution(ticket, config))
    if note := notes(ticket):
        body["work_notes"] = note
    return body


def update_body(ticket: Ticket, config: ServiceNowConfig, sent: Mapping[str, Any]) -> dict[str, str]:
    """The PATCH body that brings the ticket up to date: a state, impact or urgency only when
    ours changed since we last set it (``sent``), the new timeline as a work note. Empty: nothing to do."""
    body: dict[str, str] = {}
    state = OUT_STATE[ticket.incident.status]
    if sent.get("state") != state:
        body["state"] = state
        body.update(_resolution(ticket, config))
    impact, urgency = (str(v) for v in config.impact_urgency[ticket.incident.severity])
    if (sent.get("impact"), sent.get("urgency")) != (impact, urgency):
        body["impact"], body["urgency"] = impact, urgency
    if note := notes(ticket):
        body["work_notes"] = note
    return body


def sent_fields(body: Mapping[str, str], before: Mapping[str, Any]) -> dict[str, Any]:
    """What we have set there after sending ``body`` (for echo detection and the next update)."""
    return {**before, **{k: body[k] for k in ("state", "impact", "urgency") if k in body}}


def _resolution(ticket: Ticket, config: ServiceNowConfig) -> dict[str, str]:
    if ticket.incident.status is not IncidentStatus.RESOLVED:
        return {}
    return {"close_code": config.close_code,
            "close_notes": _cut(f"Resolved in Watchkeeper (incident {ticket.incident.id}). {ticket.summary()}", 4000)}


def value(record: Mapping[str, Any], name: str, *, display: bool = False) -> str:
    """A field of a Table API record, plain (``"2"``) or with ``sysparm_display_value=all``
    (``{"value": "2", "display_value": "In Progress"}``); '' when absent."""
    found = record.get(name)
    if isinstance(found, Mapping):
        found = found.get("display_value" if display else "value")
    return "" if found is None else str(found)


def record_changes(record: Mapping[str, Any], config: ServiceNowConfig, sent: Mapping[str, Any]) -> list[Inbound]:
    """The changes one incident record (polled, or sent by the business rule) asks of ours.

    Our own echo is left out: a state we set ourselves that is still there with our integration
    user as the last updater, and anything in a note we wrote. Keys are stable per record
    version (``sys_mod_count``), so the rule's call and the next poll apply a change once.

    >>> cfg = ServiceNowConfig(instance_url="https://x", username="wk", password="p")
    >>> rec = {"sys_id": "a1", "number": "INC1", "state": "6", "sys_mod_count": "4", "sys_updated_by": "beth"}
    >>> [(c.field.value, c.value, c.key) for c in record_changes(rec, cfg, {"state": "2"})]
    [('state', 'resolved', 'a1:4:state:6')]
    >>> record_changes({**rec, "sys_updated_by": "wk"}, cfg, {"state": "6"})
    []
    """
    sys_id = value(record, "sys_id")
    if not sys_id:
        return []
    version = value(record, "sys_mod_count") or value(record, "sys_updated_on")
    who = _cut(value(record, "sys_updated_by") or "unknown", 128)
    number = value(record, "number") or sys_id
    ours = who == config.our_user
    claimed = claimed_incident(value(record, "correlation_id"))
    found: list[Inbound] = []
    state = value(record, "state")
    if state in IN_STATE and not (ours and state == sent.get("state")):
        found.append(Inbound(SYSTEM, sys_id, f"{sys_id}:{version}:state:{state}", who, Field.STATE,
                             IN_STATE[state].value, f"{number} state {state} ({STATE_NAMES[state]})", claimed))
    assignee = _cut(value(record, "assigned_to", display=True).strip(), 256)
    if assignee and not ours:
        found.append(Inbound(SYSTEM, sys_id, f"{sys_id}:{version}:assignee:{assignee}", who, Field.ASSIGNEE,
                             assignee, f"{number} assigned to {assignee}", claimed))
    note = value(record, "work_notes")
    if note:
        found += note_changes(sys_id, number, note, who, config, claimed)
    return found


def claimed_incident(correlation_id: str) -> int | None:
    """Our incident id in a ``correlation_id`` (``watchkeeper:42`` → 42), else None.

    >>> claimed_incident("watchkeeper:42"), claimed_incident("other:42"), claimed_incident("watchkeeper:x")
    (42, None, None)
    """
    head, _, tail = correlation_id.partition(":")
    return int(tail) if head == "watchkeeper" and tail.isdigit() and 0 < int(tail) < 2**31 else None


def note_changes(sys_id: str, number: str, text: str, author: str, config: ServiceNowConfig,
                 claimed: int | None = None) -> list[Inbound]:
    """A work note from there as a comment here — unless we wrote it. Its key is its author and
    words, so the rule's call and the poller's journal read of the same note apply it once."""
    text, author = text.strip(), _cut(author, 128)
    if not text or MARKER in text or author == config.our_user:
        return []
    digest = hashlib.sha256(f"{author}\0{text}".encode()).hexdigest()[:32]
    return [Inbound(SYSTEM, sys_id, f"{sys_id}:note:{digest}", author, Field.NOTE, _cut(text, 10_000),
                    f"{number} work note by {author}", claimed)]


def journal_changes(entry: Mapping[str, Any], config: ServiceNowConfig, number: str = "",
                    claimed: int | None = None) -> list[Inbound]:
    """A ``sys_journal_field`` row (``element_id``, ``value``, ``sys_created_by``) as a note."""
    sys_id = value(entry, "element_id")
    if not sys_id:
        return []
    return note_changes(sys_id, number or sys_id, value(entry, "value"), value(entry, "sys_created_by") or "unknown",
                        config, claimed)
