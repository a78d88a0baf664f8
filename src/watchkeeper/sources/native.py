"""Watchkeeper's own JSON event schema: one event, a list of events, or ``{"events": [...]}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, TypeAdapter, field_validator

from watchkeeper.errors import InputError
from watchkeeper.model import Event, EventKind, Severity, Status, utc
from watchkeeper.sources.base import RESOURCE_LABELS, fingerprint_of, first_label, validate
from watchkeeper.sources.limits import UtcTime

MAX_BATCH = 10_000


class WatchkeeperEvent(BaseModel):
    """One event in Watchkeeper's own schema."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=4096, description="One line saying what is wrong")
    service: str = Field(min_length=1, max_length=256, description="The service it concerns")
    name: str = Field("", max_length=256, description="Condition name, e.g. HighErrorRate")
    kind: EventKind = EventKind.ALERT
    status: Status = Status.FIRING
    severity: str = Field(
        "warning", json_schema_extra={"enum": list[JsonValue](Severity.spellings())},
        description="critical | error | warning | info, or an alias of one "
        "(crit, fatal, page, p1-p5, sev1-sev4, high, err, major, warn, medium, minor, low, ok, none)",
    )
    resource: str = Field("", max_length=256, description="Host, pod or instance")
    fingerprint: str | None = Field(
        None, min_length=1, max_length=256,
        description="Stable identity of the condition; "
        "derived from source, service, name and labels if absent",
    )
    source: str = Field("api", min_length=1, max_length=64, description="Who sent it")
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcTime | None = Field(None, description="When the condition began (default: received)")
    ends_at: UtcTime | None = None

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if not Severity.known(value):
            raise ValueError(f"unknown severity {value!r}; use critical, error, warning or info "
                             "(or an alias: p1-p5, sev1-sev4, high, low, ...)")
        return value


class WatchkeeperBatch(BaseModel):
    """A batch of events."""

    model_config = ConfigDict(extra="forbid")

    events: list[WatchkeeperEvent] = Field(min_length=1, max_length=MAX_BATCH)


class WatchkeeperPayload(
    RootModel[WatchkeeperBatch | Annotated[list[WatchkeeperEvent], Field(min_length=1, max_length=MAX_BATCH)]
              | WatchkeeperEvent]
):
    """One event, a JSON list of events, or ``{"events": [...]}``."""


_EVENT_LIST = TypeAdapter(list[WatchkeeperEvent])


class NativeSource:
    """Normalize Watchkeeper events.

    >>> from datetime import UTC, datetime
    >>> [e.fingerprint == NativeSource().normalize(
    ...     {"service": "db", "summary": "x", "name": "Down"}, datetime(2026, 1, 1, tzinfo=UTC)
    ... )[0].fingerprint for e in NativeSource().normalize(
    ...     {"events": [{"service": "db", "summary": "y", "name": "Down"}]}, datetime.now(UTC))]
    [True]
    """

    name = "events"
    schema = WatchkeeperPayload

    def accepts(self, payload: Any) -> bool:
        if isinstance(payload, list):
            return True
        return isinstance(payload, dict) and ("events" in payload or "summary" in payload)

    def normalize(self, payload: Any, received_at: datetime) -> list[Event]:
        # The body's form says which shape was meant, so the errors name the real problem (a
        # misspelt field of one event) rather than every shape's complaints.
        items: list[WatchkeeperEvent]
        if isinstance(payload, dict) and "events" in payload:
            items = validate(WatchkeeperBatch, payload, "Watchkeeper event batch").events
        elif isinstance(payload, list):
            items = validate(_EVENT_LIST, payload, "list of Watchkeeper events")
        else:
            items = [validate(WatchkeeperEvent, payload, "Watchkeeper event")]
        if not items:
            raise InputError("invalid Watchkeeper event payload: the list of events is empty")
        if len(items) > MAX_BATCH:
            raise InputError(f"invalid Watchkeeper event payload: more than {MAX_BATCH} events")
        raws = payload["events"] if isinstance(payload, dict) and "events" in payload else (
            payload if isinstance(payload, list) else [payload]
        )
        return [self._event(item, raw, received_at) for item, raw in zip(items, raws, strict=True)]

    def _event(self, item: WatchkeeperEvent, raw: Any, received_at: datetime) -> Event:
        labels = {"service": item.service, **item.labels}
        if item.name:
            labels.setdefault("alertname", item.name)
        fingerprint = item.fingerprint or fingerprint_of(labels, namespace=item.source)
        return Event(
            source=item.source,
            kind=item.kind,
            fingerprint=fingerprint,
            status=item.status,
            severity=Severity.parse(item.severity),
            name=item.name,
            service=item.service,
            resource=item.resource or first_label(labels, RESOURCE_LABELS, ""),
            labels=labels,
            summary=item.summary,
            starts_at=utc(item.starts_at) if item.starts_at else received_at,
            ends_at=utc(item.ends_at) if item.ends_at else None,
            received_at=received_at,
            raw=raw,
        )
