"""Watchkeeper's own Prometheus metrics, on a registry of its own (one per app instance)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

M = TypeVar("M", Counter, Histogram)


class _ActiveIncidents(Collector):
    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "watchkeeper_open_incidents", "Incidents not yet resolved", value=self.count()
        )


class Metrics:
    def __init__(self, active_incidents: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "watchkeeper_events_ingested", "Events accepted durably, by source", ["source"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "watchkeeper_dead_letters", "Rejected ingest bodies kept in the dead-letter table",
            ["source", "status"], registry=self.registry,
        )
        self.pipeline_seconds = Histogram(
            "watchkeeper_pipeline_seconds",
            "From receipt of an ingest request to its incidents committed",
            ["source"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.watch_evaluations = Counter(
            "watchkeeper_watch_evaluations", "Watch evaluations, by watch and outcome (ok | error)",
            ["watch", "outcome"], registry=self.registry,
        )
        self.watch_series = Gauge(
            "watchkeeper_watch_series", "Series the watch's last successful query returned", ["watch"],
            registry=self.registry,
        )
        self.watch_firing = Gauge(
            "watchkeeper_watch_firing", "Series of the watch currently anomalous (or predicted to cross)",
            ["watch"], registry=self.registry,
        )
        self.prometheus_up = Gauge(
            "watchkeeper_watch_prometheus_up", "1 when the Prometheus endpoint answered its last query",
            ["endpoint"], registry=self.registry,
        )
        if active_incidents is not None:
            self.registry.register(_ActiveIncidents(active_incidents))
        self._made: dict[str, Counter | Histogram] = {}
        self._collectors: dict[str, Collector] = {}

    def collector(self, key: str, collector: Collector) -> None:
        """Register ``collector`` under ``key``, replacing the one a previous app over the same
        service registered (a scrape must not show a series twice)."""
        old = self._collectors.pop(key, None)
        if old is not None:
            self.registry.unregister(old)
        self.registry.register(collector)
        self._collectors[key] = collector

    def counter(self, name: str, documentation: str, labelnames: Iterable[str] = ()) -> Counter:
        """A counter on this registry, made once: a component built again for the same service (a second
        app over one ``Watchkeeper``, as tests and a reload do) counts on the same one."""
        return self._once(name, Counter, lambda: Counter(name, documentation, list(labelnames), registry=self.registry))

    def histogram(self, name: str, documentation: str, buckets: Iterable[float]) -> Histogram:
        """A histogram on this registry, made once (as :meth:`counter`)."""
        return self._once(name, Histogram,
                          lambda: Histogram(name, documentation, registry=self.registry, buckets=tuple(buckets)))

    def _once(self, name: str, kind: type[M], make: Callable[[], M]) -> M:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = make()
        assert isinstance(found, kind), f"{name} is already a {type(found).__name__}"
        return found
