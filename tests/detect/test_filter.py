"""AnomalyFilter: decisions from scores, events with evidence, training exclusion."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.detect.base import Detector
from watchkeeper.detect.filter import AnomalyFilter, onsets, run, windows_of
from watchkeeper.model import EventKind, Severity, Status


class Scripted(Detector):
    """Returns the value itself as its score; records what it learned."""

    def __init__(self) -> None:
        self.learned: list[float] = []

    def learn_one(self, x: float, t: float) -> None:
        self.learned.append(x)

    def score_one(self, x: float, t: float) -> float:
        return x

    def expected_range(self, t: float) -> tuple[float, float] | None:
        return (0.0, 0.5)

    def _get_state(self) -> dict[str, object]:
        return {"learned": self.learned}

    def _set_state(self, state: dict[str, object]) -> None:
        self.learned = list(state["learned"])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("scores", "max_skip", "learned"),
    [
        ([0.1, 0.9, 0.2], 30, [0.1, 0.2]),  # anomalies stay out of training
        ([0.9, 0.9, 0.9, 0.9, 0.1], 2, [0.9, 0.9, 0.1]),  # ... but at most max_skip in a row
        ([0.9, 0.1, 0.9, 0.1], 1, [0.1, 0.1]),  # a normal point resets the count
        ([0.9, 0.9], 0, [0.9, 0.9]),  # max_skip=0: learn everything
    ],
)
def test_training_exclusion(scores: list[float], max_skip: int, learned: list[float]) -> None:
    det = Scripted()
    f = AnomalyFilter(det, series="s", threshold=0.7, max_skip=max_skip)
    for i, s in enumerate(scores):
        f.step(s, float(i))
    assert det.learned == learned


def test_events_open_and_close_with_evidence() -> None:
    f = AnomalyFilter(Scripted(), series="api latency", threshold=0.7, labels={"service": "api"},
                      service="api", resource="host-1", severity=Severity.ERROR)
    out = [(i, e) for i, s in enumerate([0.1, 0.8, 0.95, 0.75, 0.2, 0.1]) for e in f.update(s, 60.0 * i)]
    assert [(i, e.status) for i, e in out] == [(1, Status.FIRING), (4, Status.RESOLVED)]
    firing, resolved = out[0][1], out[1][1]
    assert firing.kind is EventKind.ANOMALY and firing.severity is Severity.ERROR
    assert firing.fingerprint == resolved.fingerprint == f.fingerprint
    assert firing.labels == {"service": "api", "series": "api latency"}
    assert resolved.raw["window"] == {"start": "1970-01-01T00:01:00+00:00", "end": "1970-01-01T00:03:00+00:00"}
    assert resolved.raw["expected_range"] == [0.0, 0.5]
    assert resolved.raw["peak"]["score"] == 0.95 and resolved.raw["series"] == "api latency"
    assert resolved.ends_at is not None and firing.ends_at is None
    assert firing.raw["threshold"] == 0.7 and firing.raw["detector_version"] is None


def test_evidence_names_the_shipped_version_and_threshold() -> None:
    from watchkeeper.detect.default import DEFAULT

    f = AnomalyFilter(Scripted(), series="s", threshold=DEFAULT.threshold, version=DEFAULT.version)
    (event,) = f.update(1.0, 0.0)
    assert (event.raw["detector_version"], event.raw["threshold"]) == (DEFAULT.version, DEFAULT.threshold)


@pytest.mark.parametrize(
    ("scores", "threshold", "windows"),
    [
        ([], 0.5, []),
        ([0.6], 0.5, [(0, 0)]),
        ([0.1, 0.6, 0.7, 0.1, 0.9], 0.5, [(1, 2), (4, 4)]),
        ([0.5, 0.49, 0.5], 0.5, [(0, 0), (2, 2)]),
    ],
)
def test_windows_of(scores: list[float], threshold: float, windows: list[tuple[int, int]]) -> None:
    assert windows_of(np.array(scores, dtype=float), threshold) == windows


def test_run_and_onsets() -> None:
    scores = run(Scripted(), [0.0, 1.0, 2.0], [0.1, 0.9, 0.8])
    assert scores.tolist() == [0.1, 0.9, 0.8]
    assert onsets(scores, 5).tolist() == [0.1, 0.9, 0.0]
