"""`watchkeeper demo` on the real lab, its real Prometheus and Alertmanager, and `watchkeeper serve` as
its own process: a fault is detected, ranked, repaired by a governed runbook and resolved — all by the
server — and the demo, reading the server's API, reports it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.correlate.config import load_config
from watchkeeper.demo import runner, view
from watchkeeper.demo.closed_loop import Observer, Outcome, parse_faults
from watchkeeper.lab.serve_config import correlation_yaml

TOPOLOGY = {"services": ["web", "api", "db"], "edges": [["web", "api"], ["api", "db"]]}


def test_parse_faults_defaults_and_errors() -> None:
    assert parse_faults("crash:api,hang", ["web", "api", "payment"], ["crash", "hang"]) == [
        ("crash", "api"), ("hang", "payment")]
    with pytest.raises(ValueError, match="unknown fault 'melt'; known: crash, hang"):
        parse_faults("melt:api", ["api"], ["crash", "hang"])
    with pytest.raises(ValueError, match="unknown service 'nope'"):
        parse_faults("crash:nope", ["api"], ["crash"])
    with pytest.raises(ValueError, match="no faults given"):
        parse_faults(" , ", ["api"], ["crash"])


def test_correlation_config_follows_the_topology(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(correlation_yaml(TOPOLOGY))
    config = load_config(path)
    assert [s.type for s in config.strategies] == ["labels", "topology"]
    assert config.strategies[1].graph == {"api": ["db"], "web": ["api"]}  # type: ignore[union-attr]
    assert config.flapping is not None and config.flapping.window == 60.0


def test_demo_rejects_an_unknown_fault_with_exit_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["demo", "--headless", "--dir", str(tmp_path / "d"), "--faults", "melt"])
    assert r.exit_code == 2
    assert "unknown fault 'melt'" in r.stdout
    assert not (tmp_path / "d").exists()


def _need_prometheus() -> None:
    from conftest import need
    from watchkeeper.lab import prometheus

    need(prometheus.installed(), "prometheus is not installed (apt-get install prometheus prometheus-alertmanager)")


def test_a_fault_goes_round_the_whole_loop(tmp_path: Path) -> None:
    _need_prometheus()
    timing = runner.Timing(interval=2.0, warmup=14.0, timeout=90.0, settle=2.0)
    screen = Console(file=io.StringIO(), width=160, color_system=None)
    phases: list[str] = []

    def show(phase: str, obs: Observer | None, outcomes: list[Outcome], _current: Outcome | None) -> None:
        phases.append(phase)
        screen.print(view.render(phase, obs, outcomes, "approve {id}"))  # what the live view draws

    result = runner.run(tmp_path / "demo", [("error_burst", "catalog")], approve_after=0.0, timing=timing,
                        record=tmp_path / "campaign", show=show)
    [o] = result.outcomes
    assert o.detected and o.detected_after_s is not None and o.detected_after_s < 30
    assert o.top_cause == "catalog" and o.cause_correct
    assert o.action is not None and o.action.endswith("succeeded"), o
    assert o.resolved and o.mttr_s is not None and o.mttr_s > 0
    assert o.ended_by == "restart" and o.ended_after_s is not None and o.mttr_s >= o.ended_after_s  # ground truth
    assert result.audit_ok
    assert phases[0].startswith("starting the lab") and "error_burst on catalog" in phases
    assert result.prometheus and result.config.name == "watchkeeper.yaml"
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "GET /api/v1/incidents" in drawn and "catalog" in drawn
    screen.print(view.summary_table(result.outcomes, result.totals()))
    assert "1/1 detected" in screen.file.getvalue()  # type: ignore[attr-defined]
    line = json.loads(result.as_json())
    assert line["totals"]["faults"] == 1 and line["totals"]["resolved"] == 1
    assert set(line["faults"][0]) >= {"fault", "target", "detected", "detected_after_s", "top_cause",
                                      "cause_correct", "action", "resolved", "mttr_s"}
    # the recorded campaign has what `eval rca --format lab` reads
    assert (tmp_path / "campaign" / "faults.jsonl").exists()
    assert (tmp_path / "campaign" / "metrics" / "catalog.csv").exists()
    r = CliRunner().invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "campaign"), "--json", "--no-loo"])
    assert r.exit_code == 0, r.stdout


def test_manual_mode_runs_no_runbook_and_measures_a_person_fixing_it(tmp_path: Path) -> None:
    """The human baseline: nothing is automated, the phase does not give the fault away, and the MTTR
    is that of whoever fixes it with `watchkeeper lab …` (here the test, acting on the top cause)."""
    _need_prometheus()
    timing = runner.Timing(interval=2.0, warmup=14.0, timeout=90.0, settle=2.0)
    phases: list[str] = []
    fixed: list[str] = []
    screen = Console(file=io.StringIO(), width=160, color_system=None)

    def person(phase: str, obs: Observer | None, outcomes: list[Outcome], current: Outcome | None) -> None:
        phases.append(phase)
        screen.print(view.render(phase, obs, outcomes, "fix it", blind=True))
        if obs is None or current is None or fixed:
            return
        for incident in obs.api.incidents(limit=5):
            causes = obs.api.incident(incident["id"])["causes"]
            if incident["status"] != "resolved" and causes:
                service = causes[0]["component"]
                r = CliRunner().invoke(app, ["lab", "restart", service, "--dir", str(tmp_path / "demo" / "lab")])
                assert r.exit_code == 0, r.stdout
                fixed.append(service)
                return

    result = runner.run(tmp_path / "demo", [("crash", "catalog")], timing=timing, show=person, manual=True)
    [o] = result.outcomes
    assert fixed == ["catalog"]
    assert o.detected and o.action is None and o.mode is None  # no runbook was even considered
    assert o.resolved and o.mttr_s is not None and o.ended_by == "restart"
    assert "fault 1 of 1 injected" in phases and not any("crash" in p for p in phases)
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "? " in drawn  # the open fault's kind and target are hidden in the live view
    assert result.totals()["mode"] == "manual"


def test_manual_mode_refuses_approval_options(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["demo", "--manual", "--auto-approve", "--dir", str(tmp_path / "d")])
    assert r.exit_code == 2
    assert "nothing to approve" in r.stdout
