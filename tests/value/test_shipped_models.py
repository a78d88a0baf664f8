"""``serve`` registers the shipped models (the default detector, the RCA model, the default
correlation) at start-up, once, with the scores of the data files next to them: a second start-up,
or a version registered by hand before, changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from watchkeeper import rca
from watchkeeper.cli import app
from watchkeeper.correlate.config import CorrelationConfig
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.detect.default import DEFAULT
from watchkeeper.logs.miner import MINER_NAME, MINER_VERSION, MinerConfig
from watchkeeper.model_registry import Registry
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import audit
from watchkeeper.storage import value as value_store
from watchkeeper.value.drift import Scores
from watchkeeper.value.shipped import (
    CORRELATION_SCORES,
    DETECTOR_SCORES,
    MINER_SCORES,
    RCA_SCORES,
    correlation_identity,
    correlation_model,
    scores_file,
    shipped_models,
)


def test_the_shipped_versions_are_the_code_s() -> None:
    detector, ranker, correlation, miner = shipped_models()
    assert (detector.name, detector.version) == (DEFAULT.name, DEFAULT.version)
    assert detector.params["threshold"] == DEFAULT.threshold and detector.params["window"] == 256
    assert ranker.name == rca.MODEL and ranker.version.startswith(f"{rca.MODEL}+cal.")
    assert set(ranker.params["calibration"]) >= {"intercept", "w_top", "w_margin"}
    assert (correlation.kind.value, correlation.name) == ("correlation", "default")
    assert correlation.version.startswith("cfg.") and correlation.params["window"] == 300.0
    assert (miner.kind.value, miner.name, miner.version) == ("template_miner", MINER_NAME, MINER_VERSION)
    assert miner.params["config"] == MinerConfig().model_dump(mode="json")
    assert shipped_models() == [detector, ranker, correlation, miner]  # the same versions every time


def test_each_shipped_model_has_held_out_and_in_sample_scores_from_its_data_file() -> None:
    for model, path in zip(shipped_models(), (DETECTOR_SCORES, RCA_SCORES, CORRELATION_SCORES, MINER_SCORES),
                           strict=True):
        doc = json.loads(path.read_text())
        assert (doc["model"], doc["version"]) == (model.key, model.version), path
        assert model.scores.held_out == doc["held_out"] and model.scores.in_sample == doc["in_sample"]
        assert model.scores.held_out and model.scores.in_sample
        evaluation = model.params["evaluation"]
        assert evaluation["command"].split()[0] in ("watchkeeper", "python") and len(evaluation["commit"]) == 40
    detector = shipped_models()[0]
    assert detector.scores.held_out["nab_pooled"] < detector.scores.in_sample["nab_pooled"]


def test_scores_of_another_version_are_not_given_to_this_one(tmp_path: Path) -> None:
    other = tmp_path / "scores.json"
    other.write_text(json.dumps({"model": "rca:baro-v1", "version": "baro-v1+cal.0000000000",
                                 "held_out": {"top1": 99.0}, "in_sample": {}, "command": "x", "commit": "y"}))
    scores, provenance = scores_file(other, "rca:baro-v1", "baro-v1+cal.1111111111")
    assert not scores.held_out and provenance["scores_for"] == "rca:baro-v1 baro-v1+cal.0000000000"
    assert scores_file(tmp_path / "missing.json", "rca:baro-v1", "v") == (Scores(), {})
    assert scores_file(other, "rca:baro-v1", "baro-v1+cal.0000000000")[0].held_out == {"top1": 99.0}


def test_a_correlation_config_is_versioned_by_its_parameters() -> None:
    default = correlation_model(PipelineConfig())
    assert default == shipped_models()[2]
    wider = correlation_model(PipelineConfig(window=timedelta(minutes=10)))
    assert wider.name == "configured" and wider.version != default.version and not wider.scores.held_out
    graph = CorrelationConfig.model_validate({"graph": {"web": ["db"]}, "hops": 2}).pipeline()
    one, two = correlation_identity(graph), correlation_identity(
        CorrelationConfig.model_validate({"graph": {"web": ["db"]}, "hops": 2}).pipeline())
    assert one == two and one != correlation_identity(
        CorrelationConfig.model_validate({"graph": {"web": ["cache"]}, "hops": 2}).pipeline())


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``watchkeeper serve`` up to the moment it would listen (uvicorn.run records, does not run)."""
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    runs: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda served, **kwargs: runs.append(kwargs))

    def start() -> Any:
        result = CliRunner().invoke(app, ["serve", "--port", "0"], env={"WATCHKEEPER_DATABASE_URL": url},
                                    catch_exceptions=False)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert runs and runs[-1]["host"] == "127.0.0.1"
        return result

    start.url = url  # type: ignore[attr-defined]
    return start


def _registered(url: str) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    wk = Watchkeeper(Settings(database_url=url))
    with wk.db.read() as conn:
        rows = [(r["kind"], r["name"], r["version"], r["registered_by"]) for r in value_store.model_rows(conn)]
        kinds = [r.kind for r in audit.records(conn) if r.kind == "model.registered"]
    return rows, kinds


def test_serve_registers_the_shipped_models_once(serve: Any) -> None:
    first = serve()
    detector, ranker, correlation, miner = shipped_models()
    assert f"registered the shipped model detector:{DEFAULT.name} {DEFAULT.version}" in first.stderr
    rows, audited = _registered(serve.url)
    assert sorted(rows) == sorted([("detector", detector.name, detector.version, "serve"),
                                   ("rca", ranker.name, ranker.version, "serve"),
                                   ("correlation", "default", correlation.version, "serve"),
                                   ("template_miner", miner.name, miner.version, "serve")])
    assert len(audited) == 4
    second = serve()
    assert "registered the shipped model" not in second.stderr
    assert _registered(serve.url) == (rows, audited)  # idempotent: nothing new, nothing audited again
    wk = Watchkeeper(Settings(database_url=serve.url))
    with wk.db.read() as conn:  # what a decision whose cause came from the ranker now names
        assert value_store.named_versions(conn, [("rca", rca.MODEL)]) == {f"rca:{rca.MODEL}": ranker.version}
        assert value_store.named_versions(conn, [("detector", DEFAULT.name)]) == {
            f"detector:{DEFAULT.name}": DEFAULT.version}
    shown = Registry(wk.db, wk.clock).show("detector", DEFAULT.name)
    assert shown["scores"]["held_out"]["smd"] == detector.scores.held_out["smd"]
    assert shown["params"]["evaluation"]["command"].startswith("watchkeeper eval detect")
    assert wk.verify_audit().ok


def test_a_version_registered_before_is_left_as_it_is(sqlite_url: str, make_service: Any) -> None:
    wk: Watchkeeper = make_service(sqlite_url)
    registry = Registry(wk.db, wk.clock)
    detector, ranker, correlation, miner = shipped_models()
    by_hand = detector.model_copy(update={"scores": detector.scores.model_copy(update={"held_out": {"nab": 0.732}})})
    registry.register(by_hand, "token:alice")
    assert registry.register_shipped() == [f"rca:{ranker.name} {ranker.version}",
                                           f"correlation:default {correlation.version}",
                                           f"template_miner:{miner.name} {miner.version}"]
    assert registry.ensure(shipped_models(), "serve") == []
    shown = registry.show("detector", detector.name, detector.version)
    assert shown["registered_by"] == "token:alice" and shown["scores"]["held_out"] == {"nab": 0.732}


def test_a_version_serve_registered_before_its_scores_shipped_gets_them_once(sqlite_url: str,
                                                                             make_service: Any) -> None:
    wk: Watchkeeper = make_service(sqlite_url)
    registry = Registry(wk.db, wk.clock)
    detector, ranker, correlation, miner = shipped_models()
    bare = detector.model_copy(update={"scores": Scores(), "params": {"threshold": DEFAULT.threshold}})
    registry.register(bare, "serve")  # what an older serve registered
    registry.register(ranker.model_copy(update={"scores": Scores()}), "token:alice")  # by hand: left alone
    assert registry.register_shipped() == [f"detector:{detector.name} {detector.version} (scores)",
                                           f"correlation:default {correlation.version}",
                                           f"template_miner:{miner.name} {miner.version}"]
    assert registry.register_shipped() == []
    shown = registry.show("detector", detector.name, detector.version)
    assert shown["scores"]["held_out"] == detector.scores.held_out and "evaluation" in shown["params"]
    assert not registry.show("rca", ranker.name, ranker.version)["scores"]["held_out"]
    with wk.db.read() as conn:
        scored = [r for r in audit.records(conn) if r.kind == "model.scored"]
    assert len(scored) == 1 and scored[0].payload["evaluation"]["commit"] == detector.params["evaluation"]["commit"]
    assert wk.verify_audit().ok
