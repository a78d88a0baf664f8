"""Grafana unified-alerting webhook (contact point of type ``webhook``), payload version 1.

The body is Alertmanager's webhook body plus Grafana's own fields (``orgId``, ``title``,
``state``, ``message``, and per alert ``silenceURL``, ``dashboardURL``, ``panelURL``,
``imageURL``, ``values``, ``valueString``), with ``version`` ``"1"`` instead of ``"4"``.
The fingerprint is Grafana's own (a hash of the alert's labels); when it is missing, one is
derived from the labels in the ``grafana`` namespace. Grafana writes ``0001-01-01T00:00:00Z``
for the ``endsAt`` of a firing alert: that becomes ``ends_at=None``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.errors import InputError
from watchkeeper.model import Event
from watchkeeper.sources.base import (
    labelled_event,
    validate,
)
from watchkeeper.sources.limits import JsonInt, UtcTime


class GrafanaAlert(BaseModel):
    """One alert of a Grafana webhook body."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: UtcTime  # noqa: N815 - the wire format's spelling
    endsAt: UtcTime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str | None = None
    silenceURL: str = ""  # noqa: N815
    dashboardURL: str = ""  # noqa: N815
    panelURL: str = ""  # noqa: N815
    imageURL: str = ""  # noqa: N815
    values: dict[str, Any] | None = None
    valueString: str = ""  # noqa: N815


class GrafanaWebhook(BaseModel):
    """The body Grafana Alerting POSTs to a webhook contact point."""

    model_config = ConfigDict(extra="allow")

    version: str = Field("1", json_schema_extra={"enum": ["1"]})
    receiver: str = ""
    status: Literal["firing", "resolved"]
    orgId: JsonInt | None = None  # noqa: N815
    groupKey: str = ""  # noqa: N815
    truncatedAlerts: JsonInt = 0  # noqa: N815
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    title: str = ""
    state: str = ""
    message: str = ""
    alerts: list[GrafanaAlert]


class GrafanaSource:
    """Normalize Grafana Alerting webhooks; the fingerprint is Grafana's own.

    >>> from datetime import UTC, datetime
    >>> body = {"version": "1", "orgId": 1, "status": "firing", "alerts": [{"status": "firing",
    ...     "labels": {"alertname": "High memory usage", "service": "db", "instance": "db-1"},
    ...     "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    ...     "fingerprint": "c6eadffa33fcdf37"}]}
    >>> [(e.fingerprint, e.service, e.resource, e.status.value, e.ends_at)
    ...  for e in GrafanaSource().normalize(body, datetime(2026, 1, 1, tzinfo=UTC))]
    [('c6eadffa33fcdf37', 'db', 'db-1', 'firing', None)]
    """

    name = "grafana"
    schema = GrafanaWebhook

    def accepts(self, payload: Any) -> bool:
        return isinstance(payload, dict) and "alerts" in payload and (
            "orgId" in payload or payload.get("version") == "1"
        )

    def normalize(self, payload: Any, received_at: datetime) -> list[Event]:
        body: GrafanaWebhook = validate(GrafanaWebhook, payload, "Grafana webhook")
        if body.version != "1":
            raise InputError(f"unsupported Grafana webhook version {body.version!r}; expected '1'")
        raws = payload["alerts"]
        return [
            self._event(alert, raw, received_at)
            for alert, raw in zip(body.alerts, raws, strict=True)
        ]

    def _event(self, alert: GrafanaAlert, raw: Any, received_at: datetime) -> Event:
        return labelled_event(self.name, status=alert.status, labels=alert.labels, annotations=alert.annotations,
                              starts=alert.startsAt, ends=alert.endsAt, fingerprint=alert.fingerprint, raw=raw,
                              received_at=received_at, namespace="grafana")
