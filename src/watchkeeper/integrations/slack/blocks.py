"""Block Kit for an incident message: what happened, the probable cause with its confidence, the
proposed runbook, and the buttons (Approve / Reject a pending approval, Acknowledge an open
incident). Pure: a message snapshot in, Slack's JSON out.

Button ``action_id``s are what the interactivity endpoint dispatches on; their ``value`` names
the approval or the incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchkeeper.integrations.base import EventKind, Message

APPROVE, REJECT, ACKNOWLEDGE = "wk_approve", "wk_reject", "wk_acknowledge"
ICONS = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":large_yellow_circle:",
         "info": ":large_blue_circle:"}
#: Slack's limits: a header's text, a section's text.
HEADER_MAX, SECTION_MAX = 150, 3000


def _plain(text: str, limit: int = HEADER_MAX) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit), "emoji": True}


def _md(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, limit)}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: Any) -> str:
    """Slack's three control characters, escaped (alert text must not mention @channel or link).

    >>> escape("<!channel> & co")
    '&lt;!channel&gt; &amp; co'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def title(message: Message) -> str:
    incident = message.incident
    return (f"{ICONS.get(str(incident.get('severity')), '')} [{str(incident.get('severity', '')).upper()}] "
            f"Incident #{message.incident_id}: {incident.get('title', '')}").strip()


def incident_blocks(message: Message, approval: Mapping[str, Any] | None, outcome: str | None = None
                    ) -> list[dict[str, Any]]:
    """The root message of an incident. ``approval``: the pending approval to show buttons for;
    ``outcome``: a line saying what became of the last one (approved by …, rejected by …)."""
    incident, cause = message.incident, message.payload.get("cause")
    services = ", ".join(escape(s) for s in incident.get("services") or []) or "—"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(title(message))},
        {"type": "section", "fields": [
            _md(f"*Status*\n{escape(incident.get('status', '?'))}"),
            _md(f"*Severity*\n{escape(incident.get('severity', '?'))}"),
            _md(f"*Services*\n{services}"),
            _md(f"*Alerts*\n{incident.get('alert_count', '?')}"),
        ]},
    ]
    if cause:
        blocks.append({"type": "section", "text": _md(
            f"*Probable cause:* {escape(cause.get('component'))} ({escape(cause.get('kind', ''))}) — "
            f"{float(cause.get('confidence') or 0):.0%} confidence")})
    else:
        blocks.append({"type": "section", "text": _md("*Probable cause:* not ranked yet")})
    buttons: list[dict[str, Any]] = []
    if approval is not None:
        blocks.append({"type": "section", "text": _md(
            f"*Proposed runbook:* `{escape(approval.get('runbook_id'))}` — risk {escape(approval.get('risk'))}, "
            f"needs {approval.get('required', 1)} approval(s), expires {escape(approval.get('expires_at'))}")})
        buttons += [
            {"type": "button", "action_id": APPROVE, "text": _plain("Approve"), "style": "primary",
             "value": str(approval.get("id")),
             "confirm": {"title": _plain("Run this runbook?"), "text": _md(
                 f"`{escape(approval.get('runbook_id'))}` will run on incident #{message.incident_id}."),
                 "confirm": _plain("Approve"), "deny": _plain("Cancel")}},
            {"type": "button", "action_id": REJECT, "text": _plain("Reject"), "style": "danger",
             "value": str(approval.get("id"))},
        ]
    if incident.get("status") == "open":
        buttons.append({"type": "button", "action_id": ACKNOWLEDGE, "text": _plain("Acknowledge"),
                        "value": str(message.incident_id)})
    if buttons:
        blocks.append({"type": "actions", "block_id": f"wk_incident_{message.incident_id}", "elements": buttons})
    if outcome:
        blocks.append({"type": "context", "elements": [_md(outcome)]})
    return blocks


def update_line(message: Message) -> str | None:
    """The thread reply for a later change (None: the root's update says it all)."""
    change, incident = message.change, message.incident
    actor = escape(change.get("actor", "?"))
    payload = change.get("payload") or {}
    approval = message.payload.get("approval") or {}
    match message.event:
        case EventKind.OPENED:
            return None
        case EventKind.CAUSES:
            return None
        case EventKind.APPROVAL_REQUESTED:
            return f"Approval requested for runbook `{escape(approval.get('runbook_id', payload.get('runbook_id')))}`."
        case EventKind.APPROVAL_DECIDED:
            verdict = str(change.get("kind", "")).removeprefix("approval.")
            return f"Runbook `{escape(payload.get('runbook_id'))}` {verdict} (last vote by {actor})."
        case EventKind.ACTION_FINISHED:
            return (f"Runbook `{escape(payload.get('runbook_id'))}` finished: {escape(payload.get('status', '?'))}"
                    + (f", verification {escape(payload['verification'])}" if payload.get("verification") else "")
                    + ".")
        case EventKind.ESCALATED:
            return f":rotating_light: Escalated: {escape(payload.get('reason', payload.get('detail', '')))}"
        case _:
            return f"Incident {escape(incident.get('status', message.event.value))} by {actor}."
