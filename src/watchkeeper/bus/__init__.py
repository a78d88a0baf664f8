"""The event bus: in-process (the default) or NATS JetStream for several API nodes and workers.

``base`` holds the protocol, the message format and the partitioning; ``memory`` the in-process
implementation, ``jetstream`` the NATS one, ``ownership`` who consumes which partition, ``worker``
the consumer that runs the pipeline (docs/scaling.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchkeeper.bus.base import RETRY_AFTER, Bus, BusUnavailable, Delivery, Message, partition_of, split

if TYPE_CHECKING:
    from watchkeeper.bus.jetstream import JetStreamBus
    from watchkeeper.settings import Settings

__all__ = ["RETRY_AFTER", "Bus", "BusUnavailable", "Delivery", "Message", "open_jetstream", "partition_of",
           "split"]


def open_jetstream(settings: Settings, *, check: bool = True, patience: float = 0.0) -> JetStreamBus:
    """The JetStream bus the settings name (``bus_url``); ``check``: the stream and consumers
    must exist (a ConfigError says to run ``watchkeeper bus init`` otherwise). ``patience``: for
    that many seconds a NATS that answers too slowly (starting, busy) is asked again, a line
    logged each time, instead of failing at once; what is wrong (nothing listens, no stream) still
    fails at once."""
    import time

    import structlog

    from watchkeeper.bus.jetstream import JetStreamBus
    from watchkeeper.errors import ConfigError

    if not settings.bus_url:
        raise ConfigError("no bus configured: set WATCHKEEPER_BUS_URL (e.g. nats://127.0.0.1:4222)")
    deadline = time.monotonic() + patience
    while True:
        try:
            return JetStreamBus.open(settings.bus_url, settings.bus_stream, settings.bus_partitions,
                                     settings.bus_publish_timeout_seconds, check=check)
        except BusUnavailable as exc:
            if time.monotonic() >= deadline:
                raise
            structlog.get_logger("watchkeeper.bus").warning("NATS slow to answer at start-up: asking again",
                                                            error=str(exc))
            time.sleep(1.0)
