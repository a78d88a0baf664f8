"""``eval loghub``: the metrics, and both parsers on a tiny loghub-format fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.eval import loghub

DATA = Path(__file__).parents[1] / "logs" / "data" / "loghub"


@pytest.mark.parametrize(("truth", "predicted", "ga", "fga"), [
    (["a", "a", "b"], ["x", "x", "y"], 1.0, 1.0),
    (["a", "a", "b"], ["x", "x", "x"], 0.0, 0.0),          # one group too many merged: nothing right
    (["a", "a", "b"], ["x", "y", "z"], 1 / 3, 0.4),        # a split: only b is right (P 1/3, R 1/2)
    (["a", "a", "a", "b"], ["x", "x", "x", "y"], 1.0, 1.0),
])
def test_grouping_accuracy(truth: list[str], predicted: list[str], ga: float, fga: float) -> None:
    got_ga, got_fga, _, _ = loghub.grouping(truth, predicted)
    assert got_ga == pytest.approx(ga) and got_fga == pytest.approx(fga)


@pytest.mark.parametrize(("truth", "template", "same"), [
    ("Invalid user <*> from <*>", "Invalid user <*> from <*>", True),
    ("send <*> <*> bytes", "send <*> bytes", False),
    ("to <*><*>", "to <*>", True),
    ("size <NUM> from <IP>", "size <*> from <*>", True),
])
def test_parsing_accuracy_normalises(truth: str, template: str, same: bool) -> None:
    assert loghub.parsing_accuracy([truth], [template]) == (1.0 if same else 0.0)


def test_both_parsers_on_the_fixture() -> None:
    assert loghub.systems_in(DATA) == ["OpenSSH"]
    [result] = loghub.evaluate(DATA, ["OpenSSH"], repeats=1)
    assert result.lines == 42 and not result.held_out
    assert result.miner.ga == 1.0 and result.miner.fga == 1.0 and result.miner.truth_groups == 7
    assert result.miner.pa > 0.5
    assert 0.0 <= result.drain3.ga <= 1.0 and result.drain3.lines_per_s > 0


def test_corrected_ground_truth_is_found() -> None:
    data = loghub.load(DATA, "OpenSSH", corrected=True)
    assert data.contents[0] == "Invalid user pi from 23.222.214.18"
    assert len(data.truth) == 42


def test_eval_loghub_command() -> None:
    result = CliRunner().invoke(app, ["eval", "loghub", str(DATA), "--corrected"], env={"COLUMNS": "220"},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "OpenSSH" in result.output and "in-sample" in result.output and "drain3" in result.output


def test_eval_loghub_refuses_an_empty_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "loghub", str(tmp_path)])
    assert result.exit_code == 2


def test_leave_one_system_out_chooses_on_the_others() -> None:
    data = loghub.load(DATA, "OpenSSH")
    half = len(data.contents) // 2
    first = loghub.Dataset("A", data.contents[:half], data.truth[:half])
    second = loghub.Dataset("B", data.contents[half:], data.truth[half:])
    held = loghub.leave_one_system_out([first, second], grid=(0.5, 0.75))
    assert [h.system for h in held] == ["A", "B"]
    assert all(h.similarity in (0.5, 0.75) and 0.0 <= h.ga <= 1.0 for h in held)
