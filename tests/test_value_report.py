"""``watchkeeper report``: the executive report from an ITSM export or Watchkeeper's own window,
HTML always, PDF through the real headless Chromium (CI must have it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from conftest import Clock, need
from watchkeeper.cli import app
from watchkeeper.lifecycle import Action
from watchkeeper.service import Watchkeeper

FIXTURES = Path(__file__).parent / "fixtures" / "value"
RUNBOOK = {"id": "restart", "title": "Restart", "risk": "low", "autonomy": "auto",
           "selector": {"alertnames": ["Down"]},
           "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print(1)"]}}]}


@pytest.fixture
def cli(tmp_path: Path, make_service: Any, sqlite_url: str) -> Any:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    wk: Watchkeeper = make_service(sqlite_url, runbooks_dir=directory)
    env = {"WATCHKEEPER_DATABASE_URL": sqlite_url, "WATCHKEEPER_RUNBOOKS_DIR": str(directory), "COLUMNS": "200"}
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    run.wk = wk  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    run("usecases", "apply", str(FIXTURES / "auto-restart.yaml"))
    return run


def test_html_and_json_from_an_itsm_export(cli: Any) -> None:
    out = cli.tmp / "report"
    cli("report", "--out", str(out), "--itsm", str(FIXTURES / "servicenow_sample.csv"), "--no-pdf")
    page = (out / "report.html").read_text()
    for words in ("ROI of the portfolio", "Use case: auto-restart", "Every input and where it came from",
                  "ITSM export: servicenow_sample.csv (3 incidents", "assumption: baseline MTTR -30%",
                  "target of use case auto-restart: MTTR -30%", "Left out: 1 resolved before opened", "<svg"):
        assert words in page, words
    figures = orjson.loads((out / "report.json").read_text())
    assert figures["baseline"]["incidents"] == 3 and figures["roi"]["horizon_months"] == 36
    assert figures["use_cases"][0]["levers"] == "time to resolve"
    assert not (out / "report.pdf").exists()


def test_assumptions_file_and_bad_input(cli: Any) -> None:
    assumptions = cli.tmp / "assumptions.yaml"
    assumptions.write_text("currency: EUR\nhourly_cost: 120\nhorizon_months: 12\n")
    out = cli.tmp / "eur"
    cli("report", "--out", str(out), "--itsm", str(FIXTURES / "incidents.csv"), "--assumptions",
        str(assumptions), "--no-pdf")
    figures = orjson.loads((out / "report.json").read_text())
    assert figures["roi"]["horizon_months"] == 12
    assert {i["name"]: i["value"] for i in figures["roi"]["inputs"]}["hourly_cost"] == 120
    assumptions.write_text("hourly_cost: -5\n")
    assert "assumptions.yaml:1: hourly_cost" in cli("report", "--out", str(out), "--itsm", str(FIXTURES / "incidents.csv"),
                                                    "--assumptions", str(assumptions), code=2).stderr
    assert "a baseline is needed" in cli("report", "--out", str(out), code=2).stderr
    assert "neither a ServiceNow" in cli("report", "--out", str(out), "--itsm",
                                         str(FIXTURES / "auto-restart.yaml"), code=2).stderr


def test_a_baseline_window_of_watchkeepers_own_incidents(cli: Any, clock: Clock) -> None:
    wk: Watchkeeper = cli.wk
    body = orjson.dumps({"service": "web", "name": "Down", "summary": "down"})
    incident = wk.ingest("events", body, "application/json", "test").incidents[0]
    clock.advance(minutes=40)
    wk.act(incident, Action.RESOLVE, "test")
    out = cli.tmp / "own"
    cli("report", "--out", str(out), "--baseline-from", "2026-11-22T00:00:00Z", "--baseline-to",
        "2026-11-23T00:00:00Z", "--no-pdf")
    figures = orjson.loads((out / "report.json").read_text())
    assert figures["baseline"]["median_mttr_minutes"] == 40.0
    empty = cli("report", "--out", str(out), "--baseline-from", "2020-01-01T00:00:00Z", "--baseline-to",
                "2020-02-01T00:00:00Z", code=2)
    assert "holds no incident opened between" in empty.stderr


def test_the_pdf_is_printed_by_chromium(cli: Any) -> None:
    need(shutil.which("chromium") is not None, "Chromium is not installed (apt-get install chromium)")
    out = cli.tmp / "pdf"
    cli("report", "--out", str(out), "--itsm", str(FIXTURES / "servicenow_sample.csv"))
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 3
