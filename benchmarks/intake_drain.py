"""The intake drainer alone: how fast the journal becomes incidents, in process, on SQLite.

Fills an intake journal (``storage/journal.py``) with ``--alerts`` alerts in bodies of ``--size``
alerts (distinct alerts cycled, as in ``intake_vs_alertmanager.py``: after the first pass every alert
is a repeat, as in a real storm), then times ``IntakeStage.drain_once`` until the journal is empty:
normalize, dedup, correlate, commit with the audit records, drop. Prints alerts/s (wall and per
CPU-second of this process) and, as the baseline of the same run, ``orjson.loads`` of the same
bodies (the least any drainer must do). Each size is drained twice, with Python's default garbage
collector thresholds and then with ``runtime.tune_gc``'s (what ``serve``'s drainer, ``serve`` and
``worker`` set), and the ratio printed. It asserts nothing about time.

    .venv/bin/python benchmarks/intake_drain.py                      # 200,000 alerts, 10 and 100 per body
    .venv/bin/python benchmarks/intake_drain.py --alerts 50000 --sizes 10
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from intake_vs_alertmanager import alerts  # benchmarks/ is on sys.path when this script runs
from watchkeeper.runtime import GC_THRESHOLD, tune_gc
from watchkeeper.service import Watchkeeper
from watchkeeper.service.intake import IntakeStage
from watchkeeper.settings import Settings
from watchkeeper.storage.journal import Entry, Journal


def fill(path: Path, bodies: list[bytes], size: int, total: int) -> None:
    journal = Journal(path)
    try:
        now = datetime.now(UTC)
        batch: list[Entry] = []
        for k in range(total // size):
            batch.append(Entry(now, "prometheus", "token:bench", size, bodies[k % len(bodies)]))
            if len(batch) == 500:
                journal.append(batch)
                batch = []
        if batch:
            journal.append(batch)
    finally:
        journal.close()


def run_size(size: int, args: argparse.Namespace, gc_label: str) -> float:
    items = alerts(args.distinct, uuid.uuid4().hex[:8])
    bodies = [orjson.dumps(items[k : k + size]) for k in range(0, len(items), size)]
    n_bodies = args.alerts // size
    started = time.process_time()
    for k in range(n_bodies):
        orjson.loads(bodies[k % len(bodies)])
    decode_cpu = time.process_time() - started
    with tempfile.TemporaryDirectory(prefix="wk-drain-") as tmp:
        db = Path(tmp) / "watchkeeper.db"
        service = Watchkeeper(Settings(database_url=f"sqlite:///{db}"), metrics=False)
        service.upgrade()
        path = db.with_name(db.name + "-intake")
        fill(path, bodies, size, args.alerts)
        stage = IntakeStage(service, path)
        stage.open()
        wall, cpu = time.perf_counter(), time.process_time()
        while stage.drain_once():
            pass
        done = stage.processed
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert stage.journal is not None
        left = stage.journal.bodies
        stage.journal.close()
        service.db.dispose()
    print(
        f"{size:>5} {gc_label:>8} {done:>9,} {done / wall:>12,.0f} {done / cpu:>12,.0f} "
        f"{n_bodies * size / decode_cpu:>14,.0f} {cpu / decode_cpu:>9.1f}x   left {left}"
    )
    return done / wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=200_000, help="alerts in the journal (default 200,000)")
    parser.add_argument("--distinct", type=int, default=10_000, help="distinct alerts cycled (default 10,000)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100])
    args = parser.parse_args(argv)
    print(f"{'body':>5} {'gc':>8} {'alerts':>9} {'alerts/s':>12} {'per CPU-s':>12} {'orjson.loads/s':>14} "
          f"{'vs loads':>10}")
    default = gc.get_threshold()
    for size in args.sizes:
        gc.set_threshold(*default)
        before = run_size(size, args, "default")
        tune_gc()
        after = run_size(size, args, "tuned")
        print(f"{'':>5} tuned / default: {after / before:.2f}x alerts/s (thresholds {default} -> {GC_THRESHOLD})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
