"""Prometheus Alertmanager webhook, version 4 (``webhook_configs`` receiver), firing and resolved."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.errors import InputError
from watchkeeper.model import Event, EventKind, Severity, Status, utc
from watchkeeper.sources.base import (
    RESOURCE_LABELS,
    SERVICE_LABELS,
    fingerprint_of,
    first_label,
    unset_time,
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
        body: AlertmanagerWebhook = validate(AlertmanagerWebhook, payload, "Alertmanager webhook")
        if body.version != "4":
            raise InputError(f"unsupported Alertmanager webhook version {body.version!r}; expected '4'")
        raws = payload["alerts"]
        return [self._event(alert, raw, received_at) for alert, raw in zip(body.alerts, raws, strict=True)]

    def _event(self, alert: AlertmanagerAlert, raw: Any, received_at: datetime) -> Event:
        labels = alert.labels
        annotations = alert.annotations
        name = labels.get("alertname", "")
        return Event(
            source=self.name,
            kind=EventKind.ALERT,
            fingerprint=alert.fingerprint or fingerprint_of(labels),
            status=Status(alert.status),
            severity=Severity.parse(labels.get("severity")),
            name=name,
            service=first_label(labels, SERVICE_LABELS, "unknown"),
            resource=first_label(labels, RESOURCE_LABELS, ""),
            labels=labels,
            summary=annotations.get("summary") or annotations.get("description") or name,
            starts_at=utc(alert.startsAt),
            ends_at=unset_time(utc(alert.endsAt) if alert.endsAt else None),
            received_at=received_at,
            raw=raw,
        )
