"""Jira Cloud REST v3 over HTTP: the outbox's notifier.

One issue per incident: created with ``POST /rest/api/3/issue`` (summary, ADF description,
priority from severity, labels ``watchkeeper`` and ``watchkeeper-{id}``); later changes move it
with a transition (``GET``/``POST …/transitions``), change its priority (``PUT``) and add the
timeline as a comment (``POST …/comment``, ADF). Auth: basic, the account's email and an API
token. The ref kept per incident is ``{"id", "key", "sent"}`` with the status category and the
priority we last set. Before creating, the notifier searches for the label ``watchkeeper-{id}``:
a redelivery after a crash finds the issue it made instead of making a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from watchkeeper.integrations import itsm
from watchkeeper.integrations.base import Delivered, DeliveryError, Message
from watchkeeper.integrations.http import HttpNotifier
from watchkeeper.integrations.jira.config import JiraConfig
from watchkeeper.integrations.jira.mapping import (
    CATEGORY_OUT,
    SYSTEM,
    comment_body,
    create_body,
    label,
    pick_transition,
)

API = "/rest/api/3"


class JiraNotifier(HttpNotifier):
    """Creates one Jira issue per incident and keeps it moving with ours."""

    config: JiraConfig

    def __init__(self, name: str, config: JiraConfig, **options: Any) -> None:
        super().__init__(name, config, **options)
        self._auth = "Basic " + config.basic()

    def call(self, method: str, path: str, *, body: Mapping[str, Any] | None = None,
             params: Mapping[str, str] | None = None) -> Any:
        """The JSON answer of one call (None for 204), or a DeliveryError."""
        url = f"{self.config.base_url}{API}{path}" + (f"?{urlencode(params)}" if params else "")
        response = self.http.request(method, url, json=body, headers={
            "Accept": "application/json", "Authorization": self._auth})
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise DeliveryError(f"{self.name}: {method} {API}{path} answered without JSON", retryable=True,
                                status=response.status_code) from None

    def deliver(self, message: Message) -> Delivered:
        ticket = itsm.ticket(message.payload)
        incident = ticket.incident
        ref = dict(message.ref or {})
        sent = dict(ref.get("sent") or {})
        if itsm.came_from(message.payload) == SYSTEM:
            if not ref:
                return Delivered(detail="came from Jira; not sent back")
            return Delivered(ref={**ref, "sent": {**sent, "category": CATEGORY_OUT[incident.status]}},
                             detail="came from Jira; not sent back")
        if not ref.get("key"):
            found = self.find(incident.id)
            if found is None:
                made = self.call("POST", "/issue", body=create_body(ticket, self.config))
                if not isinstance(made, Mapping) or not made.get("key"):
                    raise DeliveryError(f"{self.name}: Jira's answer names no issue key", retryable=True)
                ref = {"id": str(made.get("id")), "key": str(made["key"]),
                       "sent": {"category": "new", "priority": self.config.priorities[incident.severity]}}
                sent = dict(ref["sent"])
                if CATEGORY_OUT[incident.status] == "new":
                    return Delivered(ref=ref, detail=f"created {ref['key']}")
                ticket = itsm.Ticket(incident, ticket.cause, ())  # the description holds the timeline
            else:
                ref = {"id": str(found.get("id")), "key": str(found["key"]), "sent": {}}
        key = ref["key"]
        done = []
        category = CATEGORY_OUT[incident.status]
        if sent.get("category") != category:
            found_transitions = (self.call("GET", f"/issue/{key}/transitions") or {}).get("transitions") or []
            transition = pick_transition(found_transitions, incident.status, self.config)
            if transition is not None:
                self.call("POST", f"/issue/{key}/transitions", body={"transition": {"id": transition}})
                done.append(f"transition {transition}")
            sent["category"] = category  # none fits: the workflow cannot go there; do not ask again
        priority = self.config.priorities[incident.severity]
        if sent.get("priority") != priority:
            self.call("PUT", f"/issue/{key}", body={"fields": {"priority": {"name": priority}}})
            sent["priority"] = priority
            done.append("priority")
        comment = comment_body(ticket)
        if comment is not None:
            self.call("POST", f"/issue/{key}/comment", body=comment)
            done.append("comment")
        return Delivered(ref={**ref, "sent": sent}, detail=f"{key}: {', '.join(done) or 'nothing to change'}")

    def find(self, incident_id: int) -> Mapping[str, Any] | None:
        """The issue labelled ``watchkeeper-{id}`` (made before a crash), or None."""
        found = self.call("GET", "/search/jql", params={"jql": f'labels = "{label(incident_id)}"',
                                                        "fields": "status", "maxResults": "1"})
        issues = found.get("issues") if isinstance(found, Mapping) else None
        if isinstance(issues, list) and issues and isinstance(issues[0], Mapping) and issues[0].get("key"):
            return issues[0]
        return None
