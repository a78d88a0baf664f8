"""Hand-made hostile requests, on SQLite and PostgreSQL: each gets the 4xx it deserves, never a
5xx, and a refused ingest body is kept as a dead letter (issue 12 items 17, 18, 19)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from conftest import Api
from fixtures.alertmanager import am_alert, am_webhook
from watchkeeper.service import Role
from watchkeeper.sources.limits import FIELD_LIMITS, MAX_JSON_DEPTH
from watchkeeper.storage import tables

EARLY = "0001-01-01T00:00:00+01:00"  # 31 Dec of year 0 in UTC
LATE = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC
BIG = 2**63
PG_BIG = 2**31


def nested(levels: int, leaf: str = '"x"') -> str:
    """JSON text of ``levels`` nested objects (as text: orjson itself encodes only 254 levels)."""
    return '{"k": ' * levels + leaf + "}" * levels


def am(*, deep: str | None = None, **change: Any) -> bytes:
    """An Alertmanager body with one alert changed (``deep``: raw JSON text of an extra field)."""
    alert = am_alert("Down", "db")
    alert["labels"].update(change.pop("labels", {}))
    alert.update(change)
    if deep is not None:
        alert["extra"] = "DEEP"
    return orjson.dumps(am_webhook(alert)).replace(b'"DEEP"', (deep or "").encode())


def grafana(starts: str) -> bytes:
    body = am_webhook(am_alert("Down", "db", starts=starts))
    body.update(orgId=1, title="t", state="alerting", message="m")
    return orjson.dumps(body)


def raw_json(text: str) -> bytes:
    return text.encode()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None
    status: int
    says: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def dead_letter(self) -> bool:
        return self.path.startswith("/api/v1/ingest/")


AM, EV = "/api/v1/ingest/alertmanager", "/api/v1/ingest/events"
INC = "/api/v1/incidents/1"
CASES = [
    # -- times that leave years 1-9999 once converted to UTC (item 19) ----------------------
    Case("alertmanager startsAt early", "POST", AM, am(startsAt=EARLY), 422, "outside the years"),
    Case("alertmanager startsAt late", "POST", AM, am(startsAt=LATE), 422, "outside the years"),
    Case("alertmanager endsAt late", "POST", AM, am(endsAt=LATE), 422, "outside the years"),
    Case("grafana startsAt early", "POST", "/api/v1/ingest/grafana", grafana(EARLY), 422, "outside the years"),
    Case("native starts_at early", "POST", EV,
         orjson.dumps({"service": "db", "summary": "s", "starts_at": EARLY}), 422, "outside the years"),
    Case("pagerduty timestamp late", "POST", "/api/v1/ingest/pagerduty", orjson.dumps(
        {"routing_key": "k", "event_action": "trigger",
         "payload": {"summary": "s", "source": "db", "severity": "error", "timestamp": LATE}}), 422),
    Case("incidents since early", "GET", f"/api/v1/incidents?since={EARLY.replace('+', '%2B')}", None, 422),
    Case("kpis from early", "GET", f"/api/v1/kpis?from={EARLY.replace('+', '%2B')}", None, 422),
    Case("kpis to late", "GET", f"/api/v1/kpis?to={LATE}", None, 422),
    Case("silence ends late", "POST", "/api/v1/silences",
         orjson.dumps({"matchers": ['a="b"'], "ends_at": LATE}), 422, "outside the years"),
    # -- deep JSON (item 19): decoded to 1,024 levels, encoded only to 254 -------------------
    *[Case(f"ingest extra field {n} levels deep", "POST", AM, am(deep=nested(n)), 422,
           f"deeper than {MAX_JSON_DEPTH}") for n in (MAX_JSON_DEPTH, 254, 300, 1000)],
    Case("NUL 400 levels deep", "POST", AM, am(deep=nested(400, '"a\\u0000b"')), 422),
    Case("cause evidence 300 levels deep", "PUT", f"{INC}/causes", raw_json(
        '{"causes": [{"component": "db", "confidence": 0.5, "evidence": ' + nested(300) + "}]}"), 422, "deeper than"),
    Case("cause evidence 10,000 levels deep", "PUT", f"{INC}/causes", raw_json(
        '{"causes": [{"component": "db", "confidence": 0.5, "evidence": ' + nested(10_000) + "}]}"),
        400, "malformed JSON"),
    # -- numbers JSON cannot hold (item 19) --------------------------------------------------
    Case("cause score NaN", "PUT", f"{INC}/causes",
         raw_json('{"causes": [{"component": "db", "confidence": 0.5, "score": NaN}]}'), 400, "malformed JSON"),
    Case("cause score Infinity", "PUT", f"{INC}/causes",
         raw_json('{"causes": [{"component": "db", "confidence": 0.5, "score": Infinity}]}'), 400),
    Case("cause score 1e400", "PUT", f"{INC}/causes",
         raw_json('{"causes": [{"component": "db", "confidence": 0.5, "score": 1e400}]}'), 400),
    # -- ids and offsets beyond the id columns (item 19) ------------------------------------
    Case("incident id 2**63", "GET", f"/api/v1/incidents/{BIG}", None, 422),
    Case("incident id 2**31", "GET", f"/api/v1/incidents/{PG_BIG}", None, 422),
    Case("incident id 0", "GET", "/api/v1/incidents/0", None, 422),
    Case("offset 2**63", "GET", f"/api/v1/incidents?offset={BIG}", None, 422),
    Case("offset 2**31", "GET", f"/api/v1/incidents?offset={PG_BIG}", None, 422),
    Case("merge into 2**40", "POST", f"{INC}/merge", orjson.dumps({"into": 2**40}), 422),
    Case("move to 2**63", "POST", "/api/v1/alerts/abc/move", orjson.dumps({"incident": BIG}), 422),
    Case("run on incident 2**31", "POST", "/api/v1/runbooks/x/run", orjson.dumps({"incident": PG_BIG}), 422),
    Case("approve 2**63", "POST", f"/api/v1/approvals/{BIG}/approve", None, 422),
    Case("expire silence 2**31", "DELETE", f"/api/v1/silences/{PG_BIG}", None, 422),
    # -- NUL characters outside ingest (item 19: PostgreSQL text cannot hold them) ----------
    Case("comment with NUL", "POST", f"{INC}/comments", orjson.dumps({"text": "a\x00b"}), 422, "NUL"),
    Case("assign with NUL", "POST", f"{INC}/assign", orjson.dumps({"assignee": "a\x00b"}), 422, "NUL"),
    Case("acknowledge with NUL", "POST", f"{INC}/acknowledge", orjson.dumps({"comment": "\x00"}), 422, "NUL"),
    Case("silence comment with NUL", "POST", "/api/v1/silences",
         orjson.dumps({"matchers": ['a="b"'], "ends_at": "2030-01-01T00:00:00Z", "comment": "\x00"}), 422),
    Case("cause component with NUL", "PUT", f"{INC}/causes",
         orjson.dumps({"causes": [{"component": "d\x00b", "confidence": 0.5}]}), 422, "NUL"),
    Case("key with NUL", "PUT", f"{INC}/causes",
         orjson.dumps({"causes": [{"component": "db", "confidence": 0.5, "evidence": {"\x00": 1}}]}), 422),
    Case("move alert %00", "POST", "/api/v1/alerts/a%00b/move", orjson.dumps({"incident": 1}), 422, "NUL"),
    Case("query with %00", "GET", "/api/v1/incidents?service=a%00b", None, 422, "NUL"),
    # -- an integer beyond 64 bits (the spec's maximum; schemathesis sent one) ------------------
    Case("truncatedAlerts beyond 64 bits", "POST", AM,
         am().replace(b'"truncatedAlerts":0', b'"truncatedAlerts":269646261298559909888'), 422, "truncatedAlerts"),
    # -- a query parameter given twice is refused, not silently taken from one of its values -
    Case("incidents status twice", "GET", "/api/v1/incidents?status=open&status=resolved", None, 422,
         "given more than once"),
    Case("changes service twice", "GET", "/api/v1/changes?service=a&service=b", None, 422, "given more than once"),
    # -- lengths beyond the columns, for every source (item 18) -------------------------------
    Case("instance label 300 chars", "POST", AM, am(labels={"instance": "i" * 300}), 422, "label 'instance'"),
    Case("alertname 300 chars", "POST", AM, am(labels={"alertname": "n" * 300}), 422, "name (label 'alertname')"),
    Case("service label 300 chars", "POST", AM, am(labels={"service": "s" * 300}), 422, "service"),
    Case("fingerprint 300 chars", "POST", AM, am(fingerprint="f" * 300), 422, "fingerprint"),
    Case("native resource 300 chars", "POST", EV,
         orjson.dumps({"service": "db", "summary": "s", "resource": "r" * 300}), 422),
    Case("pagerduty source 300 chars", "POST", "/api/v1/ingest/pagerduty", orjson.dumps(
        {"routing_key": "k", "event_action": "trigger",
         "payload": {"summary": "s", "source": "h" * 300, "severity": "error"}}), 422, "service"),
    # -- one size limit for every route (item 17) --------------------------------------------
    Case("cause evidence over the body limit", "PUT", f"{INC}/causes", orjson.dumps(
        {"causes": [{"component": "db", "confidence": 0.5, "evidence": {"blob": "x" * 1_100_000}}]}),
        413, "exceeds the limit"),
    Case("comment over the body limit", "POST", f"{INC}/comments",
         orjson.dumps({"text": "y" * 1_100_000}), 413, "max_body_bytes"),
]


@pytest.fixture
def armed(api: Api) -> Api:
    """An API with incident 1 open (so routes on it reach their handler)."""
    body = am_webhook(am_alert("Up", "web"))
    assert api.client.post(AM, json=body, headers=api.headers(Role.INGEST)).status_code == 202
    return api


def test_hostile_requests_get_a_4xx_never_a_5xx(armed: Api) -> None:
    api = armed
    admin = api.headers(Role.ADMIN)
    ingest = api.headers(Role.INGEST)
    answers: dict[str, tuple[int, str]] = {}
    for case in CASES:
        headers = {**(ingest if case.dead_letter else admin), "Content-Type": "application/json", **case.headers}
        before = len(api.service.dead_letters(1000))
        r = api.client.request(case.method, case.path, content=case.body, headers=headers)
        answers[case.name] = (r.status_code, r.text[:200])
        if r.status_code >= 400:
            assert r.json()["status"] == r.status_code, case.name  # the project's error shape
        if case.says:
            assert case.says in r.text, (case.name, r.text[:300])
        if case.dead_letter:
            assert len(api.service.dead_letters(1000)) == before + 1, f"{case.name}: no dead letter kept"
    wrong = {name: got for name, got in answers.items()
             if got[0] != next(c.status for c in CASES if c.name == name)}
    assert not wrong, wrong
    # the server is still whole: a normal body is accepted and the audit chain holds
    fine = am_webhook(am_alert("Down", "db"))
    assert api.client.post(AM, json=fine, headers=ingest).status_code == 202
    assert api.service.verify_audit().ok


def test_field_limits_match_the_columns() -> None:
    """The edge's limits are the columns' sizes: a change to one must change the other."""
    for name, limit in FIELD_LIMITS.items():
        for table in (tables.events, tables.alerts):
            column = table.c.get(name)
            if column is not None:
                assert column.type.length == limit, (table.name, name)  # type: ignore[attr-defined]


def test_a_405_lists_every_method_of_the_path(api: Api) -> None:
    r = api.client.request("PATCH", "/api/v1/silences", headers=api.headers(Role.ADMIN))
    assert r.status_code == 405 and r.json()["status"] == 405
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


def test_ids_beyond_the_id_columns_name_nothing_from_the_cli_too(api: Api) -> None:
    """The CLI reaches the service without the API's range checks: an id PostgreSQL's INTEGER cannot
    hold names no incident, silence or token (no database error)."""
    from watchkeeper.errors import NotFound
    from watchkeeper.lifecycle import Action

    wk = api.service
    for bad in (2**31, 2**63, 0, -1):
        with pytest.raises(NotFound):
            wk.incident(bad)
        with pytest.raises(NotFound):
            wk.act(bad, Action.ACKNOWLEDGE, "cli:test")
        with pytest.raises(NotFound):
            wk.expire_silence(bad, "cli:test")
        assert wk.revoke_token(bad, "cli:test") is False
