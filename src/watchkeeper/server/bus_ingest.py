"""Ingest through the bus (``bus_url`` set): check and normalize the body here, publish one
message per partition it touches, answer 202 only once JetStream acknowledged every one; the
workers commit the events (docs/scaling.md). The bus away, slow or full → 503 + Retry-After.
Also ``/metrics``' consumer lag per partition."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from watchkeeper.bus import RETRY_AFTER, BusUnavailable
from watchkeeper.bus.base import messages_of
from watchkeeper.server.responses import Json, error
from watchkeeper.service import Watchkeeper

log = structlog.get_logger("watchkeeper.http")

#: Requests waiting for JetStream's acknowledgement at once; one more answers 503 at once
#: (the API never queues without bound while the bus is slow).
MAX_IN_FLIGHT = 512


class Publisher:
    """The ingest route's half of the bus: bounded in-flight publishes."""

    def __init__(self, service: Watchkeeper, bus: Any, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.service, self.bus, self.max_in_flight = service, bus, max_in_flight
        self.in_flight = 0
        self.refused = 0
        self._lock = threading.Lock()
        self.published: Counter | None = None
        if service.metrics is not None:  # events committed are counted by the worker (watchkeeper_events_ingested)
            self.published = Counter("watchkeeper_bus_published_events", "Events published to the bus and "
                                     "acknowledged by it, by source", ["source"], registry=service.metrics.registry)

    async def ingest(self, source: str, body: bytes, content_type: str | None, actor: str) -> Response:
        events = await run_in_threadpool(self.service.accept, source, body, content_type)  # 4xx: dead letter
        with self._lock:
            if self.in_flight >= self.max_in_flight:
                self.refused += 1
                return unavailable(f"{self.in_flight} requests are waiting for the bus; retry later")
            self.in_flight += 1
        try:
            await asyncio.gather(*(
                self.bus.publish_async(p, payload, mid)
                for p, payload, mid in messages_of(source, actor, events, uuid.uuid4().hex, self.bus.partitions)))
        except BusUnavailable as exc:
            self.refused += 1
            return unavailable(str(exc))
        finally:
            with self._lock:
                self.in_flight -= 1
        if self.published is not None:
            self.published.labels(source).inc(len(events))
        return Json({"accepted": len(events), "incidents": [], "opened": [], "queued": True}, status_code=202)


def unavailable(message: str) -> Response:
    found = error(503, message)
    found.headers["Retry-After"] = str(RETRY_AFTER)
    return found


class BusLag(Collector):
    """``watchkeeper_bus_consumer_lag{partition}``: messages not yet acknowledged; and
    ``watchkeeper_bus_up``: whether the bus answered."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily("watchkeeper_bus_up", "1 when the bus answered the lag query")
        try:
            lag = self.bus.lag()
        except Exception as exc:  # the scrape must not fail because the bus is away
            log.warning("bus lag unavailable", error=f"{type(exc).__name__}: {exc}"[:200])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily("watchkeeper_bus_consumer_lag",
                                   "Messages of the partition not yet acknowledged by its worker", labels=["partition"])
        for p, n in sorted(lag.items()):
            family.add_metric([str(p)], n)
        yield family
