"""``watchkeeper metrics detect``: CSV out for every timestamp, windows table, plot, state."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.detect.default import DEFAULT
from watchkeeper.metrics.cli import app

runner = CliRunner()


def write_metric(path: Path, n: int = 600, spike: int = 450) -> None:
    rng = np.random.default_rng(4)
    x = 50 + rng.normal(0, 1, n)
    x[spike] = 200.0
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i, v in enumerate(x):
            fh.write(f"2024-03-01T{i // 60:02d}:{i % 60:02d}:00Z,{v:.3f}\n")


def test_detect_writes_every_timestamp_and_prints_windows(tmp_path: Path) -> None:
    write_metric(tmp_path / "m.csv")
    result = runner.invoke(app, ["detect", str(tmp_path / "m.csv"), "--out", str(tmp_path / "a.csv"),
                                 "--plot", str(tmp_path / "a.png")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = list(csv.reader((tmp_path / "a.csv").read_text().splitlines()))
    assert rows[0] == ["timestamp", "anomaly_score"]
    assert len(rows) == 601
    assert rows[1][0] == "2024-03-01T00:00:00Z"
    scores = [float(r[1]) for r in rows[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert int(np.argmax(scores)) == 450
    assert "2024-03-01T07:30:00Z" in result.output  # the spike's window
    assert "600 points in 1 series" in result.output
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No --threshold: the one shipped with the default detector, named with its version.
    assert f"anomaly windows ({DEFAULT.version}, score >= {DEFAULT.threshold:g})" in result.output


def test_state_dir_resumes(tmp_path: Path) -> None:
    write_metric(tmp_path / "m.csv")
    args = ["detect", str(tmp_path / "m.csv"), "--state-dir", str(tmp_path / "state")]
    assert runner.invoke(app, args).exit_code == 0
    assert len(list((tmp_path / "state").glob("*.json"))) == 1
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b.csv")]).exit_code == 0


def test_wide_csv_scores_each_metric(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text("timestamp,cpu,mem\n" + "".join(
        f"{60 * i},{1 + i % 2},{5 + i % 3}\n" for i in range(100)))
    result = runner.invoke(app, ["detect", str(tmp_path / "w.csv"), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader((tmp_path / "o.csv").read_text().splitlines()))
    assert rows[0] == ["series", "timestamp", "anomaly_score"] and len(rows) == 201


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "FILE"), (["--prometheus", "http://127.0.0.1:9"], "--query")],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["detect", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("timestamp,value\nsoon,1\n")
    result = runner.invoke(app, ["detect", str(tmp_path / "bad.csv")])
    assert result.exit_code == 2
    assert "not a timestamp" in result.output


def test_max_skip_follows_the_saved_detectors_own_class() -> None:
    """``metrics detect`` learns as the saved detector's shipped configuration does: every point for
    the likelihood, at most 30 anomalous points in a row kept out for the others; a subclass of a
    shipped class (the experimental range break) is not taken for it."""
    from watchkeeper.detect.default import SHIPPED, make, max_skip_of
    from watchkeeper.detect.spatial import RangeLikelihood

    assert max_skip_of(make("default")) == DEFAULT.max_skip == 0
    assert [max_skip_of(make(name)) for name in ("robust", "cusum")] == [30, 30]
    assert {name: max_skip_of(config.build()) for name, config in SHIPPED.items()} == {
        name: config.max_skip for name, config in SHIPPED.items()}
    assert max_skip_of(RangeLikelihood(window=32, memory=500)) is None
