from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchkeeper.kpi import compression, dedup_ratio, duration_stats, mtta, mttr, report
from watchkeeper.model import Incident, IncidentStatus, Severity

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def inc(ack_min: float | None, res_min: float | None) -> Incident:
    i = Incident(1, "x", IncidentStatus.OPEN, Severity.WARNING, ["s"], T0, T0)
    i.acknowledged_at = T0 + timedelta(minutes=ack_min) if ack_min is not None else None
    i.resolved_at = T0 + timedelta(minutes=res_min) if res_min is not None else None
    return i


def test_mtta_mttr_only_count_incidents_that_got_there() -> None:
    incidents = [inc(1, 10), inc(3, None), inc(None, 30), inc(5, 20)]
    assert mtta(incidents).count == 3 and mtta(incidents).mean == 180.0
    stats = mttr(incidents)
    assert (stats.count, stats.median) == (3, 1200.0)
    assert stats.mean is not None and abs(stats.mean - 1200.0) < 1e-9


def test_p90_matches_numpy_linear() -> None:
    values = [float(v) for v in range(1, 11)]
    assert duration_stats(values).p90 == 9.1


def test_ratios_and_empty_inputs() -> None:
    assert dedup_ratio(0, 0) is None and compression(0, 0) is None
    assert compression(10, 1) == 0.9
    r = report([], 0, 0)
    assert r.incidents == 0 and r.mtta.mean is None and r.as_dict()["compression"] is None
