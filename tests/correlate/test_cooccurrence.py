import random

import numpy as np
import pytest

from watchkeeper.correlate.cooccurrence import CoOccurrence, benjamini_hochberg


def planted(seed: int = 7, n: int = 200) -> list[tuple[str, float, str]]:
    """a at random times; b 10-20 s after each a; c independent (uniform over the span)."""
    rng = random.Random(seed)
    span = n * 600.0
    events: list[tuple[str, float, str]] = []
    for _ in range(n):
        t = rng.uniform(0, span)
        events.append(("a", t, "d1"))
        events.append(("b", t + rng.uniform(10, 20), "d1"))
    events += [("c", rng.uniform(0, span), "d1") for _ in range(n)]
    return events


def test_planted_edge_is_the_only_edge() -> None:
    model = CoOccurrence(window_s=60, alpha=0.01, min_support=5).learn(planted())
    assert [(e.source, e.target) for e in model.edges()] == [("a", "b")]
    edge = model.edges()[0]
    assert edge.support == 200
    assert edge.after == 200
    assert edge.lift > 10
    assert model.related("a", "b") == model.related("b", "a") == edge.lift
    assert model.related("a", "c") == 0.0
    assert model.related("a", "never-seen") == 0.0


def test_window_shorter_than_lag_finds_nothing() -> None:
    model = CoOccurrence(window_s=5, alpha=0.01, min_support=5).learn(planted())
    assert model.edges() == []


def test_same_device_only_without_topology() -> None:
    # b follows a, but on another device: invisible without topology, found with it.
    events = [(k, t, dev) for k, t, _ in planted() for dev in ["r1" if k == "a" else "r2"]]
    assert CoOccurrence(window_s=60).learn(events).edges() == []
    with_topology = CoOccurrence(window_s=60, topology={"r1": ["r2"]}).learn(events)
    assert [(e.source, e.target) for e in with_topology.edges()] == [("a", "b")]
    too_far = CoOccurrence(window_s=60, topology={"r1": ["r2"]}, hops=0).learn(events)
    assert too_far.edges() == []


def test_no_device_means_one_shared_device() -> None:
    events = [(k, t) for k, t, _ in planted()]
    assert [(e.source, e.target) for e in CoOccurrence(window_s=60).learn(events).edges()] == [("a", "b")]


@pytest.mark.parametrize(("min_support", "min_lift", "expected"), [
    (5, 1.0, [("a", "b")]),
    (201, 1.0, []),          # more co-occurrences than there are
    (5, 1e9, []),            # lift can never be that high
])
def test_thresholds(min_support: int, min_lift: float, expected: list[tuple[str, str]]) -> None:
    model = CoOccurrence(window_s=60, min_support=min_support, min_lift=min_lift).learn(planted())
    assert [(e.source, e.target) for e in model.edges()] == expected


def test_empty_history() -> None:
    model = CoOccurrence().learn([])
    assert model.edges() == []
    assert model.related("a", "b") == 0.0


def test_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="window_s"):
        CoOccurrence(window_s=0)


def test_benjamini_hochberg_matches_hand_computation() -> None:
    # sorted p: .01 .02 .03 .5 -> p*n/rank: .04 .04 .04 .5
    q = benjamini_hochberg(np.array([0.5, 0.01, 0.03, 0.02]))
    assert q.round(6).tolist() == [0.5, 0.04, 0.04, 0.04]
