"""Jira issues ↔ our incidents, both ways. Pure: REST v3 bodies out (Atlassian Document Format
for text), :class:`~watchkeeper.integrations.itsm.Inbound` changes from webhooks in.

States go by Jira's status *categories*, which every workflow has, so no workflow needs naming:

| ours | → Jira (category of the transition's target) | Jira category → ours |
|---|---|---|
| open | `new` (To Do) | `new`: open (reopens a resolved incident) |
| acknowledged, mitigated | `indeterminate` (In Progress) | `indeterminate`: acknowledged |
| resolved | `done` (Done) | `done`: resolved |

``transitions:`` in the settings names a transition per state where the category is not enough.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchkeeper.integrations.itsm import MARKER, Field, Inbound, Ticket
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.model import IncidentStatus

SYSTEM = "jira"
CATEGORY_OUT = {IncidentStatus.OPEN: "new", IncidentStatus.ACKNOWLEDGED: "indeterminate",
                IncidentStatus.MITIGATED: "indeterminate", IncidentStatus.RESOLVED: "done"}
CATEGORY_IN = {"new": IncidentStatus.OPEN, "indeterminate": IncidentStatus.ACKNOWLEDGED,
               "done": IncidentStatus.RESOLVED}
SUMMARY = 255
#: A comment's body is at most 32,767 characters.
COMMENT_LIMIT = 32_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: a paragraph per line.

    >>> [p["content"][0]["text"] for p in adf("a\\n\\nb")["content"]]
    ['a', 'b']
    """
    lines = [line for line in text.splitlines() if line.strip()] or [" "]
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines]}


def text_of(node: Any) -> str:
    """The words of an ADF document (or a plain string, as some webhook bodies carry)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [text_of(child) for child in node.get("content") or [] if isinstance(child, (Mapping, str))]
    joiner = "\n" if node.get("type") == "doc" else ""
    return joiner.join(p for p in parts if p)


def label(incident_id: int) -> str:
    """The label that finds our issue again (``watchkeeper-42``)."""
    return f"watchkeeper-{incident_id}"


def create_body(ticket: Ticket, config: JiraConfig) -> dict[str, Any]:
    """The body of ``POST /rest/api/3/issue``."""
    incident = ticket.incident
    lines = [ticket.summary(), *(e.line() for e in ticket.entries)]
    return {"fields": {
        "project": {"key": config.project},
        "issuetype": {"name": config.issue_type},
        "summary": _cut(f"[Watchkeeper {incident.id}] {incident.title}".replace("\n", " "), SUMMARY),
        "description": adf(_cut("\n".join(lines), COMMENT_LIMIT)),
        "priority": {"name": config.priorities[incident.severity]},
        "labels": [*config.labels, label(incident.id)],
    }}


def comment_body(ticket: Ticket) -> dict[str, Any] | None:
    """The body of ``POST /rest/api/3/issue/{key}/comment`` with the new timeline, or None."""
    if not ticket.entries:
        return None
    return {"body": adf(_cut(MARKER + "\n" + "\n".join(e.line() for e in ticket.entries), COMMENT_LIMIT))}


def pick_transition(transitions: Sequence[Mapping[str, Any]], wanted: IncidentStatus, config: JiraConfig) -> str | None:
    """The id of the transition (from ``GET …/transitions``) that brings the issue to ``wanted``.

    >>> ts = [{"id": "11", "name": "Start", "to": {"statusCategory": {"key": "indeterminate"}}},
    ...       {"id": "31", "name": "Done", "to": {"statusCategory": {"key": "done"}}}]
    >>> cfg = JiraConfig(base_url="https://x", email="a@b", api_token="t", project="OPS")
    >>> pick_transition(ts, IncidentStatus.RESOLVED, cfg), pick_transition(ts, IncidentStatus.OPEN, cfg)
    ('31', None)
    """
    named = config.transitions.get(wanted)
    for t in transitions:
        if named is not None and str(t.get("name", "")).casefold() == named.casefold():
            return str(t["id"])
    if named is not None:
        return None
    for t in transitions:
        category = ((t.get("to") or {}).get("statusCategory") or {}).get("key")
        if category == CATEGORY_OUT[wanted]:
            return str(t["id"])
    return None


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``X-Hub-Signature: sha256=<hex>`` is the HMAC-SHA256 of the raw body.

    >>> import hmac, hashlib
    >>> sig = "sha256=" + hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    >>> signature_ok(b"k", b"{}", sig), signature_ok(b"k", b"{ }", sig), signature_ok(b"k", b"{}", None)
    (True, False, False)
    """
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def webhook_changes(payload: Mapping[str, Any], config: JiraConfig, sent: Mapping[str, Any]) -> list[Inbound]:
    """The changes one webhook call (``jira:issue_updated``, ``comment_created``) asks of ours.

    Left out: what our own account did (a status we set ourselves, every assignment and comment
    of ours) and comments carrying our marker. Keys are Jira's own ids (changelog, comment), the
    same on every retry.
    """
    issue = payload.get("issue")
    if not isinstance(issue, Mapping) or not issue.get("id"):
        return []
    issue_id, key = str(issue["id"]), str(issue.get("key") or issue["id"])
    claimed = claimed_incident((issue.get("fields") or {}).get("labels"))
    event = payload.get("webhookEvent")
    if event == "comment_created":
        comment = payload.get("comment") or {}
        author = comment.get("author") or {}
        text = text_of(comment.get("body")).strip()
        if (not text or MARKER in text or (config.account_id and author.get("accountId") == config.account_id)
                or not comment.get("id")):
            return []
        return [Inbound(SYSTEM, issue_id, f"{issue_id}:comment:{comment['id']}", _who(author), Field.NOTE,
                        _cut(text, 10_000), f"{key} comment by {_who(author)}", claimed)]
    if event != "jira:issue_updated":
        return []
    user = payload.get("user") or {}
    ours = bool(config.account_id) and user.get("accountId") == config.account_id
    changelog = payload.get("changelog") or {}
    change_id = changelog.get("id") or payload.get("timestamp")
    if not change_id:
        return []  # nothing identifies this change: it could not be applied exactly once
    found: list[Inbound] = []
    for item in changelog.get("items") or []:
        field = item.get("field") or item.get("fieldId")
        if field == "status":
            fields = issue.get("fields") or {}
            category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
            if category in CATEGORY_IN and not (ours and category == sent.get("category")):
                found.append(Inbound(SYSTEM, issue_id, f"{issue_id}:changelog:{change_id}:status",
                                     _who(user), Field.STATE, CATEGORY_IN[category].value,
                                     f"{key} moved to {item.get('toString') or category}", claimed))
        elif field == "assignee" and item.get("toString") and not ours:
            found.append(Inbound(SYSTEM, issue_id, f"{issue_id}:changelog:{change_id}:assignee",
                                 _who(user), Field.ASSIGNEE, str(item["toString"])[:256],
                                 f"{key} assigned to {item['toString']}", claimed))
    return found


#: Jira's times in REST answers (``2026-12-03T13:20:05.123+0000``) and in JQL (minutes, the
#: searching account's time zone: set the integration account's zone to UTC, as for ServiceNow).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"
JQL_TIME = "%Y-%m-%d %H:%M"


def parse_time(text: Any) -> datetime | None:
    """A REST time of Jira's, or None.

    >>> parse_time("2026-12-03T13:20:05.123+0000").isoformat(), parse_time("soon")
    ('2026-12-03T13:20:05.123000+00:00', None)
    """
    try:
        return datetime.strptime(str(text), TIME_FORMAT)
    except ValueError:
        return None


def poll_jql(labels: Sequence[str], since: datetime) -> str:
    """The JQL of one poll: our issues updated since the cursor (to the minute, inclusive), the
    oldest first so that a truncated read can go on from where it stopped.

    >>> from datetime import UTC
    >>> poll_jql(["watchkeeper"], datetime(2026, 12, 3, 13, 20, 59, tzinfo=UTC))
    'labels = "watchkeeper" AND updated >= "2026-12-03 13:20" ORDER BY updated ASC'
    """
    ours = labels[0] if labels else "watchkeeper"
    return f'labels = "{ours}" AND updated >= "{since:{JQL_TIME}}" ORDER BY updated ASC'


def poll_payloads(issue: Mapping[str, Any], since: datetime) -> list[dict[str, Any]]:
    """An issue from a poll (``expand=changelog``, ``fields=…,comment``) as the webhook bodies
    its changes since ``since`` would have been — one per changelog entry, one per comment, the
    oldest first — so that :func:`webhook_changes` reads both alike, with the same keys (a change
    the webhook brought and a poll reads again applies once)."""
    fields = issue.get("fields") or {}
    found: list[tuple[datetime, dict[str, Any]]] = []
    for history in (issue.get("changelog") or {}).get("histories") or []:
        at = parse_time(history.get("created")) if isinstance(history, Mapping) else None
        if at is not None and at >= since and history.get("id"):
            found.append((at, {"webhookEvent": "jira:issue_updated", "issue": issue,
                               "user": history.get("author") or {},
                               "changelog": {"id": history["id"], "items": history.get("items") or []}}))
    comments = fields.get("comment") if isinstance(fields, Mapping) else None
    for comment in (comments or {}).get("comments") or [] if isinstance(comments, Mapping) else []:
        at = parse_time(comment.get("created")) if isinstance(comment, Mapping) else None
        if at is not None and at >= since:
            found.append((at, {"webhookEvent": "comment_created", "issue": issue, "comment": comment}))
    return [payload for _, payload in sorted(found, key=lambda pair: pair[0])]


def claimed_incident(labels: Any) -> int | None:
    """Our incident id in an issue's labels (``watchkeeper-42`` → 42), else None.

    >>> claimed_incident(["watchkeeper", "watchkeeper-42"]), claimed_incident(["x"]), claimed_incident(None)
    (42, None, None)
    """
    for found in labels if isinstance(labels, list) else []:
        head, _, tail = str(found).rpartition("-")
        if head == "watchkeeper" and tail.isdigit() and 0 < int(tail) < 2**31:
            return int(tail)
    return None


def _who(user: Mapping[str, Any]) -> str:
    return str(user.get("displayName") or user.get("accountId") or "unknown")[:128]
