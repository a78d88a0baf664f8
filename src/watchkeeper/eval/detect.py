"""The held-out protocol for anomaly detectors: leave one labelled *source* out.

A detector tuned and thresholded on the data it is scored on overstates what a user will see on
their own metrics (last round: NAB standard 76.4 on the categories it was tuned on, 41.5 on
unseen ones). So every figure quoted for a detector is a *held-out* one:

* A **source** is one family of labelled series: each NAB category (figure: its NAB score under
  the standard profile, scored as :mod:`watchkeeper.eval.nab` does, over 100), and SMD and ASD
  (figure: point-adjusted F1 pooled over the source's entities, every metric scored by the
  univariate detector and the vector scored by its most anomalous metric).
* A **candidate** is one complete detector configuration (:class:`Candidate`).
* For each source, the candidate *and* the threshold are chosen to maximise the mean figure of
  the **other** sources; the source's held-out figure is its figure with that choice. Nothing
  about the held-out source is used, not even to place the threshold grid (:data:`THRESHOLDS`
  is fixed in advance).
* The **in-sample** figure of a source is its figure under the choice made on *all* sources;
  that choice is what ships (:mod:`watchkeeper.detect.default`). *Hindsight* is the best figure
  the source reaches on its own (any candidate, its own best threshold): what published tables
  report, an upper bound, never a claim.

A NAB category without anomaly windows (``artificialNoAnomaly``) has no NAB score; its figure is
``1 + raw / files`` (at least 0): 1 when silent, 0.11 less per false alarm per file.

>>> curves = {"a": {"x": Curve(np.array([0.5, 0.9])), "y": Curve(np.array([0.6, 0.2]))},
...           "b": {"x": Curve(np.array([0.4, 0.95])), "y": Curve(np.array([0.1, 0.7]))}}
>>> [(f.source, f.chosen, f.index, f.held_out) for f in leave_one_source_out(curves)]
[('x', 'b', 1, 0.95), ('y', 'b', 1, 0.7)]
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.detect.base import Detector
from watchkeeper.detect.filter import run
from watchkeeper.detect.likelihood import familywise, peak_onsets
from watchkeeper.eval import lab_series, nab, smd

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: NAB scoring reports an anomaly once: at the peak of a burst of rising scores (at most
#: ``PEAK_DELAY`` points late), at most once per ``ONSET_HORIZON`` points (``peak_onsets``).
ONSET_HORIZON = 100
PEAK_DELAY = 3
#: Every threshold the protocol may choose: fixed before any data is seen, evenly spaced in
#: log-odds from 0.018 to 0.9999992 (steps of 0.01).
THRESHOLDS: FloatArray = 1.0 / (1.0 + np.exp(-np.linspace(-4.0, 14.0, 1801)))
#: The length of the series that :meth:`Candidate.key` scores: three times the default's 4,000-point
#: memories (at 4,000 a change that shows only once a memory is full kept a stale cache: round 3).
KEY_PROBE_POINTS = 12_000
#: Sampling steps of the multivariate sets (the data's README): SMD 1 min, ASD 5 min.
STEPS = {"smd": 60.0, "asd": 300.0}


@dataclass(frozen=True)
class Candidate:
    """One complete detector configuration: how to build it, and how the stream learns
    (a point scoring at least ``learn_threshold`` is kept out of training, at most ``max_skip``
    in a row; ``max_skip=0`` learns everything)."""

    name: str
    version: str
    build: Callable[[], Detector]
    max_skip: int = 0
    learn_threshold: float = 1.0
    #: How a vector of D scored metrics is scored: ``max`` (its most anomalous metric) or
    #: ``familywise`` (the most anomalous after :func:`~watchkeeper.detect.likelihood.familywise`'s
    #: correction for D; round 10). Single series are scored alike either way.
    vector: str = "max"

    def key(self) -> str:
        """What the cached scores depend on: the configuration and how it behaves (its scores of
        :func:`probe`, learning as it does), so a change of the detectors' code that changes any
        score changes the key, and one that changes none (a faster loop, a new version name, a
        learning threshold that nothing is kept out at) keeps the cache. The probe is
        :data:`KEY_PROBE_POINTS` long: longer than any memory of the shipped detectors, so a change
        that shows only once a memory is full changes the key too."""
        h = hashlib.sha256()
        for step in (60.0, 300.0):
            times, values = probe(step, KEY_PROBE_POINTS)
            h.update(np.round(self.scores(times, values), 12).tobytes())
        behaviour = h.hexdigest()[:16]
        return f"{self.name}|{self.build()!r}|{self.vector}|{behaviour}"

    def scores(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """Each point scored, then learned (as a watch does), in time order."""
        return run(self.build(), times.tolist(), values.tolist(), threshold=self.learn_threshold,
                   max_skip=self.max_skip)


def probe(step: float, n: int = 4000) -> tuple[FloatArray, FloatArray]:
    """A series that exercises every branch of a detector: a daily cycle, noise, spikes, a level
    shift, a change of variance, a quantised stretch and a constant one."""
    rng = np.random.default_rng(14)
    t = np.arange(n) * step
    x = 100.0 + 20.0 * np.sin(2 * np.pi * t / 86_400.0) + rng.normal(0.0, 2.0, n)
    x[rng.choice(n, 12, replace=False)] += rng.choice([-60.0, 80.0], 12)
    x[n // 2:] += 15.0
    x[n // 3: n // 3 + 200] += rng.normal(0.0, 10.0, 200)
    x[2 * n // 3: 2 * n // 3 + 300] = np.round(x[2 * n // 3: 2 * n // 3 + 300] / 10.0) * 10.0
    x[5 * n // 6: 5 * n // 6 + 100] = 42.0
    return np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float64)


# -- sources -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NabSource:
    """One NAB category: its files, scored with :data:`nab.STANDARD`."""

    name: str
    files: tuple[nab.DataFile, ...]
    kind: str = "NAB standard"

    def items(self) -> list[tuple[str, bytes]]:
        return [(f.name, f.values.tobytes()) for f in self.files]

    def run(self, candidate: Candidate, index: int) -> FloatArray:
        f = self.files[index]
        return peak_onsets(candidate.scores(f.times, f.values), ONSET_HORIZON, PEAK_DELAY)

    def curve(self, scores: Sequence[FloatArray]) -> Curve:
        raw = np.zeros(len(THRESHOLDS))
        windows = 0
        for f, s in zip(self.files, scores, strict=True):
            p = nab.prepare(f, np.clip(s, 0.0, 1.0), nab.STANDARD)
            raw += nab_raw_curve(p, nab.STANDARD)
            windows += p.n_windows
        if windows:
            figure = (raw + nab.STANDARD.fn * windows) / ((nab.STANDARD.tp + nab.STANDARD.fn) * windows)
        else:
            figure = np.maximum(0.0, 1.0 + raw / max(len(self.files), 1))
        return Curve(figure, raw, windows)


@dataclass(frozen=True)
class PaSource:
    """SMD or ASD: multivariate entities, each metric scored by the univariate detector (trained
    on the entity's training part first), the vector by its most anomalous metric."""

    name: str
    entities: tuple[smd.Entity, ...]
    step: float
    kind: str = "point-adjusted F1"

    def items(self) -> list[tuple[str, bytes]]:
        return [(e.name, e.test.tobytes() + e.train.tobytes()) for e in self.entities]

    def run(self, candidate: Candidate, index: int) -> FloatArray:
        e = self.entities[index]
        both = np.concatenate([e.train, e.test])
        times = np.arange(len(both), dtype=float) * self.step
        out = np.zeros(len(e.test))
        # a constant metric carries no anomaly
        scored = [c for c in range(both.shape[1])
                  if np.isfinite(both[:, c]).all() and both[:, c].min() != both[:, c].max()]
        # the values remembered when each test point is scored (for the familywise correction)
        memory = float(getattr(candidate.build(), "memory", 4000))
        remembered = np.minimum(np.arange(len(e.train), len(both), dtype=float), memory)
        for c in scored:
            column = candidate.scores(times, both[:, c])[len(e.train):]
            if candidate.vector == "familywise":
                column = familywise(column, len(scored), remembered)
            np.maximum(out, column, out=out)
        return out

    def every_point(self) -> float:
        """The figure of an alarm at every point (recall 1, precision the labelled share): the
        floor a detector must clear on this source, since point adjustment rewards alarming.

        >>> e = smd.Entity("x/a", np.zeros((4, 1)), np.zeros((4, 1)), np.array([0, 1, 1, 0], dtype=bool))
        >>> PaSource("x", (e,), 60.0).every_point()
        0.6666666666666666
        """
        positives = sum(int(e.labels.sum()) for e in self.entities)
        total = sum(len(e.labels) for e in self.entities)
        return 2.0 * positives / (total + positives) if total else 0.0

    def curve(self, scores: Sequence[FloatArray]) -> Curve:
        tp = np.zeros(len(THRESHOLDS))
        fp = np.zeros(len(THRESHOLDS))
        positives = 0
        for e, s in zip(self.entities, scores, strict=True):
            t, f, p = pa_counts(np.asarray(s, float), e.labels)
            tp += t
            fp += f
            positives += p
        denominator = tp + fp + positives  # 2·tp + fp + fn, with fn = positives − tp
        figure = np.divide(2.0 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
        return Curve(figure)


Source = NabSource | PaSource


def load_sources(nab_root: Path | None, smd_root: Path | None, lab_root: Path | None = None) -> list[Source]:
    """Every labelled source under the NAB checkout (one per category), the SMD/ASD folder
    (one per set: its sub-folder's name) and the recorded lab campaigns (one source, ``lab``:
    :mod:`watchkeeper.eval.lab_series`)."""
    sources: list[Source] = []
    if nab_root is not None:
        files = nab.load_corpus(nab_root)
        for category in sorted({f.category for f in files}):
            sources.append(NabSource(category, tuple(f for f in files if f.category == category)))
    if smd_root is not None:
        entities = smd.load(smd_root)
        for group in sorted({e.name.split("/", 1)[0] for e in entities}):
            sources.append(PaSource(group, tuple(e for e in entities if e.name.split("/", 1)[0] == group),
                                    STEPS.get(group, 60.0)))
    if lab_root is not None:
        entities, step = lab_series.load(lab_root)
        sources.append(PaSource("lab", tuple(entities), step))
    return sources


# -- figures over the threshold grid -----------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """A source's figure (0–1, higher is better) at every threshold of :data:`THRESHOLDS`;
    for NAB also the raw score and the number of windows (to pool categories)."""

    figure: FloatArray
    raw: FloatArray | None = None
    windows: int = 0


def nab_raw_curve(p: nab.Prepared, profile: nab.Profile, thresholds: FloatArray = THRESHOLDS) -> FloatArray:
    """:func:`nab.raw_score` of one prepared file at every threshold, at once.

    >>> d = nab.DataFile("c/f.csv", np.arange(20.0), np.zeros(20), ((10, 13),))
    >>> s = np.zeros(20); s[10] = 0.6; s[5] = 0.8
    >>> p = nab.prepare(d, s, nab.STANDARD)
    >>> nab_raw_curve(p, nab.STANDARD, np.array([0.5, 0.7, 0.9])).round(2).tolist()
    [0.89, -1.11, -1.0]
    >>> [round(nab.raw_score(p, t, nab.STANDARD), 2) for t in (0.5, 0.7, 0.9)]
    [0.89, -1.11, -1.0]
    """
    out = np.zeros(len(thresholds))
    outside = p.window_ids == nab.OUTSIDE
    out += _sum_at_least(p.scores[outside], p.weights[outside], thresholds)
    for k in np.unique(p.window_ids[p.window_ids >= 0]).tolist():
        inside = p.window_ids == k
        s, w = p.scores[inside], p.weights[inside]
        order = np.argsort(-s, kind="stable")
        best = np.maximum.accumulate(w[order])
        hits = len(s) - np.searchsorted(np.sort(s), thresholds, side="left")  # points >= threshold
        out += np.where(hits > 0, best[np.maximum(hits - 1, 0)], -profile.fn)
    return out


def _sum_at_least(scores: FloatArray, weights: FloatArray, thresholds: FloatArray) -> FloatArray:
    """For each threshold, the summed weight of the points scoring at least it."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    tail = np.concatenate([np.cumsum(weights[order][::-1])[::-1], [0.0]])  # tail[i] = sum of w[i:]
    return np.asarray(tail[np.searchsorted(s, thresholds, side="left")], float)


def pa_counts(scores: FloatArray, labels: np.ndarray[Any, Any],
              thresholds: FloatArray = THRESHOLDS) -> tuple[FloatArray, FloatArray, int]:
    """Point-adjusted true and false positives at every threshold, and the positives.

    >>> s = np.array([0.0, 0.9, 0.0, 0.0, 0.8, 0.0]); y = np.array([0, 1, 1, 1, 0, 0])
    >>> tp, fp, pos = pa_counts(s, y, np.array([0.5, 0.85, 0.95]))
    >>> tp.tolist(), fp.tolist(), pos
    ([3.0, 3.0, 0.0], [1.0, 0.0, 0.0], 3)
    >>> smd.counts(s, y, 0.5, adjust=True)
    Counts(tp=3.0, fp=1.0, fn=0.0)
    """
    truth = np.asarray(labels).astype(bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], truth.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    if len(starts):
        peaks = np.array([scores[a:b].max() for a, b in zip(starts, ends, strict=True)])
        tp = _sum_at_least(peaks, (ends - starts).astype(float), thresholds)
    else:
        tp = np.zeros(len(thresholds))
    fp = _sum_at_least(scores[~truth], np.ones(int((~truth).sum())), thresholds)
    return tp, fp, int(truth.sum())


# -- the protocol ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    """One held-out source: what was chosen without it, and its figures."""

    source: str
    chosen: str
    index: int  # into THRESHOLDS
    held_out: float
    in_sample: float = math.nan
    hindsight: float = math.nan

    @property
    def threshold(self) -> float:
        return float(THRESHOLDS[self.index])


Objectives = dict[str, FloatArray]
#: ``worst-relative`` smooths each figure curve over ±this many grid points (±0.2 in log-odds),
#: a width fixed before the rule was first run (docs/detect.md), not tuned.
SMOOTH_POINTS = 20


def mean_objective(curves: Mapping[str, Mapping[str, Curve]], sources: Sequence[str]) -> Objectives:
    """Per candidate, the mean figure over ``sources`` at each threshold."""
    return {name: np.mean([by_source[s].figure for s in sources], axis=0) for name, by_source in curves.items()}


def smoothed(values: FloatArray, half: int = SMOOTH_POINTS) -> FloatArray:
    """The moving mean over ``±half`` points (fewer at the ends).

    >>> smoothed(np.array([0.0, 3.0, 0.0, 0.0]), 1).tolist()
    [1.5, 1.0, 1.0, 0.0]
    """
    total = np.concatenate(([0.0], np.cumsum(values)))
    i = np.arange(len(values))
    lo, hi = np.maximum(0, i - half), np.minimum(len(values), i + half + 1)
    return np.asarray((total[hi] - total[lo]) / (hi - lo), dtype=np.float64)


def worst_relative_objective(curves: Mapping[str, Mapping[str, Curve]], sources: Sequence[str]) -> Objectives:
    """Per candidate, at each threshold, the smallest over ``sources`` of the source's smoothed
    figure divided by its best smoothed figure (over every candidate and threshold): fair to
    every source, whatever its figure's scale, and stable around the threshold. Sources whose
    best is not above 0 are left out."""
    smooth = {name: {s: smoothed(by_source[s].figure) for s in sources} for name, by_source in curves.items()}
    best = {s: max(float(by_source[s].max()) for by_source in smooth.values()) for s in sources}
    used = [s for s in sources if best[s] > 0.0]
    if not used:
        raise ValueError("no source has a figure above 0 to be relative to")
    return {name: np.min([by_source[s] / best[s] for s in used], axis=0) for name, by_source in smooth.items()}


#: ``smoothed-mean`` smooths each figure curve over ±this many grid points (±0.25 in log-odds): the
#: width docs/detect.md recorded as a lead in round 2 (round 6 tests it, declared there).
SMOOTH_MEAN_POINTS = 25


def smoothed_mean_objective(curves: Mapping[str, Mapping[str, Curve]], sources: Sequence[str]) -> Objectives:
    """Per candidate, the mean over ``sources`` of each source's figure smoothed over
    ±:data:`SMOOTH_MEAN_POINTS` grid points: a threshold is chosen where the figure holds when the
    surprise it stands for is somewhat off, not on a peak next to a cliff."""
    means = mean_objective(curves, sources)
    return {name: smoothed(objective, SMOOTH_MEAN_POINTS) for name, objective in means.items()}


#: How ``choose`` may rank candidate and threshold: ``mean`` (the protocol's rule since round 1),
#: ``worst-relative`` and ``smoothed-mean`` (each declared in docs/detect.md before it was run).
RULES: Mapping[str, Callable[[Mapping[str, Mapping[str, Curve]], Sequence[str]], Objectives]] = {
    "mean": mean_objective,
    "worst-relative": worst_relative_objective,
    "smoothed-mean": smoothed_mean_objective,
}


def choose(curves: Mapping[str, Mapping[str, Curve]], sources: Sequence[str],
           rule: str = "mean") -> tuple[str, int, float]:
    """The candidate and threshold index with the best objective over ``sources`` (by default
    the mean figure; see :data:`RULES`). Of equal candidates the first wins; of equal thresholds,
    the middle of the longest run of them (the choice furthest from where the figure drops: a
    threshold at the edge of a plateau fitted on some sources falls off it on the next one)."""
    best: tuple[str, int, float] | None = None
    for name, objective in RULES[rule](curves, sources).items():
        i = plateau_middle(objective)
        if best is None or objective[i] > best[2] + 1e-12:
            best = (name, i, float(objective[i]))
    if best is None:
        raise ValueError("no candidates to choose from")
    return best


def plateau_middle(values: FloatArray) -> int:
    """The index in the middle of the longest run of maximal values (the higher middle of an
    even run; the last run of equal length).

    >>> plateau_middle(np.array([0.1, 0.5, 0.5, 0.5, 0.2, 0.5, 0.5]))
    2
    >>> plateau_middle(np.array([0.5, 0.5, 0.4])), plateau_middle(np.array([0.2, 0.9]))
    (1, 1)
    """
    top = values >= values.max() - 1e-12
    edges = np.flatnonzero(np.diff(np.concatenate(([0], top.astype(np.int8), [0]))))
    starts, ends = edges[::2], edges[1::2]
    k = len(starts) - 1 - int(np.argmax((ends - starts)[::-1]))
    return int((starts[k] + ends[k]) // 2)


def leave_one_source_out(curves: Mapping[str, Mapping[str, Curve]], rule: str = "mean") -> list[Fold]:
    """For each source, choose candidate and threshold on the others and score it with them."""
    names = list(next(iter(curves.values())))
    if len(names) < 2:
        raise ValueError("leaving one source out needs at least two sources")
    all_name, all_i, _ = choose(curves, names, rule)
    folds = []
    for held in names:
        name, i, _ = choose(curves, [s for s in names if s != held], rule)
        hindsight = max(float(by_source[held].figure.max()) for by_source in curves.values())
        folds.append(Fold(held, name, i, float(curves[name][held].figure[i]),
                          float(curves[all_name][held].figure[all_i]), hindsight))
    return folds


@dataclass
class Report:
    """Everything ``eval detect`` prints and writes."""

    folds: list[Fold]
    kinds: dict[str, str]
    in_sample: tuple[str, float]  # the choice on all sources: candidate, threshold
    nab_held_out: float | None  # NAB categories pooled, each with its own held-out choice
    nab_in_sample: float | None
    candidates: list[str] = field(default_factory=list)
    rule: str = "mean"

    @property
    def worst(self) -> Fold:
        return min(self.folds, key=lambda f: f.held_out)

    def as_json(self) -> dict[str, Any]:
        return {
            "protocol": "leave one source out: candidate and threshold chosen on the other sources",
            "rule": self.rule,
            "candidates": self.candidates,
            "in_sample_choice": {"candidate": self.in_sample[0], "threshold": self.in_sample[1]},
            "sources": [{"source": f.source, "figure": self.kinds[f.source], "held_out": _pct(f.held_out),
                         "chosen": f.chosen, "threshold": f.threshold, "in_sample": _pct(f.in_sample),
                         "hindsight": _pct(f.hindsight)} for f in self.folds],
            "worst_held_out": {"source": self.worst.source, "held_out": _pct(self.worst.held_out)},
            "nab_held_out_overall": self.nab_held_out, "nab_in_sample_overall": self.nab_in_sample,
        }


def _pct(x: float) -> float:
    return round(100.0 * x, 2)


def report(curves: Mapping[str, Mapping[str, Curve]], kinds: Mapping[str, str], rule: str = "mean") -> Report:
    folds = leave_one_source_out(curves, rule)
    names = list(kinds)
    all_name, all_i, _ = choose(curves, names, rule)
    nab_folds = [f for f in folds if curves[f.chosen][f.source].raw is not None]

    def pooled(choice: Callable[[Fold], tuple[str, int]]) -> float | None:
        raw = windows = 0.0
        for f in nab_folds:
            name, i = choice(f)
            curve = curves[name][f.source]
            assert curve.raw is not None
            raw += float(curve.raw[i])
            windows += curve.windows
        return nab.normalised(raw, int(windows), nab.STANDARD) if nab_folds else None

    return Report(folds, dict(kinds), (all_name, float(THRESHOLDS[all_i])),
                  pooled(lambda f: (f.chosen, f.index)), pooled(lambda f: (all_name, all_i)), list(curves), rule)


# -- running, with a cache ---------------------------------------------------------------------
def source_scores(source: Source, candidate: Candidate, cache: Path | None,
                  progress: Callable[[], None] | None = None) -> list[FloatArray]:
    """The candidate's scores of every item of the source, from ``cache`` when it holds them
    (keyed by the configuration, the detectors' code and the item's data)."""
    key = candidate.key()
    out = []
    for index, (name, data) in enumerate(source.items()):
        path = None
        if cache is not None:
            digest = hashlib.sha256(key.encode() + name.encode() + hashlib.sha256(data).digest()).hexdigest()
            path = cache / f"{digest[:32]}.npy"
            if path.exists():
                out.append(np.load(path))
                if progress is not None:
                    progress()
                continue
        scores = np.asarray(source.run(candidate, index), float)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, scores)
            tmp.replace(path)
        out.append(scores)
        if progress is not None:
            progress()
    return out


# -- the candidates ----------------------------------------------------------------------------
def shipped_candidates() -> dict[str, Candidate]:
    """Every shipped detector configuration (:data:`watchkeeper.detect.default.SHIPPED`) as a
    candidate; a point is kept out of training at the configuration's own shipped threshold."""
    from watchkeeper.detect.default import SHIPPED

    return {name: Candidate(name, s.version, s.build, s.max_skip, s.threshold,
                            vector="familywise" if s.familywise else "max") for name, s in SHIPPED.items()}


#: Parameter variants the protocol may choose among besides the shipped configurations:
#: AnomalyLikelihood's robust window, averaging view and tail memory at about half and twice
#: their defaults (256, 50, 4000), and without seasonality.
VARIANTS: Mapping[str, Mapping[str, Any]] = {
    f"likelihood {k}={v}": {k: v}
    for k, values in (("window", (128, 512)), ("short", (20, 100)), ("memory", (2000, 8000)),
                      ("season", ("none",)))
    for v in values
}


#: Ensembles of the default with a second member (rounds 3 and 4, each declared in docs/detect.md
#: before it was run): :class:`~watchkeeper.detect.context.LikelihoodContext`, learning every point.
ENSEMBLES: Mapping[str, Mapping[str, Any]] = {
    f"likelihood+context {join}": {"join": join} for join in ("max", "mean", "fisher")
}


def candidates() -> dict[str, Candidate]:
    """Every candidate ``eval detect --candidate`` accepts: the shipped configurations,
    :data:`VARIANTS` of the default, :data:`ENSEMBLES` ``likelihood+range`` (round 5, declared
    in docs/detect.md before it was run: :class:`~watchkeeper.detect.spatial.RangeLikelihood`) and
    ``likelihood+range cap=none`` (round 7: the same without the short mean's cap) and
    ``likelihood+range relearn`` (round 8: the same, forgetting its tails at a new level)."""
    from watchkeeper.detect.context import LikelihoodContext
    from watchkeeper.detect.default import DEFAULT
    from watchkeeper.detect.spatial import RangeLikelihood

    out = shipped_candidates()
    for name, params in VARIANTS.items():
        out[name] = Candidate(name, DEFAULT.version, partial(DEFAULT.build, **params), DEFAULT.max_skip,
                              DEFAULT.threshold)
    for name, params in ENSEMBLES.items():
        out[name] = Candidate(name, "experimental", partial(LikelihoodContext, **params), 0)
    out.setdefault("likelihood+range", Candidate("likelihood+range", "experimental", RangeLikelihood, 0))
    out.setdefault("likelihood+range cap=none",
                   Candidate("likelihood+range cap=none", "experimental", partial(RangeLikelihood, mean_cap=None), 0))
    out.setdefault("likelihood familywise",
                   Candidate("likelihood familywise", DEFAULT.version, DEFAULT.build, DEFAULT.max_skip,
                             DEFAULT.threshold, vector="familywise"))
    # likelihood-v2's vectors (the plain maximum), for comparisons with the rounds before round 10
    out.setdefault("likelihood max",
                   Candidate("likelihood max", "likelihood-v2", DEFAULT.build, DEFAULT.max_skip, 0.7773))
    out.setdefault("likelihood+range relearn",
                   Candidate("likelihood+range relearn", "experimental", partial(RangeLikelihood, relearn=True), 0))
    return out
