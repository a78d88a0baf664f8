"""``watchkeeper --url … --token … usecases | gates | models``: the portfolio, its gates and the model
registry through a running server's API, with no database file where the CLI runs; the server checks
each token's role and names it in the audit log."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog
import yaml
from typer.testing import CliRunner

from fixtures.threadserver import ThreadServer
from watchkeeper.cli import app
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings
from watchkeeper.storage import audit

USE_CASE = {
    "id": "rca-assist", "title": "Ranked causes for on-call", "models": ["rca:external"],
    "owners": {"business_sponsor": "d", "technical_lead": "a", "operations_leader": "b"},
    "success_criteria": [{"kpi": "drift_events", "op": "<=", "target": 0, "text": "no drift"}],
    "readiness": [{"name": "support model", "met": True}],
}
MODEL = {"kind": "rca", "name": "external", "version": "v3", "scores": {"held_out": {"top1": 0.81}},
         "baseline": [i / 100 for i in range(100)]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Watchkeeper]]:
    # the server runs in this process: its access log must not land in the CLI's captured stdout
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(io.StringIO()))
    wk = Watchkeeper(Settings(database_url=f"sqlite:///{tmp_path / 'server.db'}"))
    wk.upgrade()
    app_ = create_app(wk, upgrade=False, responder=False, watch=False, rank=False)
    with ThreadServer(app_, access_log=False) as running:
        yield running.url, wk
    wk.close()
    structlog.reset_defaults()


def test_value_commands_go_through_the_api_with_the_tokens_role(server: tuple[str, Watchkeeper],
                                                                tmp_path: Path) -> None:
    url, wk = server
    operator = wk.create_token(Role.OPERATOR, "alice", "test")
    viewer = wk.create_token(Role.VIEWER, "bob", "test")
    approver = wk.create_token(Role.APPROVER, "carol", "test")
    env = {"WATCHKEEPER_URL": url, "WATCHKEEPER_TOKEN": operator, "COLUMNS": "200",
           "WATCHKEEPER_DATABASE_URL": f"sqlite:///{tmp_path / 'must-not-exist.db'}"}
    as_viewer, as_approver = {**env, "WATCHKEEPER_TOKEN": viewer}, {**env, "WATCHKEEPER_TOKEN": approver}
    runner = CliRunner()
    case_file, model_file = tmp_path / "case.yaml", tmp_path / "model.yaml"
    case_file.write_text(yaml.safe_dump(USE_CASE))
    model_file.write_text(yaml.safe_dump(MODEL))

    applied = runner.invoke(app, ["usecases", "apply", str(case_file)], env=env)
    assert applied.exit_code == 0, applied.stderr
    assert "use case rca-assist: version 1, stage proposed" in applied.stdout
    listed = runner.invoke(app, ["usecases", "list"], env=as_viewer)
    assert listed.exit_code == 0 and "rca-assist" in listed.stdout and "proposed v1" in listed.stdout
    shown = runner.invoke(app, ["usecases", "show", "rca-assist"], env=as_viewer)
    assert shown.exit_code == 0 and orjson.loads(shown.stdout)["id"] == "rca-assist"
    ranked = runner.invoke(app, ["usecases", "rank", "--json"], env=as_viewer)
    assert ranked.exit_code == 0 and [r["id"] for r in orjson.loads(ranked.stdout)["ranked"]] == ["rca-assist"]
    refused = runner.invoke(app, ["usecases", "apply", str(case_file)], env=as_viewer)
    assert refused.exit_code == 2 and "role viewer" in refused.stderr

    proposed = runner.invoke(app, ["usecases", "propose", "rca-assist"], env=env)
    assert proposed.exit_code == 0 and "gate proposal 1: rca-assist proposed → pilot" in proposed.stdout
    pending = runner.invoke(app, ["gates", "list", "--json"], env=as_viewer)
    assert [p["id"] for p in orjson.loads(pending.stdout)] == [1]
    no_vote = runner.invoke(app, ["gates", "approve", "1"], env=as_viewer)
    assert no_vote.exit_code == 2 and "role viewer" in no_vote.stderr
    approved = runner.invoke(app, ["gates", "approve", "1", "--comment", "owners named"], env=as_approver)
    assert approved.exit_code == 0, approved.stderr
    assert "gate proposal 1: approved (rca-assist proposed → pilot)" in approved.stdout
    evaluated = runner.invoke(app, ["gates", "evaluate", "rca-assist", "--json"], env=as_viewer)
    assert evaluated.exit_code == 0, evaluated.stderr
    [gate] = orjson.loads(evaluated.stdout)
    assert gate["stage"] == "pilot" and gate["criteria"][0]["kpi"] == "drift_events"
    applied_gate = runner.invoke(app, ["gates", "evaluate", "--apply"], env=env)
    assert applied_gate.exit_code == 0 and "proposal 2" in applied_gate.stdout  # pilot → assisted proposed

    registered = runner.invoke(app, ["models", "register", str(model_file)], env=env)
    assert registered.exit_code == 0, registered.stderr
    assert "model rca:external version v3 registered (reference sample of 100 scores)" in registered.stdout
    models = runner.invoke(app, ["models", "list", "--kind", "rca"], env=as_viewer)
    assert models.exit_code == 0 and "rca:external" in models.stdout and "top1 0.81" in models.stdout
    shifted = tmp_path / "recent.txt"
    shifted.write_text("\n".join(str(0.5 + i / 200) for i in range(100)))
    drift = runner.invoke(app, ["models", "drift", "rca:external", "--scores", str(shifted)], env=env)
    assert drift.exit_code == 1 and "psi_and_ks" in drift.stdout  # exit 1: it drifted

    local = runner.invoke(app, ["report", "--out", str(tmp_path / "r")], env=env)
    assert local.exit_code == 2 and "not through --url" in local.stderr
    assert not (tmp_path / "must-not-exist.db").exists()
    with wk.db.read() as conn:
        actors = {(r.kind, r.actor) for r in audit.records(conn)}
    assert {("usecase.created", "token:alice"), ("gate.proposed", "token:alice"), ("gate.approved", "token:carol"),
            ("model.registered", "token:alice"), ("model.drift", "token:alice")} <= actors
    assert wk.verify_audit().ok
