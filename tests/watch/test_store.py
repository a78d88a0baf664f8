"""The ``detector_state`` table on SQLite and PostgreSQL: batched saves, replacements, drops, and
series whose label sets are longer than the key column."""

from __future__ import annotations

from watchkeeper.service import Watchkeeper
from watchkeeper.storage.watch import MAX_KEY, DetectorStateStore
from watchkeeper.watch.config import Watch
from watchkeeper.watch.engine import WatchEngine


def test_save_replace_drop_and_load(service: Watchkeeper) -> None:
    store = DetectorStateStore(service.db, service.clock)
    many = {f"w{{i=\"{i}\"}}": {"n": i} for i in range(1_200)}  # more than one batch
    store.save("w", many)
    store.save("other", {"other{}": {"n": -1}})
    assert store.load("w") == many
    store.save("w", {'w{i="0"}': {"n": 42}}, dropped=['w{i="1"}'])
    loaded = store.load("w")
    assert loaded['w{i="0"}'] == {"n": 42} and 'w{i="1"}' not in loaded and len(loaded) == 1_199
    assert store.load("other") == {"other{}": {"n": -1}}
    store.save("w", {}, [])  # nothing to do


def test_series_with_very_long_label_sets_round_trip(service: Watchkeeper) -> None:
    watch = Watch(name="latency", query="q", detector="robust", options={"window": 8, "warmup": 3, "season": "none"})
    labels = {"service": "api", **{f"label_{i:03d}": "v" * 20 for i in range(60)}}
    engine = WatchEngine(watch)
    for i in range(10):
        engine.evaluate([(labels, float(i), 1.0 + 0.01 * (i % 2))])
    [key] = engine.keys
    assert len(key) > MAX_KEY
    store = DetectorStateStore(service.db, service.clock)
    store.save("latency", *engine.dump(changed_only=False))
    again = WatchEngine(watch)
    assert again.load(store.load("latency")) == [] and again.keys == [key]
    assert again.dump(changed_only=False) == engine.dump(changed_only=False)
