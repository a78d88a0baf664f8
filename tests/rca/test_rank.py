"""The ranker on small synthetic evidence: metric scores, candidates, changes, logs, graph, explanations."""

from __future__ import annotations

import json
from typing import Any

import networkx as nx
import numpy as np
import pytest

from watchkeeper.rca import Change, Evidence, MetricSpec, Params, candidates, rank

ONSET = 3600.0
T = np.arange(0.0, 4200.0, 60.0)


def noise(seed: int, level: float = 1.0) -> np.ndarray[Any, np.dtype[np.float64]]:
    return level * (1.0 + 0.05 * np.random.default_rng(seed).standard_normal(len(T)))


def stepped(seed: int, level: float, after: float, start: float = ONSET) -> tuple[Any, Any]:
    v = noise(seed, level)
    v[start <= T] = after
    return T, v


def quiet(seed: int, level: float = 1.0) -> tuple[Any, Any]:
    return T, noise(seed, level)


def test_the_service_with_the_largest_robust_change_ranks_first() -> None:
    ev = Evidence(
        graph=nx.DiGraph([("frontend", "cart"), ("frontend", "ads")]),
        metrics={"frontend": {"latency": stepped(1, 0.2, 0.3)},
                 "cart": {"cpu": stepped(2, 10.0, 90.0), "latency": quiet(3, 0.01)},
                 "ads": {"cpu": quiet(4, 5.0)}},
        onset=ONSET,
    )
    causes = rank(None, ev)
    assert [c.component for c in causes] == ["cart", "frontend", "ads"]
    assert [c.score for c in causes] == sorted((c.score for c in causes), reverse=True)
    top = causes[0]
    assert top.kind == "service" and top.model == "baro-v1"
    assert top.evidence["top_metrics"][0]["metric"] == "cpu"
    assert top.evidence["top_metrics"][0]["z"] > 100
    assert top.evidence["first_anomaly_at"] == ONSET
    assert top.evidence["explains_anomalous_callers"] == ["frontend"]
    json.dumps([c.evidence for c in causes])  # JSON-able
    conf = [c.confidence for c in causes]
    assert all(0.0 <= x <= 1.0 for x in conf) and sum(conf) <= 1.0 + 1e-9
    assert conf[0] > conf[1]


def test_candidates_are_the_incident_services_and_their_dependencies() -> None:
    g = nx.DiGraph([("web", "api"), ("api", "db"), ("batch", "db"), ("web", "cdn")])
    ev = Evidence(graph=g, metrics={"web": {}, "other": {}}, onset=0.0)
    assert candidates(["api"], ev) == ["api", "db"]
    assert candidates(["web"], ev) == ["api", "cdn", "db", "web"]
    assert candidates(None, ev) == ["api", "batch", "cdn", "db", "other", "web"]
    # the database behind the failing API is ranked even though only the API is in the incident
    ev2 = Evidence(graph=g, metrics={"api": {"errors": stepped(1, 1.0, 1.5)}, "db": {"cpu": stepped(2, 1.0, 9.0)},
                                     "batch": {"cpu": stepped(3, 1.0, 50.0)}}, onset=ONSET)
    assert [c.component for c in rank(["api"], ev2)] == ["db", "api"]


def test_a_recent_change_boosts_its_service() -> None:
    metrics = {"a": {"errors": stepped(1, 1.0, 2.0)}, "b": {"errors": stepped(2, 1.0, 2.0)}}
    plain = rank(None, Evidence(nx.DiGraph(), metrics, ONSET))
    other = next(c.component for c in plain if c.component != plain[0].component)
    changed = rank(None, Evidence(nx.DiGraph(), metrics, ONSET, changes=[Change(ONSET - 120, other, "deploy v1→v2")]))
    assert changed[0].component == other
    assert changed[0].evidence["changes"] == [{"at": ONSET - 120, "description": "deploy v1→v2"}]
    # a change long before the onset, or on a quiet service, is not suspect
    old = rank(None, Evidence(nx.DiGraph(), metrics, ONSET, changes=[Change(ONSET - 7200, other, "deploy")]))
    assert "changes" not in next(c for c in old if c.component == other).evidence


def test_log_anomalies_count_when_they_are_the_stronger_signal() -> None:
    metrics = {"a": {"cpu": stepped(1, 1.0, 3.0)}, "b": {"cpu": quiet(2)}}
    causes = rank(None, Evidence(nx.DiGraph(), metrics, ONSET, log_anomalies={"b": 500.0}))
    assert causes[0].component == "b" and causes[0].evidence["log_anomaly"] == 500.0


def test_graph_discount_demotes_a_caller_explained_by_an_earlier_callee() -> None:
    g = nx.DiGraph([("front", "db")])
    metrics = {"front": {"latency": stepped(1, 1.0, 30.0, start=ONSET + 120)},
               "db": {"latency": stepped(2, 1.0, 20.0)}}
    ev = Evidence(g, metrics, ONSET)
    alone = Params(late_after_s=float("inf"))  # the graph step alone (front also starts 120 s after db)
    off = rank(None, ev, params=alone)
    assert off[0].component == "front" and off[0].evidence["explained_by"] == ["db"]
    on = rank(None, ev, params=Params(graph_discount=0.25, late_after_s=float("inf")))
    assert on[0].component == "db"
    assert on[0].evidence["onset_order"] == 1 and on[1].evidence["onset_order"] == 2


def test_flat_baselines_do_not_divide_by_zero() -> None:
    up_before = np.where(T < ONSET, 1.0, 0.0)
    err = np.where(T < ONSET, 0.0, 0.2)
    specs = {"up": MetricSpec(-1, 0.01), "error_ratio": MetricSpec(1, 0.01)}
    causes = rank(None, Evidence(nx.DiGraph(), {"a": {"up": (T, up_before)}, "b": {"error_ratio": (T, err)}}, ONSET,
                                 specs=specs))
    by = {c.component: c for c in causes}
    assert by["a"].score == pytest.approx(1.0 / 0.01)  # `up` is a ratio too: floor 0.01
    assert by["b"].score == pytest.approx(0.2 / 0.01)  # ratios move in hundredths


def test_too_little_data_gives_a_zero_score_not_an_error() -> None:
    short = (np.array([ONSET + 10.0]), np.array([5.0]))
    causes = rank(None, Evidence(nx.DiGraph(), {"a": {"cpu": short}, "b": {}}, ONSET))
    assert {c.component: c.score for c in causes} == {"a": 0.0, "b": 0.0}
    assert all(c.evidence["top_metrics"] == [] for c in causes)


def test_missing_values_are_ignored() -> None:
    t, v = stepped(1, 1.0, 10.0)
    v = v.copy()
    v[::3] = np.nan
    causes = rank(None, Evidence(nx.DiGraph(), {"a": {"cpu": (t, v)}, "b": {"cpu": quiet(2)}}, ONSET))
    assert causes[0].component == "a" and np.isfinite(causes[0].score)


def test_only_the_harmful_side_of_a_known_metric_is_evidence() -> None:
    """A callee whose CPU drops because its caller stopped calling it is a victim, not a cause; a
    metric without a spec still counts both ways."""
    from watchkeeper.rca.scoring import Params, score_metric

    t = np.arange(0.0, 200.0, 2.0)
    drop = np.where(t < 100, 0.04 + 0.001 * np.sin(t), 0.005)
    rise = np.where(t < 100, 0.04 + 0.001 * np.sin(t), 0.5)
    p = Params(reference_s=100, window_s=100)
    rising = MetricSpec.from_direction("up")
    fell, rose = score_metric(t, drop, 100.0, p, rising), score_metric(t, rise, 100.0, p, rising)
    assert fell is not None and rose is not None and fell.z == 0.0 and rose.z > 100
    either = score_metric(t, drop, 100.0, p)
    assert either is not None and either.z > 10
    down = score_metric(t, np.where(t < 100, 1.0, 0.0), 100.0, p, MetricSpec.from_direction("down", 0.01))
    assert down is not None and down.z == 100.0  # 1 → 0 over the 0.01 floor


def test_a_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="side"):
        MetricSpec(2)
    with pytest.raises(ValueError, match="direction"):
        MetricSpec.from_direction("sideways")
    assert MetricSpec.from_direction("both", 0.0) == MetricSpec(0, None)


def test_a_service_whose_anomaly_starts_well_after_the_first_one_is_discounted() -> None:
    # ads starts at the onset (cpu ×3); catalog, with no edge between them, jumps ×6 three minutes later
    ev = Evidence(graph=nx.DiGraph([("web", "ads"), ("web", "catalog")]),
                  metrics={"ads": {"cpu": stepped(1, 10.0, 30.0)},
                           "catalog": {"cpu": stepped(2, 10.0, 60.0, start=ONSET + 180.0)},
                           "web": {"cpu": quiet(3)}},
                  onset=ONSET)
    off = rank(None, ev, params=Params(late_after_s=float("inf")))
    assert [c.component for c in off][:2] == ["catalog", "ads"]
    assert "later_than" not in off[0].evidence
    on = rank(None, ev, params=Params(late_after_s=60.0))
    assert [c.component for c in on][:2] == ["ads", "catalog"]
    late = on[1].evidence["later_than"]
    assert late == {"service": "ads", "by_s": 180.0}
    assert on[1].score == pytest.approx(off[0].score * Params().late_discount, abs=1e-3)  # scores are rounded
    assert "later_than" not in on[0].evidence
    json.dumps(on[1].evidence)


def test_anomalies_starting_within_late_after_s_of_each_other_are_not_discounted() -> None:
    ev = Evidence(graph=nx.DiGraph(),
                  metrics={"ads": {"cpu": stepped(1, 10.0, 30.0)},
                           "catalog": {"cpu": stepped(2, 10.0, 60.0, start=ONSET + 60.0)}},
                  onset=ONSET)
    causes = rank(None, ev, params=Params(late_after_s=60.0))
    assert [c.component for c in causes] == ["catalog", "ads"]
    assert all("later_than" not in c.evidence for c in causes)


def scraped(step_s: float, level: float, after: float, start: float) -> tuple[Any, Any]:
    """A series sampled every ``step_s`` seconds over the hour before ONSET and 10 min after it."""
    t = np.arange(0.0, ONSET + 600.0, step_s)
    v = level * (1.0 + 0.05 * np.random.default_rng(int(step_s)).standard_normal(len(t)))
    v[t >= start] = after
    return t, v


@pytest.mark.parametrize(("step_s", "first"), [(2.0, "catalog"), (60.0, "frontend")], ids=["2-s scrapes", "1-min samples"])
def test_a_callee_one_sample_after_its_caller_explains_it_within_the_cap(step_s: float, first: str) -> None:
    """The demo's error burst on catalog: the frontend's error ratio crossed at one 2-s sample, catalog's
    at the next (the scrapes' phases, not the order of events): catalog explains the frontend. With
    one-minute samples a callee a sample later is a later symptom (the slack is capped at 15 s)."""
    g = nx.DiGraph([("frontend", "catalog")])
    ev = Evidence(g, {"frontend": {"error_ratio": scraped(step_s, 0.0, 1.0, ONSET)},
                      "catalog": {"error_ratio": scraped(step_s, 0.0, 0.96, ONSET + step_s)}},
                  ONSET, specs={"error_ratio": MetricSpec(side=1, floor=0.02)})
    causes = rank(None, ev)
    assert causes[0].component == first
    assert causes[1].evidence.get("explained_by") == (["catalog"] if first == "catalog" else None)
    exact = rank(None, ev, params=Params(simultaneous_cap_s=0.0))  # the order of first samples alone
    assert [c.component for c in exact] == ["frontend", "catalog"]
    assert "explained_by" not in exact[0].evidence


def test_a_slow_link_explains_its_caller_and_the_callers_above_it() -> None:
    """The lab's edge delay (payment, from checkout): checkout's latency jumps (z in the hundreds on its
    relative floor) and so does the frontend's; the spans say checkout's own time is flat and its calls
    to payment spend 0.3 s on the link. The caller's latency is the link's: payment first, then the
    callers it explains, whatever the onset order and the scales."""
    g = nx.DiGraph([("frontend", "checkout"), ("checkout", "payment"), ("checkout", "cache")])
    ev = Evidence(
        g,
        {"frontend": {"latency_p90_s": scraped(2.0, 0.047, 0.475, ONSET)},
         "checkout": {"latency_p90_s": scraped(2.0, 0.023, 0.475, ONSET)},
         "payment": {"latency_p90_s": scraped(2.0, 0.008, 0.008, ONSET)},
         "cache": {"latency_p90_s": scraped(2.0, 0.004, 0.004, ONSET)}},
        ONSET,
        specs={"latency_p90_s": MetricSpec(side=1)},
        traces={"payment": {"edge:checkout->payment.net_p50": scraped(10.0, 0.001, 0.308, ONSET + 10.0)},
                "cache": {"edge:checkout->cache.net_p50": scraped(10.0, 0.001, 0.001, ONSET)},
                "checkout": {"trace.self_p50": scraped(10.0, 0.004, 0.004, ONSET)}},
    )
    causes = rank(None, ev)
    assert [c.component for c in causes][:2] == ["payment", "checkout"]
    checkout = causes[1].evidence
    assert checkout["slow_link_to"] == ["payment"] and checkout["ranked_below"] == ["payment"]
    frontend = next(c.evidence for c in causes if c.component == "frontend")
    # the frontend waits as long as checkout does: its latency is checkout's (nothing of its own is left)
    assert frontend["inherited"] == [{"metric": "latency_p90_s", "from": ["checkout"]}]
    kept = rank(None, ev, params=Params(inherit_tolerance=0.0))
    assert [c.component for c in kept][:3] == ["payment", "checkout", "frontend"]
    assert kept[2].evidence["ranked_below"] == ["checkout"]
    before = rank(None, ev, params=Params(edge_explains=False, explained_below="none"))
    assert before[0].component == "checkout"  # the caller, by the scale of its latency


def test_a_symptom_inheriting_its_callees_metric_ranks_below_a_second_fault() -> None:
    """Two faults at once (lab c3, 2026-12-05: a hang on store and an error burst on payment): the hang's
    caller waits as long as its callee, so its latency z — larger than the second fault's whole anomaly —
    is the callee's, not its own; with it inherited, the second fault ranks second."""
    g = nx.DiGraph([("front", "db"), ("front", "pay")])
    metrics = {"front": {"latency": stepped(1, 0.05, 2.3)},
               "db": {"latency": stepped(2, 0.01, 2.3)},
               "pay": {"errors": stepped(3, 0.2, 0.5), "latency": quiet(4, 0.01)}}
    ev = Evidence(g, metrics, ONSET)
    off = rank(None, ev, params=Params(inherit_tolerance=0.0))
    assert [c.component for c in off] == ["db", "front", "pay"]
    on = rank(None, ev)
    assert [c.component for c in on][:2] == ["db", "pay"]
    front = next(c for c in on if c.component == "front")
    assert front.evidence["inherited"] == [{"metric": "latency", "from": ["db"]}]
    # a caller whose latency rose four times as much as its callee's keeps it: part of it is its own
    metrics["front"]["latency"] = stepped(1, 0.05, 9.2)
    mine = rank(None, Evidence(g, metrics, ONSET))
    assert "inherited" not in next(c for c in mine if c.component == "front").evidence
