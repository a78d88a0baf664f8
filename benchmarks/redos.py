"""Time a catastrophic-backtracking matcher (``=~"(a+)+$"``) against crafted labels of growing
length, on RE2 (what silences and inhibit rules use) and, for short labels, on Python's ``re``
for comparison. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/redos.py
"""

from __future__ import annotations

import re
import time

from watchkeeper.suppress import parse_matcher

PATTERN = "(a+)+$"


def seconds(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    matcher = parse_matcher(f'instance=~"{PATTERN}"')
    print(f"{'label length':>12}  {'RE2 (s)':>10}  {'Python re (s)':>14}")
    for n in (16, 20, 22, 24, 1_000, 100_000, 1_000_000):
        labels = {"instance": "a" * n + "!"}
        fast = seconds(lambda labels=labels: matcher.matches(labels))
        slow = (f"{seconds(lambda n=n: re.fullmatch(PATTERN, 'a' * n + '!'), repeat=1):14.4f}"
                if n <= 24 else f"{'(not run)':>14}")
        print(f"{n:>12}  {fast:10.6f}  {slow}")


if __name__ == "__main__":
    main()
