"""Read metric CSV files into equally spaced ``Series`` for the forecaster (a small private reader).

Three layouts, one header row each:

- narrow: ``timestamp,value``;
- wide: ``timestamp,<series a>,<series b>,...`` (pick one with ``column``);
- long: ``timestamp,value,<id>`` with ``id_column`` naming the series column.

Timestamps are epoch seconds or ISO-8601. Points are averaged into buckets of ``step`` (by
default the median spacing of the file); empty buckets become NaN (the model skips them).
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from watchkeeper.detect.forecast import Series
from watchkeeper.errors import InputError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """``6h``, ``90m``, ``1h30m``, ``2d``, ``45s`` → timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise InputError(f"not a duration: {text!r} (use e.g. 6h, 90m, 1h30m, 2d)")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"not a timestamp: {text!r}") from exc
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt).timestamp()


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_series(path: Path, *, column: str | None = None, id_column: str | None = None,
                step: timedelta | None = None, min_points: int = 4) -> list[Series]:
    """Every series of one CSV file, resampled onto a regular grid."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{path}: empty file") from None
        rows = [r for r in reader if r]
    if len(header) < 2:
        raise InputError(f"{path}: need a timestamp column and at least one value column")
    lowered = [h.lower() for h in header]
    t_col = next((i for i, h in enumerate(lowered) if "time" in h or h in ("ts", "date")), 0)
    raw: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    if id_column is not None:
        if id_column not in header:
            raise InputError(f"{path}: no column {id_column!r} (columns: {', '.join(header)})")
        i_col = header.index(id_column)
        v_col = header.index(column) if column else next(
            (i for i, h in enumerate(lowered) if h == "value"),
            next(i for i in range(len(header)) if i not in (t_col, i_col)))
        for r in rows:
            ts, vs = raw[r[i_col] or "(none)"]
            ts.append(_timestamp(r[t_col]))
            vs.append(_float(r[v_col]))
    else:
        names = [h for i, h in enumerate(header) if i != t_col]
        if column is not None:
            if column not in header:
                raise InputError(f"{path}: no column {column!r} (columns: {', '.join(header)})")
            names = [column]
        idx = [header.index(n) for n in names]
        times = [_timestamp(r[t_col]) for r in rows]
        for n, i in zip(names, idx, strict=True):
            raw[n] = (times, [_float(r[i]) if i < len(r) else math.nan for r in rows])
    out: list[Series] = []
    for name, (ts, vs) in raw.items():
        t, v = np.asarray(ts), np.asarray(vs)
        if np.isfinite(v).sum() < min_points:
            continue
        out.append(_resample(f"{path.stem}:{name}" if len(raw) > 1 else path.stem, t, v, step,
                             {"series": name, "file": path.name}))
    if not out:
        raise InputError(f"{path}: no series with at least {min_points} numeric points")
    return out


def _resample(name: str, t: np.ndarray, v: np.ndarray, step: timedelta | None,
              labels: dict[str, str]) -> Series:
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    diffs = np.diff(np.unique(t))
    seconds = step.total_seconds() if step else (float(np.median(diffs)) if diffs.size else 60.0)
    if seconds <= 0:
        raise InputError("the resampling step must be positive")
    bucket = np.floor((t - t[0]) / seconds + 1e-9).astype(np.int64)
    n = int(bucket[-1]) + 1
    ok = np.isfinite(v)
    sums = np.bincount(bucket[ok], weights=v[ok], minlength=n)
    counts = np.bincount(bucket[ok], minlength=n)
    values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    start = datetime.fromtimestamp(float(t[0]), tz=UTC)
    return Series(name, start, timedelta(seconds=seconds), values, labels)
