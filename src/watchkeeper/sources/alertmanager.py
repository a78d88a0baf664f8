"""Prometheus Alertmanager webhook, version 4 (``webhook_configs`` receiver), firing and resolved."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.errors import InputError
from watchkeeper.model import STATUS_BY_VALUE, Event
from watchkeeper.sources.base import (
    labelled_event,
    validate,
)


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - the wire format's spelling
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str | None = None


class AlertmanagerWebhook(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver."""

    model_config = ConfigDict(extra="allow")

    version: str = "4"
    groupKey: str = ""  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[AlertmanagerAlert]


class AlertmanagerSource:
    """Normalize Alertmanager webhooks; the fingerprint is Alertmanager's own.

    >>> from datetime import UTC, datetime
    >>> body = {"version": "4", "status": "firing", "alerts": [{"status": "firing",
    ...     "labels": {"alertname": "Down", "service": "db"}, "startsAt": "2026-01-01T00:00:00Z",
    ...     "fingerprint": "abc"}]}
    >>> [(e.fingerprint, e.service, e.status.value)
    ...  for e in AlertmanagerSource().normalize(body, datetime(2026, 1, 1, tzinfo=UTC))]
    [('abc', 'db', 'firing')]
    """

    name = "alertmanager"
    schema = AlertmanagerWebhook

    def accepts(self, payload: Any) -> bool:
        return isinstance(payload, dict) and "alerts" in payload and (
            "groupKey" in payload or "receiver" in payload or "truncatedAlerts" in payload
        )

    def normalize(self, payload: Any, received_at: datetime) -> list[Event]:
        fast = fast_normalize(payload, received_at)
        return fast if fast is not None else validated_normalize(payload, received_at)


def validated_normalize(payload: Any, received_at: datetime) -> list[Event]:
    """The reference path: pydantic validation, exact error messages."""
    body: AlertmanagerWebhook = validate(AlertmanagerWebhook, payload, "Alertmanager webhook")
    if body.version != "4":
        raise InputError(f"unsupported Alertmanager webhook version {body.version!r}; expected '4'")
    return [
        _event(a.status, a.labels, a.annotations, a.startsAt, a.endsAt, a.fingerprint, raw, received_at)
        for a, raw in zip(body.alerts, payload["alerts"], strict=True)
    ]


def _event(
    status: str, labels: dict[str, str], annotations: dict[str, str], starts: datetime,
    ends: datetime | None, fingerprint: str | None, raw: Any, received_at: datetime,
) -> Event:
    return labelled_event(AlertmanagerSource.name, status=status, labels=labels, annotations=annotations,
                          starts=starts, ends=ends, fingerprint=fingerprint, raw=raw, received_at=received_at)


# -- fast path -------------------------------------------------------------------------------
# A well-formed webhook (what Alertmanager actually sends) is checked with plain type tests and
# normalized directly, about 3x faster than pydantic. Anything unusual returns None, and the
# pydantic model above decides, with its exact semantics and error messages. A property test
# checks that the two agree on every input the fast path accepts.

_STR_FIELDS = ("receiver", "groupKey", "externalURL")
_MAP_FIELDS = ("groupLabels", "commonLabels", "commonAnnotations")


def _status(value: Any) -> TypeGuard[str]:
    return type(value) is str and value in STATUS_BY_VALUE


def _str_map(value: Any) -> TypeGuard[dict[str, str]]:
    """A dict whose values are all strings (``str.join`` checks that in C; JSON gives exact ``str``)."""
    if type(value) is not dict:
        return False
    try:
        "".join(value.values())
    except TypeError:
        return False
    return True


def _time(value: Any) -> datetime | None:
    if type(value) is not str or len(value) < 20 or value[10] != "T":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def fast_normalize(payload: Any, received_at: datetime) -> list[Event] | None:
    """Normalize a plainly well-formed webhook, or return None to let pydantic decide."""
    if type(payload) is not dict or payload.get("version", "4") != "4":
        return None
    if not _status(payload.get("status")) or type(payload.get("alerts")) is not list:
        return None
    for key in _STR_FIELDS:
        if key in payload and type(payload[key]) is not str:
            return None
    for key in _MAP_FIELDS:
        if key in payload and not _str_map(payload[key]):
            return None
    if "truncatedAlerts" in payload and type(payload["truncatedAlerts"]) is not int:
        return None
    events = []
    for raw in payload["alerts"]:
        if type(raw) is not dict:
            return None
        status, labels = raw.get("status"), raw.get("labels")
        annotations = raw.get("annotations", {})
        fingerprint = raw.get("fingerprint")
        if not (_status(status) and _str_map(labels) and _str_map(annotations)):
            return None
        if (fingerprint is not None and type(fingerprint) is not str) or (
            type(raw.get("generatorURL", "")) is not str
        ):
            return None
        starts = _time(raw.get("startsAt"))
        ends_raw = raw.get("endsAt")
        ends = None if ends_raw is None else _time(ends_raw)
        if starts is None or (ends_raw is not None and ends is None):
            return None
        events.append(_event(status, labels, annotations, starts, ends, fingerprint, raw, received_at))
    return events
