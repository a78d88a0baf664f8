"""``watchkeeper watch test FILE``: one evaluation of every watch against the live Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from watch.fakeprom import FakePrometheus
from watchkeeper.cli import app


def settings_file(tmp_path: Path, url: str, **watch: object) -> Path:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(yaml.safe_dump({"watch": {
        "prometheus": [{"url": url}],
        "watches": [{"name": "latency", "query": "max by (service) (lat)", "direction": "up", **watch}],
    }}, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for key in ("WATCHKEEPER_CONFIG", "WATCHKEEPER_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)


def test_a_good_file_shows_each_watch_series(tmp_path: Path) -> None:
    fake = FakePrometheus()
    fake.series = {"api": 0.25, "db": 1.5}
    with fake.serve() as url:
        result = CliRunner().invoke(app, ["watch", "test", str(settings_file(tmp_path, url))])
    assert result.exit_code == 0, result.output
    assert "latency (anomaly, every 30s) on default: max by (service) (lat)" in result.output
    assert 'latency{service="api"}' in result.output and "0.25" in result.output
    assert 'latency{service="db"}' in result.output and "1.5" in result.output
    assert "2 series" in result.output
    assert fake.queries == ["max by (service) (lat)"]


def test_a_failing_query_is_shown_with_its_sentence_and_exit_1(tmp_path: Path) -> None:
    fake = FakePrometheus()
    fake.mode = "bad"
    with fake.serve() as url:
        result = CliRunner().invoke(app, ["watch", "test", str(settings_file(tmp_path, url))])
    assert result.exit_code == 1
    assert "query failed:" in result.output and "bad_data: parse error" in result.output


def test_series_without_the_service_label_are_counted(tmp_path: Path) -> None:
    fake = FakePrometheus()
    fake.series = {"api": 1.0}
    with fake.serve() as url:
        result = CliRunner().invoke(app, ["watch", "test", str(settings_file(tmp_path, url, service_label="job"))])
    assert result.exit_code == 0
    assert "0 series; 1 skipped: no 'job' label" in result.output


def test_a_bad_file_names_the_line_and_exits_2(tmp_path: Path) -> None:
    path = settings_file(tmp_path, "http://127.0.0.1:9", direction="sideways")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "sideways" in text)
    result = CliRunner().invoke(app, ["watch", "test", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{line}: watch.watches.0.direction" in result.output.replace("\n", "")


def test_an_unknown_detector_exits_2_naming_the_watch(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["watch", "test", str(settings_file(tmp_path, "http://127.0.0.1:9",
                                                                         detector="nope"))])
    assert result.exit_code == 2
    assert "watch 'latency': unknown detector 'nope'" in result.output


def test_a_file_without_watches_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("log_level: info\n")
    result = CliRunner().invoke(app, ["watch", "test", str(path)])
    assert result.exit_code == 2 and "no watches" in result.output
