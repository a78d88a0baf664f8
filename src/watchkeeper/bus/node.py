"""A worker node: the bus consumer plus the loop ``serve`` runs behind its API — ranking,
decisions (the responder), actions, the outbox's delivery and retention. Used by
``watchkeeper worker`` and by ``watchkeeper serve`` with a bus (unless ``--no-worker``)."""

from __future__ import annotations

from typing import Any

from watchkeeper.bus.jetstream import JetStreamBus
from watchkeeper.bus.ownership import PgOwnership, SoloOwnership
from watchkeeper.bus.worker import Worker
from watchkeeper.service import Watchkeeper


def make_worker(service: Watchkeeper, bus: JetStreamBus, *, batch: int = 500) -> Worker:
    """The consumer: ownership through PostgreSQL advisory locks, or all partitions on SQLite."""
    settings = service.settings
    ownership: Any = (SoloOwnership(settings.bus_partitions) if service.db.is_sqlite
                      else PgOwnership(service.db.engine, settings.bus_partitions, settings.bus_stream))
    return Worker(service, bus, ownership, batch=batch, rebalance_seconds=settings.bus_lease_seconds)


class WorkerNode:
    """``start`` the consumer and the loop's threads; ``stop`` them in reverse order."""

    def __init__(self, service: Watchkeeper, bus: JetStreamBus, *, loop: bool = True, batch: int = 500) -> None:
        self.service, self.bus, self.loop = service, bus, loop
        self.worker = make_worker(service, bus, batch=batch)
        self._stops: list[Any] = []

    def start(self) -> WorkerNode:
        self.worker.start()
        self._stops.append(self.worker.close)
        if not self.loop:
            return self
        from watchkeeper.integrations.runtime import Integrations
        from watchkeeper.ranking import make_ranker
        from watchkeeper.retention import Pruner

        service = self.service
        if service.governance.catalog.runbooks:
            service.governance.start(service.settings.responder_interval_seconds)
            self._stops.append(service.governance.stop)
        ranker = make_ranker(service)
        if ranker is not None:
            ranker.start()
            self._stops.append(ranker.stop)
        integrations = Integrations(service)
        integrations.start()
        self._stops.append(integrations.stop)
        if service.settings.retention_days > 0:
            self._stops.append(Pruner(service.prune).start().stop)
        return self

    def stop(self) -> None:
        while self._stops:
            self._stops.pop()()
