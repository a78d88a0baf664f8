"""From scores to decisions: anomaly windows, ``Event(kind=ANOMALY)``, and what may be learned.

A detector scores; :class:`AnomalyFilter` decides. A point scoring at least ``threshold`` is
anomalous; consecutive anomalous points form one window, reported as a firing event when it
opens and a resolved event when it closes. Anomalous points are kept out of training, but at most
``max_skip`` in a row: a lasting level shift becomes the new normal instead of alerting forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.sources.base import fingerprint_of

SOURCE = "watchkeeper.detect"


@dataclass
class OpenWindow:
    """An open anomaly window of one series: when it began, its peak, the expected range there."""

    start: float
    peak_score: float
    peak_value: float
    peak_at: float
    expected: tuple[float, float] | None
    last: float


@dataclass
class AnomalyFilter:
    """Score each point, learn only normal ones, and turn anomaly windows into events.

    >>> from watchkeeper.detect.robust import RobustSeasonal
    >>> f = AnomalyFilter(RobustSeasonal(window=16), series="api latency_ms", threshold=0.5)
    >>> events = [e for i in range(60) for e in f.update(100.0 + i % 2, 60.0 * i)]
    >>> events += f.update(900.0, 3600.0) + f.update(100.0, 3660.0)
    >>> [(e.status.value, e.raw["window"]["start"]) for e in events]
    [('firing', '1970-01-01T01:00:00+00:00'), ('resolved', '1970-01-01T01:00:00+00:00')]
    >>> events[0].raw["expected_range"]
    [92.1044, 109.8956]
    """

    detector: Detector
    series: str
    threshold: float = 0.8
    max_skip: int = 30
    labels: Mapping[str, str] = field(default_factory=dict)
    service: str = ""
    resource: str = ""
    severity: Severity = Severity.WARNING
    #: The shipped configuration's version (``detect.default.Shipped.version``), named in evidence.
    version: str = ""
    _skipped: int = field(default=0, init=False, repr=False)
    _open: OpenWindow | None = field(default=None, init=False, repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of({**self.labels, "series": self.series}, namespace="anomaly")

    def step(self, x: float, t: float) -> float:
        """Score one point and learn it unless it is anomalous (bounded by ``max_skip``)."""
        score = self.detector.score_one(x, t)
        if score < self.threshold:
            self._skipped = 0
        else:
            self._skipped += 1
            if self._skipped <= self.max_skip:
                return score
        self.detector.learn_one(x, t)
        return score

    def update(self, x: float, t: float) -> list[Event]:
        """Process one point; return the events it causes (an opening or closing window)."""
        expected = self.detector.expected_range(t)
        score = self.step(x, t)
        if score >= self.threshold:
            if self._open is None:
                self._open = OpenWindow(t, score, x, t, expected, t)
                return [self._event(Status.FIRING, self._open, end=None)]
            if score > self._open.peak_score:
                self._open.peak_score, self._open.peak_value, self._open.peak_at = score, x, t
            self._open.last = t
            return []
        if self._open is not None:
            closed, self._open = self._open, None
            return [self._event(Status.RESOLVED, closed, end=closed.last)]
        return []

    def _event(self, status: Status, window: OpenWindow, end: float | None) -> Event:
        start = _dt(window.start)
        evidence: dict[str, Any] = {
            "series": self.series,
            "window": {"start": start.isoformat(), "end": None if end is None else _dt(end).isoformat()},
            "expected_range": None if window.expected is None else [round(v, 6) for v in window.expected],
            "peak": {"score": round(window.peak_score, 6), "value": window.peak_value,
                     "at": _dt(window.peak_at).isoformat()},
            "detector": repr(self.detector),
            "detector_version": self.version or None,
            "threshold": self.threshold,
        }
        return Event(
            source=SOURCE, kind=EventKind.ANOMALY, fingerprint=self.fingerprint, status=status,
            severity=self.severity, name="MetricAnomaly", service=self.service, resource=self.resource,
            labels={**self.labels, "series": self.series},
            summary=f"{self.series}: value {window.peak_value:g} outside the expected range"
            + (f" [{window.expected[0]:g}, {window.expected[1]:g}]" if window.expected else ""),
            starts_at=start, ends_at=None if end is None else _dt(end), received_at=start, raw=evidence,
        )


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def run(
    detector: Detector, times: Iterable[float], values: Iterable[float], *,
    threshold: float = 0.8, max_skip: int = 30,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The score of every point of one series, learning as :class:`AnomalyFilter` does.

    >>> from watchkeeper.detect.robust import RobustSeasonal
    >>> scores = run(RobustSeasonal(window=8), range(40), [1.0, 2.0] * 15 + [40.0] + [1.0] * 9)
    >>> int(scores.argmax()), bool(scores[30] > 0.5)
    (30, True)
    """
    f = AnomalyFilter(detector, series="", threshold=threshold, max_skip=max_skip)
    return np.fromiter((f.step(float(x), float(t)) for t, x in zip(times, values, strict=True)), float)


def windows_of(scores: np.ndarray[Any, np.dtype[np.float64]], threshold: float) -> list[tuple[int, int]]:
    """Runs of consecutive scores ``>= threshold`` as ``(first, last)`` indices (inclusive).

    >>> windows_of(np.array([0.0, 0.95, 0.99, 0.1, 0.92]), 0.9)
    [(1, 2), (4, 4)]
    """
    hot = np.concatenate(([False], scores >= threshold, [False]))
    edges = np.flatnonzero(np.diff(hot.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def onsets(scores: np.ndarray[Any, np.dtype[np.float64]], horizon: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Keep a score only where it exceeds every score of the ``horizon`` points before it (0
    elsewhere): for any threshold, an anomaly is then reported when it starts, not at each of
    its points — what :class:`AnomalyFilter` does with its firing events.

    >>> onsets(np.array([0.1, 0.9, 0.95, 0.9, 0.2, 0.1, 0.8, 0.3]), 3).tolist()
    [0.1, 0.9, 0.95, 0.0, 0.0, 0.0, 0.0, 0.0]
    >>> onsets(np.array([0.1, 0.9, 0.2, 0.1, 0.1, 0.8]), 3).tolist()
    [0.1, 0.9, 0.0, 0.0, 0.0, 0.8]
    """
    out = np.zeros_like(scores)
    for i, s in enumerate(scores):
        lo = max(0, i - horizon)
        if i == 0 or s > scores[lo:i].max():
            out[i] = s
    return out
