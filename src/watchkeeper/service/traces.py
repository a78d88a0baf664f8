"""Traces in the server: OTLP exports → durable spans → RED rows, the call graph, trace anomalies.

:meth:`Traces.export` decodes one OTLP/HTTP body (:mod:`watchkeeper.traces.otlp`), commits its spans
(the answer is sent only after that commit: nothing acknowledged is lost) and hands them to the
streaming :class:`~watchkeeper.traces.red.RedAggregator`. Steps the aggregator closes — at an export,
or by the flusher thread when no span arrives — are written as RED rows, scored for anomalies
(:mod:`watchkeeper.traces.anomaly`; the events go through the same ingest and correlation as alerts,
with exemplar trace ids), and refresh the call graph merged into the service topology.

The detectors' baselines are saved in ``detector_state`` with each step written and loaded at the
first step after a restart; the aggregator's open steps are in memory only (their spans are stored).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import networkx as nx
import structlog
from sqlalchemy import Connection

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.correlate.strategies import Topology
from watchkeeper.errors import InputError
from watchkeeper.model import Change, Event
from watchkeeper.retention import CHUNK, Pruned
from watchkeeper.service.group import GroupCommit
from watchkeeper.storage import audit
from watchkeeper.storage import traces as store
from watchkeeper.storage.db import Database
from watchkeeper.storage.watch import DetectorStateStore
from watchkeeper.telemetry import Metrics
from watchkeeper.traces import otlp
from watchkeeper.traces.anomaly import SOURCE, Anomalies
from watchkeeper.traces.config import TracesConfig
from watchkeeper.traces.red import RedAggregator
from watchkeeper.traces.rows import RedRow, rows_of

if TYPE_CHECKING:
    from watchkeeper.service import Watchkeeper

log = structlog.get_logger("watchkeeper.traces")

#: The dead letters' source name for refused exports.
DEAD_LETTER_SOURCE = "otlp-traces"
#: An inflated (gzip) body may be this many times ``max_body_bytes``.
INFLATE_FACTOR = 16
#: Exemplar trace ids per anomaly event.
EXEMPLARS = 5


class Traces:
    """The traces of one server: export, flush, topology, prune."""

    def __init__(self, service: Watchkeeper, cfg: TracesConfig | None = None) -> None:
        self.service = service
        self.cfg = cfg if cfg is not None else service.settings.traces
        self.db: Database = service.db
        self.aggregator = RedAggregator(self.cfg.step_s, lateness_s=self.cfg.lateness_s, max_spans=self.cfg.max_spans)
        self.anomalies = Anomalies(self.cfg.anomalies) if self.cfg.anomalies.enabled else None
        self._lock = threading.Lock()  # the aggregator and the detectors
        self._group: GroupCommit[list[tuple[Any, ...]]] = GroupCommit(self._insert, retry_alone=True)
        self._states = DetectorStateStore(self.db, service.clock)
        self._restored = self.anomalies is None
        self._graph: nx.DiGraph | None = None
        self._graph_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The correlation configuration whose topology strategies last learned the traces' edges, and how many.
        self._taught: tuple[PipelineConfig, int] | None = None
        self.spans = 0
        self.rejected = 0
        self.red_rows = 0
        self.events = 0
        # no metrics wanted: a registry of its own (never the process-wide one, where a second server would clash)
        metrics = service.metrics if service.metrics is not None else Metrics()
        self._spans = metrics.counter("watchkeeper_spans",
                                      "Spans taken by POST /v1/traces, by outcome (accepted, rejected)", ["outcome"])
        self._red = metrics.counter("watchkeeper_trace_red_rows", "RED rows written from traces")

    def now(self) -> float:
        return self.service.clock().timestamp()

    # -- in --------------------------------------------------------------------------------------------
    def export(self, body: bytes, content_type: str | None, encoding: str | None) -> otlp.Decoded:
        """Decode, commit and aggregate one export; an :class:`InputError` (kept as a dead letter)
        when the body is not one."""
        limit = self.service.settings.max_body_bytes
        try:
            media = otlp.media_of(content_type)
            decoded = otlp.decode(otlp.inflate(body, encoding, limit * INFLATE_FACTOR), media)
        except InputError as exc:
            self.service.dead_letter(DEAD_LETTER_SOURCE, body, exc, content_type, size=len(body))
            raise
        now = self.now()
        if decoded.spans:  # concurrent exports share a commit (one fsync), each answered after it
            self._group.submit(store.span_rows(decoded.spans, now))
        self.spans += len(decoded.spans)
        self.rejected += decoded.rejected
        self._spans.labels("accepted").inc(len(decoded.spans))
        if decoded.rejected:
            self._spans.labels("rejected").inc(decoded.rejected)
        if decoded.spans:
            with self._lock:
                self.aggregator.add_many(decoded.spans)
            self.flush(now)
        return decoded

    def _insert(self, groups: list[list[tuple[Any, ...]]]) -> None:
        with self.db.write() as conn:
            store.insert_spans(conn, groups[0] if len(groups) == 1 else [row for rows in groups for row in rows])

    # -- RED, anomalies ---------------------------------------------------------------------------------
    def flush(self, now: float | None = None, *, final: bool = False) -> list[RedRow]:
        """Write the steps the aggregator closed by ``now``; score them; the rows written."""
        now = self.now() if now is None else now
        with self._lock:
            self._restore()
            rows = rows_of(self.aggregator.flush(now=now, final=final), self.cfg.step_s)
            events = self.anomalies.observe(rows) if self.anomalies is not None and rows else []
            if rows and self.anomalies is not None:
                for engine in self.anomalies.engines.values():  # the baselines survive a restart
                    self._states.save(engine.watch.name, *engine.dump())
        if not rows:
            return rows
        with self.db.write() as conn:
            store.insert_red(conn, rows)
        self.red_rows += len(rows)
        self._red.inc(len(rows))
        if any(r.scope == "edge" for r in rows):
            with self._graph_lock:
                self._graph = None  # read again on the next use
        self.teach_correlation()
        if events:
            self._raise(events)
        return rows

    def _restore(self) -> None:
        """Load the detectors' saved baselines (table ``detector_state``, under the names
        ``trace.latency_p95`` and ``trace.error_ratio``) once, at the first flush."""
        if self._restored or self.anomalies is None:
            return
        for engine in self.anomalies.engines.values():
            bad = engine.load(self._states.load(engine.watch.name))
            if bad:
                log.warning("trace detectors start afresh (their saved state no longer fits)", series=len(bad))
        self._restored = True

    def _raise(self, events: list[Event]) -> None:
        with self.db.read() as conn:
            events = [self._with_exemplars(conn, e) for e in events]
        self.service.ingest_events(SOURCE, events, "system:traces")
        self.events += len(events)

    def _with_exemplars(self, conn: Connection, e: Event) -> Event:
        step = float(e.raw.get("step") or self.cfg.step_s)
        start = e.starts_at.timestamp() - step
        end = (e.ends_at or e.starts_at).timestamp()
        edge = e.labels.get("edge")
        caller = edge.split("->", 1)[0] if edge else None
        found = store.exemplars(conn, e.service, start, end, caller=caller, n=EXEMPLARS)
        return replace(e, raw={**e.raw, "exemplars": found})

    # -- the call graph -------------------------------------------------------------------------------
    def graph(self) -> nx.DiGraph:
        """The service graph seen in traces over the last ``topology_hours``: caller → callee with
        ``calls``, ``errors`` and ``rate`` (calls per second over the steps that saw calls)."""
        with self._graph_lock:
            if self._graph is None:
                since = self.now() - self.cfg.topology_hours * 3600
                with self.db.read() as conn:
                    edges = store.recent_edges(conn, since)
                g = nx.DiGraph()
                for name, calls, errors, seconds, last in edges:
                    caller, _, callee = name.partition("->")
                    if caller and callee and caller != callee:
                        g.add_edge(caller, callee, calls=calls, errors=errors,
                                   rate=calls / seconds if seconds else 0.0, last_seen=last)
                self._graph = g
            return self._graph.copy()

    def merged(self, configured: nx.DiGraph) -> nx.DiGraph:
        """``configured`` with the traces' edges added (``sources`` gains ``traces``; ``calls`` and
        ``rate`` from traces). The configured graph wins on conflicts: a trace edge against a
        configured one (b → a where a → b is configured) is left out."""
        return merge(configured, self.graph())

    def teach_correlation(self) -> int:
        """Give the correlation's ``topology`` strategies (when one is configured) the edges seen in
        traces, as they learn edges from alert labels: an alert on a caller then joins its callee's
        incident. The configured direction wins; a reloaded configuration is taught again. Returns
        the edges added."""
        config = self.service.config
        g = self.graph()
        if self._taught is not None and self._taught[0] is config and self._taught[1] == g.number_of_edges():
            return 0
        added = 0
        topologies = [s for s in config.strategies if isinstance(s, Topology)]
        if topologies:
            with self.service._ingest_lock:  # the strategies are read while alerts are correlated
                for strategy in topologies:
                    added += sum(strategy.add_edge(str(a), str(b)) for a, b in g.edges)
        self._taught = (config, g.number_of_edges())
        return added

    # -- the flusher thread ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="watchkeeper-traces", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def last_flush(self) -> None:
        """The steps still open, written at shutdown; with the database away they are lost (the raw
        spans are stored), said in the log — a stop never fails for it."""
        try:
            self.flush()
        except Exception as exc:
            log.warning("the last RED rows were not written at shutdown", error=str(exc))

    def _run(self) -> None:
        every = min(max(self.cfg.step_s / 4, 0.5), 5.0)
        while not self._stop.wait(every):
            try:
                self.flush()
                self.teach_correlation()  # again after the correlation configuration was reloaded
            except Exception as exc:  # the database is down: the next turn tries again
                log.warning("writing RED rows failed", error=str(exc))

    def status(self) -> dict[str, int]:
        return {"spans": self.spans, "rejected": self.rejected, "red_rows": self.red_rows, "events": self.events,
                "held": len(self.aggregator), "late": self.aggregator.late, "forced": self.aggregator.forced}

    # -- retention ---------------------------------------------------------------------------------------
    def prune(self) -> Pruned:
        """Prune spans and RED rows alone (the retention job does it with the events; this is for a
        server whose event retention is off)."""
        now = self.service.clock()
        spans, red = prune(self.db, self.cfg, now)
        if spans or red:
            with self.db.write() as conn:
                audit.append(conn, "system:retention", [Change("retention.pruned", "retention", now, {
                    "before": now, "spans": spans, "red_rows": red})])
        return Pruned(now, spans=spans, red_rows=red)


def merge(configured: nx.DiGraph, traced: nx.DiGraph) -> nx.DiGraph:
    """See :meth:`Traces.merged`.

    >>> conf = nx.DiGraph(); conf.add_edge("web", "db", sources=["settings"])
    >>> seen = nx.DiGraph(); seen.add_edge("web", "db", calls=4, rate=0.1)
    >>> seen.add_edge("db", "web", calls=1, rate=0.0)
    >>> seen.add_edge("web", "cache", calls=9, rate=0.2)
    >>> g = merge(conf, seen)
    >>> sorted((a, b, d["sources"]) for a, b, d in g.edges(data=True))
    [('web', 'cache', ['traces']), ('web', 'db', ['settings', 'traces'])]
    >>> g.edges["web", "db"]["calls"]
    4
    """
    g = configured.copy()
    for a, b, d in traced.edges(data=True):
        if configured.has_edge(b, a) and not configured.has_edge(a, b):
            continue  # the configured direction wins
        attrs = {k: d[k] for k in ("calls", "errors", "rate") if k in d}
        if g.has_edge(a, b):
            sources = list(g.edges[a, b].get("sources", []))
            if "traces" not in sources:
                sources.append("traces")
            g.edges[a, b].update(attrs, sources=sources)
        else:
            g.add_edge(a, b, sources=["traces"], **attrs)
    return g


def prune(db: Database, cfg: TracesConfig, now: datetime, chunk: int = CHUNK) -> tuple[int, int]:
    """Delete spans received more than ``raw_hours`` ago, then the oldest beyond ``max_mb``, and RED
    rows older than ``red_days``, a chunk per transaction; ``(spans, RED rows)`` deleted."""
    spans = red = 0
    r = cfg.retention
    if r.raw_hours > 0:
        before = (now - timedelta(hours=r.raw_hours)).timestamp()
        spans += _chunks(db, lambda conn: store.delete_spans_before(conn, before, chunk), chunk)
    if r.max_mb > 0:
        cap = int(r.max_mb * 1024 * 1024)
        with db.read() as conn:
            over = store.spans_bytes(conn) - cap
        while over > 0:
            with db.write() as conn:
                deleted, freed = store.delete_oldest_spans(conn, over, chunk)
            spans += deleted
            over -= freed
            if not deleted:
                break
    if r.red_days > 0:
        before = (now - timedelta(days=r.red_days)).timestamp()
        red += _chunks(db, lambda conn: store.delete_red_before(conn, before, chunk), chunk)
    return spans, red


def _chunks(db: Database, delete: Callable[[Connection], int], chunk: int) -> int:
    total = 0
    while True:
        with db.write() as conn:
            deleted = delete(conn)
        total += deleted
        if deleted < chunk:
            return total


__all__ = ["DEAD_LETTER_SOURCE", "Traces", "merge", "prune"]
