"""``watchkeeper logs sources``: the configured inputs with their stored offsets and kept lines."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.logs.config import FileInput, LogsConfig
from watchkeeper.service import Watchkeeper
from watchkeeper.service.logs import LogIngest
from watchkeeper.settings import Settings


def test_sources_show_files_listeners_and_offsets(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    config = tmp_path / "wk.yaml"
    config.write_text(f"logs:\n  files: [{{path: {log}, service: shop, from_start: true}}]\n"
                      "  syslog: {udp: '127.0.0.1:5514'}\n")
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    wk = Watchkeeper(Settings(database_url=url, logs=LogsConfig(files=[FileInput(path=log, service="shop",
                                                                                 from_start=True)])))
    wk.upgrade()
    logs = LogIngest(wk)
    logs._open_files()
    assert logs.poll_files() == 2
    for _spec, tailer, _ in logs._tailers.values():
        tailer.close()
    wk.close()
    env = {"WATCHKEEPER_DATABASE_URL": url, "WATCHKEEPER_CONFIG": str(config)}
    result = CliRunner().invoke(app, ["logs", "sources", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {r["input"]: r for r in map(orjson.loads, result.output.splitlines())}
    assert rows[f"file:{log}"]["lines_kept"] == 2 and rows[f"file:{log}"]["offset"] == 8
    assert rows[f"file:{log}"]["inode"] == log.stat().st_ino
    assert rows["syslog-udp"]["address"] == "127.0.0.1:5514" and "otlp" in rows
    table = CliRunner().invoke(app, ["logs", "sources"], env={**env, "COLUMNS": "160"})
    assert table.exit_code == 0 and "shop" in table.output
