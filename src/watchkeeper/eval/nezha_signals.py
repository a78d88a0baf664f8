"""The Nezha layout's traces and logs: ``rca_data/<day>/trace/*.csv[.gz]`` and ``rca_data/<day>/log/*.csv[.gz]``.

**Spans** (``TraceID, SpanID, ParentID, PodName, OperationName, StartTimeUnixNano, EndTimeUnixNano,
Duration`` in µs; ``ParentID`` ``root`` for a root span) become :class:`~watchkeeper.traces.spans.Span`
objects and then RED series (:func:`watchkeeper.traces.red.red_series`). The files carry no span
kind and no status: the kind stays ``internal`` (a caller's span wrapping one remote call is then
recognised as its client span) and a span is an error when a status column says so
(``StatusCode`` / ``Status``: ``2``, ``ERROR``, ``STATUS_CODE_ERROR``) or when one of its children is
a framework's error handler (:func:`~watchkeeper.traces.spans.is_error_handler`: Spring Boot's
``BasicErrorController.error``) — the request it served threw. A file is read whole for that.

**Logs** (``Timestamp`` ISO-8601, ``PodName``, ``Log``: a container runtime's JSON line
``{"log": ..., "time": ...}`` whose ``log`` may itself be a JSON object with ``message`` and
``severity``) become :class:`LogLine` records: time, service, severity, and the message. The fault
injector's own lines (``Inject cpu successfully``) are dropped: they name the fault.

Parsed series and lines are cached under ``.watchkeeper-cache/eval-rca`` by the files' names, sizes
and modification times (and the step), so a second run reads no CSV.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import pickle
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import networkx as nx
import numpy as np

from watchkeeper.errors import InputError
from watchkeeper.rca.logs import LogAnomaly, score_counts, template_of
from watchkeeper.service.log_evidence import evidence_of
from watchkeeper.traces.red import RedAggregator, Series
from watchkeeper.traces.spans import Span, is_error_handler

#: Bumped when the parsing or the aggregation changes, so that old caches are not read.
CACHE_VERSION = "nezha-signals-8"  # 7, 8: a log template that names one other service (a neighbour) is its evidence
DEFAULT_CACHE = Path(".watchkeeper-cache/eval-rca")
_ERROR_STATUS = frozenset({"2", "error", "status_code_error"})
_SEVERITY = re.compile(r"\b(FATAL|CRITICAL|SEVERE|ERROR|ERR|WARNING|WARN|INFO|DEBUG|TRACE)\b", re.IGNORECASE)
_csv_limit_raised = False
#: The fault injector's own lines ("Inject cpu successfully") name the fault: not the system's behaviour.
_INJECTOR = re.compile(r"\binject\w*\b.{0,40}\bsuccess", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line: unix seconds, service, severity (upper case, ``""`` when unknown), message."""

    at: float
    service: str
    severity: str
    message: str


def _open(path: Path) -> IO[str]:
    global _csv_limit_raised
    if not _csv_limit_raised:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # log lines with stack traces exceed 128 KiB
        _csv_limit_raised = True
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
        return path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e})") from e


def _files(day_dir: Path, sub: str) -> list[Path]:
    folder = day_dir / sub
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".csv", ".csv.gz")))


def _fingerprint(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{extra}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _cached(cache: Path | None, key: str, build: Any) -> Any:
    if cache is None:
        return build()
    path = cache / f"{key}.pickle"
    if path.exists():
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)  # noqa: S301 - our own cache file, written below
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return value


# -- spans --------------------------------------------------------------------------------------
def read_spans(path: Path, service_of: Any) -> Iterator[Span]:
    """The spans of one Nezha trace CSV; ``service_of`` maps a pod name to its service."""
    with _open(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        col = {name: i for i, name in enumerate(header)}
        missing = {"TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano"} - set(col)
        if missing:
            raise InputError(f"{path}: no column {sorted(missing)[0]!r} (is this a Nezha trace file?)")
        i_tr, i_sp, i_pa, i_pod, i_op, i_st = (col[n] for n in ("TraceID", "SpanID", "ParentID", "PodName",
                                                                 "OperationName", "StartTimeUnixNano"))
        i_end, i_dur = col.get("EndTimeUnixNano"), col.get("Duration")
        i_status = col.get("StatusCode", col.get("Status"))
        services: dict[str, str] = {}
        width = len(header)
        rows = [row for row in reader if len(row) >= width]
        failed = {(row[i_tr], row[i_pa]) for row in rows if is_error_handler(row[i_op])}
        for row in rows:
            try:
                start_ns = int(row[i_st])
                if i_dur is not None and row[i_dur]:
                    duration = float(row[i_dur]) / 1e6
                elif i_end is not None:
                    duration = (int(row[i_end]) - start_ns) / 1e9
                else:
                    continue
            except ValueError:
                continue
            pod = row[i_pod]
            service = services.get(pod)
            if service is None:
                service = services[pod] = service_of(pod)
            parent = row[i_pa]
            error = (i_status is not None and row[i_status].strip().lower() in _ERROR_STATUS) or (
                (row[i_tr], row[i_sp]) in failed)
            yield Span(row[i_tr], row[i_sp], None if parent in ("", "root") else parent, service, row[i_op],
                       start_ns / 1e9, max(duration, 0.0), error)


def day_traces(day_dir: Path, step: float, service_of: Any, cache: Path | None = DEFAULT_CACHE
               ) -> tuple[Series, nx.DiGraph] | None:
    """The RED series of a day's spans at ``step`` seconds and their call graph (``None`` when the day
    has no trace files)."""
    paths = _files(day_dir, "trace")
    if not paths:
        return None

    def build() -> tuple[Series, list[tuple[str, str, dict[str, Any]]]]:
        agg = RedAggregator(step, lateness_s=math.inf, max_spans=2**62, operations=False)
        for p in paths:
            agg.add_many(read_spans(p, service_of))
        series = agg.flush(final=True)
        return series, [(str(u), str(v), dict(d)) for u, v, d in agg.graph().edges(data=True)]

    series, edges = _cached(cache, _fingerprint(paths, f"traces|{step}"), build)
    graph = nx.DiGraph()
    graph.add_edges_from(edges)
    return series, graph


# -- logs ---------------------------------------------------------------------------------------
def parse_time(text: str) -> float | None:
    """Unix seconds of an ISO-8601 time (``Z`` or offset; naive = UTC; nanoseconds cut to µs).

    >>> parse_time("2023-01-29T09:33:09.036923751Z"), parse_time("2023-01-29T09:33:14.716")
    (1674984789.036923, 1674984794.716)
    """
    text = text.strip()
    if not text:
        return None
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?", text)
    if not m:
        return None
    frac = (m.group(3) or "")[:7]
    tz = m.group(4) or "+00:00"
    tz = "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{frac}{tz}").timestamp()
    except ValueError:
        return None


def split_log(raw: str) -> tuple[str, str, float | None]:
    """``(message, severity, time)`` of one ``Log`` cell: a runtime JSON line whose ``log`` may be a JSON
    object (``message``/``msg``, ``severity``/``level``), else plain text with a level word in it.

    >>> cell = json.dumps({"log": json.dumps({"message": "charge failed", "severity": "error"}) + "\\n",
    ...                    "time": "2022-08-22T03:51:00Z"})
    >>> split_log(cell)
    ('charge failed', 'ERROR', 1661140260.0)
    >>> split_log('2023-01-29 09:33:09.036  WARN 1 --- [main] c.Foo : slow')[:2]
    ('2023-01-29 09:33:09.036  WARN 1 --- [main] c.Foo : slow', 'WARN')
    """
    at: float | None = None
    text = raw
    severity = ""
    if raw.startswith("{"):
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            if isinstance(doc.get("time"), str):
                at = parse_time(doc["time"])
            inner = doc.get("log", doc.get("message", raw))
            text = inner if isinstance(inner, str) else json.dumps(inner)
            if isinstance(inner, dict):
                sub: Any = inner
            elif text.lstrip().startswith("{"):
                try:
                    sub = json.loads(text)
                except ValueError:
                    sub = None
            else:
                sub = None
            if isinstance(sub, dict):
                text = str(sub.get("message", sub.get("msg", text)))
                severity = str(sub.get("severity", sub.get("level", ""))).upper()
    text = text.strip()
    if not severity:
        m = _SEVERITY.search(text[:200])
        severity = m.group(1).upper() if m else ""
    severity = {"WARNING": "WARN", "ERR": "ERROR", "CRITICAL": "FATAL", "SEVERE": "ERROR"}.get(severity, severity)
    return text, severity, at


def read_logs(path: Path, service_of: Any) -> Iterator[LogLine]:
    """The lines of one Nezha log CSV (``Timestamp`` or the runtime's ``time``; ``TimeUnixNano`` last,
    as it is corrupt in some files)."""
    with _open(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        col = {name: i for i, name in enumerate(header)}
        if "PodName" not in col or "Log" not in col:
            raise InputError(f"{path}: needs the columns 'PodName' and 'Log' (is this a Nezha log file?)")
        i_pod, i_log = col["PodName"], col["Log"]
        i_ts, i_ns = col.get("Timestamp"), col.get("TimeUnixNano")
        services: dict[str, str] = {}
        for row in reader:
            if len(row) <= max(i_pod, i_log):
                continue
            message, severity, at = split_log(row[i_log])
            if _INJECTOR.search(message):
                continue
            if i_ts is not None and i_ts < len(row):
                at = parse_time(row[i_ts]) or at
            if at is None and i_ns is not None and i_ns < len(row):
                try:
                    ns = int(row[i_ns])
                    at = ns / 1e9 if ns > 0 else None
                except ValueError:
                    at = None
            if at is None or not math.isfinite(at):
                continue
            pod = row[i_pod]
            service = services.get(pod)
            if service is None:
                service = services[pod] = service_of(pod)
            yield LogLine(at, service, severity, message)


@dataclass(frozen=True, slots=True)
class LogTable:
    """A day's log lines, compact: sorted times and, per line, indexes into the service, severity and
    template tables (templates by :func:`watchkeeper.rca.logs.template_of`, computed once per line). A
    line's service is the one it is evidence about, as ``serve`` attributes it
    (:func:`watchkeeper.service.log_evidence.evidence_of`): the one other service its template names
    — a neighbour of the writer in the day's topology when that knows it — (``call to ts-order-service
    failed`` is that service's symptom), else the one that wrote it."""

    at: np.ndarray[Any, np.dtype[np.float64]]
    service: np.ndarray[Any, np.dtype[np.int32]]
    severity: np.ndarray[Any, np.dtype[np.int32]]
    template: np.ndarray[Any, np.dtype[np.int32]]
    services: tuple[str, ...]
    severities: tuple[str, ...]
    templates: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.at)

    @classmethod
    def of(cls, lines: Iterable[LogLine], graph: Any = None) -> LogTable:
        """The table of ``lines``; ``graph``, the day's topology: whom a line can name
        (:func:`watchkeeper.service.log_evidence.evidence_of`)."""
        ids: dict[str, dict[str, int]] = {"service": {}, "severity": {}, "template": {}}
        cols: dict[str, list[int]] = {"service": [], "severity": [], "template": []}
        at: list[float] = []
        for line in lines:
            at.append(line.at)
            for name, value in (("service", line.service), ("severity", line.severity),
                                ("template", template_of(line.message))):
                table = ids[name]
                i = table.get(value)
                if i is None:
                    i = table[value] = len(table)
                cols[name].append(i)
        services, templates = tuple(ids["service"]), tuple(ids["template"])
        attributed: dict[tuple[int, int], int] = {}  # (writer, template) -> the service it is evidence about
        for pair in set(zip(cols["service"], cols["template"], strict=True)):
            writer = services[pair[0]]
            attributed[pair] = services.index(evidence_of(templates[pair[1]], writer, services, graph))
        cols["service"] = [attributed[pair] for pair in zip(cols["service"], cols["template"], strict=True)]
        order = np.argsort(np.asarray(at, dtype=np.float64), kind="stable")

        def column(n: str) -> np.ndarray[Any, np.dtype[np.int32]]:
            return np.asarray(cols[n], dtype=np.int32)[order]

        return cls(np.asarray(at, dtype=np.float64)[order], column("service"), column("severity"),
                   column("template"), services, tuple(ids["severity"]), templates)

    def has_lines(self, start: float, end: float) -> bool:
        """Any line in ``[start, end)``."""
        lo, hi = np.searchsorted(self.at, [start, end], side="left")
        return bool(hi > lo)

    def anomalies(self, onset: float, reference_s: float, window_s: float) -> dict[str, LogAnomaly]:
        """:func:`watchkeeper.rca.logs.log_anomalies` of the lines around ``onset``, counted with numpy."""
        lo, mid, hi = (int(i) for i in np.searchsorted(self.at, [onset - reference_s, onset, onset + window_s],
                                                        side="left"))
        width = max(len(self.templates), 1)
        keys = self.service.astype(np.int64) * width + self.template

        def name(k: int) -> tuple[str, str]:
            return self.services[k // width], self.templates[k % width]

        b_keys, b_counts = np.unique(keys[lo:mid], return_counts=True)
        a_keys, a_first, a_counts = np.unique(keys[mid:hi], return_index=True, return_counts=True)
        before = {name(int(k)): int(n) for k, n in zip(b_keys, b_counts, strict=True)}
        after, severity, first = {}, {}, {}
        for k, i, n in zip(a_keys, a_first, a_counts, strict=True):
            key = name(int(k))
            after[key] = int(n)
            severity[key] = self.severities[int(self.severity[mid + int(i)])]
            first[key] = float(self.at[mid + int(i)])
        return score_counts(before, after, severity, first, window_s / reference_s if reference_s > 0 else 0.0)


def day_logs(day_dir: Path, service_of: Any, cache: Path | None = DEFAULT_CACHE, graph: Any = None
             ) -> LogTable | None:
    """A day's log lines (``None`` when the day has no log files); ``graph``: the day's topology."""
    paths = _files(day_dir, "log")
    if not paths:
        return None

    def build() -> LogTable:
        return LogTable.of((line for p in paths for line in read_logs(p, service_of)), graph)

    edges = "" if graph is None else ";".join(sorted(f"{a}>{b}" for a, b in graph.edges))
    result: LogTable = _cached(cache, _fingerprint(paths, "logs" + edges), build)
    return result
