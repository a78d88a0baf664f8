"""Server Machine Dataset (SMD) / Application Server Dataset (ASD): plain and point-adjusted F1.

Layout (``smd_asd/``): ``<set>/<entity>_train.npy`` (n × d), ``<entity>_test.npy`` (m × d) and
``<entity>_test_label.npy`` (m, 1 = anomalous). The detector learns the training part, then scores
the test part streaming (scoring each point before learning it, anomalies kept out of training
as :class:`~watchkeeper.detect.filter.AnomalyFilter` does).

*Point-adjusted* F1 (as in OmniAnomaly, USAD, TranAD) counts every point of a labelled anomaly
segment as detected when any of its points is; *plain* F1 counts points as they are. Both are
given at the detector's own threshold and at the best threshold in hindsight (one threshold for
the whole set — the number papers report, optimistic by construction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.detect.base import MultiDetector
from watchkeeper.detect.filter import windows_of

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Entity:
    name: str
    train: FloatArray
    test: FloatArray
    labels: np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True)
class Counts:
    tp: float
    fp: float
    fn: float

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def counts(scores: FloatArray, labels: np.ndarray[Any, Any], threshold: float, *, adjust: bool) -> Counts:
    """Point counts at ``threshold``; with ``adjust``, a segment is all-detected if any point is.

    >>> s = np.array([0.0, 0.9, 0.0, 0.0, 0.8, 0.0]); y = np.array([0, 1, 1, 1, 0, 0])
    >>> counts(s, y, 0.5, adjust=False), round(counts(s, y, 0.5, adjust=True).f1, 3)
    (Counts(tp=1.0, fp=1.0, fn=2.0), 0.857)
    """
    pred = scores >= threshold
    truth = labels.astype(bool)
    if adjust:
        pred = pred.copy()
        for a, b in windows_of(truth.astype(float), 0.5):
            if pred[a: b + 1].any():
                pred[a: b + 1] = True
    tp = float(np.sum(pred & truth))
    return Counts(tp, float(np.sum(pred & ~truth)), float(np.sum(~pred & truth)))


def best_f1(scores: Sequence[FloatArray], labels: Sequence[np.ndarray[Any, Any]], *, adjust: bool,
            candidates: int = 200) -> tuple[float, Counts]:
    """The threshold (among score quantiles) with the best pooled F1 over all entities."""
    pooled = np.concatenate(scores)
    grid = np.unique(np.quantile(pooled, np.linspace(0.5, 1.0, candidates)))
    best = (1.0, Counts(0.0, 0.0, float(sum(np.sum(y) for y in labels))))
    for th in grid:
        total = Counts(0.0, 0.0, 0.0)
        for s, y in zip(scores, labels, strict=True):
            total = total + counts(s, y, float(th), adjust=adjust)
        if total.f1 > best[1].f1:
            best = (float(th), total)
    return best


def load(root: Path) -> list[Entity]:
    """Every entity under ``root`` (recursively) that has train, test and label files."""
    out = []
    for test in sorted(root.rglob("*_test.npy")):
        stem = test.name[: -len("_test.npy")]
        train, label = test.with_name(f"{stem}_train.npy"), test.with_name(f"{stem}_test_label.npy")
        if train.exists() and label.exists():
            out.append(Entity(f"{test.parent.name}/{stem}", np.load(train).astype(float),
                              np.load(test).astype(float), np.load(label).astype(bool)))
    return out


def detect(entity: Entity, detector: MultiDetector, threshold: float, max_skip: int = 30) -> FloatArray:
    """Learn the training part, then score (and learn the normal points of) the test part."""
    for i, row in enumerate(entity.train):
        detector.learn_one(row, float(i))
    scores = np.empty(len(entity.test))
    skipped = 0
    for i, row in enumerate(entity.test):
        s = scores[i] = detector.score_one(row, float(len(entity.train) + i))
        skipped = skipped + 1 if s >= threshold else 0
        if skipped == 0 or skipped > max_skip:
            detector.learn_one(row, float(len(entity.train) + i))
    return scores


@dataclass(frozen=True)
class Report:
    group: str
    entities: int
    fixed: tuple[float, Counts, Counts]  # threshold, plain, point-adjusted
    best_plain: tuple[float, Counts]
    best_adjusted: tuple[float, Counts]


def evaluate(entities: Sequence[Entity], make: Callable[[], MultiDetector], threshold: float,
             progress: Callable[[Entity], None] | None = None) -> list[Report]:
    """Scores per data set group (``smd``, ``asd``) at ``threshold`` and at the best threshold."""
    by_group: dict[str, list[tuple[FloatArray, np.ndarray[Any, Any]]]] = {}
    for e in entities:
        by_group.setdefault(e.name.split("/", 1)[0], []).append((detect(e, make(), threshold), e.labels))
        if progress is not None:
            progress(e)
    reports = []
    for group, pairs in sorted(by_group.items()):
        scores, labels = [p[0] for p in pairs], [p[1] for p in pairs]
        plain = adjusted = Counts(0.0, 0.0, 0.0)
        for s, y in pairs:
            plain = plain + counts(s, y, threshold, adjust=False)
            adjusted = adjusted + counts(s, y, threshold, adjust=True)
        reports.append(Report(group, len(pairs), (threshold, plain, adjusted),
                              best_f1(scores, labels, adjust=False), best_f1(scores, labels, adjust=True)))
    return reports
