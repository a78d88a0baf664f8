"""``watchkeeper logs templates``, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from watchkeeper.cli import app

DATA = Path(__file__).parent / "data" / "loghub" / "OpenSSH" / "OpenSSH_2k.log"
ENV = {"COLUMNS": "200"}


def test_templates_of_a_loghub_file(tmp_path: Path) -> None:
    out = tmp_path / "parsed.jsonl"
    result = CliRunner().invoke(app, ["logs", "templates", str(DATA), "--format", "loghub:OpenSSH", "--out", str(out)],
                                env=ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 43))
    assert rows[0]["template"] == "Invalid user <*> from <*>"
    assert rows[0]["template_id"] == rows[5]["template_id"]
    assert {r["template_id"] for r in rows if r["template"] == rows[0]["template"]} == {rows[0]["template_id"]}
    assert "lines/s" in result.output and "42" in result.output
    assert "Invalid user <*> from <*>" in result.output


def test_raw_format_keeps_the_header_in_the_message(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("2024-01-01 job 17 done\n2024-01-02 job 18 done\n\n")
    result = CliRunner().invoke(app, ["logs", "templates", str(log)], env=ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "<*> job <*> done" in result.output


def test_miner_configuration_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "miner.yaml"
    config.write_text("masking:\n  - pattern: 'job \\d+'\n")
    log = tmp_path / "app.log"
    log.write_text("job 17 done\n")
    result = CliRunner().invoke(app, ["logs", "templates", str(log), "--config", str(config)], env=ENV,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "<*> done" in result.output


def test_clear_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["logs", "templates", str(tmp_path / "nope.log")], env=ENV)
    assert missing.exit_code == 2 and "no such log file" in missing.stderr
    bad_format = runner.invoke(app, ["logs", "templates", str(DATA), "--format", "loghub:Nope"], env=ENV)
    assert bad_format.exit_code == 2 and "no loghub format for 'Nope'" in bad_format.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("similarity: 3\n")
    bad_config = runner.invoke(app, ["logs", "templates", str(DATA), "--config", str(config)], env=ENV)
    assert bad_config.exit_code == 2 and "similarity" in bad_config.stderr
    no_dir = runner.invoke(app, ["logs", "templates", str(DATA), "--out", str(tmp_path / "x" / "y.jsonl")], env=ENV)
    assert no_dir.exit_code == 2 and "no such directory" in no_dir.stderr
