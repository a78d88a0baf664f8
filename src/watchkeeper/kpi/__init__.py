"""KPIs as pure functions over incidents and counts."""

from watchkeeper.kpi.measures import (
    DurationStats,
    KpiReport,
    compression,
    dedup_ratio,
    duration_stats,
    mtta,
    mttr,
    report,
)

__all__ = [
    "DurationStats", "KpiReport", "compression", "dedup_ratio", "duration_stats", "mtta", "mttr",
    "report",
]
