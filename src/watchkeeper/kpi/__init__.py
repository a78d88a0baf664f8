"""KPIs as pure functions over incidents and counts."""

from watchkeeper.kpi.measures import (
    RECEIPT,
    SOURCE_START,
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
    "RECEIPT",
    "SOURCE_START",
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
