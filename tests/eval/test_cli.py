"""``watchkeeper eval nab|smd`` on tiny fixtures."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from eval.test_nab import make_corpus
from eval.test_smd import make_set
from watchkeeper.eval.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def test_eval_nab_prints_categories_and_profiles(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    result = runner.invoke(app, ["nab", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ("alpha", "beta", "overall", "standard", "reward_low_FN_rate", "3 files"):
        assert text in result.output
    overall = next(line for line in result.output.splitlines() if "overall" in line)
    standard = float(overall.split("│")[2])
    # One clear spike in the middle of each window, nothing else: about 0.86 of a perfect detection.
    assert 90.0 < standard < 100.0


def test_eval_smd(tmp_path: Path) -> None:
    make_set(tmp_path / "smd", "machine-1-1", 1)
    result = runner.invoke(app, ["smd", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "smd" in result.output and "1.000" in result.output


def test_empty_dirs_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    assert runner.invoke(app, ["nab", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["smd", str(tmp_path)]).exit_code == 2
