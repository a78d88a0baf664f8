"""``serve`` registers the shipped models (the default detector, the RCA model) at start-up, once:
a second start-up, or a version registered by hand before, changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from watchkeeper import rca
from watchkeeper.cli import app
from watchkeeper.detect.default import DEFAULT
from watchkeeper.model_registry import Registry
from watchkeeper.service import Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import audit
from watchkeeper.storage import value as value_store
from watchkeeper.value.shipped import shipped_models


def test_the_shipped_versions_are_the_code_s() -> None:
    detector, ranker = shipped_models()
    assert (detector.name, detector.version) == (DEFAULT.name, DEFAULT.version)
    assert detector.params["threshold"] == DEFAULT.threshold and detector.params["window"] == 256
    assert ranker.name == rca.MODEL and ranker.version.startswith(f"{rca.MODEL}+cal.")
    assert set(ranker.params["calibration"]) >= {"intercept", "w_top", "w_margin"}
    assert not detector.scores.held_out  # not constants in the code: none registered (docs/value.md)
    assert shipped_models() == [detector, ranker]  # the same versions every time


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
    detector, ranker = shipped_models()
    assert f"registered the shipped model detector:{DEFAULT.name} {DEFAULT.version}" in first.stderr
    rows, audited = _registered(serve.url)
    assert sorted(rows) == sorted([("detector", detector.name, detector.version, "serve"),
                                   ("rca", ranker.name, ranker.version, "serve")])
    assert len(audited) == 2
    second = serve()
    assert "registered the shipped model" not in second.stderr
    assert _registered(serve.url) == (rows, audited)  # idempotent: nothing new, nothing audited again
    wk = Watchkeeper(Settings(database_url=serve.url))
    with wk.db.read() as conn:  # what a decision whose cause came from the ranker now names
        assert value_store.named_versions(conn, [("rca", rca.MODEL)]) == {f"rca:{rca.MODEL}": ranker.version}
    assert wk.verify_audit().ok


def test_a_version_registered_before_is_left_as_it_is(sqlite_url: str, make_service: Any) -> None:
    wk: Watchkeeper = make_service(sqlite_url)
    registry = Registry(wk.db, wk.clock)
    detector, ranker = shipped_models()
    by_hand = detector.model_copy(update={"scores": detector.scores.model_copy(update={"held_out": {"nab": 0.732}})})
    registry.register(by_hand, "token:alice")
    assert registry.ensure(shipped_models(), "serve") == [f"rca:{ranker.name} {ranker.version}"]
    assert registry.ensure(shipped_models(), "serve") == []
    shown = registry.show("detector", detector.name, detector.version)
    assert shown["registered_by"] == "token:alice" and shown["scores"]["held_out"] == {"nab": 0.732}
