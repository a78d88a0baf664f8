"""Memory (issue 19): the API's and the intake drainer's modules import the heavy libraries only where
they are used (docs/scaling.md, "Memory"). Each check runs in a fresh interpreter: this test
session has imported everything already."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Imported by the code that needs them (migrations, the ranker, the watch runner, a forecast, an
#: HTTP runbook step), never by importing the app or the drainer's module.
HEAVY = ("networkx", "numpy", "scipy", "alembic", "httpx", "sqlalchemy.orm", "watchkeeper.rca", "watchkeeper.ranking",
         "watchkeeper.watch.runner")


@pytest.mark.parametrize("module", ["watchkeeper.server.app", "watchkeeper.service.intake", "watchkeeper.service.drainer"])
def test_importing_leaves_the_heavy_libraries_out(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == []
