"""House-keeping (issue 12, item 24): the shape of the code, checked so it does not drift back.

The CLI is a package with one module per command group (each owning the ``typer.Typer`` registered
under its name), and no CLI module grows past about 400 lines again."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import typer

#: Command groups of the root CLI that live in a module of their own (``watchkeeper.cli.<module>``).
GROUPS = {
    "db": "db",
    "token": "token",
    "incidents": "incidents",
    "audit": "audit",
    "deadletter": "deadletter",
    "runbooks": "runbooks",
    "approvals": "approvals",
    "silences": "silences",
    "correlation": "correlation",
    "rca": "rca",
}
MAX_LINES = 400


def test_cli_is_a_package() -> None:
    import watchkeeper.cli

    assert hasattr(watchkeeper.cli, "__path__"), "watchkeeper.cli should be a package, not one module"
    assert importlib.util.find_spec("watchkeeper.cli.__main__") is not None  # python -m watchkeeper.cli
    assert importlib.util.find_spec("watchkeeper.cli.common") is not None
    assert isinstance(watchkeeper.cli.app, typer.Typer)


@pytest.mark.parametrize(("group", "module"), sorted(GROUPS.items()))
def test_every_command_group_has_its_module(group: str, module: str) -> None:
    from watchkeeper.cli import app

    registered = {info.name: info.typer_instance for info in app.registered_groups}
    owner = importlib.import_module(f"watchkeeper.cli.{module}")
    assert registered[group] is owner.app, f"'{group}' should be the app of watchkeeper.cli.{module}"
    assert owner.app.registered_commands, f"watchkeeper.cli.{module} holds no command"


def test_top_level_commands_live_in_their_module() -> None:
    from watchkeeper.cli import app, toplevel

    names = {info.callback.__name__ for info in app.registered_commands if info.callback is not None}
    assert {"serve", "replay", "kpi", "demo"} <= names
    assert {info.callback for info in toplevel.app.registered_commands} <= {
        info.callback for info in app.registered_commands}


def test_no_cli_module_is_over_400_lines() -> None:
    import watchkeeper.cli

    package = Path(watchkeeper.cli.__file__).parent
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in package.glob("*.py")}
    assert len(sizes) > len(GROUPS)
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_python_dash_m_runs_the_cli() -> None:
    """The demo starts serve as ``python -m watchkeeper.cli``: the package must keep answering it."""
    done = subprocess.run([sys.executable, "-m", "watchkeeper.cli", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert "incidents" in done.stdout
