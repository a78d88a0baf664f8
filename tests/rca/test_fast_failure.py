"""Failures that leave no status code, from hand-made spans through the RED series to the ranking:
requests that stop at one callee (a wrong answer from it, or a caller giving up after a good one: who
stopped), requests that call nobody (the service fails on its own), and client calls that get no server
span at all (a crashed callee has no spans to show it)."""

from __future__ import annotations

import networkx as nx

from watchkeeper.rca import Evidence, Params, rank
from watchkeeper.traces.red import red_series
from watchkeeper.traces.spans import Span

ONSET = 3600.0


def request(i: int, t: float, *, entry: str = "web", stop_at: str | None = None, crashed: str | None = None
            ) -> list[Span]:
    """``entry`` (web) calls cart, then pay, then ship, each through a client span. ``stop_at``: the
    entry gives up right after that callee answered; the entry's own name: before calling anyone.
    ``crashed``: that callee sends no server span (its client span stays, a short one)."""
    tid = f"t{i}"
    spans = []
    at = t + 0.001
    for k, callee in enumerate(("cart", "pay", "ship")):
        if stop_at == entry:
            break
        client = f"{tid}-c{k}"
        dead = callee == crashed
        spans.append(Span(tid, client, f"{tid}-{entry}", entry, f"{callee}.call", at, 0.001 if dead else 0.012,
                          False))
        if not dead:
            spans.append(Span(tid, f"{tid}-s{k}", client, callee, "serve", at + 0.001, 0.010, False))
        at += 0.015
        if stop_at == callee:
            break
    spans.append(Span(tid, f"{tid}-{entry}", None, entry, "GET /", t, at - t + 0.002, False))
    return spans


def traffic(entries: tuple[str, ...] = ("web",), stopping: tuple[str, ...] | None = None, **after: str
            ) -> list[Span]:
    """Requests every 3 s, from each of ``entries`` in turn; ``after`` applies after the onset to the
    requests of ``stopping`` (default: every entry)."""
    spans: list[Span] = []
    for i, t in enumerate(x * 3.0 for x in range(int((ONSET + 300) / 3.0))):
        entry = entries[i % len(entries)]
        changed = t >= ONSET and (stopping is None or entry in stopping)
        spans += request(i, t, entry=entry, **(after if changed else {}))  # type: ignore[arg-type]
    return spans


def ranked(spans: list[Span], params: Params | None = None) -> list[str]:
    series = red_series(spans, step=30.0, operations=False)
    ev = Evidence(graph=nx.DiGraph(), metrics={}, onset=ONSET, traces=series)
    return [c.component for c in rank(None, ev, params=params)]


def test_requests_of_two_callers_that_stop_at_one_callee_blame_it() -> None:
    """web and api both give up right after pay answers: a wrong answer from pay reaches both callers."""
    spans = traffic(("web", "api"), stop_at="pay")
    series = red_series(spans, step=30.0, operations=False)
    t, share = series["pay"]["edge:api->pay.last_share"]
    assert share[t <= ONSET].max() == 0.0 and share[t > ONSET].min() == 1.0
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=series))
    assert causes[0].component == "pay"
    top = causes[0].evidence["signals"]["traces"]["top"][0]
    assert top["role"] == "abort" and "pay stops them" in top["says"]
    assert ranked(spans, Params(trace_abort_callers=3))[0] != "pay"  # three callers asked for: the callers own it


def test_one_caller_that_stops_after_an_unchanged_callee_is_blamed_itself() -> None:
    """Only web gives up after pay answers; api's requests go on past pay as before and pay shows no change
    of its own: web stops there itself (a caller's fault in handling a good answer)."""
    spans = traffic(("web", "api"), stopping=("web",), stop_at="pay")
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=red_series(spans, step=30.0, operations=False)))
    assert causes[0].component == "web"
    top = causes[0].evidence["signals"]["traces"]["top"][0]
    assert (top["metric"], top["role"]) == ("edge:web->pay.last_share", "stop")
    assert "web stops there itself" in top["says"]
    assert ranked(spans, Params(trace_abort_callers=1))[0] == "pay"  # the rule before: always the callee


def test_a_single_caller_s_stop_blames_the_callee_that_changed_itself() -> None:
    """web gives up after pay answers and pay's own time rose (it changed): pay owns the stop."""
    series = red_series(traffic(stop_at="pay"), step=30.0, operations=False)
    slow = dict(series["pay"])
    t, v = slow["trace.self_p95"]
    slow["trace.self_p95"] = (t, v + (t > ONSET) * 0.02)
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces={**series, "pay": slow}))
    assert causes[0].component == "pay"
    assert any(x["role"] == "abort" for x in causes[0].evidence["signals"]["traces"]["top"])
    assert rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=series))[0].component == "web"  # unchanged: web


def test_requests_that_stop_at_one_callee_give_the_series() -> None:
    series = red_series(traffic(stop_at="pay"), step=30.0, operations=False)
    t, share = series["pay"]["edge:web->pay.last_share"]
    assert share[t <= ONSET].max() == 0.0 and share[t > ONSET].min() == 1.0  # every request now ends at pay
    t, share = series["ship"]["edge:web->ship.last_share"]
    assert share[t <= ONSET].min() == 1.0
    t, calls = series["web"]["trace.calls_per_request"]
    assert calls[t <= ONSET].tolist() == [3.0] * int(ONSET / 30) and set(calls[t > ONSET].tolist()) == {2.0}
    causes = rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=series), params=Params(trace_abort_callers=1))
    assert causes[0].component == "pay"  # the callee always owns the stop with trace_abort_callers=1
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
    spans = traffic(("web", "api"), stop_at="pay")
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
        spans = traffic(("web", "api"), **after)
        stored = series_of(rows_of(red_series(spans, step=30.0, operations=False), 30.0))
        assert rank(None, Evidence(nx.DiGraph(), {}, ONSET, traces=stored))[0].component == cause
