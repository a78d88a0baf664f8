"""``watchkeeper worker``'s consumer: fetch the owned partitions' messages, commit their events
through the same pipeline ``serve`` runs (each message at most once), then acknowledge them.

Order of a partition is kept: a batch is acknowledged only after its commit, and a failed
commit naks the whole batch (delivered again, in order). A database outage is retried with
backoff; a lost partition lock stops that partition until the next rebalance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from watchkeeper.bus.base import Bus, BusUnavailable, Delivery, Message
from watchkeeper.bus.ownership import OwnershipLost
from watchkeeper.service import Watchkeeper
from watchkeeper.service.ingest import Delivered

log = structlog.get_logger("watchkeeper.bus")


class Ownership(Protocol):
    owned: set[int]

    def rebalance(self) -> tuple[set[int], set[int]]: ...

    def guard(self, partitions: Sequence[int]) -> Callable[[Any], None] | None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class WorkerStats:
    messages: int = 0
    events: int = 0
    skipped: int = 0  # redelivered messages already committed
    failures: int = 0
    bad: int = 0
    owned: list[int] = field(default_factory=list)


class Worker:
    """Consume, commit, acknowledge. ``run`` until ``stop`` is set."""

    def __init__(self, service: Watchkeeper, bus: Bus, ownership: Ownership, *, batch: int = 500,
                 fetch_seconds: float = 0.2, rebalance_seconds: float = 5.0) -> None:
        self.service, self.bus, self.ownership = service, bus, ownership
        self.batch, self.fetch_seconds, self.rebalance_seconds = batch, fetch_seconds, rebalance_seconds
        self.stats = WorkerStats()
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: partitions gained whose consumer is not yet rewound (not fetched from until it is)
        self._unwound: set[int] = set()

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self.run, name="watchkeeper-worker", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.ownership.close()

    def run(self) -> None:
        next_rebalance, backoff = 0.0, 0.1
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_rebalance:
                self._rebalance()
                next_rebalance = now + self.rebalance_seconds
            try:
                self._rewind()
                owned = sorted(self.ownership.owned - self._unwound)
                if not owned:
                    self.stop.wait(min(self.rebalance_seconds, 0.5))
                    next_rebalance = 0.0
                    continue
                got = self._fetch(owned)
                if got:
                    self._commit(got)
                backoff = 0.1
            except OwnershipLost as exc:
                log.warning("partition lost mid-batch: rebalancing", error=str(exc))
                next_rebalance = 0.0
            except Exception as exc:  # bus or database away: retried with backoff, never fatal
                self.stats.failures += 1
                log.warning("worker batch failed: retrying", error=f"{type(exc).__name__}: {exc}"[:300],
                            retry_in=round(backoff, 2))
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                next_rebalance = 0.0  # a lost connection may have taken the locks with it

    def _rebalance(self) -> None:
        try:
            gained, lost = self.ownership.rebalance()
        except Exception as exc:
            log.warning("rebalance failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        release = getattr(self.bus, "release", None)
        for p in lost:
            self._unwound.discard(p)
            if release is not None:
                try:
                    release(p)
                except Exception as exc:  # the subscription dies with the connection anyway
                    log.warning("release failed", partition=p, error=f"{type(exc).__name__}: {exc}"[:200])
        self._unwound |= gained
        self.stats.owned = sorted(self.ownership.owned)

    def _rewind(self) -> None:
        """Rewind the consumers of the partitions just gained: what a dead owner fetched but never
        acknowledged is delivered again, first and in order. Raises (retried) while NATS is away."""
        rewind = getattr(self.bus, "rewind", None)
        for p in sorted(self._unwound):
            if rewind is not None:
                rewind(p)
            self._unwound.discard(p)

    def _fetch(self, owned: list[int]) -> dict[int, Sequence[Delivery]]:
        many = getattr(self.bus, "fetch_many", None)
        if many is not None:
            got: dict[int, Sequence[Delivery]] = many(owned, self.batch, self.fetch_seconds)
        else:
            got = {p: self.bus.fetch(p, self.batch, self.fetch_seconds / len(owned)) for p in owned}
        return {p: d for p, d in got.items() if d}

    def _commit(self, got: dict[int, Sequence[Delivery]]) -> None:
        messages: list[Delivered] = []
        settle: list[Delivery] = []
        for partition, deliveries in got.items():
            for d in deliveries:
                try:
                    m = Message.decode(d.data)
                except ValueError as exc:  # not ours: acknowledged (never retried forever), logged
                    self.stats.bad += 1
                    log.error("undecodable bus message dropped", message_id=d.message_id, error=str(exc))
                    d.ack()
                    continue
                messages.append(Delivered(d.message_id, partition, m.source, m.events, m.actor))
                settle.append(d)
        if not messages:
            return
        try:
            results = self.service.ingest_delivered(messages, self.ownership.guard(sorted(got)))
        except BaseException:
            for d in settle:
                try:
                    d.nak(0.5)
                except BusUnavailable:  # NATS away too: redelivered after its ack wait
                    break
            raise
        ack_many = getattr(self.bus, "ack_many", None)
        if ack_many is not None:
            ack_many(settle)
        else:
            for d in settle:
                d.ack()
        for delivered, r in zip(messages, results, strict=True):
            self.stats.messages += 1
            if r.accepted == 0 and delivered.events:
                self.stats.skipped += 1
            self.stats.events += r.accepted
