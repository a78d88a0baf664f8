"""Process-wide settings of the long-running processes (``runtime.py``)."""

from __future__ import annotations

import gc
import subprocess
import sys

from watchkeeper.runtime import GC_THRESHOLD, tune_gc


def test_tune_gc_sets_the_collector_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLD
        assert GC_THRESHOLD[0] > 700 and GC_THRESHOLD[1:] == (10, 10)  # the young generation less often; the rest as Python's
    finally:
        gc.set_threshold(*before)


def test_the_drainer_process_tunes_its_collector_before_its_work() -> None:
    """``python -m watchkeeper.service.drainer``'s ``main`` calls ``tune_gc`` before it reads its orders
    (nothing on stdin here: it stops there, with the thresholds already set)."""
    code = ("import gc, sys\n"
            "from watchkeeper.service import drainer\n"
            "try:\n    drainer.main(['0'])\nexcept EOFError:\n    pass\n"
            "print(gc.get_threshold())")
    out = subprocess.run([sys.executable, "-c", code], input=b"", capture_output=True, timeout=60, check=True)
    assert out.stdout.decode().strip() == str(GC_THRESHOLD)
