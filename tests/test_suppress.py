"""Silences and flapping: muted alerts are kept and audited but open no incident."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from conftest import Api, Clock
from watchkeeper.cli import app
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.errors import InputError
from watchkeeper.model import Event, EventKind, Severity, Status
from watchkeeper.pipeline import Pipeline, State
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.suppress import FlapDetector, Silence, parse_matcher

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def ev(status: str, minute: float, fp: str = "f") -> Event:
    when = T0 + timedelta(minutes=minute)
    return Event("t", EventKind.ALERT, fp, Status(status), Severity.WARNING, "Down", "db", "",
                 {"service": "db", "alertname": "Down"}, "db down", when, when if status == "resolved" else None, when)


@pytest.mark.parametrize(("text", "labels", "hit"), [
    ('service="db"', {"service": "db"}, True), ('service!="db"', {"service": "db"}, False),
    ('severity=~"crit.*"', {"severity": "critical"}, True), ('severity!~"crit.*"', {"severity": "warning"}, True),
    ("team=ops", {}, False), ('team=""', {}, True),
])
def test_matchers(text: str, labels: dict[str, str], hit: bool) -> None:
    assert parse_matcher(text).matches(labels) is hit


@pytest.mark.parametrize("bad", ["no operator", 'x=~"([unclosed"', {"value": "x"}])
def test_bad_matchers(bad: Any) -> None:
    with pytest.raises(InputError):
        parse_matcher(bad)


def test_regex_matcher_is_linear_time_on_a_catastrophic_pattern() -> None:
    """Issue 12 item 21: ``(a+)+$`` against ``aaa…a!`` backtracks exponentially in Python's ``re``
    (this test would not finish); on RE2 the answer comes in one linear pass."""
    matcher = parse_matcher('instance=~"(a+)+$"')
    assert type(matcher.pattern).__module__.startswith("re2")  # the bounded-time engine, not ``re``
    crafted = {"instance": "a" * 50_000 + "!"}
    assert matcher.matches(crafted) is False
    assert parse_matcher('instance!~"(a+)+$"').matches(crafted) is True
    assert matcher.matches({"instance": "aaaa"}) is True


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)a", "(?<!x)y"])
def test_patterns_re2_cannot_run_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(InputError, match="RE2 syntax: no backreferences or lookaround"):
        parse_matcher({"name": "x", "value": pattern, "isRegex": True})


def test_a_redos_silence_does_not_hold_ingest(api: Api) -> None:
    admin, ingest = api.headers(Role.ADMIN), api.headers(Role.INGEST)
    ends = (api.service.clock() + timedelta(hours=1)).isoformat()
    r = api.client.post("/api/v1/silences", headers=admin,
                        json={"matchers": ['instance=~"(a+)+$"'], "ends_at": ends})
    assert r.status_code == 201
    event = {"summary": "slow?", "service": "web", "name": "Probe", "labels": {"instance": "a" * 200 + "!"}}
    assert api.client.post("/api/v1/ingest/events", headers=ingest, json=event).status_code == 202
    refused = api.client.post("/api/v1/silences", headers=admin,
                              json={"matchers": [r'x=~"(a)\1"'], "ends_at": ends})
    assert refused.status_code == 422 and "RE2 syntax" in refused.json()["error"]


def test_flapping_alert_is_held_then_released() -> None:
    ids = itertools.count(1)
    state = State()
    pipeline = Pipeline(PipelineConfig(flapping=FlapDetector(4, timedelta(minutes=10))), lambda: next(ids))
    for n, status in enumerate(["firing", "resolved", "firing", "resolved", "firing"]):
        pipeline.observe(ev(status, n), state)
    alert = state.alerts["f"]
    assert alert.held == "flapping" and [c.kind for c in state.changes].count("alert.held") == 1
    # refiring soon after its incident resolved reopens it (the same fault): one incident, not two
    assert len(state.incidents) == 1 and all(i.status.value == "resolved" for i in state.incidents.values())
    pipeline.observe(ev("firing", 20), state)  # quiet for 16 minutes: a repeat releases it
    assert alert.held is None and alert.incident_id == 2
    assert state.changes[-1].kind == "alert.released" and state.changes[-1].payload["was_held"] == "flapping"


def test_silenced_alert_opens_no_incident_until_the_silence_ends() -> None:
    state = State(silences=[Silence(9, (parse_matcher('service="db"'),), T0, T0 + timedelta(minutes=30), "alice",
                                    "planned failover")])
    ids = itertools.count(1)
    pipeline = Pipeline(PipelineConfig(), lambda: next(ids))
    pipeline.observe(ev("firing", 0), state)
    held = state.changes[-1]
    assert state.incidents == {} and held.kind == "alert.held" and "silence 9 by alice" in held.payload["detail"]
    pipeline.observe(ev("firing", 10), state)
    assert state.incidents == {} and [c.kind for c in state.changes].count("alert.held") == 1
    pipeline.observe(ev("firing", 31), state)
    assert state.alerts["f"].incident_id == 1


def test_silences_through_the_api(api: Api, clock: Clock) -> None:
    h = api.headers(Role.OPERATOR)
    ends = (clock.now + timedelta(hours=1)).isoformat()
    r = api.client.post("/api/v1/silences", headers=h,
                        json={"matchers": ['service="db"', {"name": "alertname", "value": "Do.*", "isRegex": True}],
                              "ends_at": ends, "comment": "upgrade"})
    assert r.status_code == 201 and r.json()["matchers"] == ['service="db"', 'alertname=~"Do.*"']
    body = {"service": "db", "name": "Down", "summary": "db down"}
    api.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                    headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    assert api.service.incidents() == []
    assert api.client.post("/api/v1/silences", headers=h, json={"matchers": ["x"], "ends_at": ends}).status_code == 422
    past = (clock.now - timedelta(hours=1)).isoformat()
    assert api.client.post("/api/v1/silences", headers=h,
                           json={"matchers": ['a="b"'], "ends_at": past}).status_code == 422
    silence_id = r.json()["id"]
    assert api.client.delete(f"/api/v1/silences/{silence_id}", headers=h).status_code == 204
    assert api.client.delete(f"/api/v1/silences/{silence_id}", headers=h).status_code == 404
    assert api.client.get("/api/v1/silences", headers=api.headers(Role.VIEWER)).json() == []
    clock.advance(seconds=1)
    api.client.post("/api/v1/ingest/events", content=orjson.dumps(body),
                    headers={**api.headers(Role.INGEST), "Content-Type": "application/json"})
    assert len(api.service.incidents()) == 1  # released by its next notification
    assert api.service.verify_audit().ok


def test_silences_cli(tmp_path: Any, make_service: Any, sqlite_url: str) -> None:
    wk: Watchkeeper = make_service(sqlite_url)
    del wk
    env = {"WATCHKEEPER_DATABASE_URL": sqlite_url, "COLUMNS": "200"}
    runner = CliRunner()
    added = runner.invoke(app, ["silences", "add", "--matcher", 'service="db"', "--duration", "2h",
                                "--comment", "maintenance"], env=env)
    assert added.exit_code == 0 and 'silence 1: service="db"' in added.stdout
    assert "maintenance" in runner.invoke(app, ["silences", "list"], env=env).stdout
    bad = runner.invoke(app, ["silences", "add", "--matcher", "nonsense"], env=env)
    assert bad.exit_code == 2 and "not a matcher" in bad.stderr
    assert runner.invoke(app, ["silences", "expire", "1"], env=env).exit_code == 0
    assert runner.invoke(app, ["silences", "expire", "1"], env=env).exit_code == 2


INHIBIT = """\
inhibit_rules:            # pasted from alertmanager.yml
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|info"']
    equal: [service]
  - source_match: {alertname: NodeDown}
    target_match_re: {alertname: ".+"}
    equal: [instance]
"""


def _am(name: str, service: str, severity: str, status: str = "firing", instance: str = "h1") -> bytes:
    labels = {"alertname": name, "service": service, "severity": severity, "instance": instance}
    alert = {"status": status, "labels": labels, "annotations": {"summary": name}, "fingerprint": f"{name}-{service}",
             "startsAt": "2026-11-22T06:00:00Z", "endsAt": "2026-11-22T06:10:00Z" if status == "resolved" else
             "0001-01-01T00:00:00Z"}
    return orjson.dumps({"version": "4", "status": status, "receiver": "wk", "groupKey": "g", "alerts": [alert]})


def test_inhibition_through_the_service(tmp_path: Any, make_service: Any, db_url: str, clock: Clock) -> None:
    config = tmp_path / "correlation.yaml"
    config.write_text(INHIBIT)
    wk: Watchkeeper = make_service(db_url, correlation_config=config)

    def send(body: bytes) -> None:
        wk.ingest("alertmanager", body, "application/json", "t")
        clock.advance(seconds=10)

    send(_am("DatabaseDown", "db", "critical"))
    send(_am("SlowQueries", "db", "warning"))           # inhibited: same service, critical firing
    send(_am("SlowPages", "web", "warning"))            # not inhibited: other service
    incidents = wk.incidents()
    assert sorted(i["services"][0] for i in incidents) == ["db", "web"]
    db_incident = next(i for i in incidents if i["services"] == ["db"])
    assert [a["fingerprint"] for a in db_incident["alerts"]] == ["DatabaseDown-db"]
    held = [t for t in wk.incident(db_incident["id"])["timeline"] if t["kind"] == "alert.held"]
    assert held == []  # the held alert's record is about the alert, not the incident
    with wk.db.read() as conn:
        import sqlalchemy as sa

        payload = conn.execute(sa.text("SELECT payload FROM audit_log WHERE kind = 'alert.held'")).scalar_one()
    assert "inhibited by firing DatabaseDown-db" in payload
    send(_am("DatabaseDown", "db", "critical", status="resolved"))
    send(_am("SlowQueries", "db", "warning"))           # the source resolved: released on its next notification
    slow = [i for i in wk.incidents() if any(a["fingerprint"] == "SlowQueries-db" for a in i["alerts"])]
    assert len(slow) == 1 and slow[0]["alerts"][-1]["fingerprint"] == "SlowQueries-db"
    assert wk.verify_audit().ok


def test_inhibit_rule_errors_name_the_file(tmp_path: Any) -> None:
    from watchkeeper.correlate.config import load_config
    from watchkeeper.errors import ConfigError

    path = tmp_path / "correlation.yaml"
    path.write_text("inhibit_rules:\n  - equal: [service]\n")
    with pytest.raises(ConfigError, match=r"correlation\.yaml:1: inhibit_rules: inhibit rule 0: no source matchers"):
        load_config(path)


def test_replay_applies_the_same_config(tmp_path: Any) -> None:
    config = tmp_path / "correlation.yaml"
    config.write_text(INHIBIT)
    src = tmp_path / "storm.jsonl"
    src.write_bytes(b"\n".join([_am("DatabaseDown", "db", "critical"), _am("SlowQueries", "db", "warning")]) + b"\n")
    result = CliRunner().invoke(app, ["replay", str(src), "--correlation", str(config)])
    assert result.exit_code == 0, result.stderr
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [[a["fingerprint"] for a in r["alerts"]] for r in records] == [["DatabaseDown-db"]]
