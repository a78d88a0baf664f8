"""``watchkeeper eval nab``: the detector choice and leave-one-category-out, on a tiny corpus."""

from __future__ import annotations

import math
from pathlib import Path

from typer.testing import CliRunner

from eval.test_nab import make_corpus
from watchkeeper.eval.cli import LOCO_GRID, app

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


def overall_standard(output: str) -> float:
    line = next(line for line in output.splitlines() if "overall" in line)
    return float(line.split("│")[2])


def test_both_detectors_find_the_spikes(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    for detector, title in (("likelihood", "AnomalyLikelihood"), ("robust", "RobustSeasonal")):
        result = runner.invoke(app, ["nab", str(tmp_path), "--detector", detector], env=WIDE)
        assert result.exit_code == 0, result.output
        assert f"NAB scores of {title} (3 files)" in result.output
        assert overall_standard(result.output) > 80.0  # each spike caught, nothing else flagged


def test_loco_prints_a_held_out_score_per_category(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    result = runner.invoke(app, ["nab", str(tmp_path), "--loco"], env=WIDE)
    assert result.exit_code == 0, result.output
    sets = math.prod(len(values) for values in LOCO_GRID.values())
    assert f"leave one category out ({sets} parameter sets)" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│ alpha") or line.startswith("│ beta")]
    assert len(rows) == 4  # alpha and beta, in the main table and the held-out table
    held = rows[2:]
    assert all("window=" in row and "short=" in row for row in held)


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    assert runner.invoke(app, ["nab", str(tmp_path), "--loco", "--category", "alpha"]).exit_code == 2
    assert runner.invoke(app, ["nab", str(tmp_path), "--detector", "nope"]).exit_code == 2
