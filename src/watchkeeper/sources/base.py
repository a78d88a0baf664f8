"""The source protocol: ``normalize(payload, received_at) -> list[Event]``, plus shared helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter, ValidationError

from watchkeeper.errors import InputError
from watchkeeper.model import STATUS_BY_VALUE, Event, EventKind, Severity, utc

#: Labels that name the service an alert belongs to, in order of preference.
SERVICE_LABELS = ("service", "service_name", "app", "application", "job", "component")
#: Labels that name the resource (host, pod, instance) an alert is about.
RESOURCE_LABELS = ("instance", "pod", "host", "hostname", "node", "resource", "device")


class Source(Protocol):
    """One input format. ``name`` is the URL segment: ``/api/v1/ingest/{name}``."""

    name: str
    #: The pydantic model of one request body, published in the OpenAPI spec.
    schema: type[BaseModel]

    def normalize(self, payload: Any, received_at: datetime) -> list[Any]:
        """Turn one decoded request body into Events; raise InputError (422) when it is invalid."""
        ...

    def accepts(self, payload: Any) -> bool:
        """Whether a decoded body looks like this format (used by offline replay)."""
        ...


def fingerprint_of(labels: Mapping[str, str], *, namespace: str = "") -> str:
    """A stable 16-hex-digit identity for a label set (order does not matter).

    >>> fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})
    True
    >>> len(fingerprint_of({}))
    16
    """
    digest = hashlib.sha256(namespace.encode())
    for key in sorted(labels):
        digest.update(b"\xff" + key.encode() + b"\xfe" + str(labels[key]).encode())
    return digest.hexdigest()[:16]


def first_label(labels: Mapping[str, str], keys: tuple[str, ...], default: str) -> str:
    """The value of the first of ``keys`` present (and non-empty) in ``labels``.

    >>> first_label({"job": "api", "app": "web"}, SERVICE_LABELS, "unknown")
    'web'
    """
    for key in keys:
        value = labels.get(key)
        if value:
            return value
    return default


def validate(model: type[BaseModel] | TypeAdapter[Any], payload: Any, what: str) -> Any:
    """Validate ``payload`` against ``model``; a failure becomes an InputError naming each field."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(payload)
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InputError(f"invalid {what}: {describe(exc)}") from exc


def describe(exc: ValidationError, limit: int = 5) -> str:
    """Pydantic errors as one readable sentence: ``alerts.0.labels: Input should be ...``."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()[:limit]
    ]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def unset_time(value: datetime | None) -> datetime | None:
    """Alertmanager and Grafana write ``0001-01-01T00:00:00Z`` for "not set"."""
    if value is None or value.year <= 1:
        return None
    return value


def labelled_event(
    source: str, *, status: str, labels: dict[str, str], annotations: Mapping[str, str], starts: datetime,
    ends: datetime | None, fingerprint: str | None, raw: Any, received_at: datetime, namespace: str = "",
) -> Event:
    """An Event from a Prometheus-style alert (Alertmanager, Grafana): name, service, resource and
    severity from its labels, summary from its annotations; ``0001-01-01`` ends mean "not set"."""
    name = labels.get("alertname", "")
    # Positional arguments, in Event's field order: this runs once per alert on the ingest hot path.
    return Event(
        source, EventKind.ALERT, fingerprint or fingerprint_of(labels, namespace=namespace),
        STATUS_BY_VALUE[status], Severity.parse(labels.get("severity")), name,
        first_label(labels, SERVICE_LABELS, "unknown"), first_label(labels, RESOURCE_LABELS, ""), labels,
        annotations.get("summary") or annotations.get("description") or name,
        utc(starts), unset_time(utc(ends)) if ends is not None else None, received_at, raw,
    )
