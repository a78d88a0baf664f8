"""``watchkeeper worker`` and ``watchkeeper bus`` say what is missing in one sentence (exit 2)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bus.natsd import NatsServer
from watchkeeper.cli import app


def invoke(args: list[str], env: dict[str, str | None]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_worker_without_a_bus_says_how_to_set_one(tmp_path: Path) -> None:
    code, out = invoke(["worker"], {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}",
                                    "WATCHKEEPER_BUS_URL": None})
    assert code == 2 and "the worker needs a bus" in " ".join(out.split())


def test_bus_status_before_init_says_to_run_it(tmp_path: Path, nats_server: NatsServer) -> None:
    env: dict[str, str | None] = {"WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'wk.db'}", "WATCHKEEPER_BUS_URL": nats_server.url}
    code, out = invoke(["bus", "status"], env)
    assert code == 2 and "watchkeeper bus init" in out
    code, out = invoke(["bus", "init"], env)
    assert code == 0 and "stream WATCHKEEPER created: 8 partitions" in out
    code, out = invoke(["bus", "status"], env)
    assert code == 0 and "0 messages not yet acknowledged" in " ".join(out.split())
