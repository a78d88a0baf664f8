"""What every integration shares: the outbox message it is handed, the protocol it implements,
the errors it raises and the redaction that keeps its secrets out of logs, errors, the audit log
and ``/metrics``.

Pure: no storage, no server, no HTTP library (``http.py`` holds the HTTP helper).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from watchkeeper.errors import IntegrationError


class EventKind(StrEnum):
    """Why a message was sent: the incident change it reports."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CAUSES = "causes"  # the ranked causes changed
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"  # approved, rejected, expired or superseded
    ACTION_FINISHED = "action_finished"
    ESCALATED = "escalated"


#: The audit record kinds that cause a message, and the event each reports. Everything else
#: (alerts joining, comments, votes that decide nothing) is not worth a notification.
AUDIT_KINDS: dict[str, EventKind] = {
    "incident.opened": EventKind.OPENED,
    "incident.acknowledged": EventKind.ACKNOWLEDGED,
    "incident.mitigated": EventKind.MITIGATED,
    "incident.resolved": EventKind.RESOLVED,
    "incident.reopened": EventKind.REOPENED,
    "incident.causes_ranked": EventKind.CAUSES,
    "approval.requested": EventKind.APPROVAL_REQUESTED,
    "approval.approved": EventKind.APPROVAL_DECIDED,
    "approval.rejected": EventKind.APPROVAL_DECIDED,
    "approval.expired": EventKind.APPROVAL_DECIDED,
    "approval.superseded": EventKind.APPROVAL_DECIDED,
    "action.finished": EventKind.ACTION_FINISHED,
    "incident.escalated": EventKind.ESCALATED,
}


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox message, as a notifier receives it.

    ``payload`` is the snapshot taken in the transaction of the change (so a message says what
    was true then, even when it is delivered later): ``incident`` (id, title, status, severity,
    services, labels, opened_at), ``change`` (the audit record's kind, actor, at and payload),
    ``cause`` (the top ranked cause or None), ``approval`` (for approval events, else None).
    ``ref`` is what this target stored for this incident on an earlier delivery (e.g. Slack's
    message ``ts``), None before the first.
    """

    id: int
    incident_id: int
    target: str
    event: EventKind
    payload: Mapping[str, Any]
    attempts: int = 0
    created_at: datetime | None = None
    ref: Mapping[str, Any] | None = None

    @property
    def incident(self) -> Mapping[str, Any]:
        return self.payload.get("incident") or {}

    @property
    def change(self) -> Mapping[str, Any]:
        return self.payload.get("change") or {}

    @property
    def idempotency_key(self) -> str:
        """Stable across redeliveries of this message: receivers that honour it see it once."""
        return f"wk-outbox-{self.id}"


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery that succeeded. ``ref``: what to keep for this incident and target (replaces
    the stored one when not None), e.g. the id the remote system gave the thing we created."""

    ref: Mapping[str, Any] | None = None
    detail: str = ""


class DeliveryError(IntegrationError):
    """A delivery failed. ``retryable`` says whether the same message may succeed later;
    ``retry_after`` is the receiver's own wish (seconds, from ``Retry-After``), ``status`` the
    HTTP status (None: no answer — a timeout or a connection failure)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.retry_after = retry_after


@runtime_checkable
class Notifier(Protocol):
    """Turns an outbox message into calls on one external system.

    ``deliver`` either returns :class:`Delivered` or raises :class:`DeliveryError`; it must be
    safe to call again with the same message (the outbox redelivers after a crash), so it sends
    the message's ``idempotency_key`` or a key of the receiver's own (PagerDuty's ``dedup_key``)
    wherever the receiver honours one.
    """

    name: str

    def deliver(self, message: Message) -> Delivered: ...

    def close(self) -> None: ...


class TargetConfig(BaseModel):
    """Base of every integration's typed config. Secrets are ``SecretStr`` fields: ``repr``,
    logs and errors show ``**********``; :meth:`secrets` lists them for :class:`Redactor`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    timeout_seconds: float = 10.0
    retries: int = 2  # in-call retries of one delivery (the outbox retries again later)
    #: the changes this target takes (each integration narrows its default)
    events: list[EventKind] = Field(default_factory=lambda: list(EventKind))

    def secrets(self) -> list[str]:
        """The plain values of every secret in this config (for redaction only)."""
        return [v.get_secret_value() for v in _secret_values(self) if v.get_secret_value()]


def _secret_values(model: BaseModel) -> Iterable[SecretStr]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            yield value
        elif isinstance(value, BaseModel):
            yield from _secret_values(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                if isinstance(item, SecretStr):
                    yield item
                elif isinstance(item, BaseModel):
                    yield from _secret_values(item)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces every known secret in a text by ``***`` before it reaches a log, an error, the
    audit log or a metric label.

    >>> Redactor(("s3cr3t",)).redact("POST failed: routing_key=s3cr3t")
    'POST failed: routing_key=***'
    >>> Redactor(()).redact("nothing to hide")
    'nothing to hide'
    """

    secrets: tuple[str, ...] = field(default=())

    def redact(self, text: str) -> str:
        # longest first: a secret that contains another is hidden whole
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 4:  # shorter values would mangle ordinary words
                text = text.replace(secret, "***")
        return text


def short(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (a remote error body can be long)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
