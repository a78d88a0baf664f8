"""The in-process bus: the :class:`~watchkeeper.bus.base.Bus` protocol in memory, bounded.

Nothing here is durable, so ``serve`` without a bus URL does not route ingest through it: the
request commits its events itself (the default, unchanged path). This implementation serves the
protocol's tests and a worker run inside one process (tests, the benchmark's baseline)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from watchkeeper.bus.base import BusUnavailable


@dataclass(slots=True)
class _Delivery:
    bus: InProcessBus
    partition: int
    seq: int
    message_id: str
    data: bytes
    settled: bool = field(default=False)

    def ack(self) -> None:
        self.bus._settle(self, redeliver=False)

    def nak(self, delay: float = 0.0) -> None:  # redelivered on the next fetch
        self.bus._settle(self, redeliver=True)


class InProcessBus:
    """Per partition a bounded queue; a fetched message stays owed until acked, a nak puts it
    back at the head (order kept).

    >>> bus = InProcessBus(2, max_messages=10)
    >>> bus.publish(1, b"a", "m1"); bus.publish(1, b"b", "m2")
    >>> got = bus.fetch(1, 10, 0); [d.data for d in got]
    [b'a', b'b']
    >>> got[1].ack(); got[0].nak(); bus.lag()
    {0: 0, 1: 1}
    >>> [d.data for d in bus.fetch(1, 10, 0)]
    [b'a']
    """

    def __init__(self, partitions: int, max_messages: int = 100_000) -> None:
        self.partitions = partitions
        self.max_messages = max_messages
        self._queues: list[deque[tuple[int, str, bytes]]] = [deque() for _ in range(partitions)]
        self._inflight: list[list[_Delivery]] = [[] for _ in range(partitions)]
        self._ids: set[str] = set()
        self._seq = 0
        self._cond = threading.Condition()

    def publish(self, partition: int, payload: bytes, message_id: str) -> None:
        with self._cond:
            if message_id in self._ids:
                return  # a retried publish: already held (JetStream's duplicate window does the same)
            if sum(len(q) for q in self._queues) >= self.max_messages:
                raise BusUnavailable("the in-process bus is full; retry later")
            self._seq += 1
            self._queues[partition].append((self._seq, message_id, payload))
            self._ids.add(message_id)
            self._cond.notify_all()

    def fetch(self, partition: int, batch: int, timeout: float) -> Sequence[_Delivery]:
        deadline = time.monotonic() + timeout
        with self._cond:
            queue = self._queues[partition]
            while not queue and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            out: list[_Delivery] = []
            while queue and len(out) < batch:
                seq, mid, data = queue.popleft()
                out.append(_Delivery(self, partition, seq, mid, data))
            self._inflight[partition].extend(out)
            return out

    def _settle(self, d: _Delivery, *, redeliver: bool) -> None:
        with self._cond:
            if d.settled:
                return
            d.settled = True
            self._inflight[d.partition].remove(d)
            if redeliver:  # back in sequence order
                queue = self._queues[d.partition]
                at = next((i for i, item in enumerate(queue) if item[0] > d.seq), len(queue))
                queue.insert(at, (d.seq, d.message_id, d.data))
                self._cond.notify_all()

    def lag(self) -> dict[int, int]:
        """Messages not yet acknowledged, per partition."""
        with self._cond:
            return {p: len(self._queues[p]) + len(self._inflight[p]) for p in range(self.partitions)}

    def close(self) -> None:
        pass
