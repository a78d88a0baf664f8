"""Reading metrics: CSV, wide CSV/Parquet, and a real Prometheus (query_range)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from e2e.servers import Servers, free_port, http, start_prometheus, wait_until
from watchkeeper.errors import InputError, IntegrationError
from watchkeeper.metrics.series import read_csv, read_prometheus, read_wide, read_wide_series


@pytest.mark.parametrize(
    ("text", "times", "values"),
    [
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,2.5\n", [1704067200.0, 1704067260.0], [1.0, 2.5]),
        ("timestamp,value\n60,1\n0,2\n", [0.0, 60.0], [2.0, 1.0]),  # sorted by time
        ("timestamp,value\n2024-01-01T00:00:00Z,\n", [1704067200.0], [float("nan")]),
        ("ts,v\n2024-01-01T01:00:00+01:00,3\n\n", [1704067200.0], [3.0]),
    ],
)
def test_read_csv(tmp_path: Path, text: str, times: list[float], values: list[float]) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    series = read_csv(path)
    assert series.times.tolist() == times
    np.testing.assert_array_equal(series.values, values)


@pytest.mark.parametrize(
    ("text", "error"),
    [("", "header"), ("timestamp,value\n", "no data"), ("timestamp,value\nyesterday,1\n", "not a timestamp"),
     ("timestamp,value\n2024-01-01\n", "two columns")],
)
def test_read_csv_errors(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=error):
        read_csv(path)


def test_wide_csv_and_parquet_agree(tmp_path: Path) -> None:
    csv_path = tmp_path / "w.csv"
    csv_path.write_text("timestamp,cpu,mem\n2024-01-01 00:00:00,1,10\n2024-01-01 00:01:00,2,20\n")
    table = pa.table({"timestamp": ["2024-01-01 00:00:00", "2024-01-01 00:01:00"], "cpu": [1.0, 2.0],
                      "mem": [10.0, 20.0]})
    pq.write_table(table, tmp_path / "w.parquet")
    for path in (csv_path, tmp_path / "w.parquet"):
        times, names, matrix = read_wide(path)
        assert names == ["cpu", "mem"]
        assert times.tolist() == [1704067200.0, 1704067260.0]
        assert matrix.tolist() == [[1.0, 10.0], [2.0, 20.0]]
    assert [s.name for s in read_wide_series(csv_path)] == ["cpu", "mem"]


def test_prometheus_unreachable_is_retryable() -> None:
    with pytest.raises(IntegrationError) as info:
        read_prometheus("http://127.0.0.1:9", "up", "0", "60", "15s", client=httpx.Client(timeout=1, trust_env=False))
    assert info.value.retryable


@pytest.mark.e2e
def test_query_range_against_a_real_prometheus(tmp_path: Path) -> None:
    with Servers() as servers:
        port = free_port()  # Prometheus scrapes itself
        prom = start_prometheus(servers, tmp_path / "prom", scrape_jobs={"self": [f"127.0.0.1:{port}"]},
                                interval="1s", port=port)
        start = time.time()

        def enough() -> bool:
            with http() as client:
                found = read_prometheus(prom.url, "up", str(start - 5), str(time.time()), "1s", client=client)
            return bool(found) and len(found[0]) >= 3

        wait_until(enough, what="3 samples of `up`", timeout=30, servers=servers)
        with http() as client:
            series = read_prometheus(prom.url, "up", str(start - 5), str(time.time()), "1s", client=client)
            with pytest.raises(InputError, match="rejected"):
                read_prometheus(prom.url, "up{", str(start), str(time.time()), "1s", client=client)
    assert len(series) == 1
    assert series[0].labels["job"] == "self"
    assert series[0].name == f'up{{instance="{prom.address}",job="self"}}'
    assert set(series[0].values.tolist()) == {1.0}
    assert np.all(np.diff(series[0].times) == 1.0)
