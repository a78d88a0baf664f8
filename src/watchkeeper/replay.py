"""Offline replay: the same pipeline as the server, in memory, on a JSONL file of webhook bodies.

Each line is one request body (Alertmanager, Grafana, PagerDuty or Watchkeeper events), with an
optional top-level ``received_at`` (ISO 8601) giving its arrival time. Without it, an event's own
time stands in: ``ends_at`` for a resolved event, ``starts_at`` otherwise.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import InputError
from watchkeeper.model import Event, Incident, Membership, Status, utc
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.sources import Source, detect

_PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BadLine:
    number: int
    error: str


@dataclass(slots=True)
class ReplayResult:
    state: State
    events: int = 0
    lines: int = 0
    bad: list[BadLine] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)

    @property
    def incidents(self) -> list[Incident]:
        return sorted(self.state.incidents.values(), key=lambda i: i.id)


def parse_line(line: bytes, sources: dict[str, Source]) -> list[Event]:
    """Decode one JSONL line into events; raise InputError naming what is wrong."""
    try:
        payload = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", status=400) from exc
    received: datetime | None = None
    if isinstance(payload, dict) and "received_at" in payload:
        stamp = payload.pop("received_at")
        try:
            received = utc(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")))
        except ValueError as exc:
            raise InputError(f"received_at {stamp!r} is not an ISO 8601 time") from exc
    source = detect(payload, sources)
    events = source.normalize(payload, received or _PLACEHOLDER)
    if received is None:
        events = [replace(e, received_at=_event_time(e)) for e in events]
    return events


def _event_time(event: Event) -> datetime:
    if event.status is Status.RESOLVED and event.ends_at is not None:
        return event.ends_at
    return event.starts_at


#: the collector's first threshold during a replay (Python's default: 700)
BATCH_GC_THRESHOLD = 100_000


@contextmanager
def _batch_gc() -> Iterator[None]:
    """A replay keeps nearly everything it allocates (alerts, incidents, memberships) until it ends,
    so the cyclic collector's passes over the growing heap find little and cost much (a sixth of a
    replay with every strategy, measured with ``gc.callbacks``): run it less often, then restore."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], BATCH_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def replay(
    lines: Iterable[bytes], sources: dict[str, Source], config: PipelineConfig, *, strict: bool = False
) -> ReplayResult:
    """Run every line through one in-memory pipeline. Bad lines are skipped and listed
    (``strict`` raises on the first one instead)."""
    with _batch_gc():
        return _replay(lines, sources, config, strict=strict)


def _replay(
    lines: Iterable[bytes], sources: dict[str, Source], config: PipelineConfig, *, strict: bool
) -> ReplayResult:
    ids = itertools.count(1)
    pipeline = Pipeline(config, lambda: next(ids))
    result = ReplayResult(State())
    ended: dict[tuple[int, str], int] = {}  # (incident, fingerprint) → memberships before it ended
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result.lines += 1
        try:
            events = parse_line(line, sources)
        except InputError as exc:
            if strict:
                raise InputError(f"line {number}: {exc}", status=exc.status) from exc
            result.bad.append(BadLine(number, str(exc)))
            continue
        for event in events:
            pipeline.observe(event, result.state)
        result.events += len(events)
        result.memberships.extend(result.state.memberships)
        for departure in result.state.departures:  # a split moved the alert: that membership ended
            ended[departure] = len(result.memberships)
        result.state.clear_changes()
    if ended:
        result.memberships = [m for n, m in enumerate(result.memberships)
                              if n >= ended.get((m.incident_id, m.fingerprint), 0)]
    return result


def onsets(result: ReplayResult) -> list[tuple[Incident, datetime]]:
    """Each incident with its onset: its opening, or its earliest alert's start when earlier."""
    first: dict[int, datetime] = {}
    for m in result.memberships:
        alert = result.state.alerts.get(m.fingerprint)
        if alert is not None:
            first[m.incident_id] = min(first.get(m.incident_id, alert.first_seen), alert.first_seen)
    return [(i, min(i.opened_at, first.get(i.id, i.opened_at))) for i in result.incidents]


def incident_records(result: ReplayResult) -> Iterator[dict[str, Any]]:
    """One JSON-ready object per incident: the format evaluations rely on."""
    members: dict[int, list[dict[str, Any]]] = {}
    for m in result.memberships:
        members.setdefault(m.incident_id, []).append(
            {"fingerprint": m.fingerprint, "reason": m.reason, "detail": m.detail}
        )
    for incident in result.incidents:
        yield {
            "id": incident.id,
            "title": incident.title,
            "status": incident.status.value,
            "severity": incident.severity.value,
            "opened_at": incident.opened_at,
            "resolved_at": incident.resolved_at,
            "services": incident.services,
            "alerts": members.get(incident.id, []),
        }
