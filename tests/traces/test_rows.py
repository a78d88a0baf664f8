"""RED series → stored rows → the same series: the ranker reads from the database what the
aggregator computed, under the same names."""

from __future__ import annotations

import random

import numpy as np

from watchkeeper.traces.red import red_series
from watchkeeper.traces.rows import RedRow, rows_of, series_of
from watchkeeper.traces.spans import Span


def _spans(n: int = 600, seed: int = 7) -> list[Span]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = 1_700_000_000.0 + i * 0.9
        trace = f"{i:032x}"
        out.append(Span(trace, f"{3 * i + 1:016x}", None, "web", rng.choice(["GET /", "GET /cart"]), t,
                        0.05 + rng.random() * 0.02, rng.random() < 0.05, "server"))
        out.append(Span(trace, f"{3 * i + 2:016x}", f"{3 * i + 1:016x}", "web", "db call", t + 0.001, 0.03, False,
                        "client"))
        out.append(Span(trace, f"{3 * i + 3:016x}", f"{3 * i + 2:016x}", "db", "query", t + 0.002,
                        0.01 + rng.random() * 0.01, rng.random() < 0.1, "server"))
    return out


def test_rows_give_back_the_aggregators_series() -> None:
    series = red_series(_spans(), step=60.0)
    back = series_of(rows_of(series, 60.0))
    assert set(back) == set(series)
    for service, metrics in series.items():
        for metric, (t, v) in metrics.items():
            keep = ~np.isnan(v) if not metric.endswith(".rate") else v > 0
            got_t, got_v = back[service][metric]
            assert got_t.tolist() == t[keep].tolist(), metric
            np.testing.assert_allclose(got_v, v[keep], rtol=1e-9, err_msg=metric)


def test_a_step_written_twice_is_merged() -> None:
    a = RedRow(60.0, 60.0, "edge", "web->db", "db", 30, 3, 0.01, 0.02, 0.03, {"net_p95": 0.001})
    b = RedRow(60.0, 60.0, "edge", "web->db", "db", 30, 0, 0.01, 0.05, 0.06, {"net_p95": 0.004})
    s = series_of([a, b])["db"]
    assert s["edge:web->db.rate"][1].tolist() == [1.0]
    assert s["edge:web->db.error_ratio"][1].tolist() == [0.05]
    assert s["edge:web->db.latency_p95"][1].tolist() == [0.05]
    assert s["edge:web->db.net_p95"][1].tolist() == [0.004]


def test_rows_hold_counts_and_attribute_edges_to_the_callee() -> None:
    rows = rows_of(red_series(_spans(), step=60.0), 60.0)
    edges = [r for r in rows if r.scope == "edge"]
    assert {(r.name, r.service, r.caller) for r in edges} == {("web->db", "db", "web")}
    assert sum(r.count for r in edges) == 600
    assert sum(r.count for r in rows if r.scope == "service" and r.service == "web") == 600
    assert {r.name for r in rows if r.scope == "operation" and r.service == "web"} == {"GET /", "GET /cart"}
