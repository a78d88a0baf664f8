"""PagerDuty Events API v2 alert events (the body of ``POST /v2/enqueue``): one, or a JSON list.

Mapping:

* ``event_action`` ``trigger`` is a firing event and ``resolve`` a resolved one. ``acknowledge``
  is also a firing event, marked with the label ``pagerduty_action=acknowledge`` (Watchkeeper has
  no alert-level acknowledgement; incidents are acknowledged, not alerts).
* ``payload`` is required for ``trigger``; ``dedup_key`` is required for ``acknowledge`` and
  ``resolve``, whose ``payload`` is optional (validated when present).
* The fingerprint is ``dedup_key``; a trigger without one gets a fingerprint derived from
  ``payload.source``, ``payload.component`` and ``payload.summary`` (namespace ``pagerduty``),
  so repeats of one condition deduplicate instead of each opening a new alert.
* ``service`` is ``payload.component``, else ``payload.group``, else ``payload.source``;
  ``resource`` is ``payload.source``; ``name`` is ``payload.class``; the time is
  ``payload.timestamp``, else the time the body was received.
* Labels are ``component``, ``group``, ``class``, ``source`` and ``severity`` when present, plus
  each scalar ``custom_details`` value as a string (the named fields win over custom details).
* ``routing_key`` is the integration's secret: it is dropped from ``raw`` and never put in labels
  or summary; a copy of its value elsewhere in the body (say in ``custom_details``) is left out of
  the labels and replaced by ``[redacted]`` in ``raw``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, SecretStr

from watchkeeper.errors import InputError
from watchkeeper.model import Event, EventKind, Severity, Status, utc
from watchkeeper.sources.base import fingerprint_of, validate
from watchkeeper.sources.limits import UtcTime

MAX_BATCH = 10_000
#: The label that marks an ``acknowledge`` event.
ACTION_LABEL = "pagerduty_action"
_ROUTING_KEY = "routing_key"
#: What replaces a copy of the routing key found elsewhere in a body (e.g. in custom_details).
REDACTED = "[redacted]"


class PagerDutyPayload(BaseModel):
    """The ``payload`` object of an alert event."""

    model_config = ConfigDict(extra="allow")

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: UtcTime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    custom_details: dict[str, Any] | None = None


#: The rules ``_check`` applies, for the JSON Schema (a trigger needs a payload, the others a dedup_key).
_BY_ACTION: dict[str, Any] = {"allOf": [
    {"if": {"properties": {"event_action": {"const": "trigger"}}, "required": ["event_action"]},
     "then": {"required": ["payload"], "properties": {"payload": {"type": "object"}}}},
    {"if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}, "required": ["event_action"]},
     "then": {"required": ["dedup_key"], "properties": {"dedup_key": {"type": "string", "minLength": 1}}}},
]}


class PagerDutyEvent(BaseModel):
    """One Events API v2 alert event."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_BY_ACTION)

    routing_key: SecretStr | None = Field(None, description="Integration key; never stored")
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(None, max_length=255)
    payload: PagerDutyPayload | None = Field(None, description="Required for trigger")
    images: list[dict[str, Any]] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


class PagerDutyBatch(RootModel[list[PagerDutyEvent]]):
    """A JSON list of events."""


class PagerDutyBody(
    RootModel[Annotated[list[PagerDutyEvent], Field(min_length=1, max_length=MAX_BATCH)] | PagerDutyEvent]
):
    """One Events API v2 alert event, or a JSON list of them (1 to 10,000: ``normalize`` checks)."""


class PagerDutySource:
    """Normalize PagerDuty Events API v2 events; the fingerprint is the ``dedup_key``.

    >>> from datetime import UTC, datetime
    >>> body = {"routing_key": "R0UT1NGKEY", "event_action": "trigger", "dedup_key": "disk-17",
    ...     "payload": {"summary": "Disk full on db-1", "source": "db-1.example.com",
    ...                 "severity": "critical", "component": "postgres"}}
    >>> [event] = PagerDutySource().normalize(body, datetime(2026, 1, 1, tzinfo=UTC))
    >>> event.fingerprint, event.service, event.resource, event.severity.value, event.status.value
    ('disk-17', 'postgres', 'db-1.example.com', 'critical', 'firing')
    >>> "routing_key" in event.raw
    False
    """

    name = "pagerduty"
    schema = PagerDutyBody

    def accepts(self, payload: Any) -> bool:
        if isinstance(payload, list):
            return bool(payload) and all(self._looks_like_event(item) for item in payload)
        return self._looks_like_event(payload)

    @staticmethod
    def _looks_like_event(item: Any) -> bool:
        return isinstance(item, dict) and "event_action" in item

    def normalize(self, payload: Any, received_at: datetime) -> list[Event]:
        if isinstance(payload, list):
            batch: PagerDutyBatch = validate(PagerDutyBatch, payload, "PagerDuty event list")
            items = batch.root
            if not items:
                raise InputError("invalid PagerDuty event list: the list of events is empty")
            if len(items) > MAX_BATCH:
                raise InputError(f"invalid PagerDuty event list: more than {MAX_BATCH} events")
            raws: list[Any] = payload
            where = [f"PagerDuty event list: {i}." for i in range(len(items))]
        else:
            items = [validate(PagerDutyEvent, payload, "PagerDuty event")]
            raws = [payload]
            where = ["PagerDuty event: "]
        for item, prefix in zip(items, where, strict=True):
            self._check(item, prefix)
        return [self._event(item, raw, received_at) for item, raw in zip(items, raws, strict=True)]

    @staticmethod
    def _check(item: PagerDutyEvent, prefix: str) -> None:
        """The rules that depend on ``event_action``, with errors in ``describe``'s format."""
        action = item.event_action
        if action == "trigger" and item.payload is None:
            raise InputError(
                f"invalid {prefix}payload: Field required when event_action is 'trigger'"
            )
        if action != "trigger" and not item.dedup_key:
            raise InputError(
                f"invalid {prefix}dedup_key: Field required when event_action is {action!r}"
            )

    def _event(self, item: PagerDutyEvent, raw: Any, received_at: datetime) -> Event:
        action = item.event_action
        body = item.payload
        secret = item.routing_key.get_secret_value() if item.routing_key else ""
        labels = _labels(body, secret)
        if action == "acknowledge":
            labels[ACTION_LABEL] = "acknowledge"
        fingerprint = item.dedup_key or fingerprint_of(_identity(body), namespace="pagerduty")
        if body is None:  # an acknowledge or resolve that refers to its trigger by dedup_key
            severity, name, service, resource = Severity.parse(None), "", "unknown", ""
            summary, at = f"PagerDuty {action}: {fingerprint}", received_at
        else:
            severity, name = Severity(body.severity), body.class_ or ""
            service, resource = body.component or body.group or body.source, body.source
            summary = body.summary
            at = utc(body.timestamp) if body.timestamp else received_at
        resolved = action == "resolve"
        return Event(
            source=self.name,
            kind=EventKind.ALERT,
            fingerprint=fingerprint,
            status=Status.RESOLVED if resolved else Status.FIRING,
            severity=severity,
            name=name,
            service=service,
            resource=resource,
            labels=labels,
            summary=summary,
            starts_at=at,
            ends_at=at if resolved else None,
            received_at=received_at,
            raw=_redacted(raw, secret),
            reference=body is None,
        )


def _identity(body: PagerDutyPayload | None) -> dict[str, str]:
    """What identifies a trigger that has no ``dedup_key``."""
    if body is None:
        return {}
    return {"source": body.source, "component": body.component or "", "summary": body.summary}


def _redacted(raw: dict[str, Any], secret: str) -> dict[str, Any]:
    """``raw`` without ``routing_key``, and with any copy of its value elsewhere redacted."""
    return {key: _scrub(value, secret) for key, value in raw.items() if key != _ROUTING_KEY}


def _scrub(value: Any, secret: str) -> Any:
    if isinstance(value, dict):
        return {key: _scrub(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secret) for item in value]
    return REDACTED if secret and value == secret else value


def _labels(body: PagerDutyPayload | None, secret: str) -> dict[str, str]:
    """Scalar ``custom_details`` as strings, then the named fields (which win)."""
    if body is None:
        return {}
    labels: dict[str, str] = {}
    for key, value in (body.custom_details or {}).items():
        if key == ACTION_LABEL or value is None or isinstance(value, dict | list):
            continue
        if secret and value == secret:
            continue
        labels[key] = _text(value)
    named = {
        "component": body.component,
        "group": body.group,
        "class": body.class_,
        "source": body.source,
        "severity": body.severity,
    }
    labels.update({key: value for key, value in named.items() if value})
    return labels


def _text(value: object) -> str:
    """A JSON scalar as a label value: booleans as ``true``/``false``, like JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
