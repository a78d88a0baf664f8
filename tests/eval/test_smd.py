"""SMD/ASD: plain and point-adjusted F1 on hand-checked cases and a tiny fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.eval import smd
from watchkeeper.eval.smd import Counts


@pytest.mark.parametrize(
    ("scores", "labels", "adjust", "expected"),
    [
        ([0, 1, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0], False, Counts(1, 0, 2)),
        ([0, 1, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0], True, Counts(3, 0, 0)),  # one hit detects the segment
        ([0, 0, 0, 0, 1, 0], [0, 1, 1, 1, 0, 0], True, Counts(0, 1, 3)),
        ([1, 0, 0, 1, 0, 1], [1, 1, 0, 1, 1, 0], True, Counts(4, 1, 0)),  # two segments
        ([0, 0], [0, 0], True, Counts(0, 0, 0)),
    ],
)
def test_counts(scores: list[float], labels: list[int], adjust: bool, expected: Counts) -> None:
    assert smd.counts(np.array(scores, float), np.array(labels), 0.5, adjust=adjust) == expected


@pytest.mark.parametrize(
    ("c", "f1"), [(Counts(1, 0, 2), 0.5), (Counts(0, 0, 3), 0.0), (Counts(3, 1, 0), 6 / 7)]
)
def test_f1(c: Counts, f1: float) -> None:
    assert c.f1 == pytest.approx(f1)


def make_set(root: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    train = rng.normal(0.5, 0.05, (300, 4))
    test = rng.normal(0.5, 0.05, (200, 4))
    labels = np.zeros(200)
    test[120:130, 2] += 0.6  # one metric breaks
    labels[120:130] = 1
    np.save(root / f"{name}_train.npy", train.astype(np.float32))
    np.save(root / f"{name}_test.npy", test.astype(np.float32))
    np.save(root / f"{name}_test_label.npy", labels)


def test_evaluate_tiny_sets(tmp_path: Path) -> None:
    make_set(tmp_path / "smd", "machine-1-1", 1)
    make_set(tmp_path / "asd", "omi-1", 2)
    (tmp_path / "asd" / "omi-2_test.npy").write_bytes(b"")  # incomplete entity: ignored
    entities = smd.load(tmp_path)
    assert [e.name for e in entities] == ["asd/omi-1", "smd/machine-1-1"]
    reports = smd.evaluate(entities, MaxZ, 0.8)
    assert [r.group for r in reports] == ["asd", "smd"]
    for r in reports:
        assert r.best_adjusted[1].f1 == 1.0
        assert r.fixed[2].f1 == 1.0  # the broken metric is far beyond 0.8
        assert r.best_plain[1].f1 >= r.fixed[1].f1
