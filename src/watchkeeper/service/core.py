"""The service's shared state: settings, clock, database, correlation configuration, governance."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from watchkeeper.changes import ChangeLog
from watchkeeper.correlate.config import load_config as load_correlation
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import ConfigError
from watchkeeper.governance import Governance
from watchkeeper.integrations.routing import Router
from watchkeeper.pipeline import State
from watchkeeper.settings import Settings
from watchkeeper.sources import Source, registry
from watchkeeper.storage import Database, ingest, queries
from watchkeeper.storage.outbox import OutboxHook
from watchkeeper.telemetry import Metrics
from watchkeeper.value.shipped import correlation_model
from watchkeeper.value.usedmodels import ModelsInUse

if TYPE_CHECKING:
    from watchkeeper.service.access import Principal
    from watchkeeper.service.ingest import _Pending


class Core:
    """What every part of the service shares: settings, clock, database, the correlation
    configuration, governance and the change log; the parts (access, ingest, incidents) add
    their methods to it and :class:`~watchkeeper.service.Watchkeeper` joins them."""

    def __init__(
        self, settings: Settings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database_url)
        self.router = Router(settings.routes, settings.integrations.accepts())  # ConfigError: unknown targets
        self.db.audit_hook = OutboxHook(self.router.targets) if self.router else None
        self.sources: dict[str, Source] = registry()
        self.config = PipelineConfig(
            window=timedelta(seconds=settings.correlation_window_seconds),
            auto_resolve=settings.auto_resolve,
        )
        self._config_stamp: float | None = None
        #: the correlation configuration as a model version (taken at load: strategies learn as they run)
        self.correlation_model = correlation_model(self.config)
        self.reload_correlation(strict=True)
        self.metrics = Metrics(self.active_incidents) if metrics else None
        #: pipeline state kept between ingest requests: (audit head after our commit, state, loaded, config)
        self._kept: tuple[int, State, ingest.Loaded, PipelineConfig] | None = None
        self._tokens: dict[str, tuple[float, Principal]] = {}
        self._ingest_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self.governance = Governance.from_directory(self.db, clock, settings.runbooks_dir,
                                                    lease_seconds=settings.action_lease_seconds,
                                                    workers=settings.action_workers)
        self.changelog = ChangeLog(self.db, clock, settings.rca.change_window)
        # every decision names the model versions it used (docs/value.md)
        self.governance.responder.models = ModelsInUse(lambda: self.correlation_model, settings.watch.watches)

    # -- lifecycle -------------------------------------------------------------------------
    def upgrade(self) -> None:
        self.db.upgrade()

    def close(self) -> None:
        self.db.dispose()

    def reload_correlation(self, *, strict: bool = False) -> bool:
        """(Re)load ``correlation_config`` if it changed. At start-up an invalid file is fatal;
        later, a bad edit keeps the last good configuration and is logged. True if reloaded."""
        path = self.settings.correlation_config
        if path is None:
            return False
        try:
            stamp = path.stat().st_mtime
        except OSError as exc:
            if strict:
                raise ConfigError(f"cannot read correlation config {path}: {exc}") from exc
            return False
        if stamp == self._config_stamp:
            return False
        self._config_stamp = stamp
        try:
            self.config = load_correlation(path).pipeline(path.parent)
            self.correlation_model = correlation_model(self.config)
        except ConfigError as exc:
            if strict:
                raise
            structlog.get_logger("watchkeeper").error("correlation config not reloaded", error=str(exc))
            return False
        return True

    def active_incidents(self) -> int:
        with self.db.read() as conn:
            return queries.count_active_incidents(conn)


def _no_ids() -> int:
    raise AssertionError("computing keys never opens an incident")
