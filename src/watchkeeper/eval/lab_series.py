"""Labelled metric series from recorded lab campaigns, for ``watchkeeper eval detect --lab DIR``.

A campaign (``watchkeeper lab record``) holds ``metrics/<service>.csv`` — one row per scrape, the
same timestamps in every file — and ``faults.jsonl`` (each fault's ``started_at`` and, on a later
line, its ``ended_at``). It becomes one entity in the SMD/ASD layout (:class:`smd.Entity`):

* the vector: every service's every metric (``cpu_rate``, ``latency_p90_s``, ``up``, …), one column
  each, on the scrape grid; a gap (a crashed service has only ``up``) keeps the last value seen
  (the first value seen before it), a metric never seen is left out;
* the training part: the healthy warm-up, the scrapes before the first fault starts;
* the labels: the whole system is anomalous from a fault's start to its end plus
  :data:`LABEL_TAIL_SCRAPES` scrapes (the recorder's rates and latency percentiles are taken over
  the last scrape interval, so a fault's effect shows one interval late). A fault that never ended
  is anomalous to the end of the recording.

Whole-system labels are a choice made before any figure was seen: which service a fault shows on
is root cause's question (``eval rca --format lab``), not detection's. They make the figure
point-adjusted F1 of "is something wrong now", pooled over the campaigns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.errors import InputError
from watchkeeper.eval import smd
from watchkeeper.eval.rca import read_lab_faults, read_lab_metrics

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: Scrapes after a fault's end still labelled anomalous (rates lag one interval).
LABEL_TAIL_SCRAPES = 2


def campaigns(root: Path) -> list[Path]:
    """``root`` itself when it is a campaign (has ``faults.jsonl``), else its sub-folders that are."""
    if (root / "faults.jsonl").exists():
        return [root]
    return sorted(p.parent for p in root.glob("*/faults.jsonl"))


def filled(values: FloatArray) -> FloatArray | None:
    """Gaps (NaN) keep the last value seen, leading ones the first; ``None`` when nothing was seen.

    >>> filled(np.array([np.nan, 2.0, np.nan, 4.0])).tolist(), filled(np.array([np.nan]))
    ([2.0, 2.0, 2.0, 4.0], None)
    """
    seen = np.isfinite(values)
    if not seen.any():
        return None
    index = np.where(seen, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    out = values[index]
    out[: int(np.argmax(seen))] = values[int(np.argmax(seen))]
    return np.asarray(out, dtype=np.float64)


def campaign_entity(directory: Path) -> tuple[smd.Entity, float]:
    """One campaign as an entity (named ``lab/<folder>``) and its scrape interval in seconds."""
    metrics = read_lab_metrics(directory / "metrics")
    if not metrics:
        raise InputError(f"{directory / 'metrics'}: no <service>.csv here (is this a recorded campaign?)")
    windows = [(f.onset, f.end) for f in read_lab_faults(directory / "faults.jsonl")]
    if not windows:
        raise InputError(f"{directory / 'faults.jsonl'}: no fault in it, so nothing to detect")
    grid = np.unique(np.concatenate([t for series in metrics.values() for t, _ in series.values()]))
    if not np.isfinite(grid).all():
        raise InputError(f"{directory / 'metrics'}: a timestamp is not a finite number")
    if len(grid) < 3:
        raise InputError(f"{directory}: fewer than three scrapes")
    step = float(np.median(np.diff(grid)))
    columns = []
    for service in sorted(metrics):
        for name in sorted(metrics[service]):
            t, v = metrics[service][name]
            aligned = np.full(len(grid), np.nan)
            aligned[np.searchsorted(grid, t)] = v
            column = filled(aligned)
            if column is not None:
                columns.append(column)
    if not columns:
        raise InputError(f"{directory}: no metric has a value")
    matrix = np.column_stack(columns)
    first = min(start for start, _ in windows)
    train = grid < first
    if not train.any():
        raise InputError(f"{directory}: the first fault starts at the first scrape; no healthy part to learn")
    if train.all():
        raise InputError(f"{directory}: no scrape after the first fault started; nothing to detect")
    labels = np.zeros(len(grid), dtype=bool)
    for start, end in windows:
        stop = grid[-1] if end is None else end + LABEL_TAIL_SCRAPES * step
        labels |= (grid >= start) & (grid <= stop)
    entity = smd.Entity(f"lab/{directory.name}", matrix[train], matrix[~train], labels[~train])
    return entity, step


def load(root: Path) -> tuple[list[smd.Entity], float]:
    """Every campaign under ``root`` as entities, and their (median) scrape interval."""
    found = campaigns(root)
    if not found:
        raise InputError(f"{root}: no faults.jsonl here or one level below (record one with "
                         "'watchkeeper lab record DIR')")
    pairs = [campaign_entity(c) for c in found]
    return [e for e, _ in pairs], float(np.median([s for _, s in pairs]))
