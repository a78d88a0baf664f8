"""Root-cause ranking on labelled faults: readers, top-k / Avg@k, reliability table, leave-one-group-out.

Two layouts are read into the same :class:`Case` list:

- **nezha** (Nezha, FSE'23, Online Boutique): ``rca_data/<day>/<day>-fault_list.json`` and
  ``rca_data/<day>/metric/*.csv.gz`` (one CSV per pod, plus the call-latency tables ``source_50`` /
  ``destination_50``, the front-end table ``front_service`` and the call graph ``dependency``).
- **lab** (a campaign recorded by ``watchkeeper demo --record``): ``faults.jsonl``, ``topology.json``,
  ``changes.jsonl`` and ``metrics/<service>.csv``.

>>> topk([1, 2, 4, 9], 3)
0.5
>>> round(avg_at_k([1, 2, 4, 9], 5), 2)  # (0.25 + 0.5 + 0.5 + 0.75 + 0.75) / 5
0.55
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import networkx as nx
import numpy as np

from watchkeeper import topology
from watchkeeper.errors import InputError
from watchkeeper.eval import lab_signals, nezha_signals
from watchkeeper.model import Cause, ChangeKind
from watchkeeper.ranking import trace_graph
from watchkeeper.rca import Change, Evidence, MetricSpec, Params, rank
from watchkeeper.rca.calibration import fit
from watchkeeper.rca.logs import LogAnomaly
from watchkeeper.rca.scoring import Array

#: Per-pod Nezha columns the ranker reads: saturation (CPU, memory) and latency. Traffic columns
#: (workload, network bytes, syscalls) move with the load everywhere and only add noise.
NEZHA_POD_METRICS = ("CpuUsageRate(%)", "MemoryUsageRate(%)", "PodServerLatencyP90(s)")
#: Lab metrics left out of the ranking: traffic follows the load generator through every service.
LAB_IGNORED = ("request_rate",)
#: ``frontend-579b9bff58-t2dbm`` → ``frontend`` (Deployment pods: <name>-<replicaset hash>-<pod hash>).
_POD = re.compile(r"^(?P<service>.+?)-[0-9a-f]{6,10}-[0-9a-z]{5}$")
#: What the evaluation knows about the data sets' metrics (the serve path gets the same from each
#: watch's ``direction`` and ``floor``). Floors by name suffix: ratios move in hundredths, and ``up``
#: (the share of instances up) is a ratio too, so a service going down scores like one answering 100 %
#: errors. Harmful sides by exact name (+1 only a rise is evidence, -1 only a fall), as the lab records
#: them: a service whose CPU or latency *drops* because its caller stopped calling it is a victim.
LAB_FLOORS: dict[str, float] = {
    "error_ratio": 0.01,
    "disk_used_ratio": 0.01,
    "up": 0.01,
    "SuccessRate(%)": 1.0,
    "PodSuccessRate(%)": 1.0,
}
LAB_SIDES: dict[str, int] = {
    "error_ratio": 1, "latency_p90_s": 1, "cpu_rate": 1, "rss_bytes": 1, "disk_used_ratio": 1, "up": -1,
}


def lab_spec(name: str) -> MetricSpec:
    """The spec of one metric of the evaluation sets (see :data:`LAB_FLOORS`, :data:`LAB_SIDES`).

    >>> lab_spec("up"), lab_spec("entry_SuccessRate(%)"), lab_spec("CpuUsageRate(%)")
    (MetricSpec(side=-1, floor=0.01), MetricSpec(side=0, floor=1.0), MetricSpec(side=0, floor=None))
    """
    floor = next((f for suffix, f in LAB_FLOORS.items() if name.endswith(suffix)), None)
    return MetricSpec(LAB_SIDES.get(name, 0), floor)


def lab_specs(metrics: Mapping[str, Mapping[str, object]]) -> dict[str, MetricSpec]:
    """:func:`lab_spec` of every metric name in ``service → metric → series``."""
    return {name: lab_spec(name) for per_service in metrics.values() for name in per_service}


#: The reliability table's bins of confidence.
BINS = (0.0, 0.5, 0.8, 0.95, 1.0)


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled fault: its id, the true root-cause service, and what the ranker may look at."""

    id: str
    truth: str
    kind: str
    group: str  # the day or the campaign: the unit of leave-one-group-out
    evidence: Evidence
    has_traces: bool = False  # spans were seen in the evidence window after the onset
    has_logs: bool = False  # log lines were seen in it
    spans_at_onset: bool = False  # spans were seen in the minute of the onset (the data set's own count)

    def metrics_only(self) -> Case:
        """The same case without its traces and logs."""
        ev = replace(self.evidence, traces={}, trace_graph=None, log_anomalies={})
        return replace(self, evidence=ev, has_traces=False, has_logs=False, spans_at_onset=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The ranking of one case and where the truth landed (``rank`` = 0 when it is not ranked)."""

    case: Case
    causes: list[Cause]

    @property
    def ranking(self) -> list[str]:
        return [c.component for c in self.causes]

    @property
    def rank(self) -> int:
        r = self.ranking
        return r.index(self.case.truth) + 1 if self.case.truth in r else 0


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    top1: float
    top3: float
    top5: float
    avg5: float
    by_kind: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def service_of_pod(pod: str) -> str:
    """The Deployment name of a pod (the name itself when it does not look like a pod).

    >>> service_of_pod("frontend-579b9bff58-t2dbm"), service_of_pod("redis-cart")
    ('frontend', 'redis-cart')
    """
    m = _POD.match(pod)
    return m.group("service") if m else pod


def parse_nezha_time(cells: Sequence[str]) -> Array:
    """Unix seconds from Nezha ``Time`` strings (``2022-08-22 03:51:19.79 +0000 UTC m=+0.3``): the first
    19 characters, in UTC. (The ``TimeStamp`` column is not used: it is offset in some files.)

    >>> parse_nezha_time(["2022-08-22 03:51:19.799087274 +0000 UTC m=+0.305041286"]).tolist()
    [1661140279.0]
    """
    try:
        stamps = np.array([c[:19].replace(" ", "T") for c in cells], dtype="datetime64[s]")
    except ValueError as e:
        raise InputError(f"not a Nezha time: {e}") from e
    return stamps.astype(np.int64).astype(np.float64)


def _floats(cells: Iterable[str]) -> Array:
    try:
        return np.array([float(c) if c else math.nan for c in cells], dtype=np.float64)
    except ValueError as e:
        raise InputError(f"a metric value is not a number ({e})") from e


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        fh: IO[str]
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from e
    if not rows:
        raise InputError(f"{path}: empty file")
    header, body = rows[0], [r for r in rows[1:] if r]
    return header, body


def _column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise InputError(f"{path}: no column {name!r}") from None


# -- nezha --------------------------------------------------------------------------------------
#: The step of the trace RED series read from Nezha spans (seconds).
NEZHA_TRACE_STEP = 30.0


def read_nezha(directory: Path, *, pod_metrics: Sequence[str] | None = NEZHA_POD_METRICS,
               call_tables: bool = True, traces: bool = True, logs: bool = True,
               trace_step: float = NEZHA_TRACE_STEP, cache: Path | None = nezha_signals.DEFAULT_CACHE,
               params: Params | None = None) -> list[Case]:
    """Every fault of every day under ``directory`` (the data set's root, ``rca_data`` or one day).

    ``pod_metrics=None`` keeps every numeric pod column and ``call_tables=False`` drops the call-latency
    and front-end tables: together, plain BARO on the pod metrics (the baseline of ``eval rca``).
    ``traces`` / ``logs`` read the day's ``trace/`` and ``log/`` files when there are any
    (:mod:`watchkeeper.eval.nezha_signals`); the log scores use ``params``' windows."""
    p = params or Params()
    lists = sorted(directory.rglob("*-fault_list.json"))
    lists = [p for p in lists if "construct_data" not in p.parts]
    if not lists:
        raise InputError(f"{directory}: no <day>/<day>-fault_list.json below it (is this the Nezha layout?)")
    cases: list[Case] = []
    for fault_list in lists:
        day_dir = fault_list.parent
        day = fault_list.name.removesuffix("-fault_list.json")
        metrics, graph = _nezha_day(day_dir / "metric", pod_metrics, call_tables)
        specs = lab_specs(metrics)
        traced = nezha_signals.day_traces(day_dir, trace_step, service_of_pod, cache) if traces else None
        known = Evidence(graph, metrics, 0.0, trace_graph=traced[1] if traced else None).topology()
        lines = nezha_signals.day_logs(day_dir, service_of_pod, cache, known) if logs else None
        try:
            doc = json.loads(fault_list.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{fault_list}: not a JSON fault list ({e})") from e
        faults = [f for group in (doc.values() if isinstance(doc, dict) else [doc]) for f in group]
        for f in faults:
            try:
                fid, pod, kind = str(f["inject_time"]), str(f["inject_pod"]), str(f["inject_type"])
            except (KeyError, TypeError) as e:
                raise InputError(f"{fault_list}: a fault lacks inject_time/inject_pod/inject_type ({e})") from e
            onset = float(parse_nezha_time([fid])[0])
            ev = Evidence(graph, metrics, onset, specs=specs)
            has_traces = has_logs = at_onset = False
            if traced is not None:
                series, trace_graph = traced
                ev = replace(ev, traces=series, trace_graph=trace_graph)
                has_traces = any(bool(np.any((t >= onset) & (t < onset + p.window_s)))
                                 for per in series.values() for t, _ in per.values())
                minute = math.floor(onset / 60.0) * 60.0  # bucket ends (t) inside the onset's minute
                at_onset = any(bool(np.any((t > minute) & (t <= minute + 60.0)))
                               for per in series.values() for t, _ in per.values())
            if lines is not None and len(lines):
                has_logs = lines.has_lines(onset, onset + p.window_s)
                ev = replace(ev, log_anomalies=lines.anomalies(onset, p.reference_s, p.window_s))
            cases.append(Case(fid, service_of_pod(pod), kind, day, ev, has_traces, has_logs, at_onset))
    return cases


def _nezha_day(
    metric_dir: Path, pod_metrics: Sequence[str] | None, call_tables: bool
) -> tuple[dict[str, dict[str, tuple[Array, Array]]], nx.DiGraph]:
    if not metric_dir.is_dir():
        raise InputError(f"{metric_dir}: no metric directory")
    metrics: dict[str, dict[str, tuple[Array, Array]]] = {}
    for path in sorted(metric_dir.glob("*_metric.csv*")):
        header, rows = _read_table(path)
        t = parse_nezha_time([r[_column(header, "Time", path)] for r in rows])
        pod_col = _column(header, "PodName", path)
        service = service_of_pod(rows[0][pod_col]) if rows else path.name.split("_metric")[0]
        into = metrics.setdefault(service, {})
        names = list(pod_metrics) if pod_metrics is not None else header[pod_col + 1:]
        suffix = "" if not any(m in into for m in names) else f"@{rows[0][pod_col]}"
        for name in names:
            if name in header:
                j = header.index(name)
                into[name + suffix] = (t, _floats(r[j] if j < len(r) else "" for r in rows))
    if not metrics:
        raise InputError(f"{metric_dir}: no <pod>_metric.csv(.gz) files")
    # call latencies (ms/s of a caller_callee pair) belong to the callee; front_service to the front-end.
    for table in ("source_50", "destination_50") if call_tables else ():
        table_path = next(iter(sorted(metric_dir.glob(f"{table}.csv*"))), None)
        if table_path is None:
            continue
        header, rows = _read_table(table_path)
        t = parse_nezha_time([r[0] for r in rows])
        for j, name in enumerate(header[2:], start=2):
            caller, _, callee = name.partition("_")
            if callee:
                metrics.setdefault(callee, {})[f"call_latency[{caller}→{table}]"] = (
                    t, _floats(r[j] if j < len(r) else "" for r in rows))
    # front_service: the system's front door, owned by a service of that name when one has pods. Where
    # none has (a gateway or a UI by another name), it is left out: a candidate no pod backs could
    # only ever be a wrong answer.
    front = next(iter(sorted(metric_dir.glob("front_service.csv*"))), None) if call_tables else None
    if front is not None:
        header, rows = _read_table(front)
        i_name = header.index("ServiceName") if "ServiceName" in header else None
        named = rows[0][i_name].lower() if rows and i_name is not None and i_name < len(rows[0]) else ""
        owner = next((s for s in (named, "frontend") if s in metrics), None)
        if owner is not None:
            at = parse_nezha_time([r[_column(header, "Time", front)] for r in rows])
            for j, name in enumerate(header[3:], start=3):
                metrics[owner][f"entry_{name}"] = (at, _floats(r[j] if j < len(r) else "" for r in rows))
    graph = nx.DiGraph()
    graph.add_nodes_from(metrics)
    dep = next(iter(sorted(metric_dir.glob("dependency.csv*"))), None)
    if dep is not None:
        header, rows = _read_table(dep)
        for r in rows:
            if len(r) >= 2 and r[0] in metrics and r[1] in metrics and r[0] != r[1]:
                graph.add_edge(r[0], r[1])
    return metrics, graph


# -- lab ----------------------------------------------------------------------------------------
def _iso(value: object, where: str) -> float:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected an ISO-8601 time, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError(f"{where}: not an ISO-8601 time: {value!r}") from e
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{i}: not JSON ({e.msg})") from e
        if not isinstance(doc, dict):
            raise InputError(f"{path}:{i}: expected a JSON object")
        yield i, doc


def read_lab_metrics(metric_dir: Path) -> dict[str, dict[str, tuple[Array, Array]]]:
    """``metrics/<service>.csv`` (``timestamp,<metric>,...``) → service → metric → (t, values)."""
    out: dict[str, dict[str, tuple[Array, Array]]] = {}
    for path in sorted(metric_dir.glob("*.csv")):
        header, rows = _read_table(path)
        if not header or header[0] != "timestamp":
            raise InputError(f"{path}: the first column must be 'timestamp'")
        try:
            t = np.array([float(r[0]) for r in rows], dtype=np.float64)
        except ValueError as e:
            raise InputError(f"{path}: a timestamp is not a number ({e})") from e
        out[path.stem] = {name: (t, _floats(r[j] if j < len(r) else "" for r in rows))
                          for j, name in enumerate(header[1:], start=1)}
    return out


def lab_changes(docs: Sequence[Mapping[str, Any]], onset: float) -> list[Change]:
    """The lab's change events (``changes.jsonl``: ``at`` in unix seconds here, ``service``, ``kind``
    deploy|rollback, versions) still in effect at ``onset``: a deploy already rolled back by then is
    not a suspect, and neither is a rollback (it restores the known-good configuration).

    >>> docs = [{"at": 10.0, "service": "a", "kind": "deploy", "from_version": "v1", "to_version": "v2"},
    ...         {"at": 20.0, "service": "a", "kind": "rollback", "from_version": "v2", "to_version": "v1"}]
    >>> [c.description for c in lab_changes(docs, 15.0)], lab_changes(docs, 25.0)
    (['deploy v1→v2'], [])
    """
    out = []
    for i, doc in enumerate(docs):
        if doc.get("kind") == ChangeKind.ROLLBACK:
            continue
        service, at = str(doc.get("service", "")), float(doc["at"])
        undone = any(later.get("kind") == ChangeKind.ROLLBACK and str(later.get("service", "")) == service
                     and at <= float(later["at"]) < onset for later in docs[i + 1:])
        if not undone:
            desc = f"{doc.get('kind', 'change')} {doc.get('from_version', '?')}→{doc.get('to_version', '?')}"
            out.append(Change(at, service, desc))
    return out


@dataclass(frozen=True, slots=True)
class LabFault:
    """One injected fault of a recorded campaign; ``end`` is ``None`` when it never ended."""

    id: str
    target: str
    kind: str
    onset: float
    end: float | None


def read_lab_faults(path: Path) -> list[LabFault]:
    """A campaign's ``faults.jsonl``: each fault's ``started_at`` line, with the first ``ended_at``
    written for its id."""
    lines = list(_jsonl(path))
    ended: dict[str, float] = {}
    for i, doc in lines:
        if doc.get("ended_at") and str(doc.get("id")) not in ended:
            ended[str(doc.get("id"))] = _iso(doc["ended_at"], f"{path}:{i}")
    faults = []
    for i, doc in lines:
        if "started_at" not in doc:
            continue  # an ended_at line
        where = f"{path}:{i}"
        if not isinstance(doc.get("target"), str) or not isinstance(doc.get("id"), str):
            raise InputError(f"{where}: a fault needs 'id' and 'target'")
        faults.append(LabFault(doc["id"], doc["target"], str(doc.get("fault", "?")), _iso(doc["started_at"], where),
                               ended.get(doc["id"])))
    return faults


def read_lab(directory: Path, *, signals: bool = True, params: Params | None = None) -> list[Case]:
    """One recorded campaign (``DIR/faults.jsonl``) or several (``DIR/*/faults.jsonl``); with ``signals``,
    also its ``spans.jsonl`` (through ``serve``'s RED rows) and ``logs/`` (:mod:`watchkeeper.eval.lab_signals`),
    the log scores with ``params``' windows."""
    p = params or Params()
    campaigns = [directory] if (directory / "faults.jsonl").exists() else sorted(
        p.parent for p in directory.glob("*/faults.jsonl"))
    if not campaigns:
        raise InputError(f"{directory}: no faults.jsonl here or one level below (is this a recorded campaign?)")
    cases: list[Case] = []
    for camp in campaigns:
        graph = topology.load(camp / "topology.json") if (camp / "topology.json").exists() else nx.DiGraph()
        metrics = {s: {m: ts for m, ts in ms.items() if m not in LAB_IGNORED}
                   for s, ms in read_lab_metrics(camp / "metrics").items()}
        specs = lab_specs(metrics)
        change_docs = []
        for i, doc in _jsonl(camp / "changes.jsonl"):
            change_docs.append(doc | {"at": _iso(doc.get("at"), f"{camp / 'changes.jsonl'}:{i}")})
        rows = lab_signals.stored_rows(lab_signals.read_spans(camp / "spans.jsonl")) if signals else []
        log_lines = lab_signals.read_logs(camp / "logs") if signals else []
        for fault in read_lab_faults(camp / "faults.jsonl"):
            onset, end = fault.onset, fault.end
            # What a live ranker could see: the series up to the fault's end (a campaign injects the
            # next fault soon after, and its symptoms must not count for this one).
            seen = metrics if end is None else {
                s: {m: (t[t <= end], v[t <= end]) for m, (t, v) in ms.items()} for s, ms in metrics.items()}
            known = change_docs if end is None else [c for c in change_docs if c["at"] <= end]
            ev = Evidence(graph, seen, onset, changes=tuple(lab_changes(known, onset)), specs=specs)
            has_traces = has_logs = at_onset = False
            if rows:
                traces = lab_signals.series_until(rows, end)
                ev = replace(ev, traces=traces, trace_graph=trace_graph(traces))
                has_traces = any(onset <= r.at < onset + p.window_s + lab_signals.LAB_TRACE_STEP for r in rows
                                 if end is None or r.at <= end)
                at_onset = has_traces
            if log_lines:
                ev = replace(ev, log_anomalies=lab_signals.log_evidence(log_lines, onset, end, p.reference_s,
                                                                        p.window_s, graph=ev.topology()))
                has_logs = any(onset <= x[0] < onset + p.window_s and (end is None or x[0] <= end)
                               for x in log_lines)
            cases.append(Case(fault.id, fault.target, fault.kind, camp.name, ev, has_traces,
                              has_logs, at_onset))
    return cases


# -- scoring ------------------------------------------------------------------------------------
def topk(ranks: Sequence[int], k: int) -> float:
    """Share of cases whose truth is within the first ``k`` (rank 0 = missing)."""
    return sum(1 for r in ranks if 0 < r <= k) / len(ranks) if ranks else 0.0


def avg_at_k(ranks: Sequence[int], k: int) -> float:
    """Avg@k = mean of top-1 … top-k (RCAEval, BARO)."""
    return sum(topk(ranks, i) for i in range(1, k + 1)) / k


def run(
    cases: Sequence[Case], params: Params | None = None, calibration: dict[str, Any] | None = None
) -> list[Outcome]:
    """Rank every case (all services are candidates)."""
    return [Outcome(c, rank(None, c.evidence, params=params, calibration=calibration)) for c in cases]


@dataclass(frozen=True, slots=True)
class Early:
    """Rankings made ``after_s`` seconds after every fault's onset: how many named anything, how many named
    the truth first, how many were trusted (top confidence ≥ the trust level) and how many of those were
    wrong (a top cause none of the faults that started together) — what a policy acting that early would
    have done."""

    after_s: float
    ranked: int
    right: int
    trusted: int
    trusted_wrong: int


def seen_by(case: Case, after_s: float) -> Case:
    """The case as a live ranker saw it ``after_s`` seconds after the onset: series points, changes and
    log anomalies (by when their template first appeared; a bare score has no time and is left out) up
    to then."""
    ev = case.evidence
    end = ev.onset + after_s

    def upto(groups: Mapping[str, Mapping[str, tuple[Array, Array]]]) -> dict[str, dict[str, tuple[Array, Array]]]:
        out: dict[str, dict[str, tuple[Array, Array]]] = {}
        for s, series in groups.items():
            out[s] = {}
            for m, (t, v) in series.items():
                t, v = np.asarray(t), np.asarray(v)
                out[s][m] = (t[t <= end], v[t <= end])
        return out

    logs = {s: a for s, a in ev.log_anomalies.items()
            if isinstance(a, LogAnomaly) and a.first_at is not None and a.first_at <= end}
    return replace(case, evidence=replace(ev, metrics=upto(ev.metrics), traces=upto(ev.traces), log_anomalies=logs,
                                          changes=tuple(c for c in ev.changes if c.at <= end)))


def early(cases: Sequence[Case], after_s: Sequence[float], trust: float, params: Params | None = None,
          calibration: dict[str, Any] | None = None) -> tuple[list[Early], int, int]:
    """Rank every case as seen at each of ``after_s`` seconds after its onset; and, per case, the first
    trusted ranking — what a policy acting at ``trust`` would have acted on: ``(rows, first trusted,
    first trusted and wrong)``. A trusted ranking is wrong when its top cause is none of the faults that
    started together with the case (:func:`started_together`; the case's own truth when alone): fixing
    the other fault of a pair is no mistake."""
    peers = {c.id: {c.truth} for c in cases}
    for together in started_together([Outcome(c, []) for c in cases]):
        for o in together:
            peers[o.case.id] = {x.case.truth for x in together}
    rows: list[Early] = []
    first: dict[str, bool] = {}
    for cut in sorted(after_s):
        outcomes = [o for o in run([seen_by(c, cut) for c in cases], params, calibration)
                    if o.causes and o.causes[0].score > 0]
        trusted = [o for o in outcomes if o.causes[0].confidence >= trust]
        for o in trusted:
            first.setdefault(o.case.id, o.causes[0].component in peers[o.case.id])
        rows.append(Early(cut, len(outcomes), sum(1 for o in outcomes if o.rank == 1), len(trusted),
                          sum(1 for o in trusted if o.causes[0].component not in peers[o.case.id])))
    return rows, len(first), sum(1 for right in first.values() if not right)


#: Faults whose onsets are this close (seconds, same group) started together: one ranking serves them all.
TOGETHER_S = 5.0


def started_together(outcomes: Sequence[Outcome], within_s: float = TOGETHER_S) -> list[list[Outcome]]:
    """The sets of faults that started together (onsets chained within ``within_s`` in one group),
    each of two or more faults."""
    sets: list[list[Outcome]] = []
    ordered = sorted(outcomes, key=lambda o: (o.case.group, o.case.evidence.onset))
    for o in ordered:
        last = sets[-1][-1] if sets else None
        if (last is not None and last.case.group == o.case.group
                and o.case.evidence.onset - last.case.evidence.onset <= within_s):
            sets[-1].append(o)
        else:
            sets.append([o])
    return [group for group in sets if len(group) > 1]


def together_top(outcomes: Sequence[Outcome], within_s: float = TOGETHER_S) -> tuple[int, float] | None:
    """Faults that started together share one ranking, so at most one of them can be first: the
    share of such faults whose truth is within the first ``n`` of its ranking, ``n`` = faults in
    its set (``None`` when no fault had company), with how many faults that is.

    >>> from types import SimpleNamespace as NS
    >>> def o(truth, ranking, onset):
    ...     return NS(case=NS(group="c", truth=truth, evidence=NS(onset=onset)), rank=ranking.index(truth) + 1)
    >>> together_top([o("a", ["a", "b", "x"], 10.0), o("b", ["a", "b", "x"], 11.0), o("y", ["y"], 99.0)])
    (2, 1.0)
    """
    sets = started_together(outcomes, within_s)
    if not sets:
        return None
    hits = [0 < o.rank <= len(group) for group in sets for o in group]
    return len(hits), sum(hits) / len(hits)


def summarize(outcomes: Sequence[Outcome]) -> Summary:
    ranks = [o.rank for o in outcomes]
    by_kind: dict[str, tuple[int, float, float]] = {}
    for kind, group in itertools.groupby(sorted(outcomes, key=lambda o: o.case.kind), key=lambda o: o.case.kind):
        rs = [o.rank for o in group]
        by_kind[kind] = (len(rs), topk(rs, 1), topk(rs, 3))
    return Summary(len(ranks), topk(ranks, 1), topk(ranks, 3), topk(ranks, 5), avg_at_k(ranks, 5), by_kind)


@dataclass(frozen=True, slots=True)
class Bin:
    low: float
    high: float
    count: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


def reliability(outcomes: Sequence[Outcome], bins: Sequence[float] = BINS) -> list[Bin]:
    """Every ranked cause's confidence against whether it is the truth, in confidence bins
    (the last bin includes 1.0)."""
    pairs = [(c.confidence, c.component == o.case.truth) for o in outcomes for c in o.causes]
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bins)):
        last = i == len(bins) - 2
        inside = [ok for p, ok in pairs if lo <= p < hi or (last and p == hi)]
        out.append(Bin(lo, hi, len(inside), sum(inside)))
    return out


def calibrate(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Refit the confidence model on these rankings (top score, second score, top-1 right?)."""
    usable = [o for o in outcomes if o.causes]
    if not usable:
        raise InputError("nothing to calibrate on: no ranked case")
    tops = [o.causes[0].score for o in usable]
    seconds = [o.causes[1].score if len(o.causes) > 1 else 0.0 for o in usable]
    correct = [o.rank == 1 for o in usable]
    return fit(tops, seconds, correct)


#: The grid of leave-one-group-out tuning: reference history and the window after the onset.
GRID: dict[str, tuple[float, ...]] = {"reference_s": (900.0, 1800.0, 3600.0), "window_s": (180.0, 300.0, 600.0)}
#: The grid of the traces' and logs' knobs (tuned with the default windows).
SIGNAL_GRID: dict[str, tuple[float, ...]] = {
    "signal_mix": (0.0, 0.5, 1.0), "trace_weight": (0.25, 0.5, 1.0), "trace_latency_floor_s": (0.001, 0.005, 0.02),
    "trace_abort_weight": (0.5, 1.0), "trace_abort_callers": (1, 2)}


def tune(cases: Sequence[Case], grid: Mapping[str, Sequence[float]] | None = None) -> tuple[Params, Summary]:
    """The grid point with the best (top-1, top-3) on these cases (the first one on ties)."""
    grid = GRID if grid is None else grid
    best: tuple[tuple[float, float], Params, Summary] | None = None
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        knobs: dict[str, Any] = dict(zip(names, values, strict=True))  # counts (trace_abort_callers) too
        p = replace(Params(), **knobs)
        s = summarize(run(cases, p))
        key = (s.top1, s.top3)
        if best is None or key > best[0]:
            best = (key, p, s)
    assert best is not None
    return best[1], best[2]


def leave_one_group_out(cases: Sequence[Case], grid: Mapping[str, Sequence[float]] | None = None
                        ) -> list[tuple[str, Params, Summary, Summary]]:
    """For each group: tune on the other groups, test on it → (group, params, tuned-on summary, test summary)."""
    groups = sorted({c.group for c in cases})
    out = []
    for g in groups:
        train = [c for c in cases if c.group != g]
        test = [c for c in cases if c.group == g]
        if not train:
            continue
        p, s_train = tune(train, grid)
        out.append((g, p, s_train, summarize(run(test, p))))
    return out


def write_rankings(outcomes: Sequence[Outcome], fh: IO[str]) -> None:
    """JSONL ``{id, ranking: [service, ...]}`` (plus truth, rank and the top confidence)."""
    for o in outcomes:
        doc = {"id": o.case.id, "ranking": o.ranking, "truth": o.case.truth, "kind": o.case.kind,
               "rank": o.rank, "confidence": o.causes[0].confidence if o.causes else None}
        fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
