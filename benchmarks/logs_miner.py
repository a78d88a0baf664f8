"""The template miner's speed against drain3 (same lines, same process) and its peak memory on a long
stream (10 M lines by default), replaying loghub messages with their numbers randomised.

    nice .venv/bin/python benchmarks/logs_miner.py                       # 10 M lines for memory: minutes
    nice .venv/bin/python benchmarks/logs_miner.py --lines 1000000 --speed-lines 100000

Speed: ``--speed-lines`` synthetic messages are made first (not timed), then mined by our miner and by
drain3 (similarity 0.4, depth 4, its example masking — as ``eval loghub``), each from scratch, best of
``--repeat`` runs, interleaved; times are the process's CPU time (``eval loghub`` measures the same
way), so a busy neighbour on a shared machine does not count; the figure that matters is the ratio.

Memory: a child process streams ``--lines`` messages through the miner and reports its peak RSS
(``resource.getrusage``), its RSS before mining (imports, the source lines) and after, next to a run
ten times shorter: bounded memory means the RSS after mining does not grow with the stream.

Synthesis: each message is a loghub message (``Content`` of every ``<System>_2k.log`` under
``--data``, headers parsed with the system's format) whose digit runs are replaced by random digits of
the same length — new values, the same kinds of lines, as a long-running system produces.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from watchkeeper.eval import loghub
from watchkeeper.logs.miner import TemplateMiner

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "logs" / "data" / "loghub"
_DIGITS = re.compile(r"\d+")


def source_lines(data: Path) -> list[str]:
    root = data if loghub.systems_in(data) else FIXTURE
    lines: list[str] = []
    for system in loghub.systems_in(root):
        lines.extend(loghub.load(root, system).contents)
    return lines


def synthesise(lines: list[str], count: int, seed: int = 1) -> Iterator[str]:
    """``count`` messages: random source lines with their digit runs replaced by random digits."""
    rng = random.Random(seed)
    shapes = [_DIGITS.split(line) for line in lines]
    lengths = [[len(m) for m in _DIGITS.findall(line)] for line in lines]
    pool = {n: ["".join(rng.choice("0123456789") for _ in range(n)) for _ in range(997)]
            for n in {n for ls in lengths for n in ls}}
    pick, size = rng.randrange, len(lines)
    for _ in range(count):
        i = pick(size)
        pieces, digits = shapes[i], lengths[i]
        if not digits:
            yield pieces[0]
            continue
        out = [pieces[0]]
        for n, piece in zip(digits, pieces[1:], strict=True):
            out.append(pool[n][pick(997)])
            out.append(piece)
        yield "".join(out)


def rss_kib() -> int:
    """Peak RSS so far (KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_kib() -> int:
    """RSS now (KiB; Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(data: Path, count: int) -> None:
    """Stream ``count`` messages through a miner; print 'rss-before rss-after peak templates' (KiB …)."""
    lines = source_lines(data)
    miner = TemplateMiner()
    miner.add("warm up 1")
    before = current_kib()
    add = miner.add
    for line in synthesise(lines, count, seed=2):
        add(line)
    print(before, current_kib(), rss_kib(), len(miner.templates()))


def measure_rss(data: Path, count: int) -> tuple[int, int, int, int]:
    result = subprocess.run([sys.executable, __file__, "--data", str(data), "--child", str(count)],
                            capture_output=True, text=True, check=True)
    before, after, peak, templates = (int(v) for v in result.stdout.split())
    return before, after, peak, templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="loghub directory (<System>/<System>_2k.log)")
    parser.add_argument("--lines", type=int, default=10_000_000, help="messages streamed for peak RSS")
    parser.add_argument("--speed-lines", type=int, default=200_000, help="messages timed for lines/s")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each parser (best counts)")
    parser.add_argument("--no-memory", action="store_true", help="only the speed comparison")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.data, args.child)
        return
    lines = source_lines(args.data)
    messages = list(synthesise(lines, args.speed_lines))
    print(f"{len(lines):,} source messages; {len(messages):,} synthetic messages timed, best of {args.repeat}")
    ours_runs, theirs_runs = [], []
    for _ in range(args.repeat):  # interleaved, so a burst of load on the shared machine hits both
        ours_runs.append(loghub.run_miner(messages)[2])
        theirs_runs.append(loghub.run_drain3(messages)[2])
    ours, theirs = min(ours_runs), min(theirs_runs)
    print(f"miner   {len(messages) / ours:>12,.0f} lines/s")
    print(f"drain3  {len(messages) / theirs:>12,.0f} lines/s")
    print(f"ratio   {theirs / ours:>12.1f} × drain3 (same lines, same process)")
    if args.no_memory:
        return
    short = max(1, args.lines // 10)
    start = time.perf_counter()
    runs = [(n, *measure_rss(args.data, n)) for n in (short, args.lines)]
    took = time.perf_counter() - start
    for n, before, after, peak, templates in runs:
        print(f"{n:>12,} lines: peak RSS {peak / 1024:6.1f} MiB; RSS before mining {before / 1024:.1f} MiB, "
              f"after {after / 1024:.1f} MiB (+{(after - before) / 1024:.1f} MiB, {templates} templates)")
    (_, _, after_short, peak_short, _), (_, _, after_long, peak_long, _) = runs
    print(f"from {short:,} to {args.lines:,} lines: peak RSS {peak_long / peak_short:.2f}×, "
          f"RSS after mining +{(after_long - after_short) / 1024:.1f} MiB; memory runs took {took:.0f} s")


if __name__ == "__main__":
    main()
