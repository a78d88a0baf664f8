"""Detector state survives a restart: JSON files, identical scores after reloading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.detect.base import Detector
from watchkeeper.detect.changepoint import Cusum
from watchkeeper.detect.default import DEFAULT, make
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.detect.store import FileStore, restore


def test_restart_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    t = np.arange(3000) * 300.0
    x = 20 + 5 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 0.5, 3000)
    x[2500] += 30
    straight = RobustSeasonal()
    expected = []
    for ti, xi in zip(t, x, strict=True):
        expected.append(straight.score_one(xi, ti))
        straight.learn_one(xi, ti)

    got = []
    for chunk in np.array_split(np.arange(3000), 4):  # three restarts
        store = FileStore(tmp_path / "state")
        det = store.load("cpu{host=a}") or RobustSeasonal()
        for i in chunk:
            got.append(det.score_one(x[i], t[i]))
            det.learn_one(x[i], t[i])
        store.save("cpu{host=a}", det)
    assert got == expected
    assert straight.season_lag == 288


def test_files_are_plain_json_per_key(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save("a", Cusum())
    store.save("b", RobustSeasonal(window=8))
    store.save("a", Cusum(warmup=7))  # overwrite
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2 and not list(tmp_path.glob(".tmp-*"))
    bodies = [json.loads(f.read_text()) for f in files]
    assert {b["key"] for b in bodies} == {"a", "b"}
    assert sorted(store.keys()) == ["a", "b"]
    assert repr(store.load("a")) == "Cusum(warmup=7, drift=1.0, threshold=10.0)"


def test_a_file_for_another_key_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save("a", Cusum())
    store.path("a").rename(store.path("b"))
    with pytest.raises(ValueError, match="holds the state of 'a'"):
        store.load("b")


def test_missing_store_is_empty(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "nope")
    assert store.load("x") is None
    assert list(store.keys()) == []


def test_state_saved_by_likelihood_v1_loads_into_the_shipped_default() -> None:
    """v2 ships v1's detector with another threshold: v1's saved state must resume exactly, and
    with the default's parameters (the watch engine drops state whose parameters differ)."""
    body = json.loads((Path(__file__).parent / "data" / "likelihood_v1_state.json").read_text())
    detector = restore(body["detector"])
    assert isinstance(detector, Detector) and type(detector) is type(DEFAULT.build())
    assert detector.params() == make("default").params()
    for value, score in body["next_scores"].items():
        assert detector.score_one(float(value), 18_000.0) == score
