"""What one durable append costs on this disk: the intake journal's commit (``storage/journal.py``: SQLite,
WAL, ``synchronous=FULL``) against a hand-written log (``pwrite`` into a pre-zeroed file, then ``fdatasync``),
and how many commits per second 1, 2 and 3 journals take when they commit at the same time from threads of
their own. Figures are ratios to the one SQLite journal of the same run (docs/scaling.md, "Where a small body's
time goes").

    .venv/bin/python benchmarks/journal_fsync.py [--seconds 3] [--bytes 12000] [--dir DIR]

``--dir`` should be on the disk the journal would use (default: a temporary directory under /tmp).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from watchkeeper.storage.journal import Entry, Journal

print = functools.partial(print, flush=True)


def journal_commits(path: Path, body: bytes, seconds: float, out: list[float]) -> None:
    """Append one body per commit to a fresh journal for ``seconds``; each commit's duration into ``out``."""
    journal = Journal(path)
    entry = Entry(datetime.now(UTC), "prometheus", "token:bench", 10, body)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            began = time.perf_counter()
            journal.append([entry])
            out.append(time.perf_counter() - began)
    finally:
        journal.close()


def raw_commits(path: Path, body: bytes, seconds: float, out: list[float]) -> None:
    """The same with ``pwrite`` + ``fdatasync`` into a file zeroed and synced beforehand (no block allocation
    and no metadata change at commit time: the cheapest durable append a home-made log could do)."""
    size = max(64 << 20, int(len(body) * seconds * 20_000))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk)):
            os.write(fd, chunk)
        os.fsync(fd)
        offset, end = 0, time.monotonic() + seconds
        while time.monotonic() < end and offset + len(body) <= size:
            began = time.perf_counter()
            os.pwrite(fd, body, offset)
            os.fdatasync(fd)
            out.append(time.perf_counter() - began)
            offset += len(body)
    finally:
        os.close(fd)


def summary(label: str, took: list[float], seconds: float, base: float | None) -> float:
    mean = statistics.mean(took)
    ratio = f"{mean / base:5.2f}x" if base else "1.00x"
    print(f"{label:<42} {len(took) / seconds:>9,.0f} {mean * 1000:>8.3f} {statistics.median(took) * 1000:>8.3f} "
          f"{sorted(took)[int(len(took) * 0.99)] * 1000:>8.3f} {ratio:>7}")
    return mean


def run(args: argparse.Namespace) -> int:
    body = os.urandom(args.bytes)
    with tempfile.TemporaryDirectory(prefix="wk-fsync-", dir=args.dir) as tmp:
        work = Path(tmp)
        print(f"{args.bytes:,}-byte bodies, one per commit, {args.seconds:g} s each, in {work}")
        print(f"{'':<42} {'commits/s':>9} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean':>7}")
        took: list[float] = []
        journal_commits(work / "one-intake", body, args.seconds, took)
        base = summary("the journal (SQLite WAL, synchronous=FULL)", took, args.seconds, None)
        took = []
        raw_commits(work / "raw.log", body, args.seconds, took)
        summary("pwrite + fdatasync, pre-zeroed file", took, args.seconds, base)
        one = 0.0
        for lanes in (1, 2, 3):
            each: list[list[float]] = [[] for _ in range(lanes)]
            threads = [threading.Thread(target=journal_commits, args=(work / f"lane{lanes}-{k}-intake", body,
                                                                      args.seconds, each[k])) for k in range(lanes)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rate = sum(len(t) for t in each) / args.seconds
            one = one or rate
            print(f"{lanes} journal(s) committing at once: {rate:>9,.0f} commits/s in all, {rate / one:.2f}x one; "
                  f"a commit {statistics.mean([x for t in each for x in t]) * 1000:.3f} ms")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument(
        "--bytes", type=int, default=12_000, help="bytes per commit (default 12,000: 4 bodies of 10 alerts)",
    )
    parser.add_argument("--dir", default=None, help="where to write (default: the temporary directory)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(run(parse_args(None)))
