from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.errors import ConfigError
from watchkeeper.settings import load_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///./watchkeeper.db"
    assert (s.correlation_window_seconds, s.max_body_bytes, s.auto_resolve) == (300.0, 1_048_576, True)


def test_env_wins_over_file(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("correlation_window_seconds: 60\nmax_body_bytes: 2048\n")
    s = load_settings({"WATCHKEEPER_CONFIG": str(path), "WATCHKEEPER_MAX_BODY_BYTES": "4096"})
    assert (s.correlation_window_seconds, s.max_body_bytes) == (60.0, 4096)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCHKEEPER_CORRELATION_WINDOW_SECONDS": "-1"}, "correlation_window_seconds"),
        ({"WATCHKEEPER_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"WATCHKEEPER_NO_SUCH_THING": "1"}, "no_such_thing"),
        ({"WATCHKEEPER_CONFIG": "/nonexistent/wk.yaml"}, "cannot read config file"),
    ],
)
def test_errors_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings({}, path)


def test_watch_errors_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text(
        "watch:\n"
        "  prometheus:\n"
        "    - url: http://127.0.0.1:9090\n"
        "  watches:\n"
        "    - name: latency\n"
        "      query: up\n"
        "      direction: sideways\n"
        "    - name: errors\n"
        "      query: x\n"
        "      interval: soon\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings({}, path)
    text = str(err.value)
    assert f"{path}:7: watch.watches.0.direction" in text
    assert f"{path}:10: watch.watches.1.interval" in text


def test_watch_section_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text(
        "runbooks_dir: runbooks\n"
        "watch:\n"
        "  prometheus: [{url: 'http://127.0.0.1:9090/', bearer_token: s3cret}]\n"
        "  watches: [{name: lat, query: 'rate(x[1m])', direction: up, interval: 15s}]\n"
        "topology:\n"
        "  services: {checkout: {depends_on: [payment]}}\n"
    )
    s = load_settings({}, path)
    assert s.runbooks_dir == tmp_path / "runbooks"
    assert s.watch.endpoint(None).url == "http://127.0.0.1:9090"
    assert "s3cret" not in repr(s.watch)
    assert (s.watch.watches[0].interval, s.watch.watches[0].direction) == (15.0, "up")
    assert s.topology.edges() == [("checkout", "payment")]


def test_watches_need_an_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("watch:\n  watches: [{name: lat, query: up}]\n")
    with pytest.raises(ConfigError, match="at least one prometheus endpoint"):
        load_settings({}, path)
