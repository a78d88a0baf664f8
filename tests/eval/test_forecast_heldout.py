"""``eval forecast --by-family``: choices made on the other families, figures of the held-out one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.detect.forecast import Series
from watchkeeper.eval import forecast_heldout as fh
from watchkeeper.eval.forecast_cli import app
from watchkeeper.eval.forecast_heldout import FamilyFit

runner = CliRunner()


def test_the_held_out_family_never_steers_its_own_choice() -> None:
    widths = (1.0, 2.0)
    fits = {
        "a": {"auto": FamilyFit([1.0], [0.8, 0.95], 10), "level": FamilyFit([3.0], [0.5, 0.8], 10)},
        "b": {"auto": FamilyFit([1.2], [0.6, 0.8], 10), "level": FamilyFit([0.9], [0.6, 0.8], 10)},
        "c": {"auto": FamilyFit([0.9], [0.6, 0.8], 10), "level": FamilyFit([0.1], [0.6, 0.8], 10)},
    }
    rows = {r.family: r for r in fh.leave_one_family_out(fits, widths)}
    # Without a, "level" forecasts b and c better; a pays for that choice (MASE 3.0).
    assert (rows["a"].trend, rows["a"].mase) == ("level", 3.0)
    assert rows["a"].width == 2.0 and rows["a"].coverage == 0.8  # b and c cover 80 % at ×2
    # Without c: on a and b, auto's mean MASE (1.1) beats level's (1.95).
    assert (rows["c"].trend, rows["c"].mase) == ("auto", 0.9)
    assert rows["c"].in_sample_mase == pytest.approx(0.9)  # on all three: auto (1.03) beats level (1.33)


def test_one_family_is_not_enough() -> None:
    with pytest.raises(ValueError, match="at least two families"):
        fh.leave_one_family_out({"a": {"auto": FamilyFit([1.0], [0.8])}}, (1.0,))


def daily(n: int, seed: int, noise: float) -> np.ndarray:
    t = np.arange(n, dtype=float)
    return 50 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(seed).normal(0, noise, n)


def test_fit_family_scores_a_clean_daily_cycle() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    series = [Series(f"s{i}", start, timedelta(hours=1), daily(24 * 20, i, 1.0)) for i in range(3)]
    fit = fh.fit_family(series, 12, None)
    assert len(fit.mase) == 3 and all(m < 1.5 for m in fit.mase)
    assert fit.points == 36
    assert fit.coverage == sorted(fit.coverage)  # wider intervals cover at least as much
    assert 0.5 < fit.coverage[fh.WIDTHS.index(1.0)] <= 1.0


def write(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = ["timestamp,value"] + [f"{(start + timedelta(hours=i)).isoformat()},{v:.4f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")


def test_cli_by_family(tmp_path: Path) -> None:
    for family, noise in (("quiet", 0.5), ("noisy", 3.0)):
        for i in range(2):
            write(tmp_path / family / f"{i}.csv", daily(24 * 15, i, noise))
    result = runner.invoke(app, [str(tmp_path / "quiet"), str(tmp_path / "noisy"), "--by-family",
                                 "--horizon", "12h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "held out by family (2 families" in result.output
    assert "worst held-out MASE" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("│ quiet") or line.startswith("│ noisy")]
    assert len(lines) == 2


def test_cli_by_family_needs_two_folders(tmp_path: Path) -> None:
    write(tmp_path / "only" / "a.csv", daily(24 * 15, 0, 1.0))
    result = runner.invoke(app, [str(tmp_path / "only"), "--by-family"])
    assert result.exit_code != 0
    assert "at least two folders" in str(result.exception) + result.output
