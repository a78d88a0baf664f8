"""Routing: table-driven matches, Alertmanager's first-match-unless-continue, per-target events,
bad routes refused at start-up, and ``watchkeeper routes test``."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.errors import ConfigError, InputError
from watchkeeper.integrations.base import EventKind
from watchkeeper.integrations.routing import Facts, Route, Router

ALL = set(EventKind)
ROUTES = [
    {"match": {"service": ["checkout", "payments"], "severity": ["critical"]}, "to": ["pager"], "continue": True},
    {"match": {"labels": ['team="data"', 'env=~"prod.*"']}, "to": ["data-mail"], "events": ["opened", "resolved"]},
    {"match": {"severity": ["critical", "error"]}, "to": ["chat"]},
    {"to": ["catch-all"]},
]
ROUTER = Router([Route.model_validate(r) for r in ROUTES],
                {"pager": {EventKind.OPENED, EventKind.ACKNOWLEDGED, EventKind.RESOLVED}, "data-mail": ALL,
                 "chat": ALL, "catch-all": ALL})


@pytest.mark.parametrize(("services", "severity", "labels", "event", "expected"), [
    (("checkout",), "critical", (), EventKind.OPENED, ["pager", "chat"]),  # continue: true, then the next hit
    (("checkout",), "critical", (), EventKind.CAUSES, ["chat"]),  # the pager does not take re-rankings
    (("checkout",), "warning", (), EventKind.OPENED, ["catch-all"]),
    (("db",), "warning", ({"team": "data", "env": "prod-eu"},), EventKind.OPENED, ["data-mail"]),
    (("db",), "warning", ({"team": "data", "env": "prod-eu"},), EventKind.ACKNOWLEDGED, ["catch-all"]),
    (("db",), "warning", ({"team": "data", "env": "staging"},), EventKind.OPENED, ["catch-all"]),
    (("db",), "warning", ({"team": "data"}, {"env": "production"}), EventKind.OPENED, ["data-mail"]),  # any alert
    (("db", "payments"), "critical", (), EventKind.RESOLVED, ["pager", "chat"]),  # any of its services
    ((), "error", (), EventKind.OPENED, ["chat"]),
])
def test_targets(services: tuple[str, ...], severity: str, labels: tuple[dict[str, str], ...], event: EventKind,
                 expected: list[str]) -> None:
    assert ROUTER.targets(Facts(services, severity, labels), event) == expected


def test_explain_says_why() -> None:
    hits = ROUTER.explain(Facts(("checkout",), "critical"))
    assert [(h.index, h.reason) for h in hits] == [
        (0, "matches service checkout, severity critical"), (2, "matches severity critical")]
    assert ROUTER.explain(Facts(("x",), "info"))[0].reason == "matches everything (no matchers)"


def test_unknown_targets_are_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="unknown integration targets: nope"):
        Router([Route(to=["nope"])], {"chat": ALL})


@pytest.mark.parametrize("route", [
    {"to": []},
    {"to": ["a"], "match": {"severity": ["fatal"]}},
    {"to": ["a"], "match": {"labels": ['env=~"(a)\\1"']}},  # no backreferences (RE2)
    {"to": ["a"], "match": {"labels": ["not a matcher"]}},
    {"to": ["a"], "events": ["exploded"]},
    {"to": ["a"], "surprise": 1},
])
def test_invalid_routes_say_why(route: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Route.model_validate(route)


@pytest.mark.parametrize("doc", [{"service": 3}, {"labels": "x"}, {"severity": "fatal"}])
def test_invalid_samples_say_why(doc: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Facts.sample(doc)


def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(yaml.safe_dump({
        "integrations": {"targets": {
            "pager": {"type": "pagerduty", "routing_key": "R0123456789abcdef"},
            "chat": {"type": "webhook", "url": "https://hooks.example.com/x", "secret": "s3cr3t-value"}}},
        "routes": [{"match": {"severity": ["critical"]}, "to": ["pager"], "continue": True}, {"to": ["chat"]}]}))
    return path


def test_routes_test_cli(tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["routes", "test", str(path), "--service", "checkout", "--severity", "critical",
                                 "--json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert [r["targets"] for r in doc["routes"]] == [["pager"], ["chat"]]
    assert doc["events"]["opened"] == ["pager", "chat"] and doc["events"]["causes"] == ["chat"]
    sample = tmp_path / "incident.yaml"
    sample.write_text("service: db\nseverity: info\nlabels: {team: data}\n")
    table = runner.invoke(app, ["routes", "test", str(path), "--incident", str(sample)])
    assert table.exit_code == 0 and "#2" in table.stdout and "chat" in table.stdout and "pager" not in table.stdout


@pytest.mark.parametrize(("content", "args", "message"), [
    ("routes: [{to: [ghost]}]\n", [], "unknown integration targets: ghost"),
    ("routes:\n  - to: [a]\n    match: {severity: [fatal]}\n", [], "watchkeeper.yaml:3"),
    ("routes: []\n", ["--label", "novalue"], "expected name=value"),
    ("routes: []\n", ["--severity", "fatal"], "'severity' must be one of"),
])
def test_routes_test_exit_2_with_a_sentence(tmp_path: Path, content: str, args: list[str], message: str) -> None:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(content)
    result = CliRunner().invoke(app, ["routes", "test", str(path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")


def test_no_secret_in_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    path.write_text(yaml.safe_dump({"integrations": {"targets": {
        "p": {"type": "pagerduty", "routing_key": "R0uting-S3cret-XYZ", "retries": "many"}}}}))
    result = CliRunner().invoke(app, ["routes", "test", str(path)])
    assert result.exit_code == 2 and "retries" in result.output and "R0uting-S3cret-XYZ" not in result.output
