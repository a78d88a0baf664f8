"""A recorded lab campaign's spans and logs (``spans.jsonl``, ``logs/<service>.log``) as ranker evidence.

Spans go through what ``serve`` does with them: the streaming :class:`~watchkeeper.traces.red.RedAggregator`
(in arrival order, with ``serve``'s lateness), its flushes stored as RED rows
(:func:`~watchkeeper.traces.rows.rows_of`) and read back as the ranker's series
(:func:`~watchkeeper.traces.rows.series_of`, what ``TraceStore`` returns), the call graph from the edge
series' names (:func:`watchkeeper.ranking.trace_graph`). Each fault sees only the rows written by its
end, as a live ranker would.

Logs (JSON lines with ``time``/``timestamp``, ``level``/``severity`` and ``message``/``msg``) are scored
by the evaluation's own template scorer (:func:`watchkeeper.rca.logs.log_anomalies`), not by the
server's log pipeline. Its masker (:func:`~watchkeeper.rca.logs.template_of`) stays: templating with the
server's miner instead (``read_logs(mine=True)``, ``log_evidence(templated=True)``) ranked worse on the one
recorded campaign (docs/rca.md, "Results (lab campaigns)").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchkeeper.eval.nezha_signals import parse_time
from watchkeeper.logs.miner import TemplateMiner
from watchkeeper.rca.logs import LogAnomaly, log_anomalies
from watchkeeper.service.log_evidence import evidence_of
from watchkeeper.traces.red import RedAggregator, Series
from watchkeeper.traces.rows import RedRow, rows_of, series_of
from watchkeeper.traces.spans import KINDS, Span

#: The RED step the lab evaluation asks of ``serve`` (``traces.step_s``): its faults last 30 s.
LAB_TRACE_STEP = 10.0
#: ``serve``'s default lateness (``traces.lateness_s``), scaled to the step.
LAB_LATENESS = 10.0


def read_spans(path: Path) -> list[Span]:
    """``spans.jsonl`` of a campaign as spans, in the order they were received."""
    out: list[Span] = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                d = json.loads(line)
                kind = str(d.get("kind") or "internal")
                out.append(
                    Span(
                        str(d["trace_id"]),
                        str(d["span_id"]),
                        d.get("parent_id") or None,
                        str(d["service"]),
                        str(d.get("operation", "")),
                        float(d["start"]),
                        max(float(d.get("duration", 0.0)), 0.0),
                        bool(d.get("error")),
                        kind if kind in KINDS else "internal",
                        str(d["peer"]) if d.get("peer") else None,
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
    return out


def stored_rows(spans: list[Span], step: float = LAB_TRACE_STEP, lateness_s: float = LAB_LATENESS) -> list[RedRow]:
    """The RED rows ``serve`` would have written from these spans (flushed as they arrive)."""
    agg = RedAggregator(step, lateness_s=lateness_s, operations=False)
    rows: list[RedRow] = []
    for i, span in enumerate(spans):
        agg.add(span)
        if i % 500 == 499:
            rows += rows_of(agg.flush(), step)
    rows += rows_of(agg.flush(final=True), step)
    return rows


def series_until(rows: list[RedRow], end: float | None) -> Series:
    """The series a ranker reads back at ``end`` (rows of steps ended by then; all when ``None``)."""
    return series_of([r for r in rows if end is None or r.at <= end])


def _log_lines(folder: Path) -> Iterator[tuple[float, str, str, str]]:
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else ():
        service = path.stem
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    doc: Any = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(doc, dict):
                    continue
                when = doc.get("time", doc.get("timestamp"))
                at = float(when) if isinstance(when, int | float) else parse_time(str(when or ""))
                if at is None or not math.isfinite(at):
                    continue
                severity = str(doc.get("level", doc.get("severity", ""))).upper()
                severity = {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(severity, severity)
                yield at, str(doc.get("service", service)), severity, str(doc.get("message", doc.get("msg", "")))


def read_logs(folder: Path, *, mine: bool = False) -> list[tuple[float, str, str, str]]:
    """``logs/<service>.log`` of a campaign: ``(unix s, service, severity, message)`` by time; with
    ``mine``, the message is replaced by its template from the server's template miner
    (:class:`~watchkeeper.logs.miner.TemplateMiner`, one for every service, the template's final text)."""
    lines = sorted(_log_lines(folder))
    if not mine:
        return lines
    miner = TemplateMiner()
    ids = [miner.add(message).template_id for _, _, _, message in lines]
    final = {tid: text for tid, text, _ in miner.templates()}
    return [
        (at, service, severity, final.get(tid, tid)) for (at, service, severity, _), tid in zip(lines, ids, strict=True)
    ]


def _named(message: str, service: str, services: list[str], graph: Any = None) -> str:
    """The service a line is evidence about: the one other service it names (``call to payment failed``
    is payment's symptom), as ``serve``'s log evidence attributes it
    (:func:`watchkeeper.service.log_evidence.evidence_of`: a neighbour of the writer when the topology
    knows it); else the one that wrote it."""
    return evidence_of(message, service, services, graph)


def log_evidence(
    lines: list[tuple[float, str, str, str]],
    onset: float,
    end: float | None,
    reference_s: float,
    window_s: float,
    *,
    templated: bool = False,
    graph: Any = None,
) -> dict[str, LogAnomaly]:
    """Each service's log anomaly around ``onset`` from the lines written by ``end`` (``graph``: the
    topology, for whom a line can name)."""
    seen = [x for x in lines if end is None or x[0] <= end]
    services = sorted({x[1] for x in seen})
    seen = [(at, _named(message, service, services, graph), severity, message)
            for at, service, severity, message in seen]
    return log_anomalies(seen, onset, reference_s=reference_s, window_s=window_s, templated=templated)
