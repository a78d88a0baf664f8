"""``watchkeeper usecases`` and ``gates``: apply a file (errors as file:line), no pilot without
owners and criteria, four-eyes on promotion, frozen criteria."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from watchkeeper.cli import app, unix_user
from watchkeeper.service import Role, Watchkeeper

FIXTURE = Path(__file__).parent / "fixtures" / "value" / "auto-restart.yaml"
RUNBOOK = {
    "id": "restart", "title": "Restart", "risk": "low", "autonomy": "auto", "selector": {"alertnames": ["Down"]},
    "steps": [{"name": "go", "command": {"argv": [sys.executable, "-c", "print(1)"]}}],
}


@pytest.fixture
def cli(tmp_path: Path, make_service: Any, sqlite_url: str) -> Any:
    directory = tmp_path / "runbooks"
    directory.mkdir()
    (directory / "restart.yaml").write_text(yaml.safe_dump(RUNBOOK))
    wk: Watchkeeper = make_service(sqlite_url, runbooks_dir=directory)
    (tmp_path / "wk.yaml").write_text(f"cli_users: {{{unix_user()}: ops}}\n")
    env = {"WATCHKEEPER_DATABASE_URL": sqlite_url, "WATCHKEEPER_RUNBOOKS_DIR": str(directory), "COLUMNS": "200",
           "WATCHKEEPER_CONFIG": str(tmp_path / "wk.yaml")}
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    run.wk = wk  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    return run


def test_apply_list_show_propose_approve(cli: Any) -> None:
    applied = cli("usecases", "apply", str(FIXTURE))
    assert "use case auto-restart: version 1, stage proposed" in applied.stdout
    assert "auto-restart" in cli("usecases", "list").stdout
    shown = orjson.loads(cli("usecases", "show", "auto-restart").stdout)
    assert shown["runbooks"] == [{"id": "restart", "declared": "auto", "effective": "shadow",
                                  "use_cases": {"auto-restart": "proposed"}}]
    assert "shadow (file: auto)" in cli("runbooks", "list").stdout  # its use case is only proposed
    proposed = cli("usecases", "propose", "auto-restart").stdout
    assert "gate proposal 1: auto-restart proposed → pilot" in proposed
    assert "four-eyes" in cli("gates", "approve", "1", code=2).stderr  # the same person proposed it
    other = cli.wk.create_token(Role.APPROVER, "carol", "test")
    viewer = cli.wk.create_token(Role.VIEWER, "vic", "test")
    assert "role approver or admin" in cli("gates", "approve", "1", "--token", viewer, code=2).stderr
    assert "gate proposal 1: approved" in cli("gates", "approve", "1", "--token", other).stdout
    assert "pilot" in cli("gates", "list", "--status", "all").stdout
    evaluated = cli("gates", "evaluate").stdout
    assert "auto-restart: pilot → hold pilot (insufficient_evidence" in evaluated
    assert "95 % agreement" in evaluated
    as_json = orjson.loads(cli("gates", "evaluate", "auto-restart", "--json").stdout)
    assert as_json[0]["criteria"][0]["result"] == "unknown"


def test_frozen_criteria_need_a_new_version(cli: Any) -> None:
    cli("usecases", "apply", str(FIXTURE))
    cli("usecases", "propose", "auto-restart")
    cli("gates", "approve", "1", "--token", cli.wk.create_token(Role.APPROVER, "carol", "test"))
    looser = cli.tmp / "looser.yaml"
    looser.write_text(FIXTURE.read_text().replace("target: 0.95", "target: 0.8"))
    refused = cli("usecases", "apply", str(looser), code=2).stderr
    assert "frozen since the pilot started" in " ".join(refused.split())
    done = cli("usecases", "apply", str(looser), "--new-version", "--reason", "too strict for a weekly job")
    assert "version 2, stage pilot" in done.stdout


def test_no_pilot_without_owners(cli: Any) -> None:
    bare = cli.tmp / "bare.yaml"
    bare.write_text("id: noise\ntitle: Alert noise reduction\n")
    assert "note: before its pilot: owners missing" in cli("usecases", "apply", str(bare)).stderr
    refused = " ".join(cli("usecases", "propose", "noise", code=2).stderr.split())
    assert "cannot leave proposed: a pilot needs owners and success criteria" in refused


@pytest.mark.parametrize(("text", "words"), [
    ("id: x\ntitle: X\nsuccess_criteria:\n  - {kpi: happiness, op: '>=', target: 1}\n", ":4: success_criteria.0.kpi"),
    ("id: x\ntitle: [unclosed\n", "invalid YAML"),
    ("- a list\n", ":1: a use case is a mapping"),
    ("id: x\ntitle: X\nrunbooks: [nope]\n", "runbooks that do not exist: nope"),
])
def test_bad_files_are_exit_2_with_file_and_line(cli: Any, text: str, words: str) -> None:
    path = cli.tmp / "bad.yaml"
    path.write_text(text)
    assert words in cli("usecases", "apply", str(path), code=2).stderr


def test_unknown_ids_and_statuses(cli: Any) -> None:
    assert "no use case 'nope'" in cli("usecases", "show", "nope", code=2).stderr
    assert "--status 'bogus'" in cli("gates", "list", "--status", "bogus", code=2).stderr
    assert "no gate proposal 9" in cli("gates", "reject", "9", code=2).stderr


def test_rank(cli: Any) -> None:
    cli("usecases", "apply", str(FIXTURE))
    twin = cli.tmp / "twin.yaml"
    twin.write_text(FIXTURE.read_text().replace("id: auto-restart", "id: restart-twin"))
    cli("usecases", "apply", str(twin))
    shown = cli("usecases", "rank").stdout
    assert "auto-restart" in shown and "strategic project" in shown
    assert "duplicate: auto-restart and restart-twin both cover remediation for web" in shown
    ranked = orjson.loads(cli("usecases", "rank", "--json").stdout)["ranked"]
    assert ranked[0]["data_readiness"]["source"] == "measured"


def test_assess_from_a_file_and_interactively(cli: Any) -> None:
    cli("usecases", "apply", str(FIXTURE))
    answers = cli.tmp / "answers.yaml"
    answers.write_text("answers:\n  skills_data: 2\n  skills_runbooks: 3\n  sponsorship: 4\n  culture: 3\n"
                       "  signal_coverage: 2\n  noise: 2\n")
    found = orjson.loads(cli("assess", "--from", str(answers), "--json").stdout)
    assert found["levels"]["skills"] == 3 and found["levels"]["organisation"] == 4
    assert found["measured"]["audit"] == {"level": 5, "evidence": "the audit chain verifies"}
    assert found["measured"]["runbook_autonomy"]["level"] == 1  # its use case is proposed: the runbook is at shadow
    assert found["roadmap"][0]["now"] and found["roadmap"][2]["next_use_cases"] == ["auto-restart"]
    table = cli("assess", "--from", str(answers)).stdout
    assert "NOW  foundational" in table and "next: auto-restart" in table
    answers.write_text("noise: 9\n")
    assert "answers.yaml:1: noise: a level is a whole number 1 to 5, not 9" in cli(
        "assess", "--from", str(answers), code=2).stderr
    answers.write_text("vibes: 3\n")
    assert "'vibes' is not a question" in cli("assess", "--from", str(answers), code=2).stderr
    saved = cli.tmp / "saved.yaml"
    # interactively: the measured answers are offered as defaults (Enter takes them), the rest asked
    typed = "\n".join(["3"] * 10) + "\n"
    result = CliRunner().invoke(app, ["assess", "--save", str(saved)], input=typed, env=cli.env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "measured: the audit chain verifies → 5" in result.stdout
    assert yaml.safe_load(saved.read_text())["culture"] == 3


def test_models(cli: Any) -> None:
    fixture = Path(__file__).parent / "fixtures" / "value" / "detector.yaml"
    assert "model detector:robust version 2026.11.1 registered (reference sample of 40 scores)" in cli(
        "models", "register", str(fixture)).stdout
    assert "already registered" in cli("models", "register", str(fixture), code=2).stderr
    listed = cli("models", "list").stdout
    assert "detector:robust" in listed and "nab_standard 70.5" in listed and "2026-11-01 to 2026-11-08" in listed
    same = cli.tmp / "same.txt"
    same.write_text("\n".join(str(i / 100) for i in range(1, 41)))
    assert "detector:robust 2026.11.1 scores: stable" in cli("models", "drift", "detector:robust", "--scores",
                                                              str(same)).stdout
    shifted = cli.tmp / "shifted.json"
    shifted.write_text(orjson.dumps([0.6 + i / 100 for i in range(40)]).decode())
    drifted = cli("models", "drift", "detector:robust", "--scores", str(shifted), code=1).stdout
    assert "psi_and_ks" in drifted
    assert "KIND:NAME" in cli("models", "drift", "robust", code=2).stderr
    assert "--signal 'vibes'" in cli("models", "drift", "detector:robust", "--signal", "vibes", code=2).stderr
    garbage = cli.tmp / "garbage.txt"
    garbage.write_text("0.1\nnot a number\n")
    assert "scores are numbers" in cli("models", "drift", "detector:robust", "--scores", str(garbage), code=2).stderr
    # the alert rate over the last day against its training week: too few hours of history here
    rate = orjson.loads(cli("models", "drift", "detector:robust", "--signal", "alert_rate", "--json").stdout)
    assert rate["reason"] == "too_few_samples" and rate["reference"] == 168 and rate["current"] == 24
