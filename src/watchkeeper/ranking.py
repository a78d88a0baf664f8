"""Root-cause ranking inside ``serve``: the :class:`Ranker` daemon.

Every ``rca.rerank`` seconds it looks at the active incidents at least ``rca.delay`` old, and ranks
each one (again while its evidence window is still filling, and whenever it gains a service):

1. the onset: the incident's opening, or its first alert's start when earlier;
2. the evidence: the service graph (``topology:`` merged with correlation's service graphs), every
   ``rca: true`` watch's series from ``onset − reference`` to ``min(now, onset + window)`` through a
   :class:`SeriesSource` (Prometheus in production, anything in tests), one metric per series named
   after the watch (``name@resource`` with a resource label), its harmful side and floor from the
   watch's ``direction`` and ``floor``; the recorded changes still in effect;
3. :func:`watchkeeper.rca.rank` with the configured (or shipped) calibration;
4. :meth:`Governance.set_causes` (stored, audited ``incident.causes_ranked``, the policy re-decides)
   only when the top three components changed, or the top cause's doubts came or went (its confidence
   capped by what the ranking could not rule out yet, :mod:`watchkeeper.rca.doubt`), so reranking
   writes no audit noise. Causes a person
   recorded (another model) are left alone.

Each of the top causes also carries ``evidence.series``: its top metrics around the onset (from
``window`` before it to ``window`` after), at most :data:`PLOT_POINTS` points each, and
``evidence.series_onset`` (the incident's onset), which the console draws as a line chart. While the
evidence window fills, a ranking whose top three did not change refreshes only these series of the
stored causes (same scores and confidences, nothing audited), so the plot grows with the window.

Traces and logs, when a :class:`TraceSource` / :class:`LogSource` is plugged in (``Ranker(...,
traces=..., logs=...)``; none by default), add their evidence: the trace RED series of the services
(``watchkeeper.traces.red`` names; the call graph is read from the edge series' names and merged with
the topology) and each service's log anomaly score. A source that fails is logged and left out: the
ranking goes on with the metrics.

A Prometheus that is down never stops the loop: the error is counted (``watchkeeper_rca_errors_total``),
logged once per burst, and shown in ``/healthz`` under ``details.rca``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import networkx as nx
import numpy as np
import structlog
from prometheus_client import Counter

from watchkeeper import changes as changelog
from watchkeeper import rca
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.model import Cause, Change, Incident, utc
from watchkeeper.rca.calibration import CALIBRATION, fit
from watchkeeper.rca.scoring import Array
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit, queries
from watchkeeper.storage import changes as store
from watchkeeper.storage import governance as governance_store
from watchkeeper.topology import config as topology_config
from watchkeeper.watch.config import PrometheusEndpoint, RcaConfig, Watch, WatchConfig
from watchkeeper.watch.prometheus import PrometheusClient, RangeSeries

log = structlog.get_logger("watchkeeper.rca")

#: How many of the top causes must stay the same for a new ranking not to be stored.
TOP = 3
#: At most this many points per plotted series of a cause's evidence (bounded JSON size).
PLOT_POINTS = 60
#: Plotted series per cause: its top metrics, at most this many.
PLOT_SERIES = 3


class SeriesSource(Protocol):
    """Where the ranker gets a watch's series over a time range (unix seconds)."""

    def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]: ...


class TraceSource(Protocol):
    """Trace RED series (``watchkeeper.traces.red`` names, edge series on the callee) from ``start`` to
    ``end`` (unix seconds): at least the given services; more is welcome (the calls reveal dependencies)."""

    def series(self, services: Sequence[str], start: float, end: float
               ) -> Mapping[str, Mapping[str, tuple[Array, Array]]]: ...


class LogSource(Protocol):
    """Each service's log anomaly score after ``start`` (a float on the scale of a robust z, or an
    :class:`watchkeeper.rca.LogAnomaly` naming its templates)."""

    def anomalies(self, services: Sequence[str], start: float, end: float, graph: nx.DiGraph | None = None
                  ) -> Mapping[str, float | rca.LogAnomaly]: ...


def trace_graph(series: Mapping[str, Mapping[str, object]]) -> nx.DiGraph:
    """The call graph the edge series' names show (``edge:<caller>-><callee>.<stat>`` on the callee).

    >>> sorted(trace_graph({"db": {"edge:web->db.rate": 0, "trace.rate": 0}}).edges)
    [('web', 'db')]
    """
    g = nx.DiGraph()
    for callee, per in series.items():
        g.add_node(callee)
        for name in per:
            if name.startswith("edge:"):
                caller, _, rest = name[5:].partition("->")
                if caller and rest.rpartition(".")[0] == callee:
                    g.add_edge(caller, callee)
    return g


def _optional(what: str, fetch: Callable[[], Any]) -> Any:
    """A trace or log source's answer, or ``None`` when it failed (logged): metrics still rank."""
    try:
        return fetch()
    except Exception as exc:  # a plug-in source must not stop the ranking
        log.warning("rca.source_failed", source=what, error=str(exc))
        return None


class PrometheusSource:
    """A :class:`SeriesSource` on the watch section's Prometheus endpoints (``query_range``)."""

    def __init__(self, config: WatchConfig) -> None:
        self.config = config
        self._clients: dict[str, PrometheusClient] = {}

    def series(self, watch: Watch, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        endpoint = self.config.endpoint(watch.prometheus)
        client = self._clients.get(endpoint.name)
        if client is None:
            client = self._clients[endpoint.name] = PrometheusClient(endpoint)
        return client.query_range(watch.query, start, end, step)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def load_calibration(path: Path | None) -> dict[str, Any]:
    """The confidence model at ``path`` (``rca.calibration``), or the shipped one."""
    if path is None:
        return dict(CALIBRATION)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"rca.calibration: cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), int | float) for k in
                                            ("intercept", "w_top", "w_margin")):
        raise ConfigError(f"rca.calibration: {path} needs numbers intercept, w_top and w_margin "
                          "(write it with 'watchkeeper rca calibrate')")
    return doc


def params_of(cfg: RcaConfig) -> rca.Params:
    return rca.Params(reference_s=cfg.reference, window_s=cfg.window, change_window_s=cfg.change_window)


def collect(
    watches: Sequence[Watch], source: SeriesSource, start: float, end: float, step: float | None,
    threshold: float,
) -> tuple[dict[str, dict[str, tuple[Array, Array]]], dict[str, rca.MetricSpec]]:
    """Every ``rca: true`` watch's series as ``service → metric → (t, v)``, and each metric's spec:
    the watch's direction, and its floor (the smallest deviation that counts) as the smallest scale
    that puts such a deviation right at the anomaly ``threshold``."""
    metrics: dict[str, dict[str, tuple[Array, Array]]] = {}
    specs: dict[str, rca.MetricSpec] = {}
    for w in watches:
        if not w.rca:
            continue
        spec = rca.MetricSpec.from_direction(w.direction, w.floor / threshold if w.floor > 0 else None)
        for s in source.series(w, start, end, step or w.interval):
            service = s.labels.get(w.service_label)
            if not service:
                continue
            resource = s.labels.get(w.resource_label) if w.resource_label else None
            name = f"{w.name}@{resource}" if resource else w.name
            into = metrics.setdefault(service, {})
            unique, n = name, 1
            while unique in into:
                n += 1
                unique = f"{name}#{n}"
            into[unique] = (np.asarray(s.times, dtype=np.float64), np.asarray(s.values, dtype=np.float64))
            specs[unique] = spec
    return metrics, specs


def downsample(t: Array, v: Array, start: float, end: float, baseline: float,
               points: int = PLOT_POINTS) -> list[list[float]]:
    """The finite points of ``(t, v)`` with ``start <= t <= end`` as ``[[t, v], …]``, at most ``points``
    of them: the span is cut into ``points`` equal buckets and each keeps its point farthest from
    ``baseline``, so a short spike (the evidence) survives the thinning that a mean would flatten.

    >>> import numpy as np
    >>> downsample(np.arange(10.0), np.array([0, 0, 0, 9, 0, 0, 0, 0, 0, float("nan")]), 0, 9, 0.0, 3)
    [[0.0, 0.0], [3.0, 9.0], [6.0, 0.0]]
    """
    keep = np.isfinite(t) & np.isfinite(v) & (t >= start) & (t <= end)
    t, v = t[keep], v[keep]
    if t.size == 0 or points < 1:
        return []
    if t.size > points:
        bucket = np.minimum(((t - start) / max(end - start, 1e-9) * points).astype(np.int64), points - 1)
        far = np.abs(v - baseline)
        chosen = []
        for b in np.unique(bucket):
            idx = np.flatnonzero(bucket == b)
            chosen.append(int(idx[np.argmax(far[idx])]))
        t, v = t[chosen], v[chosen]
    return [[round(float(a), 3), float(f"{float(b):.6g}")] for a, b in zip(t, v, strict=True)]


def with_series(causes: Sequence[Cause], metrics: dict[str, dict[str, tuple[Array, Array]]], onset: float,
                before: float, after: float, n: int = TOP) -> list[Cause]:
    """``causes`` with ``evidence.series`` (``{metric: [[t, v], …]}``, the cause's top metrics from
    ``onset - before`` to ``onset + after``, see :func:`downsample`) and ``evidence.series_onset`` added
    to each of the first ``n``: what the console plots. Additive: the other evidence is unchanged."""
    out = list(causes)
    for i, cause in enumerate(out[:n]):
        own = metrics.get(cause.component, {})
        series = {}
        for top_metric in list(cause.evidence.get("top_metrics") or [])[:PLOT_SERIES]:
            name = top_metric.get("metric")
            if name not in own:
                continue
            t, v = own[name]
            baseline = top_metric.get("baseline")
            pts = downsample(t, v, onset - before, onset + after,
                             float(baseline) if isinstance(baseline, int | float) else float(np.nanmedian(v)))
            if pts:
                series[name] = pts
        if series:
            out[i] = replace(cause, evidence={**cause.evidence, "series": series, "series_onset": onset})
    return out


def rank_at(
    services: Sequence[str], onset: datetime, end: float, *, watches: Sequence[Watch], source: SeriesSource,
    graph: nx.DiGraph, found: Sequence[changelog.ServiceChange], cfg: RcaConfig, calibration: dict[str, Any],
    traces: TraceSource | None = None, logs: LogSource | None = None,
) -> list[Cause]:
    """Gather the evidence of an incident on ``services`` that began at ``onset``, with series up to
    ``end`` (unix seconds), and rank it — what ``serve`` and ``replay`` both do. The top causes carry
    their series around the onset (:func:`with_series`)."""
    params = params_of(cfg)
    start = onset.timestamp() - cfg.reference
    metrics, specs = collect(watches, source, start, max(end, start), cfg.step, params.threshold)
    trace_series = _optional("traces", lambda: traces.series(services, start, max(end, start))) if traces else None
    evidence = rca.Evidence(graph, metrics, onset.timestamp(), changes=tuple(changelog.suspects(found, onset)),
                            specs=specs, traces=trace_series or {},
                            trace_graph=trace_graph(trace_series) if trace_series else None)
    known = evidence.topology()  # whom a log line can name: the writer's neighbours (log_evidence.evidence_of)
    log_scores = _optional("logs", lambda: logs.anomalies(services, start, max(end, start), known)) if logs else None
    evidence = replace(evidence, log_anomalies=log_scores or {})
    causes = rca.rank(services, evidence, params=params, calibration=calibration)
    return with_series(causes, metrics, onset.timestamp(), cfg.window, cfg.window)


def top(causes: Sequence[Cause], n: int = TOP) -> list[str]:
    return [c.component for c in causes[:n]]


def doubted(causes: Sequence[Cause]) -> bool:
    """Whether the top cause's confidence is capped by what the ranking could not rule out yet
    (``evidence.doubts``, :mod:`watchkeeper.rca.doubt`): when that ends, the ranking is stored again even
    with the same top three, so the policy sees the confidence the evidence now gives."""
    return bool(causes) and bool(causes[0].evidence.get("doubts"))


@dataclass(slots=True)
class _Seen:
    services: frozenset[str]
    complete: bool
    episode: datetime | None = None  # the last reopen it was ranked after (None: never reopened)


class Ranker:
    """The daemon thread (``start``/``stop``); :meth:`tick` is one pass, callable from tests."""

    def __init__(
        self, service: Watchkeeper, source: SeriesSource, *, graph: nx.DiGraph | None = None,
        wall: Callable[[], float] = time.monotonic, traces: TraceSource | None = None, logs: LogSource | None = None,
    ) -> None:
        self.service = service
        self.source = source
        self.traces = traces
        self.logs = logs
        settings = service.settings
        self.cfg: RcaConfig = settings.rca
        self.watches = [w for w in settings.watch.watches if w.rca]
        self.calibration = load_calibration(self.cfg.calibration)
        self.graph = graph if graph is not None else topology_config.build(
            settings.topology, topology_config.correlation_graph(settings.correlation_config))
        self.wall = wall
        #: Extends the configured graph at each ranking (serve: the edges seen in traces); None: as configured.
        self.extend_graph: Callable[[nx.DiGraph], nx.DiGraph] | None = None
        self._seen: dict[int, _Seen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rankings = 0
        self.stored = 0
        self.errors = 0
        self.last_error: str | None = None
        self.failing = False
        self.last_ranked_at: datetime | None = None
        ranked, failed = ("watchkeeper_rca_rankings", "Incidents ranked by the root-cause ranker"), (
            "watchkeeper_rca_errors", "Root-cause rankings that failed (e.g. Prometheus down)")
        if service.metrics is not None:  # made once per service: a second app over it counts on the same
            self._rankings, self._errors = service.metrics.counter(*ranked), service.metrics.counter(*failed)
        else:
            self._rankings, self._errors = Counter(*ranked, registry=None), Counter(*failed, registry=None)

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="watchkeeper-rca", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        close = getattr(self.source, "close", None)
        if callable(close):
            close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.cfg.rerank)

    # -- one pass ------------------------------------------------------------------------------
    def tick(self) -> int:
        """Rank every incident that is due; return how many rankings were stored. Never raises."""
        try:
            with self.service.db.read() as conn:
                active = store.active_incidents(conn)
                reopened = governance_store.reopened_at(conn, [x.id for x in active])
        except Exception as exc:  # the database is down: say so, try again next time
            self._failed(None, exc)
            return 0
        now = self.service.clock()
        self._seen = {i: s for i, s in self._seen.items() if i in {x.id for x in active}}
        stored = 0
        for incident in active:
            episode = reopened.get(incident.id)
            if (now - max(incident.opened_at, episode or incident.opened_at)).total_seconds() < self.cfg.delay:
                continue
            seen = self._seen.get(incident.id)
            if seen is not None and seen.complete and seen.services == frozenset(incident.services) and (
                    seen.episode == episode):
                continue
            try:
                stored += self.rank_one(incident, now, episode)
            except Exception as exc:  # Prometheus down, a bad answer: count, log once, carry on
                self._failed(incident.id, exc)
                continue
            if self.failing:
                log.info("root-cause ranking works again", after_errors=self.errors)
            self.failing = False
        return stored

    def rank_one(self, incident: Incident, now: datetime, episode: datetime | None = None) -> int:
        """Rank one incident now; 1 when the ranking was stored, 0 when its top three did not change.
        ``episode``: when it was last reopened. A reopened incident is ranked from the reopen — the
        problem that came back — and the causes ranked before it are replaced even when the same."""
        with self.service.db.read() as conn:
            onset = self.service.changelog.onset(conn, incident)
            if episode is not None and episode > onset:
                onset = episode
            window_end = onset.timestamp() + self.cfg.window
            end = min(now.timestamp(), window_end)
            found = [changelog.from_row(r) for r in store.list_changes(
                conn, since=datetime.fromtimestamp(onset.timestamp() - self.cfg.change_window, onset.tzinfo),
                until=datetime.fromtimestamp(end, onset.tzinfo))]
            earlier = governance_store.causes_of(conn, incident.id, episode)  # none if ranked before it
        seen = _Seen(frozenset(incident.services), end >= window_end, episode)
        if earlier and any(c.model != rca.MODEL for c in earlier):
            self._seen[incident.id] = seen
            return 0  # a person (or another model) ranked this incident: theirs stands
        graph = self.extend_graph(self.graph) if self.extend_graph is not None else self.graph
        causes = rank_at(incident.services, onset, end, watches=self.watches, source=self.source, graph=graph,
                         found=found, cfg=self.cfg, calibration=self.calibration, traces=self.traces,
                         logs=self.logs)
        self._seen[incident.id] = seen  # only now: a failed ranking is tried again on the next pass
        self.rankings += 1
        self._rankings.inc()
        self.last_ranked_at = now
        if not causes or causes[0].score <= 0:
            return 0  # no signal said anything (no metrics, spans or logs of these services): nothing to store
        if top(causes) == top(earlier) and doubted(causes) == doubted(earlier):
            self._refresh_series(incident.id, causes)
            return 0
        self.service.governance.set_causes(incident.id, causes, "rca")
        self.stored += 1
        return 1

    def _refresh_series(self, incident_id: int, causes: Sequence[Cause]) -> None:
        """Give the stored causes (same top three) the new ranking's plotted series: only
        ``evidence.series`` changes — scores and confidences stay as audited — and nothing is audited."""
        fresh = {c.component: c.evidence for c in causes if "series" in c.evidence}
        with self.service.db.write() as conn:
            stored = governance_store.causes_of(conn, incident_id)
            if not stored or any(c.model != rca.MODEL for c in stored) or top(stored) != top(causes):
                return  # changed meanwhile (a person ranked it): leave it
            updated = [replace(c, evidence={**c.evidence, "series": fresh[c.component]["series"],
                                            "series_onset": fresh[c.component]["series_onset"]})
                       if c.component in fresh else c for c in stored]
            if updated != stored:  # ranked when they were, not now: a reopen's staleness reads that
                at = governance_store.causes_ranked_at(conn, incident_id) or self.service.clock()
                governance_store.replace_causes(conn, incident_id, updated, at)

    def _failed(self, incident_id: int | None, exc: Exception) -> None:
        self.errors += 1
        self._errors.inc()
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self.failing:
            log.warning("root-cause ranking failed; retrying every rerank interval", incident=incident_id,
                        error=self.last_error)
        self.failing = True

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows under ``details.rca``."""
        return {"watches": [w.name for w in self.watches], "rankings": self.rankings, "stored": self.stored,
                "errors": self.errors, "failing": self.failing, "last_error": self.last_error,
                "last_ranked_at": self.last_ranked_at.isoformat() if self.last_ranked_at else None}


# -- ground truth and calibration -----------------------------------------------------------------
#: ``rca calibrate`` refuses to fit on fewer labelled incidents than this.
MIN_LABELLED = 20


def record_cause(service: Watchkeeper, incident_id: int, component: str, actor: str) -> None:
    """Record what really caused an incident (audited ``incident.cause_confirmed``): the label
    ``rca calibrate`` learns from."""
    component = component.strip()
    if not component or len(component) > 256:
        raise InputError("the true cause is a service name of 1-256 characters")
    now = service.clock()
    with service.db.write() as conn:
        queries.get_incident(conn, incident_id)
        store.set_truth(conn, incident_id, component, actor, now)
        ranked = governance_store.causes_of(conn, incident_id)
        position = next((i for i, c in enumerate(ranked, start=1) if c.component == component), None)
        audit.append(conn, actor, [Change("incident.cause_confirmed", f"incident:{incident_id}", now, {
            "id": incident_id, "incident_id": incident_id, "component": component, "ranked_at": position})])


@dataclass(frozen=True, slots=True)
class Calibration:
    """A refitted confidence model and what it was fitted on."""

    model: dict[str, Any]
    incidents: int
    top1: float


def calibrate(service: Watchkeeper, minimum: int = MIN_LABELLED) -> Calibration:
    """Refit the confidence model on resolved incidents that have a recorded true cause and a ranking
    stored by the ranker; an :class:`InputError` (one sentence) when there are fewer than ``minimum``."""
    with service.db.read() as conn:
        rows = store.labelled_rankings(conn, rca.MODEL)
    if len(rows) < minimum:
        raise InputError(
            f"only {len(rows)} incident(s) have both a recorded true cause ('incidents resolve ID --cause SVC') and "
            f"a ranking by {rca.MODEL}; calibrating needs at least {minimum}")
    correct = [r["top"] == r["truth"] for r in rows]
    model = fit([r["top_score"] for r in rows], [r["second_score"] for r in rows], correct)
    model["fitted_on"] = f"{len(rows)} resolved incidents with a recorded true cause ({rca.MODEL})"
    return Calibration(model, len(rows), sum(correct) / len(rows))


# -- offline: replay ------------------------------------------------------------------------------
def read_changes(path: Path) -> list[changelog.ServiceChange]:
    """A changes file for ``replay --changes``: a JSON document or JSONL lines, each one change or
    ``{"changes": [...]}`` as the API takes them; every change needs ``at``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the changes file {path}: {exc}") from None
    try:
        docs = [(0, json.loads(text))]
    except json.JSONDecodeError:
        docs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    docs.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{number}: not JSON ({exc.msg})") from None
    out: list[changelog.ServiceChange] = []
    for number, doc in docs:
        where = f"{path}:{number}" if number else str(path)
        try:
            items = changelog.parse(doc)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        for c in items:
            if c.at is None:
                raise InputError(f"{where}: a replayed change needs 'at' (there is no 'now' offline)")
            out.append(changelog.ServiceChange(len(out) + 1, c.service, c.kind, c.version, utc(c.at),
                                               c.who, c.link, c.description))
    return out


def replay_causes(
    incidents: Sequence[tuple[Incident, datetime]], settings: Any, *, prometheus: str | None,
    topology: Path | None = None, changes_file: Path | None = None, source: SeriesSource | None = None,
) -> dict[int, list[dict[str, Any]]]:
    """Rank replayed incidents (each with its onset) as ``serve`` would once their evidence window
    is complete: the settings' ``rca: true`` watches (on ``prometheus`` when given), the topology
    (settings, plus ``topology``), the changes of ``changes_file``. → incident id → causes."""
    watch: WatchConfig = settings.watch
    watches = [w for w in watch.watches if w.rca]
    if not watches:
        raise InputError("ranking replayed incidents needs watches: give --config with a 'watch:' section "
                         "whose watches have rca: true")
    if prometheus is not None:
        try:
            endpoint = PrometheusEndpoint(name="replay", url=prometheus)
        except ValueError as exc:
            raise InputError(f"--prometheus: {exc}") from None
        watches = [w.model_copy(update={"prometheus": None}) for w in watches]
        watch = WatchConfig(prometheus=[endpoint], watches=watches)
    cfg: RcaConfig = settings.rca
    topo = settings.topology if topology is None else settings.topology.model_copy(update={"file": topology})
    graph = topology_config.build(topo)
    found = read_changes(changes_file) if changes_file is not None else []
    calibration = load_calibration(cfg.calibration)
    series = source or PrometheusSource(watch)
    out: dict[int, list[dict[str, Any]]] = {}
    try:
        for incident, onset in incidents:
            causes = rank_at(incident.services, onset, onset.timestamp() + cfg.window, watches=watches,
                             source=series, graph=graph, found=found, cfg=cfg, calibration=calibration)
            out[incident.id] = [{"component": c.component, "confidence": c.confidence} for c in causes]
    finally:
        close = getattr(series, "close", None)
        if callable(close):
            close()
    return out


def make_ranker(service: Watchkeeper, source: SeriesSource | None = None, *, traces: TraceSource | None = None,
                logs: LogSource | None = None) -> Ranker | None:
    """The ranker ``serve`` runs: when ranking is enabled and there is evidence to rank on — at least one
    watch with ``rca: true``, or traces taken in (``traces.enabled``; their RED rows and call graph are
    evidence on their own) — with the trace and log sources when given."""
    settings = service.settings
    if not settings.ranks():
        return None
    return Ranker(service, source or PrometheusSource(settings.watch), traces=traces, logs=logs)


__all__ = ["LogSource", "PrometheusSource", "Ranker", "SeriesSource", "TraceSource", "calibrate", "collect",
           "downsample", "load_calibration", "make_ranker", "record_cause", "trace_graph", "with_series"]

