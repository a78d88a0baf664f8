"""Recorded lab campaigns as a labelled source of ``eval detect``: the warm-up is learned, the
fault windows (plus the recorder's lag) are the labels, gaps keep the last value, and bad
campaigns are refused with a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eval.test_nab import make_corpus
from eval.test_rca import make_lab
from watchkeeper.errors import InputError
from watchkeeper.eval import lab_series
from watchkeeper.eval.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
T0 = 1_700_000_000.0  # make_lab's first scrape; 5 s scrapes for 3 h, faults of 300 s at 1 h, 1.5 h, 2 h, 2.5 h


def test_a_campaign_is_one_entity_learned_on_its_warm_up(tmp_path: Path) -> None:
    make_lab(tmp_path / "c1", seed=3)
    entity, step = lab_series.campaign_entity(tmp_path / "c1")
    assert step == 5.0 and entity.name == "lab/c1"
    assert len(entity.train) == 720  # the scrapes before the first fault, at 1 h
    assert len(entity.test) == 3 * 720 - 720
    assert entity.train.shape[1] == 4 * 7  # four services, seven metrics each
    # Each fault is labelled for 300 s plus two scrapes of lag: 61 + 2 scrapes (both ends included).
    assert int(entity.labels.sum()) == 4 * 63
    starts = np.flatnonzero(np.diff(entity.labels.astype(int)) == 1) + 1
    assert (starts * 5.0).tolist() == [1800.0, 3600.0, 5400.0]  # from the test part's start (1 h)
    assert bool(entity.labels[0])  # the first fault starts the test part
    # The crashed cache has only `up`: its other metrics keep their last value, never NaN.
    assert np.isfinite(entity.test).all()


def test_a_folder_of_campaigns_is_one_source(tmp_path: Path) -> None:
    make_lab(tmp_path / "a", seed=4)
    make_lab(tmp_path / "b", seed=5)
    entities, step = lab_series.load(tmp_path)
    assert [e.name for e in entities] == ["lab/a", "lab/b"] and step == 5.0


def test_gaps_keep_the_last_value() -> None:
    out = lab_series.filled(np.array([np.nan, np.nan, 3.0, np.nan, 5.0, np.nan]))
    assert out is not None and out.tolist() == [3.0, 3.0, 3.0, 3.0, 5.0, 5.0]
    assert lab_series.filled(np.array([np.nan, np.nan])) is None


def test_a_fault_that_never_ended_is_anomalous_to_the_end(tmp_path: Path) -> None:
    make_lab(tmp_path / "c1", seed=3)
    faults = tmp_path / "c1" / "faults.jsonl"
    kept = [line for line in faults.read_text().splitlines() if "f-4" not in line or "started_at" in line]
    faults.write_text("\n".join(kept) + "\n")
    entity, _ = lab_series.campaign_entity(tmp_path / "c1")
    assert bool(entity.labels[-1]) and int(entity.labels[-(1800 // 5):].sum()) == 1800 // 5


@pytest.mark.parametrize(("damage", "message"), [
    (lambda c: (c / "faults.jsonl").write_text("{nope\n"), "not JSON"),
    (lambda c: (c / "faults.jsonl").write_text('{"id": "f", "target": "a", "started_at": "soon"}\n'), "not an ISO-8601 time"),
    (lambda c: (c / "faults.jsonl").write_text('{"id": "f", "started_at": "2026-01-01T00:00:00Z"}\n'), "needs 'id' and 'target'"),
    (lambda c: (c / "faults.jsonl").write_text(""), "no fault in it"),
    (lambda c: [p.unlink() for p in (c / "metrics").glob("*.csv")], "no <service>.csv"),
    (lambda c: (c / "metrics" / "cache.csv").write_text("time,up\n1,1\n"), "first column must be 'timestamp'"),
    (lambda c: (c / "faults.jsonl").write_text(
        json.dumps({"id": "f", "target": "a", "started_at": "2023-11-14T22:13:20Z"}) + "\n"), "no healthy part"),
    (lambda c: (c / "faults.jsonl").write_text(
        json.dumps({"id": "f", "target": "a", "started_at": "2030-01-01T00:00:00Z"}) + "\n"), "no scrape after"),
    (lambda c: (c / "faults.jsonl").write_text('{"id": "f", "target": "a", "started_at": 1700000000}\n'), "expected an ISO-8601 time"),
    (lambda c: (c / "faults.jsonl").write_text('[1, 2]\n'), "expected a JSON object"),
    (lambda c: (c / "metrics" / "cache.csv").write_text("timestamp,up\nnan,1\n1,1\n"), "not a finite number"),
    (lambda c: (c / "metrics" / "cache.csv").write_text("timestamp,up\nsoon,1\n"), "not a number"),
])
def test_a_bad_campaign_is_refused_with_a_sentence(tmp_path: Path, damage: object, message: str) -> None:
    make_lab(tmp_path / "c1", seed=3)
    damage(tmp_path / "c1")  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        lab_series.campaign_entity(tmp_path / "c1")


def test_no_campaign_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lab record"):
        lab_series.load(tmp_path)


def test_eval_detect_scores_the_lab_beside_nab(tmp_path: Path) -> None:
    make_corpus(tmp_path / "nab")
    make_lab(tmp_path / "lab" / "c1", seed=3)
    out = tmp_path / "result.json"
    result = runner.invoke(app, ["detect", "--nab", str(tmp_path / "nab"), "--lab", str(tmp_path / "lab"),
                                 "--candidate", "likelihood", "--out", str(out), "--cache", str(tmp_path / "cache")],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    lab = {s["source"]: s for s in body["sources"]}["lab"]
    assert lab["figure"] == "point-adjusted F1"
    # Four faults, each a jump of tens of standard deviations in some metric: every one is found.
    assert lab["hindsight"] == pytest.approx(100.0)
    assert lab["held_out"] > 50.0
    # The floor: an alarm at every point; 4 × 63 labelled of 2,160 − 720 test scrapes.
    assert body["every_point"] == {"lab": round(100 * 2 * 252 / (1440 + 252), 1)}
    assert "alarm at every point" in result.output


def test_eval_detect_refuses_a_folder_without_campaigns(tmp_path: Path) -> None:
    make_corpus(tmp_path / "nab")
    (tmp_path / "lab").mkdir()
    result = runner.invoke(app, ["detect", "--nab", str(tmp_path / "nab"), "--lab", str(tmp_path / "lab"),
                                 "--out", str(tmp_path / "o.json")], env=WIDE)
    assert result.exit_code == 2
    assert "no faults.jsonl" in result.output
