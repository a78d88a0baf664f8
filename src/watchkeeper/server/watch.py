"""Wiring of the watch loop into ``serve``: the core :class:`~watchkeeper.watch.runner.Watcher` with
the service's ingest, the database's detector-state table and the app's metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchkeeper.service import Watchkeeper

if TYPE_CHECKING:
    from watchkeeper.watch.runner import Watcher


def make_watcher(service: Watchkeeper) -> Watcher | None:
    """The watch loop for ``settings.watch`` (None when it has no watches): events committed
    through :meth:`Watchkeeper.ingest_events` as source ``watch``, so they dedup and correlate like
    alerts; detector state in the ``detector_state`` table."""
    config = service.settings.watch
    if not config.watches and not config.forecasts:
        return None
    from watchkeeper.storage.watch import DetectorStateStore  # the detectors (numpy, scipy) only when watching
    from watchkeeper.watch.runner import Watcher

    return Watcher(config, lambda events: service.ingest_events("watch", events, actor="watch"),
                   DetectorStateStore(service.db, service.clock), metrics=service.metrics)
