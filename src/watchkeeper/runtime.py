"""Process-wide settings of Watchkeeper's long-running processes: ``serve``, ``worker`` and the intake
drainer (``python -m watchkeeper.service.drainer``)."""

from __future__ import annotations

import gc

#: Python's cyclic garbage collector passes over its youngest generation every 700 net container
#: allocations by default. The pipeline allocates and frees containers by the hundred per alert (a decoded
#: body, its events, their rows), almost none of them in cycles: most of those passes find nothing. Every
#: 10,000 instead (the older generations' ratios unchanged): the intake drainer takes 6–15 % more alerts/s
#: (``benchmarks/intake_drain.py``); what waits for a pass is at most that many young containers.
GC_THRESHOLD = (10_000, 10, 10)


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLD` for this process (its entry point calls it once, before the work)."""
    gc.set_threshold(*GC_THRESHOLD)


__all__ = ["GC_THRESHOLD", "tune_gc"]
