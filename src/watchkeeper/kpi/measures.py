"""MTTA, MTTR, deduplication and compression. Pure functions: no SQL dialects, no clocks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from watchkeeper.model import Incident

#: Where a duration is measured from: our receipt of the first alert (``opened_at``), or the
#: source's own start of it (``startsAt``, ``started_at``), which counts the time before it reached us.
RECEIPT = "receipt"
SOURCE_START = "source_start"


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Seconds: mean, median and 90th percentile over ``count`` incidents (None when empty),
    measured from ``measured_from`` (``receipt`` or ``source_start``)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None
    measured_from: str = RECEIPT

    def with_origin(self, measured_from: str) -> DurationStats:
        return replace(self, measured_from=measured_from)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (NumPy's default)."""
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def duration_stats(seconds: Iterable[float]) -> DurationStats:
    """
    >>> duration_stats([60, 120, 600])
    DurationStats(count=3, mean=260.0, median=120.0, p90=504.0, measured_from='receipt')
    >>> duration_stats([])
    DurationStats(count=0, mean=None, median=None, p90=None, measured_from='receipt')
    """
    values = sorted(seconds)
    if not values:
        return DurationStats(0, None, None, None)
    return DurationStats(
        len(values), sum(values) / len(values), _quantile(values, 0.5), _quantile(values, 0.9)
    )


def _start(incident: Incident, measured_from: str) -> datetime | None:
    return incident.opened_at if measured_from == RECEIPT else incident.started_at


def mtta(incidents: Iterable[Incident], measured_from: str = RECEIPT) -> DurationStats:
    """Mean time to acknowledge, over incidents that were ever acknowledged: the first
    acknowledgement counts, even when a reopen cleared it (from the source's start: over
    incidents whose source start is known).

    >>> from datetime import UTC, timedelta
    >>> from watchkeeper.model import IncidentStatus, Severity
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> reopened = Incident(1, "db", IncidentStatus.OPEN, Severity.WARNING, ["db"], t, t,
    ...                     started_at=t - timedelta(minutes=10), first_acknowledged_at=t + timedelta(minutes=2))
    >>> mtta([reopened]).mean, mtta([reopened], SOURCE_START).mean
    (120.0, 720.0)
    """
    return duration_stats(
        (acked - start).total_seconds() for i in incidents
        if (acked := i.first_acknowledged_at or i.acknowledged_at) is not None
        and (start := _start(i, measured_from)) is not None
    ).with_origin(measured_from)


def mttr(incidents: Iterable[Incident], measured_from: str = RECEIPT) -> DurationStats:
    """Mean time to resolve, over incidents that are resolved (a reopened one counts until its
    last resolution)."""
    return duration_stats(
        (i.resolved_at - start).total_seconds() for i in incidents
        if i.resolved_at is not None and (start := _start(i, measured_from)) is not None
    ).with_origin(measured_from)


def dedup_ratio(events: int, alerts: int) -> float | None:
    """Share of events absorbed by deduplication: ``1 - alerts / events``.

    >>> dedup_ratio(100, 20)
    0.8
    """
    return None if events == 0 else 1 - alerts / events


def compression(alerts: int, incidents: int) -> float | None:
    """Noise reduction: ``1 - incidents / alerts`` (0.8 means 80 % fewer things to look at).

    >>> compression(50, 5)
    0.9
    """
    return None if alerts == 0 else 1 - incidents / alerts


@dataclass(frozen=True, slots=True)
class Grouping:
    """Grouping quality as judged by humans: of the alerts the correlator joined to an existing
    incident, the share nobody moved out again; merges count the groupings it missed."""

    auto_joined: int
    moved_out: int
    merges: int
    precision: float | None


def grouping(kept: int, moved: int, merged: int) -> Grouping:
    """
    >>> grouping(kept=95, moved=5, merged=2).precision
    0.95
    """
    joined = kept + moved
    return Grouping(joined, moved, merged, None if joined == 0 else kept / joined)


@dataclass(frozen=True, slots=True)
class KpiReport:
    start: datetime | None
    end: datetime | None
    events: int
    alerts: int
    incidents: int
    mtta: DurationStats
    mttr: DurationStats
    dedup_ratio: float | None
    compression: float | None
    grouping: Grouping | None = None
    #: The same, measured from the source's ``startsAt`` of each incident's first alert.
    mtta_from_source_start: DurationStats | None = None
    mttr_from_source_start: DurationStats | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(
    incidents: Sequence[Incident], events: int, alerts: int,
    start: datetime | None = None, end: datetime | None = None, grouping: Grouping | None = None,
) -> KpiReport:
    """All foundation KPIs for incidents opened in a window, and the events/alerts seen in it."""
    return KpiReport(
        start, end, events, alerts, len(incidents), mtta(incidents), mttr(incidents),
        dedup_ratio(events, alerts), compression(alerts, len(incidents)), grouping,
        mtta(incidents, SOURCE_START), mttr(incidents, SOURCE_START),
    )
