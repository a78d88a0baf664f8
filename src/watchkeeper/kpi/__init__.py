"""KPIs as pure functions over incidents and counts."""

from watchkeeper.kpi.measures import (
    DurationStats,
    Grouping,
    KpiReport,
    compression,
    dedup_ratio,
    duration_stats,
    grouping,
    mtta,
    mttr,
    report,
)

__all__ = [
    "DurationStats",
    "Grouping",
    "KpiReport",
    "compression",
    "dedup_ratio",
    "duration_stats",
    "grouping",
    "mtta",
    "mttr",
    "report",
]
