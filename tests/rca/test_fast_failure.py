"""Failures that leave no status code, from hand-made spans through the RED series to the ranking:
requests that stop at one callee (a wrong answer), requests that call nobody (the service fails on its
own), and client calls that get no server span at all (a crashed callee has no spans to show it)."""

from __future__ import annotations

import networkx as nx

from watchkeeper.rca import Evidence, Params, rank
from watchkeeper.traces.red import red_series
from watchkeeper.traces.spans import Span

ONSET = 3600.0


def request(i: int, t: float, *, stop_at: str | None = None, crashed: str | None = None) -> list[Span]:
    """web (entry) calls cart, then pay, then ship, each through a client span. ``stop_at``: web gives
    up right after that callee answered (a wrong answer); ``"web"``: before calling anyone.
    ``crashed``: that callee sends no server span (its client span stays, a short one)."""
    tid = f"t{i}"
    spans = []
    at = t + 0.001
    for k, callee in enumerate(("cart", "pay", "ship")):
        if stop_at == "web":
            break
        client = f"{tid}-c{k}"
        dead = callee == crashed
        spans.append(Span(tid, client, f"{tid}-web", "web", f"{callee}.call", at, 0.001 if dead else 0.012, False))
        if not dead:
            spans.append(Span(tid, f"{tid}-s{k}", client, callee, "serve", at + 0.001, 0.010, False))
        at += 0.015
        if stop_at == callee:
            break
    spans.append(Span(tid, f"{tid}-web", None, "web", "GET /", t, at - t + 0.002, False))
    return spans


def traffic(**after: str) -> list[Span]:
    spans: list[Span] = []
    for i, t in enumerate(x * 3.0 for x in range(int((ONSET + 300) / 3.0))):
        spans += request(i, t, **(after if t >= ONSET else {}))  # type: ignore[arg-type]
    return spans


def ranked(spans: list[Span], params: Params | None = None) -> list[str]:
    series = red_series(spans, step=30.0, operations=False)
    ev = Evidence(graph=nx.DiGraph(), metrics={}, onset=ONSET, traces=series)
    return [c.component for c in rank(None, ev, params=params)]


def test_requests_that_stop_at_one_callee_blame_it() -> None:
    series = red_series(traffic(stop_at="pay"), step=30.0, operations=False)
    t, share = series["pay"]["edge:web->pay.last_share"]
    assert share[t <= ONSET].max() == 0.0 and share[t > ONSET].min() == 1.0  # every request now ends at pay
    t, share = series["ship"]["edge:web->ship.last_share"]
    assert share[t <= ONSET].min() == 1.0
    t, calls = series["web"]["trace.calls_per_request"]
    assert calls[t <= ONSET].tolist() == [3.0] * int(ONSET / 30) and set(calls[t > ONSET].tolist()) == {2.0}
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=series))
    assert causes[0].component == "pay"
    top = causes[0].evidence["signals"]["traces"]["top"][0]
    assert (top["metric"], top["role"]) == ("edge:web->pay.last_share", "abort")
    assert "now end with their call to pay" in top["says"]


def test_requests_that_call_nobody_blame_the_service_itself() -> None:
    spans = traffic(stop_at="web")
    series = red_series(spans, step=30.0, operations=False)
    t, none = series["web"]["trace.no_call_share"]
    assert none[t <= ONSET].max() == 0.0 and none[t > ONSET].min() == 1.0
    assert ranked(spans)[0] == "web"


def test_the_abort_weight_is_the_knob() -> None:
    spans = traffic(stop_at="pay")
    assert ranked(spans, Params(trace_abort_weight=0.0))[0] != "pay"  # nothing else moved: no blame at all
    assert ranked(spans, Params(trace_abort_weight=1.0))[0] == "pay"


def test_a_crashed_callee_is_blamed_through_its_callers_unanswered_calls() -> None:
    spans = traffic(crashed="pay")
    series = red_series(spans, step=30.0, operations=False)
    t, orphans = series["pay"]["edge:web->pay.orphan_ratio"]  # on pay, which sent no span after the onset
    assert orphans[t <= ONSET].max() == 0.0 and orphans[t > ONSET].min() == 1.0
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=series))
    assert causes[0].component == "pay"
    roles = [x["role"] for x in causes[0].evidence["signals"]["traces"]["top"]]
    assert "unanswered" in roles


def test_a_client_call_of_an_unknown_operation_is_no_orphan() -> None:
    # web's client span to a never-answering peer: no call of that operation was ever answered, so
    # nothing says whom it was for (no guessed service appears)
    spans = [
        Span("t", "c", "w", "web", "redis.get", 0.001, 0.001, False),
        Span("t", "w", None, "web", "GET /", 0.0, 0.003, False),
    ]
    series = red_series(spans, step=30.0, operations=False)
    assert set(series) == {"web"}
    assert series["web"]["trace.no_call_share"][1].tolist() == [1.0]


def test_serve_reads_the_same_evidence_back_from_its_stored_rows() -> None:
    # serve stores what the aggregator flushes as RED rows and the ranker reads them back (TraceStore):
    # the new series travel in each row's ``extra``, an edge whose callee sent nothing included
    from watchkeeper.traces.rows import rows_of, series_of

    for after, cause in (({"crashed": "pay"}, "pay"), ({"stop_at": "cart"}, "cart")):
        stored = series_of(rows_of(red_series(traffic(**after), step=30.0, operations=False), 30.0))
        assert rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=stored))[0].component == cause
