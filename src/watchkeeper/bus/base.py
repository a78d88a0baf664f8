"""The bus protocol: publish acknowledged, consume with a durable consumer, ack or nak
(redelivery); the message format and the partitioning scheme. Pure: no network here."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from watchkeeper.errors import WatchkeeperError
from watchkeeper.model import Event, EventKind, Severity, Status

#: Subjects: ``watchkeeper.events.<partition>``.
SUBJECT_PREFIX = "watchkeeper.events"
#: Seconds a client is asked to wait when the bus cannot take a message.
RETRY_AFTER = 2


class BusUnavailable(WatchkeeperError):
    """The bus did not acknowledge (away, slow, or its stream is full): answer 503 + Retry-After."""

    status = 503


class Delivery(Protocol):
    """One consumed message: settle it with ``ack`` (done) or ``nak`` (deliver again later)."""

    @property
    def data(self) -> bytes: ...

    @property
    def message_id(self) -> str: ...

    def ack(self) -> None: ...

    def nak(self, delay: float = 0.0) -> None: ...


class Bus(Protocol):
    """Partitioned, durable, acknowledged. ``publish`` returns only once the bus holds the
    message (raises :class:`BusUnavailable` otherwise); ``fetch`` returns up to ``batch``
    messages of one partition in order, each redelivered until acknowledged."""

    partitions: int

    def publish(self, partition: int, payload: bytes, message_id: str) -> None: ...

    def fetch(self, partition: int, batch: int, timeout: float) -> Sequence[Delivery]: ...

    def lag(self) -> dict[int, int]: ...

    def close(self) -> None: ...


def subject(partition: int) -> str:
    return f"{SUBJECT_PREFIX}.{partition}"


def partition_of(service: str, partitions: int) -> int:
    """The partition of a correlation key: CRC-32 of the service name, modulo ``partitions``
    (stable across processes and Python versions, unlike ``hash``).

    >>> partition_of("db", 8) == partition_of("db", 8)
    True
    >>> sorted({partition_of(f"svc{i}", 4) for i in range(100)})
    [0, 1, 2, 3]
    """
    return zlib.crc32(service.encode("utf-8")) % partitions


def split(events: Sequence[Event], partitions: int) -> dict[int, list[Event]]:
    """Events by partition, each partition's in the order received."""
    out: dict[int, list[Event]] = {}
    for e in events:
        out.setdefault(partition_of(e.service, partitions), []).append(e)
    return out


def messages_of(source: str, actor: str, events: Sequence[Event], request_id: str,
                partitions: int) -> list[tuple[int, bytes, str]]:
    """One request's events as bus messages: ``(partition, payload, message id)`` per partition
    it touches; the id (``<request>.<partition>``) lets JetStream drop a retried publish and the
    worker skip a redelivered one."""
    return [(p, Message(source, actor, evs).encode(), f"{request_id}.{p}")
            for p, evs in split(events, partitions).items()]


@dataclass(frozen=True, slots=True)
class Message:
    """What one bus message carries: one request's events of one partition. An event's id is
    (message id, its index): a message's events commit together, so the worker records the
    message id (``bus_processed``)."""

    source: str
    actor: str
    events: list[Event]

    def encode(self) -> bytes:
        return orjson.dumps({"v": 1, "source": self.source, "actor": self.actor,
                             "events": [_event_row(e) for e in self.events]})

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """The message in ``data``; a ValueError names what is wrong.

        >>> from datetime import UTC, datetime
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> e = Event("api", EventKind.ALERT, "f", Status.FIRING, Severity.WARNING, "X", "db", "", {"a": "1"},
        ...           "s", t, None, t, {"raw": 1})
        >>> m = Message.decode(Message("api", "token:x", [e]).encode())
        >>> m.events == [e], m.events[0].raw, m.actor
        (True, {'raw': 1}, 'token:x')
        """
        try:
            doc = orjson.loads(data)
            if doc.get("v") != 1:
                raise ValueError(f"unknown message version {doc.get('v')!r}")
            return cls(str(doc["source"]), str(doc["actor"]), [_event_of(r) for r in doc["events"]])
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a watchkeeper bus message: {exc}") from exc


def _event_row(e: Event) -> list[Any]:
    return [e.source, e.kind.value, e.fingerprint, e.status.value, e.severity.value, e.name, e.service,
            e.resource, dict(e.labels), e.summary, e.starts_at, e.ends_at, e.received_at, dict(e.raw),
            e.reference]


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _event_of(r: list[Any]) -> Event:
    starts, received = _time(r[10]), _time(r[12])
    if starts is None or received is None:
        raise ValueError("an event without starts_at or received_at")
    return Event(r[0], EventKind(r[1]), r[2], Status(r[3]), Severity(r[4]), r[5], r[6], r[7], r[8], r[9],
                 starts, _time(r[11]), received, r[13], bool(r[14]))
