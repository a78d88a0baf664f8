"""`watchkeeper demo` (what `make demo` runs) works end to end over real HTTP."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.demo import storm as demo


def test_demo_run(tmp_path: Path) -> None:
    result = demo.run(tmp_path / "demo.db")
    assert result.audit_ok
    # the frontend's latency is not the signal its failing dependency shows (errors, and the database down):
    # it is an incident of its own that names the cascade as possibly related (docs/correlation.md)
    assert sorted(tuple(i["services"]) for i in result.incidents) == [
        ("batch",), ("frontend",), ("payments-db", "checkout"), ("search",)]
    cascade = next(i for i in result.incidents if len(i["services"]) == 2)
    assert {a["reason"] for a in cascade["alerts"]} == {"new_incident", "same_service", "topology"}
    slow = next(i for i in result.incidents if i["services"] == ["frontend"])
    assert all(f"possibly related: incident {cascade['id']} " in a["reason_detail"] for a in slow["alerts"])
    assert all(i["status"] == "resolved" for i in result.incidents)
    assert result.kpis["mtta"]["mean"] == demo.ACK_AFTER_S
    assert result.kpis["alerts"] == 11 and result.alert_events > 100


def test_demo_command(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["demo", "--storm", "--database", str(tmp_path / "d.db")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "4 incidents" in r.stdout and "hash chain intact" in r.stdout
