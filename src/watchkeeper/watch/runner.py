"""The watch loop of ``serve``: every watch on its own schedule, against a Prometheus that may be
down, and never a crash.

:class:`Watcher` runs one daemon thread. Each watch is due every ``interval``; when its Prometheus
is unreachable or answers an error, the watch backs off exponentially (``interval`` × 2ⁿ, capped at
five minutes) and its status says why; the first success brings it back to its interval. Events go
to the injected ``ingest`` (``serve`` passes ``Watchkeeper.ingest_events``), so they are durable,
deduplicated and correlated like alerts; events that could not be ingested are kept and sent again
with the next evaluation. Detector state goes to the injected :class:`StateStore` every
``save_every`` evaluations of a watch and when the watcher stops.

Everything IO-shaped is injected (the store, the ingest, the Prometheus clients, the clock), so the
package stays free of the storage and server layers.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from watchkeeper.model import Event
from watchkeeper.telemetry import Metrics
from watchkeeper.watch.config import ForecastWatch, PrometheusEndpoint, Watch, WatchConfig
from watchkeeper.watch.engine import Evaluation, ForecastEngine, WatchEngine
from watchkeeper.watch.prometheus import PrometheusClient, PrometheusError

log = structlog.get_logger("watchkeeper.watch")

#: The longest a failing watch waits before trying again.
MAX_BACKOFF = 300.0
#: Events kept for a retry while ingesting fails (beyond that, the oldest are dropped and logged).
MAX_PENDING = 10_000


class StateStore(Protocol):
    """Where detector state lives between runs (``storage.watch.DetectorStateStore`` in ``serve``)."""

    def load(self, watch: str) -> dict[str, dict[str, Any]]: ...

    def save(self, watch: str, states: Mapping[str, Mapping[str, Any]], dropped: Sequence[str] = ()) -> None: ...


Ingest = Callable[[list[Event]], object]


@dataclass
class WatchStatus:
    """What a watch did last; :meth:`as_dict` is what ``/healthz`` shows."""

    name: str
    kind: str
    endpoint: str
    interval: float
    next_at: float = 0.0
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    evaluations: int = 0
    series: int = 0
    unlabelled: int = 0
    firing: int = 0
    pending_events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "endpoint": self.endpoint, "interval_seconds": self.interval,
            "ok": self.failures == 0 and self.last_ok_at is not None,
            "last_ok_at": _iso(self.last_ok_at), "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at), "consecutive_failures": self.failures,
            "evaluations": self.evaluations, "series": self.series, "series_without_service": self.unlabelled,
            "firing": self.firing, "pending_events": self.pending_events, "next_at": _iso(self.next_at),
        }


def backoff(interval: float, failures: int, cap: float = MAX_BACKOFF) -> float:
    """The wait after ``failures`` failures in a row: the interval, doubled per failure, capped.

    >>> [backoff(15.0, n) for n in (0, 1, 2, 3, 10)]
    [15.0, 30.0, 60.0, 120.0, 300.0]
    """
    return min(interval * 2.0 ** min(failures, 30), max(cap, interval))


class Watcher:
    """Evaluate every watch and forecast watch of ``config`` on its own schedule."""

    def __init__(
        self, config: WatchConfig, ingest: Ingest, store: StateStore | None = None, *,
        metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
        client_for: Callable[[PrometheusEndpoint], PrometheusClient] = PrometheusClient,
        save_every: int = 10, max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.config = config
        self.ingest = ingest
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.save_every = max(1, save_every)
        self.max_backoff = max_backoff
        self.engines: dict[str, WatchEngine | ForecastEngine] = {}
        for w in config.watches:
            self.engines[w.name] = WatchEngine(w)  # a bad detector or option: ConfigError, at start-up
        for f in config.forecasts:
            self.engines[f.name] = ForecastEngine(f)
        self._client_for = client_for
        self._clients: dict[str, PrometheusClient] = {}
        self.endpoints: dict[str, bool | None] = {p.name: None for p in config.prometheus}
        self._status: dict[str, WatchStatus] = {}
        for name, engine in self.engines.items():
            spec: Watch | ForecastWatch = engine.watch
            self._status[name] = WatchStatus(name, "anomaly" if isinstance(spec, Watch) else "forecast",
                                             config.endpoint(spec.prometheus).name, spec.interval)
        self._pending: dict[str, list[Event]] = {name: [] for name in self.engines}
        self._save_all: set[str] = set()
        self._loaded: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="watchkeeper-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop, save every watch's changed detector state and close the clients."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        for name in self.engines:
            self.save(name)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Per watch (keyed by name) and per endpoint (``up`` | ``down`` | ``unknown``)."""
        with self._lock:
            return {
                "watches": {name: s.as_dict() for name, s in self._status.items()},
                "endpoints": {name: "unknown" if up is None else "up" if up else "down"
                              for name, up in self.endpoints.items()},
            }

    def watch_status(self, name: str) -> WatchStatus:
        with self._lock:
            return self._status[name]

    # -- one evaluation ----------------------------------------------------------------------
    def evaluate(self, name: str) -> Evaluation | None:
        """Evaluate one watch now (its state loaded first); ingest its events; record the
        outcome and schedule the next evaluation. Returns None when it failed. Never raises for
        a Prometheus, ingest or store failure."""
        engine = self.engines[name]
        status = self._status[name]
        endpoint = self.config.endpoint(engine.watch.prometheus)
        self._load(name)
        started = self.clock()
        try:
            result = self._query(engine, endpoint, started)
        except PrometheusError as exc:
            # a retryable failure (refused, timeout, 5xx) means the endpoint is down; a rejected
            # query means it answered
            self._failed(status, str(exc), started, endpoint=endpoint.name, up=not exc.retryable)
            return None
        except Exception as exc:  # a bug or a surprise answer must not stop the other watches
            log.exception("watch.evaluation_failed", watch=name)
            self._failed(status, f"{type(exc).__name__}: {exc}", started)
            return None
        self._up(endpoint.name, True)
        sent = self._send(name, result.events)
        with self._lock:
            status.evaluations += 1
            status.series, status.unlabelled, status.firing = result.series, result.unlabelled, result.firing
            status.pending_events = len(self._pending[name])
            if sent:
                status.failures, status.last_ok_at = 0, started
                status.next_at = started + status.interval
            else:
                status.failures += 1
                status.last_error_at = started
                status.next_at = started + backoff(status.interval, status.failures, self.max_backoff)
        if self.metrics is not None:
            self.metrics.watch_evaluations.labels(name, "ok" if sent else "error").inc()
            self.metrics.watch_series.labels(name).set(result.series)
            self.metrics.watch_firing.labels(name).set(result.firing)
        if status.evaluations % self.save_every == 0:
            self.save(name)
        return result

    def _query(self, engine: WatchEngine | ForecastEngine, endpoint: PrometheusEndpoint, now: float) -> Evaluation:
        client = self._client(endpoint)
        if isinstance(engine, WatchEngine):
            samples = client.query(engine.watch.query)
            return engine.evaluate([(s.labels, s.at, s.value) for s in samples], now=now)
        f: ForecastWatch = engine.watch
        series = client.query_range(f.query, now - f.lookback, now, engine.step)
        return engine.evaluate([(s.labels, s.times, s.values) for s in series], now=now)

    def _client(self, endpoint: PrometheusEndpoint) -> PrometheusClient:
        client = self._clients.get(endpoint.name)
        if client is None:
            client = self._clients[endpoint.name] = self._client_for(endpoint)
        return client

    def _send(self, name: str, events: list[Event]) -> bool:
        """Ingest the events still pending and the new ones; keep them all when that fails."""
        batch = self._pending[name] + events
        if not batch:
            return True
        try:
            self.ingest(batch)
        except Exception as exc:
            log.warning("watch.ingest_failed", watch=name, events=len(batch), error=str(exc))
            if len(batch) > MAX_PENDING:
                log.error("watch.events_dropped", watch=name, dropped=len(batch) - MAX_PENDING)
                batch = batch[-MAX_PENDING:]
            self._pending[name] = batch
            with self._lock:
                self._status[name].last_error = f"cannot record events: {exc}"
            return False
        self._pending[name] = []
        return True

    def _failed(self, status: WatchStatus, error: str, at: float, endpoint: str | None = None,
                up: bool = False) -> None:
        if endpoint is not None:
            self._up(endpoint, up)
        with self._lock:
            status.failures += 1
            status.last_error, status.last_error_at = error, at
            status.next_at = at + backoff(status.interval, status.failures, self.max_backoff)
            failures, wait = status.failures, status.next_at - at
        log.warning("watch.query_failed", watch=status.name, error=error, failures=failures, retry_in=wait)
        if self.metrics is not None:
            self.metrics.watch_evaluations.labels(status.name, "error").inc()

    def _up(self, endpoint: str, up: bool) -> None:
        with self._lock:
            self.endpoints[endpoint] = up
        if self.metrics is not None:
            self.metrics.prometheus_up.labels(endpoint).set(1.0 if up else 0.0)

    # -- state -------------------------------------------------------------------------------
    def _load(self, name: str) -> None:
        if name in self._loaded:
            return
        self._loaded.add(name)
        if self.store is None:
            return
        engine = self.engines[name]
        try:
            states = self.store.load(name)
        except Exception as exc:
            log.warning("watch.state_unreadable", watch=name, error=str(exc))
            return
        if isinstance(engine, WatchEngine):
            bad = engine.load(states)
            if bad:
                log.info("watch.state_discarded", watch=name, series=len(bad))
        elif name in states:
            engine.load(states[name])

    def save(self, name: str) -> None:
        """Write the watch's changed detector state (all of it after a failed save)."""
        if self.store is None or name not in self._loaded:
            return
        engine = self.engines[name]
        if isinstance(engine, WatchEngine):
            states, dropped = engine.dump(changed_only=name not in self._save_all)
        else:
            states, dropped = {name: engine.dump()}, []
        try:
            self.store.save(name, states, dropped)
        except Exception as exc:
            log.warning("watch.state_not_saved", watch=name, error=str(exc))
            self._save_all.add(name)
        else:
            self._save_all.discard(name)

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        now = self.clock()
        due = [(now, name) for name in self.engines]
        heapq.heapify(due)
        while due and not self._stop.is_set():
            at, name = due[0]
            wait = at - self.clock()
            if wait > 0:
                if self._stop.wait(min(wait, 1.0)):
                    break
                continue
            heapq.heappop(due)
            try:
                self.evaluate(name)
                next_at = self._status[name].next_at
            except Exception:  # evaluate() catches everything it expects; this is the last net
                log.exception("watch.loop_error", watch=name)
                next_at = self.clock() + self._status[name].interval
            heapq.heappush(due, (next_at, name))


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()
