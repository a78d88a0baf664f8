"""PagerDuty Events API v2 (``POST https://events.pagerduty.com/v2/enqueue``).

One PagerDuty alert per Watchkeeper incident: ``dedup_key`` is ``watchkeeper-incident-{id}``, so
a trigger sent twice (a redelivery after a crash) is one alert, and acknowledge / resolve name
the alert the trigger opened. Opened and reopened incidents trigger (with summary, source,
severity, timestamp, component, group, class and custom details); acknowledged acknowledges;
resolved resolves. PagerDuty answers ``202 {"status": "success", "dedup_key": …}``; a 400 is an
invalid event (not retried), 429 and 5xx are retried.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.integrations.base import Delivered, DeliveryError, EventKind, Message
from watchkeeper.integrations.http import HttpNotifier
from watchkeeper.integrations.pagerduty.config import PagerDutyConfig

ACTIONS = {EventKind.OPENED: "trigger", EventKind.REOPENED: "trigger", EventKind.ESCALATED: "trigger",
           EventKind.ACKNOWLEDGED: "acknowledge", EventKind.RESOLVED: "resolve"}
#: PagerDuty's severities are ours (critical, error, warning, info).
SEVERITIES = ("critical", "error", "warning", "info")


def dedup_key(incident_id: int) -> str:
    return f"watchkeeper-incident-{incident_id}"


def event(message: Message, routing_key: str, source: str) -> dict[str, Any] | None:
    """The Events API v2 body for ``message`` (None: PagerDuty has no action for this change)."""
    action = ACTIONS.get(message.event)
    if action is None:
        return None
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": dedup_key(message.incident_id)}
    if action != "trigger":
        return body
    incident, cause = message.incident, message.payload.get("cause")
    services = list(incident.get("services") or [])
    severity = str(incident.get("severity", "error"))
    details: dict[str, Any] = {"incident_id": message.incident_id, "status": incident.get("status"),
                               "services": services, "alerts": incident.get("alert_count")}
    if cause:
        details["probable_cause"] = f"{cause.get('component')} ({cause.get('confidence', 0):.0%} confidence)"
    body["payload"] = {
        "summary": str(incident.get("title") or f"incident {message.incident_id}")[:1024],
        "source": (services[0] if services else source)[:255],
        "severity": severity if severity in SEVERITIES else "error",
        "timestamp": incident.get("opened_at"),
        "component": services[0] if services else None,
        "group": ",".join(services)[:255] or None,
        "class": str(message.change.get("kind", "incident")),
        "custom_details": details,
    }
    body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
    body["client"] = "Watchkeeper"
    return body


class PagerDutyNotifier(HttpNotifier):
    config: PagerDutyConfig

    def deliver(self, message: Message) -> Delivered:
        body = event(message, self.config.routing_key.get_secret_value(), self.config.source)
        if body is None:
            return Delivered(detail=f"PagerDuty has no action for {message.event.value}")
        response = self.http.request("POST", self.config.url, json=body, ok=self._accepted)
        return Delivered(detail=f"HTTP {response.status_code}")

    def _accepted(self, response: Any) -> None:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise DeliveryError(self.redactor.redact(f"{self.name}: PagerDuty did not accept the event: "
                                                     f"{response.text[:200]}"), retryable=False,
                                status=response.status_code)
