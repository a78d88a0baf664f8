"""The Adaptive Card message a Teams Workflows webhook posts. Pure.

The body is a ``message`` with one ``application/vnd.microsoft.card.adaptive`` attachment; Teams
refuses messages over 28 KB, so :func:`message` drops the oldest timeline lines first, then cuts
long texts, and says so on the card. Approve and Reject are ``Action.OpenUrl`` buttons to the
console's signed, single-use, expiring approval page: opening it (or a link preview fetching
it) shows the action; only a signed-in approver's explicit POST there decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from watchkeeper.integrations.itsm import Ticket
from watchkeeper.model import Severity

#: Teams' limit on a message (the whole JSON body), in bytes.
LIMIT = 28 * 1024
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_COLOR = {Severity.CRITICAL: "Attention", Severity.ERROR: "Attention", Severity.WARNING: "Warning",
          Severity.INFO: "Default"}


@dataclass(frozen=True, slots=True)
class ApprovalButtons:
    """A pending approval and its two signed console links."""

    approval_id: int
    runbook_id: str
    risk: str
    expires_at: datetime
    approve_url: str
    reject_url: str


def card(ticket: Ticket, approvals: list[ApprovalButtons], incident_url: str | None, *,
         lines: int | None = None, cut: int | None = None, note: str = "") -> dict[str, Any]:
    """The Adaptive Card: title, ticket, cause, proposed runbooks with Approve / Reject, and the
    newest ``lines`` timeline entries (all when None), each text cut to ``cut`` characters."""
    incident = ticket.incident

    def t(text: str) -> str:
        return text if cut is None or len(text) <= cut else text[: max(cut - 1, 0)] + "…"

    cause = ticket.cause
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": t(f"Incident {incident.id}: {incident.title}"), "size": "Large",
         "weight": "Bolder", "wrap": True, "color": _COLOR[incident.severity]},
        {"type": "FactSet", "ticket": [
            {"title": "Severity", "value": incident.severity.value},
            {"title": "Status", "value": incident.status.value},
            {"title": "Services", "value": t(", ".join(incident.services) or "-")},
            {"title": "Assignee", "value": t(incident.assignee or "-")},
            {"title": "Probable cause", "value": t(f"{cause.component} ({cause.kind})") if cause else "not ranked yet"},
            {"title": "Confidence", "value": f"{cause.confidence:.0%}" if cause else "-"},
        ]},
    ]
    actions: list[dict[str, Any]] = []
    for a in approvals:
        body.append({"type": "TextBlock", "wrap": True, "weight": "Bolder",
                     "text": t(f"Runbook {a.runbook_id} (risk {a.risk}) waits for approval #{a.approval_id}, "
                               f"until {a.expires_at:%Y-%m-%d %H:%M}Z")})
        actions += [
            {"type": "Action.OpenUrl", "title": f"Approve {a.runbook_id}"[:60], "url": a.approve_url,
             "style": "positive"},
            {"type": "Action.OpenUrl", "title": f"Reject {a.runbook_id}"[:60], "url": a.reject_url,
             "style": "destructive"},
        ]
    entries = ticket.entries if lines is None else ticket.entries[len(ticket.entries) - lines:] if lines else ()
    if entries:
        body.append({"type": "TextBlock", "text": "Timeline", "weight": "Bolder", "spacing": "Medium"})
        body += [{"type": "TextBlock", "text": t(e.line()), "wrap": True, "spacing": "None", "size": "Small"}
                 for e in entries]
    if note:
        body.append({"type": "TextBlock", "text": note, "wrap": True, "isSubtle": True, "size": "Small"})
    if incident_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in Watchkeeper", "url": incident_url})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "msteams": {"width": "Full"}, "body": body, "actions": actions}


def wrap(content: dict[str, Any]) -> dict[str, Any]:
    """The webhook body: a message with the card as its one attachment."""
    return {"type": "message", "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": content}]}


def size(body: dict[str, Any]) -> int:
    return len(orjson.dumps(body))


def message(ticket: Ticket, approvals: list[ApprovalButtons], incident_url: str | None,
            limit: int = LIMIT) -> dict[str, Any]:
    """The webhook body within ``limit`` bytes: every timeline line if they fit; else the newest
    that fit and a note saying how many were left out; else texts cut shorter too.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.integrations.itsm import Entry
    >>> from watchkeeper.model import Incident, IncidentStatus
    >>> t0 = datetime(2026, 11, 22, tzinfo=UTC)
    >>> inc = Incident(7, "db down", IncidentStatus.OPEN, Severity.CRITICAL, ["db"], t0, t0)
    >>> many = tuple(Entry(i, t0, "token:bot", "incident.commented", "x" * 500) for i in range(200))
    >>> body = message(Ticket(inc, None, many), [], None)
    >>> size(body) <= LIMIT, "older timeline lines left out" in orjson.dumps(body).decode()
    (True, True)
    """
    full = wrap(card(ticket, approvals, incident_url))
    if size(full) <= limit:
        return full
    total = len(ticket.entries)
    low, high = 0, total  # the most lines that fit
    while low < high:
        mid = (low + high + 1) // 2
        if size(wrap(card(ticket, approvals, incident_url, lines=mid, note=_note(total - mid)))) <= limit:
            low = mid
        else:
            high = mid - 1
    fitted = wrap(card(ticket, approvals, incident_url, lines=low, note=_note(total - low)))
    cut = 2000
    while size(fitted) > limit and cut > 16:
        fitted = wrap(card(ticket, approvals, incident_url, lines=low, cut=cut,
                           note=_note(total - low) + " Long texts were shortened."))
        cut //= 2
    return fitted


def _note(left_out: int) -> str:
    return (f"Cut to fit Teams' 28 KB limit: {left_out} older timeline lines left out; "
            "the whole timeline is in Watchkeeper.")
