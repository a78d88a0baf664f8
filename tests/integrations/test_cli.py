"""``watchkeeper outbox list|retry`` on the database ``serve`` uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import yaml
from typer.testing import CliRunner

from integrations.conftest import HOOK_SECRET
from integrations.standins import Fault, StandIn
from watchkeeper.cli import app
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit


def test_outbox_list_and_retry(tmp_path: Path, standins: dict[str, StandIn],
                               runtime: Callable[[Watchkeeper], Integrations]) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path / 'wk.db'}",
        "integrations": {"targets": {"hook": {"type": "webhook", "url": standins["webhook"].url + "/h",
                                              "secret": HOOK_SECRET, "retries": 0}}},
        "routes": [{"to": ["hook"]}]}))
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["--config", str(config), *args], env={"COLUMNS": "200"})
        assert result.exit_code == code, result.output
        return result.output

    from watchkeeper.settings import load_settings

    wk = Watchkeeper(load_settings({}, config), metrics=False)
    wk.upgrade()
    wk.ingest("events", orjson.dumps({"service": "db", "name": "Down", "summary": "db down"}), None, "test")
    standins["webhook"].fail(Fault(404, body=b"no such hook"))
    runtime(wk).delivery.drain()
    listed = orjson.loads(invoke("outbox", "list", "--status", "dead", "--json").splitlines()[0])
    assert listed["target"] == "hook" and listed["status"] == "dead" and "HTTP 404" in listed["last_error"]
    table = invoke("outbox", "list")
    assert "dead" in table and "HTTP 404" in table
    assert "is due again" in invoke("outbox", "retry", str(listed["id"]))
    runtime(wk).delivery.drain()
    assert [orjson.loads(line)["status"] for line in invoke("outbox", "list", "--json").splitlines()] == ["delivered"]
    assert "was delivered" in invoke("outbox", "retry", str(listed["id"]), code=2)
    assert "no outbox message 99" in invoke("outbox", "retry", "99", code=2)
    assert "--status is one of" in invoke("outbox", "list", "--status", "lost", code=2)
    with wk.db.read() as conn:
        assert [r.actor.startswith("cli:") for r in audit.records(conn) if r.kind == "outbox.retried"] == [True]
    wk.close()
