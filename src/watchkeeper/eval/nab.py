"""The Numenta Anomaly Benchmark scorer, written from NAB's published description.

* Every file has labelled anomaly windows; its first 15 % (at most 750 points) is probationary
  and not scored.
* A detection is a point whose score reaches the threshold. Inside a window, a detection is worth
  ``tp × σ̃(position)`` where ``σ̃(y) = 2/(1 + e^{5y}) − 1`` and ``position`` runs from −1 at the
  window's first point to about 0 at its last, normalised so that the first point is worth
  exactly ``tp``; only the best (earliest) detection of a window counts. A window without
  detection costs ``fn``. A detection outside every window costs ``fp × σ̃(d)``, ``d`` being its
  distance past the previous window's end in window widths (−``fp`` with no window before).
* One threshold per profile is chosen to maximise the summed score over all files; the score is
  then normalised so that the null detector (no detection) scores 0 and the perfect detector
  (each window detected at its start, nothing else) scores 100.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

PROBATION_PERCENT = 0.15
OUTSIDE = -1
PROBATION = -2
#: NAB's profile names, in its order.
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB application profile (``config/profiles.json``)."""

    name: str
    tp: float
    fp: float
    fn: float

    @classmethod
    def load(cls, path: Path) -> list[Profile]:
        raw = json.loads(path.read_text())
        return [
            cls(name, float(m["tpWeight"]), float(m["fpWeight"]), float(m["fnWeight"]))
            for name, body in raw.items() for m in [body["CostMatrix"]]
        ]


STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)


@dataclass(frozen=True)
class DataFile:
    """One labelled series: ``name`` is ``category/file.csv``; windows are inclusive index pairs."""

    name: str
    times: FloatArray
    values: FloatArray
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]


def scaled_sigmoid(y: float) -> float:
    """NAB's reward curve: about 1 well before a window's end, 0 at it, −1 three widths after.

    >>> round(scaled_sigmoid(-1.0), 4), scaled_sigmoid(0.0), scaled_sigmoid(3.5)
    (0.9866, 0.0, -1.0)
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_length(n: int, percent: float = PROBATION_PERCENT) -> int:
    """Index of the first scored point: ``min(floor(percent·n), percent·5000)``, rounded up.

    >>> probation_length(1000), probation_length(20000)
    (150, 750)
    """
    return math.ceil(min(math.floor(percent * n), percent * 5000))


def point_weights(n: int, windows: Sequence[tuple[int, int]], profile: Profile) -> tuple[FloatArray, IntArray]:
    """What a detection at each point is worth, and the window each point belongs to
    (``OUTSIDE``, ``PROBATION`` or the window's index).

    >>> w, ids = point_weights(10, [(2, 5)], Profile("p", 1.0, 0.5, 1.0))
    >>> [round(v, 3) for v in w.tolist()]
    [-0.5, -0.5, 1.0, 0.967, 0.86, 0.562, -0.341, -0.466, -0.493, -0.499]
    >>> ids.tolist()
    [-2, -1, 0, 0, 0, 0, -1, -1, -1, -1]
    """
    weights = np.empty(n)
    ids = np.full(n, OUTSIDE, dtype=np.int64)
    max_tp = scaled_sigmoid(-1.0)
    prev_end: int | None = None
    prev_width = 0.0
    starts = {start: k for k, (start, _end) in enumerate(windows)}
    current: tuple[int, int, int] | None = None  # (k, start, end)
    for i in range(n):
        if current is None and i in starts:
            k = starts[i]
            current = (k, windows[k][0], windows[k][1])
        if current is not None:
            k, start, end = current
            width = float(end - start + 1)
            weights[i] = scaled_sigmoid(-(end - i + 1) / width) * profile.tp / max_tp
            ids[i] = k
            if i == end:
                prev_end, prev_width, current = end, width, None
        elif prev_end is None:
            weights[i] = -1.0 * profile.fp
        else:
            weights[i] = scaled_sigmoid(abs(prev_end - i) / max(prev_width - 1.0, 1.0)) * profile.fp
    ids[: probation_length(n)] = PROBATION
    return weights, ids


@dataclass(frozen=True)
class Prepared:
    """One file's scores with the weights of one profile (probationary points dropped)."""

    name: str
    scores: FloatArray
    weights: FloatArray
    window_ids: IntArray
    n_windows: int  # windows with at least one scored point


def prepare(data: DataFile, scores: FloatArray, profile: Profile) -> Prepared:
    weights, ids = point_weights(len(data.values), data.windows, profile)
    keep = ids != PROBATION
    n_windows = len(set(ids[keep & (ids >= 0)].tolist()))
    return Prepared(data.name, np.asarray(scores, float)[keep], weights[keep], ids[keep], n_windows)


def raw_score(p: Prepared, threshold: float, profile: Profile) -> float:
    """The file's NAB score for detections ``scores >= threshold``.

    >>> prof = Profile("p", 1.0, 0.5, 1.0)
    >>> d = DataFile("c/f.csv", np.arange(20.0), np.zeros(20), ((10, 13),))
    >>> s = np.zeros(20); s[10] = 1.0  # detected at the window's first point
    >>> raw_score(prepare(d, s, prof), 0.5, prof)
    1.0
    >>> s[5] = 1.0  # plus one false positive before any window
    >>> raw_score(prepare(d, s, prof), 0.5, prof)
    0.5
    """
    hit = p.scores >= threshold
    total = float(p.weights[hit & (p.window_ids == OUTSIDE)].sum())
    for k in set(p.window_ids[p.window_ids >= 0].tolist()):
        inside = hit & (p.window_ids == k)
        total += float(p.weights[inside].max()) if inside.any() else -profile.fn
    return total


def best_threshold(prepared: Sequence[Prepared], profile: Profile) -> tuple[float, float]:
    """Sweep the threshold over every distinct score (high to low) across all files and return
    ``(threshold, summed raw score)`` of the best; ties go to the higher threshold."""
    scores = np.concatenate([p.scores for p in prepared]) if prepared else np.empty(0)
    weights = np.concatenate([p.weights for p in prepared]) if prepared else np.empty(0)
    ids: list[int] = []
    offset = 0
    for p in prepared:
        shifted = p.window_ids.copy()
        shifted[shifted >= 0] += offset
        offset += int(p.window_ids.max(initial=-1)) + 1
        ids.extend(shifted.tolist())
    order = np.argsort(-scores, kind="stable")
    n_windows = len({k for k in ids if k >= 0})
    best_in: dict[int, float] = {}
    fp_sum = 0.0
    tp_sum = 0.0
    best = (math.inf, -profile.fn * n_windows)  # the null detector
    i = 0
    sorted_scores = scores[order]
    while i < len(order):
        threshold = float(sorted_scores[i])
        while i < len(order) and sorted_scores[i] == threshold:
            j = int(order[i])
            k = ids[j]
            w = float(weights[j])
            if k < 0:
                fp_sum += w
            else:
                old = best_in.get(k)
                if old is None:
                    best_in[k] = w
                    tp_sum += w
                elif w > old:
                    best_in[k] = w
                    tp_sum += w - old
            i += 1
        total = fp_sum + tp_sum - profile.fn * (n_windows - len(best_in))
        if total > best[1] + 1e-12:
            best = (threshold, total)
    return best


@dataclass(frozen=True)
class Result:
    """Normalised NAB scores of one profile, overall and per category."""

    profile: str
    threshold: float
    overall: float
    categories: dict[str, float | None]  # None: a category without windows (only FPs can cost)
    raw: dict[str, float]


def normalised(raw: float, n_windows: int, profile: Profile) -> float | None:
    """``100 · (raw − null) / (perfect − null)``; ``None`` without windows.

    >>> normalised(2.0, 2, STANDARD), normalised(-2.0, 2, STANDARD), normalised(0.0, 2, STANDARD)
    (100.0, 0.0, 50.0)
    """
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(files: Sequence[DataFile], scores: Sequence[FloatArray], profile: Profile) -> Result:
    """Choose the profile's threshold over all files, then score each category and the whole."""
    prepared = [prepare(d, s, profile) for d, s in zip(files, scores, strict=True)]
    threshold, _ = best_threshold(prepared, profile)
    raw: dict[str, float] = {}
    windows: dict[str, int] = {}
    for d, p in zip(files, prepared, strict=True):
        raw[d.category] = raw.get(d.category, 0.0) + raw_score(p, threshold, profile)
        windows[d.category] = windows.get(d.category, 0) + p.n_windows
    overall = normalised(sum(raw.values()), sum(windows.values()), profile)
    return Result(
        profile.name, threshold, overall if overall is not None else 0.0,
        {c: normalised(raw[c], windows[c], profile) for c in sorted(raw)}, raw,
    )


# -- the corpus on disk ------------------------------------------------------------------------
def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC).timestamp()


def read_series(path: Path) -> tuple[FloatArray, FloatArray]:
    """A ``timestamp,value`` CSV as (epoch seconds, values)."""
    times: list[float] = []
    values: list[float] = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if row:
                times.append(_epoch(row[0]))
                values.append(float(row[1]))
    return np.array(times), np.array(values)


def load_corpus(root: Path, categories: Iterable[str] | None = None) -> list[DataFile]:
    """NAB's layout: ``data/<category>/*.csv`` and ``labels/combined_windows.json``."""
    labels: dict[str, list[list[str]]] = json.loads((root / "labels" / "combined_windows.json").read_text())
    wanted = set(categories) if categories is not None else None
    files: list[DataFile] = []
    for name in sorted(labels):
        path = root / "data" / name
        if (wanted is not None and name.split("/", 1)[0] not in wanted) or not path.exists():
            continue
        times, values = read_series(path)
        windows = []
        for start, end in labels[name]:
            a = int(np.searchsorted(times, _epoch(start), side="left"))
            b = int(np.searchsorted(times, _epoch(end), side="right")) - 1
            if a <= b:
                windows.append((a, b))
        files.append(DataFile(name, times, values, tuple(windows)))
    return files


def evaluate(
    files: Sequence[DataFile], detect: Callable[[DataFile], FloatArray], profiles: Sequence[Profile],
    progress: Callable[[DataFile], None] | None = None,
) -> list[Result]:
    """Run ``detect`` on every file (calling ``progress`` after each) and score every profile."""
    scores = []
    for d in files:
        scores.append(np.clip(np.asarray(detect(d), float), 0.0, 1.0))
        if progress is not None:
            progress(d)
    return [score_corpus(files, scores, p) for p in profiles]


# -- leave one category out --------------------------------------------------------------------
@dataclass(frozen=True)
class HeldOut:
    """One held-out category: the candidate and threshold chosen on the *other* categories, and
    the held-out category's normalised score with them (``None`` without windows)."""

    category: str
    chosen: str
    threshold: float
    score: float | None
    raw: float


def leave_one_category_out(
    files: Sequence[DataFile], candidates: Mapping[str, Sequence[FloatArray]], profile: Profile,
) -> list[HeldOut]:
    """For each category: pick the candidate (a named configuration's scores of every file)
    with the best overall score on the other categories, take its threshold from them too, and
    score the held-out category with both — nothing about the held-out category is used.

    >>> d = [DataFile(f"{c}/f.csv", np.arange(100.0), np.zeros(100), ((40, 49),)) for c in "ab"]
    >>> good, bad = [np.zeros(100), np.zeros(100)], [np.zeros(100), np.zeros(100)]
    >>> good[0][40] = good[1][40] = 0.9; bad[0][20] = bad[1][20] = 0.9
    >>> [(h.category, h.chosen, h.score) for h in leave_one_category_out(d, {"g": good, "b": bad}, STANDARD)]
    [('a', 'g', 100.0), ('b', 'g', 100.0)]
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    out: list[HeldOut] = []
    for category in sorted({d.category for d in files}):
        train = [i for i, d in enumerate(files) if d.category != category]
        test = [i for i, d in enumerate(files) if d.category == category]

        fits = {name: best_threshold([prepare(files[i], scores[i], profile) for i in train], profile)
                for name, scores in candidates.items()}
        chosen = max(fits, key=lambda name: fits[name][1])  # first best on ties (dicts keep order)
        threshold = fits[chosen][0]
        held = [prepare(files[i], candidates[chosen][i], profile) for i in test]
        raw = sum(raw_score(p, threshold, profile) for p in held)
        out.append(HeldOut(category, chosen, threshold, normalised(raw, sum(p.n_windows for p in held), profile), raw))
    return out
