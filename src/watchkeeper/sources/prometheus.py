"""Alertmanager's API v2 ``postableAlerts``: the JSON list Prometheus POSTs to ``/api/v2/alerts``.

Watchkeeper takes the same bodies at ``/api/v1/ingest/prometheus`` and at ``/api/v2/alerts``
(so Prometheus' ``alerting.alertmanagers`` can point at it directly, with a bearer token).
An alert whose ``endsAt`` is at or before the time of receipt is resolved; otherwise firing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from watchkeeper.model import Event, EventKind, Status, utc
from watchkeeper.sources.alertmanager import _severity, _str_map, _time
from watchkeeper.sources.base import RESOURCE_LABELS, SERVICE_LABELS, fingerprint_of, first_label, validate
from watchkeeper.sources.limits import FIELD_LIMITS, UtcTime

#: Alerts in one body at most (Prometheus sends ``max_alerts_per_request``-sized bodies, 64 by default).
MAX_ALERTS = 10_000


class PostableAlert(BaseModel):
    """One alert as Prometheus posts it to Alertmanager."""

    model_config = ConfigDict(extra="allow")

    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: UtcTime | None = None  # noqa: N815 - the wire format's spelling
    endsAt: UtcTime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815


class PostableAlerts(RootModel[list[PostableAlert]]):
    """A JSON list of alerts (Alertmanager API v2 ``postableAlerts``)."""

    root: list[PostableAlert] = Field(max_length=MAX_ALERTS)


class PrometheusSource:
    """Normalize Alertmanager API v2 bodies; the fingerprint is a hash of the label set.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> body = [{"labels": {"alertname": "Down", "service": "db"}, "startsAt": "2026-01-01T11:00:00Z"},
    ...         {"labels": {"alertname": "Slow"}, "endsAt": "2026-01-01T11:30:00Z"}]
    >>> [(e.name, e.service, e.status.value) for e in PrometheusSource().normalize(body, now)]
    [('Down', 'db', 'firing'), ('Slow', 'unknown', 'resolved')]
    """

    name = "prometheus"
    schema = PostableAlerts

    def accepts(self, payload: Any) -> bool:
        return (
            isinstance(payload, list)
            and bool(payload)
            and isinstance(payload[0], dict)
            and "labels" in payload[0]
            and "summary" not in payload[0]
            and "event_action" not in payload[0]
        )

    def normalize(self, payload: Any, received_at: datetime) -> list[Event]:
        fast = fast_normalize(payload, received_at)
        return fast if fast is not None else validated_normalize(payload, received_at)

    def plain_count(self, payload: Any) -> int | None:
        """See :func:`plain_body`."""
        return plain_body(payload)


def validated_normalize(payload: Any, received_at: datetime) -> list[Event]:
    """The reference path: pydantic validation, exact error messages."""
    body: PostableAlerts = validate(PostableAlerts, payload, "Alertmanager API v2 body")
    return [
        _event(
            a.labels,
            a.annotations,
            utc(a.startsAt) if a.startsAt else None,
            utc(a.endsAt) if a.endsAt else None,
            raw,
            received_at,
        )
        for a, raw in zip(body.root, payload, strict=True)
    ]


def fast_normalize(payload: Any, received_at: datetime) -> list[Event] | None:
    """Normalize a plainly well-formed body, or return None to let pydantic decide (and say why)."""
    if type(payload) is not list or len(payload) > MAX_ALERTS:
        return None
    events: list[Event] = []
    for raw in payload:
        if type(raw) is not dict:
            return None
        labels, annotations = raw.get("labels"), raw.get("annotations", _EMPTY)
        if not _str_map(labels) or not labels or not _str_map(annotations):
            return None
        if "generatorURL" in raw and type(raw["generatorURL"]) is not str:
            return None
        starts = ends = None
        if (text := raw.get("startsAt")) is not None and (starts := _time(text)) is None:
            return None
        if (text := raw.get("endsAt")) is not None and (ends := _time(text)) is None:
            return None
        events.append(_event(labels, annotations, starts, ends, raw, received_at))
    return events


def plain_body(payload: Any) -> int | None:
    """The number of alerts of a plain body, checked in one pass without building events (the
    journalled intake's request path), or None for anything unusual: then ``normalize`` and
    ``size_problem`` decide, with their messages. Whatever it counts, they accept.

    >>> plain_body([{"labels": {"alertname": "Down"}, "startsAt": "2026-01-01T11:00:00Z"}])
    1
    >>> plain_body([{"labels": {"alertname": 1}}]) is None, plain_body([{"labels": {}}]) is None
    (True, True)
    """
    if type(payload) is not list or len(payload) > MAX_ALERTS:
        return None
    for raw in payload:
        if type(raw) is not dict:
            return None
        labels, annotations = raw.get("labels"), raw.get("annotations", _EMPTY)
        if type(labels) is not dict or not labels or type(annotations) is not dict:
            return None
        try:  # every value a str (checked in C); their total length bounds each one's
            size = len("".join(labels.values()))
            "".join(annotations.values())
        except TypeError:
            return None
        if size > _SIZED_LIMIT and any(len(labels.get(key, "")) > _SIZED_LIMIT for key in _SIZED_LABELS):
            return None  # a field may be over its column: size_problem words it
        if "generatorURL" in raw and type(raw["generatorURL"]) is not str:
            return None
        if (text := raw.get("startsAt")) is not None and _time(text) is None:
            return None
        if (text := raw.get("endsAt")) is not None and _time(text) is None:
            return None
    return len(payload)


_EMPTY: dict[str, str] = {}
#: The labels an event's sized fields (name, service, resource) are taken from, and the smallest limit.
_SIZED_LABELS = ("alertname", *SERVICE_LABELS, *RESOURCE_LABELS)
_SIZED_LIMIT = min(FIELD_LIMITS["name"], FIELD_LIMITS["service"], FIELD_LIMITS["resource"])
_SOURCE, _ALERT = PrometheusSource.name, EventKind.ALERT


def _event(
    labels: dict[str, str],
    annotations: dict[str, str],
    starts: datetime | None,
    ends: datetime | None,
    raw: Any,
    received_at: datetime,
) -> Event:
    if ends is not None and ends.year <= 1:  # Go's zero time: not set
        ends = None
    if starts is None or starts.year <= 1:
        starts = received_at  # Alertmanager's default too
    status = Status.RESOLVED if ends is not None and ends <= received_at else Status.FIRING
    if ends is not None and ends < starts:  # Alertmanager refuses it; taken as ended when it began
        ends = starts
    name = labels.get("alertname", "")
    return Event(
        _SOURCE,
        _ALERT,
        fingerprint_of(labels),
        status,
        _severity(labels.get("severity")),
        name,
        labels.get(SERVICE_LABELS[0]) or first_label(labels, SERVICE_LABELS, "unknown"),
        labels.get(RESOURCE_LABELS[0]) or first_label(labels, RESOURCE_LABELS, ""),
        labels,
        annotations.get("summary") or annotations.get("description") or name,
        starts,
        ends,
        received_at,
        raw,
    )


__all__ = ["PostableAlert", "PostableAlerts", "PrometheusSource", "fast_normalize", "plain_body", "validated_normalize"]
