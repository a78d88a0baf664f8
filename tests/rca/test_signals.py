"""The ranker with traces and logs beside metrics: which signal blames whom, and says so."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from watchkeeper.rca import Evidence, LogAnomaly, Params, rank
from watchkeeper.rca.logs import log_anomalies, template_of
from watchkeeper.rca.signals import trace_role

T = np.arange(0.0, 4200.0, 30.0)
ONSET = 3600.0


def flat(level: float, seed: int) -> np.ndarray[Any, Any]:
    return level * (1 + 0.02 * np.sin(T / 97.0 + seed))


def rises(level: float, to: float, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.where(T >= ONSET, to, flat(level, seed))


def cpu(*hot: str) -> dict[str, dict[str, Any]]:
    return {s: {"cpu": (T, rises(20.0, 60.0) if s in hot else flat(20.0, i))}
            for i, s in enumerate(("web", "cart", "pay"))}


GRAPH = nx.DiGraph([("web", "cart"), ("web", "pay")])


def test_a_slow_link_blames_its_callee_and_says_so() -> None:
    traces = {"cart": {"edge:web->cart.net_p95": (T, rises(0.002, 0.3)), "trace.latency_p95": (T, flat(0.01, 1))},
              "pay": {"edge:web->pay.net_p95": (T, flat(0.002, 2))}}
    causes = rank(None, Evidence(GRAPH, cpu(), ONSET, traces=traces))
    assert causes[0].component == "cart"
    said = causes[0].evidence["signals"]["traces"]["top"][0]
    assert said["role"] == "link" and "the link to cart is slow" in said["says"]
    assert causes[0].evidence["signals"]["metrics"]["score"] < 3


def test_client_spans_slow_towards_every_callee_blame_the_caller() -> None:
    """The caller's CPU is starved: its client spans to cart and pay both lengthen, the servers do not."""
    traces = {"cart": {"edge:web->cart.net_p95": (T, rises(0.002, 0.2))},
              "pay": {"edge:web->pay.net_p95": (T, rises(0.002, 0.25, 1))}}
    causes = rank(None, Evidence(GRAPH, cpu(), ONSET, traces=traces))
    assert causes[0].component == "web"
    assert causes[0].evidence["signals"]["traces"]["top"][0]["role"] == "caller"


def test_own_time_blames_the_service_not_its_callers() -> None:
    traces = {"pay": {"trace.self_p95": (T, rises(0.004, 0.1)), "trace.latency_p95": (T, rises(0.01, 0.11))},
              "web": {"trace.latency_p95": (T, rises(0.03, 0.13)), "trace.self_p95": (T, flat(0.002, 3))}}
    causes = rank(None, Evidence(GRAPH, cpu(), ONSET, traces=traces))
    assert causes[0].component == "pay"
    assert causes[0].evidence["signals"]["traces"]["top"][0]["role"] == "self"


def test_log_templates_are_evidence_and_named() -> None:
    logs = {"pay": LogAnomaly(25.0, ({"template": "charge failed: <*>", "severity": "ERROR", "before": 0,
                                      "after": 25, "z": 25.0},))}
    causes = rank(None, Evidence(GRAPH, cpu(), ONSET, log_anomalies=logs))
    assert causes[0].component == "pay"
    assert causes[0].evidence["log_anomaly"] == 25.0
    assert causes[0].evidence["signals"]["logs"]["templates"][0]["template"] == "charge failed: <*>"


def test_metrics_still_rank_and_signals_add_up_by_the_mix() -> None:
    ev = Evidence(GRAPH, cpu("cart"), ONSET, log_anomalies={"cart": 5.0})
    only = rank(None, ev, params=Params(signal_mix=0.0))
    both = rank(None, ev, params=Params(signal_mix=1.0))
    assert only[0].component == both[0].component == "cart"
    assert both[0].score == round(only[0].score + 5.0, 4)


def test_the_traces_call_graph_joins_the_topology() -> None:
    """The configured graph does not know web calls db; the spans do, so db is a candidate of web's incident."""
    metrics = cpu() | {"db": {"cpu": (T, rises(20.0, 90.0))}}
    ev = Evidence(nx.DiGraph([("web", "cart")]), metrics, ONSET, trace_graph=nx.DiGraph([("web", "db")]))
    causes = rank(["web"], ev)
    assert causes[0].component == "db"
    assert {c.component for c in causes} == {"web", "cart", "db"}


def test_rates_and_operations_are_not_scored() -> None:
    p = Params()
    assert trace_role("edge:web->cart.rate", p) is None and trace_role("op:GET /.error_ratio", p) is None
    assert trace_role("trace.net_p95", p) is None  # link time exists only on edges


def test_log_scores_rise_with_new_error_templates_more_than_with_info() -> None:
    lines = [(float(t), "web", "INFO", f"GET /item/{t} 200") for t in range(0, 3600, 5)]
    lines += [(3600.0 + t, "web", "INFO", f"GET /item/{t} 200") for t in range(0, 300, 5)]
    lines += [(3600.0 + t, "pay", "INFO", f"retrying order {t}") for t in range(0, 300, 10)]
    lines += [(3600.0 + t, "cart", "ERROR", f"redis timeout after {t} ms") for t in range(0, 300, 10)]
    scores = log_anomalies(lines, ONSET)
    assert "web" not in scores  # steady traffic is no anomaly
    assert scores["cart"].score == 2 * scores["pay"].score == 30.0
    assert template_of("GET /item/123 200") == "GET /item/<*> <*>"


def test_a_caller_whose_errors_began_after_its_callee_s_is_explained_by_it() -> None:
    """Both log errors; pay's began first, so web (which calls pay) is the victim."""
    logs = {"pay": LogAnomaly(20.0, (), first_at=ONSET + 5), "web": LogAnomaly(30.0, (), first_at=ONSET + 6)}
    causes = rank(None, Evidence(GRAPH, cpu(), ONSET, log_anomalies=logs))
    assert [c.component for c in causes][:2] == ["pay", "web"]
    assert causes[1].evidence["explained_by"] == ["pay"]
    lines = [(ONSET + 7.0, "pay", "ERROR", "boom 1"), (ONSET + 3.0, "pay", "ERROR", "boom 2")]
    assert log_anomalies(lines, ONSET)["pay"].first_at == ONSET + 3.0
