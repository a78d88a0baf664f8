"""``incidents resolve ID --cause SVC`` records the true cause; ``rca calibrate`` refits the
confidence model on the user's own labelled incidents (and refuses with fewer than 20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.cli import app
from watchkeeper.model import Cause
from watchkeeper.ranking import load_calibration, record_cause
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import audit
from watchkeeper.storage import changes as store


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wk.db'}"


def run(url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args), env={"WATCHKEEPER_DATABASE_URL": url, "COLUMNS": "200"},
                                catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def labelled(url: str, n: int) -> None:
    """``n`` incidents ranked by the ranker, each with its true cause: a clear top score is right,
    a close call is wrong (so the refitted model should trust the margin)."""
    wk = Watchkeeper(Settings(database_url=url))
    wk.upgrade()
    for i in range(n):
        body = am_webhook(am_alert("Slow", f"svc{i}", fingerprint=f"fp{i}"))
        incident = wk.ingest("alertmanager", orjson.dumps(body), "application/json", "test").incidents[0]
        clear = i % 2 == 0
        wk.governance.set_causes(incident, [
            Cause("db", score=40.0 + i if clear else 6.0, confidence=0.9, model="baro-v1"),
            Cause("api", score=4.0 if clear else 5.5, confidence=0.05, model="baro-v1")], "rca")
        record_cause(wk, incident, "db" if clear else "api", "test")
    wk.close()


def test_resolve_with_the_true_cause(url: str) -> None:
    labelled(url, 1)
    done = run(url, "incidents", "resolve", "1", "--cause", "api")
    assert "resolved, caused by api" in done.stdout
    wk = Watchkeeper(Settings(database_url=url))
    with wk.db.read() as conn:
        assert store.truth_of(conn, 1) == "api"
        confirmed = [r for r in audit.records(conn, subject="incident:1") if r.kind == "incident.cause_confirmed"]
    wk.close()
    assert [(r.payload["component"], r.payload["ranked_at"]) for r in confirmed] == [("db", 1), ("api", 2)]  # the label can be corrected


def test_resolve_with_a_cause_of_an_unknown_incident_is_exit_2(url: str) -> None:
    labelled(url, 1)
    assert "no incident 9" in run(url, "incidents", "resolve", "9", "--cause", "db", code=2).stderr


def test_calibrate_needs_twenty_labelled_incidents(url: str, tmp_path: Path) -> None:
    labelled(url, 5)
    done = run(url, "rca", "calibrate", "--out", str(tmp_path / "c.json"), code=2)
    assert "only 5 incident(s)" in done.stderr and "at least 20" in done.stderr
    assert not (tmp_path / "c.json").exists()


def test_calibrate_needs_somewhere_to_write(url: str) -> None:
    assert "rca.calibration" in run(url, "rca", "calibrate", code=2).stderr


def test_calibrate_writes_what_serve_reads(url: str, tmp_path: Path) -> None:
    labelled(url, 24)
    target = tmp_path / "calibration.json"
    done = run(url, "rca", "calibrate", "--out", str(target))
    assert "fitted on 24 incidents (top-1 right in 50 %)" in done.stdout
    model = load_calibration(target)
    assert model["w_margin"] > 0 and "24 resolved incidents" in json.loads(target.read_text())["fitted_on"]
