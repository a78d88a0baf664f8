"""The bus on NATS JetStream (nats-py): one stream, a subject and a durable pull consumer per
partition. nats-py is asyncio; this class runs its own event loop on a daemon thread so that the
synchronous worker and the asyncio API both call it (``publish`` / ``publish_async``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from watchkeeper.bus.base import BusUnavailable, subject
from watchkeeper.errors import ConfigError

T = TypeVar("T")

#: How long JetStream remembers a message id to drop a retried publish (seconds).
DUPLICATE_WINDOW = 120.0
#: A message not acknowledged this long after delivery is delivered again (seconds).
ACK_WAIT = 30.0


def consumer_name(partition: int) -> str:
    return f"wk-p{partition}"


#: How often the start-up check asks for a missing consumer, 0.1 s apart (a peer's rewind re-creates it).
CHECK_ATTEMPTS = 30


@dataclass(slots=True)
class JsDelivery:
    bus: JetStreamBus
    msg: Msg

    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def message_id(self) -> str:
        headers = self.msg.headers or {}
        return headers.get("Nats-Msg-Id") or f"seq:{self.msg.metadata.sequence.stream}"

    def ack(self) -> None:
        self.bus._run(self.msg.ack_sync(timeout=self.bus.timeout))  # confirmed by the server

    def nak(self, delay: float = 0.0) -> None:
        self.bus._run(self.msg.nak(delay=delay or None))


class JetStreamBus:
    """Connect with :meth:`open`; ``check=True`` (serve, worker) verifies that ``watchkeeper bus
    init`` made the stream and its consumers, with a sentence saying so when not."""

    def __init__(self, url: str, stream: str, partitions: int, timeout: float = 2.0) -> None:
        self.url, self.stream, self.partitions, self.timeout = url, stream, partitions, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="watchkeeper-nats", daemon=True)
        self._thread.start()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[int, JetStreamContext.PullSubscription] = {}

    @classmethod
    def open(cls, url: str, stream: str, partitions: int, timeout: float = 2.0, *, check: bool = True) -> JetStreamBus:
        bus = cls(url, stream, partitions, timeout)
        try:
            try:
                bus._run(bus._connect(), timeout + 3)
            except BusUnavailable:
                raise ConfigError(f"cannot reach NATS at {url} within {timeout + 3:g} s; is nats-server running "
                                  "with JetStream (-js)?") from None
            if check:
                bus._run(bus._check(), timeout + 3)
        except BaseException:
            bus.close()
            raise
        return bus

    # -- plumbing ----------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout if timeout is not None else self.timeout + 1)
        except TimeoutError:
            future.cancel()
            raise BusUnavailable(f"NATS at {self.url} did not answer within {self.timeout:g} s; retry later") from None

    async def _connect(self) -> None:
        async def quiet(_exc: Exception) -> None:  # reconnects are retried; errors surface as 503s
            return None

        host, _, port = self.url.removeprefix("nats://").rpartition("@")[2].partition(":")
        try:  # first a plain TCP probe: nats-py's first connect retries without end when nothing listens
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port or 4222)), self.timeout)
            writer.close()
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach NATS at {self.url}: {exc or type(exc).__name__}; is nats-server "
                              "running with JetStream (-js)?") from None
        try:
            self._nc = await nats.connect(
                self.url, connect_timeout=max(1, int(self.timeout)), allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=quiet, name="watchkeeper",
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            raise ConfigError(f"cannot reach NATS at {self.url}: {exc or type(exc).__name__}; is nats-server "
                              "running with JetStream (-js)?") from None
        self._js = self._nc.jetstream(timeout=self.timeout)

    async def _check(self) -> None:
        js = self._jetstream()
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            raise ConfigError(f"the JetStream stream {self.stream!r} does not exist on {self.url}; "
                              "run 'watchkeeper bus init' first") from None
        except nats.js.errors.ServiceUnavailableError:
            raise ConfigError(f"NATS at {self.url} has no JetStream; start nats-server with -js") from None
        want = [subject(p) for p in range(self.partitions)]
        have = sorted(info.config.subjects or [])
        if have != sorted(want):
            raise ConfigError(f"the stream {self.stream!r} has {len(have)} partition subjects, the settings say "
                              f"{self.partitions} (bus_partitions); run 'watchkeeper bus init' with the same "
                              "settings everywhere")
        for p in range(self.partitions):
            for attempt in range(CHECK_ATTEMPTS):
                try:
                    await js.consumer_info(self.stream, consumer_name(p))
                    break
                except nats.js.errors.NotFoundError:
                    if attempt == CHECK_ATTEMPTS - 1:
                        raise ConfigError(f"the consumer {consumer_name(p)!r} of stream {self.stream!r} is missing; "
                                          "run 'watchkeeper bus init'") from None
                    # a running worker taking the partition over makes its consumer anew (rewind): the
                    # consumer is missing for a moment, not for good
                    await asyncio.sleep(0.1)

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("not connected to NATS")
        return self._js

    # -- set-up ------------------------------------------------------------------------------
    def init(self, max_messages: int) -> list[str]:
        """Create (or update) the stream and one durable consumer per partition; what was done."""
        try:
            return self._run(self._init(max_messages), self.timeout * (self.partitions + 4))
        except nats.js.errors.APIError as exc:
            raise ConfigError(f"JetStream refused the set-up of stream {self.stream!r}: {exc.description or exc} "
                              "(another stream already takes watchkeeper.events.*?)") from None

    async def _init(self, max_messages: int) -> list[str]:
        js, done = self._jetstream(), []
        config = StreamConfig(
            name=self.stream, subjects=[subject(p) for p in range(self.partitions)], storage=StorageType.FILE,
            # a work queue: a message leaves the stream once its partition's worker acknowledged it,
            # so max_msgs bounds the backlog (not the history) and a full stream means workers are behind
            retention=RetentionPolicy.WORK_QUEUE, discard=DiscardPolicy.NEW, max_msgs=max_messages,
            duplicate_window=DUPLICATE_WINDOW,
        )
        try:
            await js.stream_info(self.stream)
            await js.update_stream(config)
            done.append(f"stream {self.stream} updated: {self.partitions} partitions, at most {max_messages} messages")
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            done.append(f"stream {self.stream} created: {self.partitions} partitions, at most {max_messages} messages")
        for p in range(self.partitions):
            await js.add_consumer(self.stream, self._consumer_config(p))
            done.append(f"consumer {consumer_name(p)} on {subject(p)}")
        return done

    def _consumer_config(self, partition: int) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=consumer_name(partition), filter_subject=subject(partition), ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT, max_ack_pending=10_000, max_waiting=16, deliver_policy=DeliverPolicy.ALL,
        )

    # -- the protocol ------------------------------------------------------------------------
    def publish(self, partition: int, payload: bytes, message_id: str) -> None:
        self._run(self._publish(partition, payload, message_id), self.timeout + 1)

    async def publish_async(self, partition: int, payload: bytes, message_id: str) -> None:
        """``publish`` for a caller on another event loop (the API): awaits without blocking it."""
        future = asyncio.run_coroutine_threadsafe(self._publish(partition, payload, message_id), self._loop)
        await asyncio.wrap_future(future)

    async def _publish(self, partition: int, payload: bytes, message_id: str) -> None:
        if self._nc is None or not self._nc.is_connected:  # never buffer while NATS is away
            raise BusUnavailable(f"NATS at {self.url} is unreachable; retry later")
        try:
            await self._jetstream().publish(subject(partition), payload, timeout=self.timeout, stream=self.stream,
                                            headers={"Nats-Msg-Id": message_id})
        except nats.js.errors.APIError as exc:
            raise BusUnavailable(f"JetStream refused the message ({exc.description or exc}); retry later") from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise BusUnavailable(f"JetStream did not acknowledge ({type(exc).__name__}); retry later") from None

    def fetch(self, partition: int, batch: int, timeout: float) -> Sequence[JsDelivery]:
        msgs = self._run(self._fetch(partition, batch, timeout), timeout + self.timeout + 1)
        return [JsDelivery(self, m) for m in msgs]

    async def _fetch(self, partition: int, batch: int, timeout: float) -> list[Msg]:
        if self._nc is None or not self._nc.is_connected:
            raise BusUnavailable(f"NATS at {self.url} is unreachable")
        sub = self._subs.get(partition)
        if sub is None:
            sub = await self._jetstream().pull_subscribe_bind(consumer_name(partition), self.stream)
            self._subs[partition] = sub
        try:
            return await sub.fetch(batch, timeout=max(timeout, 0.05))
        except (nats.errors.TimeoutError, TimeoutError):
            return []

    def fetch_many(self, partitions: Sequence[int], batch: int, timeout: float) -> dict[int, list[JsDelivery]]:
        """``fetch`` on several partitions at once (one wait for all, not one per partition)."""
        async def gather() -> list[list[Msg] | BaseException]:
            return await asyncio.gather(*(self._fetch(p, batch, timeout) for p in partitions), return_exceptions=True)

        got = self._run(gather(), timeout + self.timeout + 1)
        out: dict[int, list[JsDelivery]] = {}
        for p, msgs in zip(partitions, got, strict=True):
            if isinstance(msgs, BaseException):
                if isinstance(msgs, BusUnavailable):
                    raise msgs
                raise BusUnavailable(f"fetching partition {p} failed: {type(msgs).__name__}: {msgs}")
            out[p] = [JsDelivery(self, m) for m in msgs]
        return out

    def ack_many(self, deliveries: Sequence[JsDelivery]) -> None:
        """Acknowledge a batch in one hop to the loop (not one per message); the last one waits for
        the server's confirmation (a consumer handles its acks in order, so all are applied then)."""
        async def acks() -> None:
            for d in deliveries[:-1]:
                await d.msg.ack()
            if deliveries:
                await deliveries[-1].msg.ack_sync(timeout=self.timeout)

        self._run(acks(), self.timeout + 5)

    def rewind(self, partition: int) -> None:
        """On taking a partition over: deliver again, in order, everything not yet acknowledged
        (what a dead owner fetched but never acknowledged), instead of after ACK_WAIT and behind
        newer messages: the consumer is made anew, and in a work-queue stream what is left is
        exactly what was never acknowledged. The messages are idempotent: twice is safe."""
        self._run(self._rewind(partition), self.timeout * 4)

    async def _rewind(self, partition: int) -> None:
        js = self._jetstream()
        sub = self._subs.pop(partition, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(self.stream, consumer_name(partition))
        await js.add_consumer(self.stream, self._consumer_config(partition))

    def release(self, partition: int) -> None:
        """Stop consuming ``partition`` (another worker owns it now)."""
        sub = self._subs.pop(partition, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                self._run(sub.unsubscribe())

    def lag(self) -> dict[int, int]:
        """Messages not yet acknowledged, per partition (pending + delivered unacknowledged)."""
        return self._run(self._lag(), self.timeout * 2)

    async def _lag(self) -> dict[int, int]:
        js, out = self._jetstream(), {}
        for p in range(self.partitions):
            info = await js.consumer_info(self.stream, consumer_name(p))
            out[p] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                self._run(self._nc.close(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
