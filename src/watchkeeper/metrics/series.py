"""Reading metrics: ``timestamp,value`` CSV, wide CSV/Parquet (several metrics), Prometheus.

Times become float epoch seconds (UTC); a timestamp may be ISO 8601 (naive means UTC) or a
number of seconds since the epoch.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from watchkeeper.errors import InputError, IntegrationError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Series:
    """One metric: ``times`` (epoch seconds, increasing) and ``values``."""

    name: str
    times: FloatArray
    values: FloatArray
    labels: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (naive = UTC) or a plain number.

    >>> parse_time("1970-01-01 00:01:00"), parse_time("60"), parse_time("1970-01-01T01:00:00+01:00")
    (60.0, 60.0, 0.0)
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"not a timestamp: {text!r}") from exc
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt).timestamp()


def format_time(t: float) -> str:
    """ISO 8601 UTC, seconds precision unless there is a fraction.

    >>> format_time(60.0), format_time(0.5)
    ('1970-01-01T00:01:00Z', '1970-01-01T00:00:00.500000Z')
    """
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if t != math.floor(t) else "") + "Z")


def _checked(name: str, times: list[float], values: list[float]) -> Series:
    if not times:
        raise InputError(f"{name}: no data points")
    t, v = np.array(times, dtype=float), np.array(values, dtype=float)
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    return Series(name, t, v)


def read_csv(path: Path) -> Series:
    """A ``timestamp,value`` CSV (header required; blank or non-numeric values are NaN)."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or len(rows[0]) < 2:
        raise InputError(f"{path}: expected a header `timestamp,value`")
    times: list[float] = []
    values: list[float] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2:
            raise InputError(f"{path}:{lineno}: expected two columns")
        times.append(parse_time(row[0]))
        values.append(_number(row[1]))
    return _checked(rows[0][1].strip() or path.stem, times, values)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_wide(path: Path) -> tuple[FloatArray, list[str], FloatArray]:
    """A wide table (first column the timestamp, one column per metric) from CSV or Parquet, as
    ``(times, names, matrix)`` with one row per time."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        table = pq.read_table(path)
        names = table.column_names
        first = table.column(0).to_pylist()
        times = [parse_time(x) if isinstance(x, str) else x.timestamp() if isinstance(x, datetime)
                 else float(x) for x in first]
        cols = [np.array(table.column(i).to_pylist(), dtype=float) for i in range(1, len(names))]
    else:
        with path.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        if not rows or len(rows[0]) < 2:
            raise InputError(f"{path}: expected a header `timestamp,metric,...`")
        names = rows[0]
        times = [parse_time(r[0]) for r in rows[1:]]
        cols = [np.array([_number(r[i]) for r in rows[1:]]) for i in range(1, len(names))]
    if not times:
        raise InputError(f"{path}: no data rows")
    return np.array(times, dtype=float), [n.strip() for n in names[1:]], np.column_stack(cols)


def read_wide_series(path: Path) -> list[Series]:
    """Every metric of a wide table as its own :class:`Series`."""
    times, names, matrix = read_wide(path)
    return [Series(name, times, matrix[:, i]) for i, name in enumerate(names)]


def read_prometheus(
    url: str, query: str, start: str, end: str, step: str, *, client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> list[Series]:
    """One :class:`Series` per result of a Prometheus ``query_range`` (start/end: RFC 3339 or
    epoch seconds; step: a duration such as ``15s`` or seconds)."""
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        response = http.get(f"{url.rstrip('/')}/api/v1/query_range",
                            params={"query": query, "start": start, "end": end, "step": step})
    except httpx.HTTPError as exc:
        raise IntegrationError(f"Prometheus at {url} is unreachable: {exc}", retryable=True) from exc
    finally:
        if own:
            http.close()
    try:
        body = response.json()
    except ValueError as exc:
        raise IntegrationError(f"Prometheus answered {response.status_code} without JSON",
                               retryable=response.status_code >= 500) from exc
    if response.status_code != 200 or body.get("status") != "success":
        raise InputError(f"Prometheus rejected the query ({response.status_code}): {body.get('error', body)}")
    data = body["data"]
    if data.get("resultType") != "matrix":
        raise InputError(f"expected a range query result (matrix), got {data.get('resultType')}")
    out = []
    for result in data["result"]:
        labels = {str(k): str(v) for k, v in result["metric"].items()}
        name = labels.get("__name__", query) + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__") + "}"
        )
        pairs = result.get("values", [])
        out.append(Series(name, np.array([float(ts) for ts, _ in pairs]),
                          np.array([float(v) for _, v in pairs]), labels))
    return out
