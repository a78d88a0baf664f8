"""The import contracts cover the whole core and the edges stay at the edges."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    # the first contract of each type: the pure core (forbidden) and the layers
    found: dict[str, dict[str, object]] = {}
    for contract in config["contracts"]:
        found.setdefault(contract["type"], contract)
    return found


def test_the_pure_core_covers_every_stage_and_forbids_io_and_ui() -> None:
    pure = _contracts()["forbidden"]
    for package in ("policy", "suppress", "lifecycle", "detect", "rca", "topology", "correlate", "pipeline"):
        assert f"watchkeeper.{package}" in pure["source_modules"], package
    for edge in ("httpx", "typer", "rich", "matplotlib", "watchkeeper.service", "watchkeeper.governance",
                 "watchkeeper.lab", "sqlalchemy", "fastapi"):
        assert edge in pure["forbidden_modules"], edge


def test_the_layers_put_the_edges_above_the_service_and_storage_below() -> None:
    layers = _contracts()["layers"]["layers"]
    assert layers.index("cli") < layers.index("server") < layers.index("service") < layers.index("storage")
    assert layers.index("governance") < layers.index("storage") < layers.index("execute")


def test_no_io_is_left_in_detect() -> None:
    detect = ROOT / "src" / "watchkeeper" / "detect"
    for path in detect.glob("*.py"):
        text = path.read_text()
        for edge in ("import httpx", "import typer", "from rich", "import matplotlib"):
            assert edge not in text, f"{path.name} imports {edge.split()[-1]}"


def test_the_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a dev dependency: run make setup"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_the_test_client_finds_the_http_client_it_wants() -> None:
    """httpx2 is a dev dependency only because starlette's TestClient imports it (and warns, an
    error here, when it must fall back to httpx): this fails if it is dropped from the lock."""
    import importlib
    import warnings

    import starlette.testclient

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(starlette.testclient)


def test_correlation_and_the_pipeline_do_not_import_each_other() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert any(c["type"] == "forbidden" and c["source_modules"] == ["watchkeeper.correlate"]
               and "watchkeeper.pipeline" in c["forbidden_modules"] for c in contracts)
