"""Spans → call graph and RED series: parents resolve callers, client spans give the caller's view and
the link time, empty buckets are missing data, and the streaming aggregator agrees with the batch one."""

from __future__ import annotations

import random

import numpy as np
import pytest

from watchkeeper.traces.red import RedAggregator, call_graph, edge_metric, red_series
from watchkeeper.traces.spans import Span


def request(i: int, t: float, *, net: float = 0.002, db_time: float = 0.010, error: bool = False,
            client_kind: str = "client", server_kind: str = "server") -> list[Span]:
    """One trace: web (entry) → its client span → db server span; ``net`` is the link time."""
    tid = f"t{i}"
    db = Span(tid, f"{tid}-db", f"{tid}-cl", "db", "query", t + 0.002 + net / 2, db_time, error, server_kind)
    client = Span(tid, f"{tid}-cl", f"{tid}-web", "web", "db.query", t + 0.002, db_time + net, error, client_kind)
    web = Span(tid, f"{tid}-web", None, "web", "GET /", t, db_time + net + 0.005, False, server_kind)
    return [db, client, web]  # children first, as exporters send them


def traffic(start: float, minutes: int, per_minute: int = 20, **kw: object) -> list[Span]:
    spans: list[Span] = []
    for m in range(minutes):
        for k in range(per_minute):
            spans += request(int(start) * 1000 + m * 100 + k, start + m * 60 + k * (60 / per_minute), **kw)  # type: ignore[arg-type]
    return spans


def test_call_graph_resolves_callers_through_parents() -> None:
    spans = traffic(0.0, 2, per_minute=30)
    g = call_graph(spans)
    assert list(g.edges) == [("web", "db")]
    assert g["web"]["db"]["calls"] == 60
    assert g["web"]["db"]["errors"] == 0
    assert g["web"]["db"]["rate"] == pytest.approx(0.5)  # 60 calls over two 60 s buckets


def test_red_series_names_and_values() -> None:
    spans = traffic(0.0, 3, db_time=0.010, net=0.004)
    s = red_series(spans, step=60.0)
    t, rate = s["db"]["trace.rate"]
    assert t.tolist() == [60.0, 120.0, 180.0]  # bucket ends
    assert rate.tolist() == pytest.approx([20 / 60] * 3)
    assert s["db"]["trace.latency_p95"][1] == pytest.approx([0.010] * 3)
    assert s["db"]["trace.error_ratio"][1].tolist() == [0.0, 0.0, 0.0]
    # the edge, kept on the callee: the caller's client span, and the link time
    assert s["db"][edge_metric("web", "db", "latency_p50")][1] == pytest.approx([0.014] * 3)
    assert s["db"][edge_metric("web", "db", "net_p95")][1] == pytest.approx([0.004] * 3)
    assert s["db"]["op:query.rate"][1] == pytest.approx([20 / 60] * 3)
    # the caller: its entry spans, and its own time (client spans left out)
    assert s["web"]["trace.latency_p50"][1] == pytest.approx([0.019] * 3)
    assert s["web"]["trace.self_p50"][1] == pytest.approx([0.005] * 3)
    assert not any(k.startswith("edge:") for k in s["web"])


def test_network_delay_on_an_edge_raises_link_time_not_server_time() -> None:
    spans = traffic(0.0, 5) + traffic(300.0, 2, net=0.200)
    s = red_series(spans)
    server = s["db"]["trace.latency_p95"][1]
    link = s["db"][edge_metric("web", "db", "net_p95")][1]
    caller_view = s["db"][edge_metric("web", "db", "latency_p95")][1]
    assert server == pytest.approx([0.010] * 7)
    assert link[:5] == pytest.approx([0.002] * 5)
    assert link[5:] == pytest.approx([0.200] * 2)
    assert caller_view[5:] == pytest.approx([0.210] * 2)


def test_unknown_kinds_a_span_with_one_remote_child_is_a_client_span() -> None:
    """Sources without span kinds (Nezha's CSVs): the caller's span wrapping one RPC is its client span."""
    spans = traffic(0.0, 1, net=0.006, client_kind="internal", server_kind="internal")
    s = red_series(spans)
    assert s["db"][edge_metric("web", "db", "net_p50")][1] == pytest.approx([0.006])
    assert s["web"]["trace.self_p50"][1] == pytest.approx([0.005])


def test_errors_count_on_the_callee_and_its_edge() -> None:
    spans = traffic(0.0, 1) + [sp for i in range(5) for sp in request(9000 + i, 30.0 + i, error=True)]
    s = red_series(spans)
    assert s["db"]["trace.error_ratio"][1] == pytest.approx([5 / 25])
    assert s["db"][edge_metric("web", "db", "error_ratio")][1] == pytest.approx([5 / 25])
    assert s["web"]["trace.error_ratio"][1] == pytest.approx([0.0])  # web's entry spans did not fail
    assert call_graph(spans)["web"]["db"]["errors"] == 5


def test_empty_buckets_are_missing_data_and_absent_services_have_rate_zero() -> None:
    only_web = [Span("x", "x1", None, "web", "GET /health", 250.0, 0.001, False, "server")]
    spans = traffic(0.0, 2) + only_web + traffic(600.0, 1)  # nothing at all in 120–240 s or 300–600 s
    s = red_series(spans)
    t, rate = s["db"]["trace.rate"]
    assert t.tolist() == [60.0, 120.0, 300.0, 660.0]
    assert rate[2] == 0.0
    assert np.isnan(s["db"]["trace.latency_p95"][1][2])
    assert np.isnan(s["db"]["trace.error_ratio"][1][2])


def test_percentiles_are_within_a_bin_of_the_exact_ones() -> None:
    rng = np.random.default_rng(7)
    durations = rng.lognormal(mean=-4.0, sigma=1.0, size=5000)
    spans = [Span(f"t{i}", f"s{i}", None, "api", "GET", float(i % 60), float(d), False, "server")
             for i, d in enumerate(durations)]
    s = red_series(spans)
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        got = s["api"][f"trace.latency_{name}"][1][0]
        assert got == pytest.approx(np.percentile(durations, q), rel=0.06)


def test_operations_are_capped_per_service() -> None:
    spans = [Span(f"t{i}", f"s{i}", None, "api", f"GET /item/{i}", float(i), 0.01, False, "server")
             for i in range(10)]
    agg = RedAggregator(max_operations=3)
    agg.add_many(spans)
    out = agg.flush(final=True)
    ops = sorted(k for k in out["api"] if k.endswith(".rate") and k.startswith("op:"))
    assert ops == ["op:GET /item/0.rate", "op:GET /item/1.rate", "op:GET /item/2.rate", "op:other.rate"]
    assert out["api"]["op:other.rate"][1] == pytest.approx([7 / 60])


def concat(parts: list[dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]], service: str, metric: str
           ) -> tuple[list[float], list[float]]:
    t: list[float] = []
    v: list[float] = []
    for p in parts:
        if metric in p.get(service, {}):
            t += p[service][metric][0].tolist()
            v += p[service][metric][1].tolist()
    return t, v


def test_streaming_in_shuffled_batches_agrees_with_the_batch_series() -> None:
    spans = traffic(0.0, 6, net=0.003) + traffic(360.0, 2, net=0.100)
    # exporters send in batches, children before parents, slightly out of order
    rng = random.Random(3)
    shuffled = sorted(spans, key=lambda sp: sp.start + rng.uniform(0, 5))
    agg = RedAggregator(step=60.0, lateness_s=20.0)
    parts = []
    for i in range(0, len(shuffled), 37):
        agg.add_many(shuffled[i:i + 37])
        parts.append(agg.flush())
    parts.append(agg.flush(final=True))
    batch = red_series(spans)
    for service, metric in (("db", "trace.rate"), ("db", edge_metric("web", "db", "net_p95")),
                            ("web", "trace.self_p95"), ("db", "trace.latency_p99")):
        t, v = concat(parts, service, metric)
        assert t == batch[service][metric][0].tolist()
        assert v == pytest.approx(batch[service][metric][1].tolist())
    assert agg.late == 0
    assert agg.graph()["web"]["db"]["calls"] == 160


def test_late_spans_are_counted_and_memory_is_bounded() -> None:
    agg = RedAggregator(step=60.0, lateness_s=10.0, max_spans=100)
    agg.add_many(traffic(0.0, 5))
    assert len(agg) <= 200  # waiting + kept for late children, each capped
    assert agg.forced > 0
    agg.flush()
    agg.add(Span("old", "o1", None, "web", "GET /", 5.0, 0.01, False, "server"))
    assert agg.late == 1


def test_flush_with_a_clock_closes_buckets_without_new_spans() -> None:
    agg = RedAggregator(step=60.0, lateness_s=30.0)
    agg.add_many(traffic(0.0, 1))
    assert agg.flush() == {}  # newest span at ~57 s: bucket 0–60 still open
    out = agg.flush(now=100.0)
    assert out["db"]["trace.rate"][0].tolist() == [60.0]


@pytest.mark.parametrize(("kwargs", "message"), [({"step": 0.0}, "step"), ({"lateness_s": -1.0}, "lateness")])
def test_bad_configuration_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedAggregator(**kwargs)  # type: ignore[arg-type]
