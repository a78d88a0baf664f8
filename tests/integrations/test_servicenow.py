"""ServiceNow end to end against a local stand-in of its Table API: create, update, resolve on
the wire as documented; auth (basic, OAuth); injected failures; changes made there come back
(business-rule call and polling) once, and our own updates never come back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from conftest import Clock
from integrations.itsm_standins import ServiceNow
from watchkeeper.integrations.config import IntegrationsConfig
from watchkeeper.integrations.itsm_runtime import Itsm
from watchkeeper.integrations.routing import Route
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.lifecycle import Action
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as outbox_store

PASSWORD = "s3cret-pass"
GROUP = "8a5055c9c61122780043563ef53438e3"


@pytest.fixture
def sn(clock: Clock) -> Iterator[ServiceNow]:
    stand = ServiceNow(clock=clock).start()
    yield stand
    stand.stop()


def target(sn: ServiceNow, **extra: Any) -> dict[str, Any]:
    return {"type": "servicenow", "instance_url": sn.url, "username": "wk.integration", "password": PASSWORD,
            "assignment_group": GROUP, "timeout_seconds": 2, "poll": False, **extra}


@pytest.fixture
def make(make_service: Callable[..., Watchkeeper], sqlite_url: str, sn: ServiceNow
         ) -> Iterator[Callable[..., tuple[Watchkeeper, Integrations, Itsm]]]:
    made: list[Integrations] = []

    def build(url: str | None = None, **extra: Any) -> tuple[Watchkeeper, Integrations, Itsm]:
        config = IntegrationsConfig.model_validate({"targets": {"snow": target(sn, **extra)}})
        wk = make_service(url or sqlite_url, integrations=config, routes=[Route.model_validate({"to": ["snow"]})])
        integrations = Integrations(wk, sleep=lambda _s: None)
        made.append(integrations)
        return wk, integrations, Itsm(wk.db, wk.clock, config, integrations.notifiers)

    yield build
    for integrations in made:
        integrations.stop()


def ingest(wk: Watchkeeper, severity: str = "critical") -> int:
    body = orjson.dumps({"service": "checkout", "name": "HighErrorRate", "summary": "5xx above 5%",
                         "severity": severity})
    return wk.ingest("events", body, "application/json", "token:test").opened[0]


def ref(wk: Watchkeeper, incident_id: int) -> dict[str, Any]:
    with wk.db.read() as conn:
        found = outbox_store.get_ref(conn, "snow", incident_id)
    assert found is not None
    return found


def inbound_kinds(wk: Watchkeeper, incident_id: int) -> list[str]:
    with wk.db.read() as conn:
        return [r.kind for r in audit.records(conn, subject=f"incident:{incident_id}")
                if r.payload.get("via") == "servicenow"]


def test_create_update_resolve_on_the_wire(make: Callable[..., Any], sn: ServiceNow) -> None:
    wk, integrations, _ = make()
    incident = ingest(wk)
    assert integrations.delivery.drain() == 1
    [post] = sn.calls("POST", "/api/now/table/incident$")
    body = post.json()
    assert post.headers["accept"] == "application/json" and post.headers["content-type"] == "application/json"
    assert post.headers["authorization"].startswith("Basic ")
    assert body["short_description"] == f"[Watchkeeper {incident}] 5xx above 5%"
    assert (body["impact"], body["urgency"], body["assignment_group"]) == ("1", "1", GROUP)
    assert body["correlation_id"] == f"watchkeeper:{incident}"
    assert body["work_notes"].startswith("[Watchkeeper]\n") and "incident.opened" in body["work_notes"]
    found = ref(wk, incident)
    record = sn.incidents[found["sys_id"]]
    assert found["number"] == record["number"] and record["state"] == "1"

    wk.act(incident, Action.ACKNOWLEDGE, "token:alice", "on it")
    wk.act(incident, Action.RESOLVE, "token:alice", "rolled back v42")
    assert integrations.delivery.drain() == 2
    ack, resolve = (s.json() for s in sn.calls("PATCH", found["sys_id"]))
    assert ack["state"] == "2" and "on it" in ack["work_notes"] and "impact" not in ack
    assert resolve["state"] == "6" and resolve["close_code"] == "Solution provided"
    assert f"incident {incident}" in resolve["close_notes"] and "rolled back v42" in resolve["work_notes"]
    assert record["state"] == "6" and ref(wk, incident)["sent"]["state"] == "6"
    assert [j["element_id"] for j in sn.journal] == [found["sys_id"]] * 3


def test_oauth_client_credentials(make: Callable[..., Any], sn: ServiceNow) -> None:
    sn.clients["wk-client"] = "c1ient-s3cret-value"
    wk, integrations, _ = make(username=None, password=None, client_id="wk-client",
                               client_secret="c1ient-s3cret-value")
    ingest(wk)
    assert integrations.delivery.drain() == 1
    [token] = sn.calls("POST", "/oauth_token.do")
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    [post] = sn.calls("POST", "/api/now/table/incident$")
    assert post.headers["authorization"] == f"Bearer {next(iter(sn.tokens))}"
    sn.tokens.clear()  # revoked there: one new token, then the call goes through
    wk.act(1, Action.ACKNOWLEDGE, "token:alice")
    assert integrations.delivery.drain() == 1
    assert len(sn.calls("POST", "/oauth_token.do")) == 2
    assert sn.calls("PATCH")[-1].headers["authorization"] == f"Bearer {next(iter(sn.tokens))}"


def test_wrong_password_is_dead_at_once_and_never_shown(make: Callable[..., Any], sn: ServiceNow) -> None:
    sn.users["wk.integration"] = "another"
    wk, integrations, _ = make()
    ingest(wk)
    integrations.delivery.drain()
    with wk.db.read() as conn:
        [message] = outbox_store.messages(conn)
    assert message["status"] == "dead" and "HTTP 401" in message["last_error"]
    assert len(sn.requests) == 1  # the first call (the look-up before creating) got a 401: not retried
    with wk.db.read() as conn:
        assert all(PASSWORD not in orjson.dumps(r.payload).decode() for r in audit.records(conn))
    assert PASSWORD not in message["last_error"]


@pytest.mark.parametrize("fault", [500, (429, 1), "reset", ("slow", 3)])
def test_injected_failures_are_retried(make: Callable[..., Any], sn: ServiceNow, fault: Any) -> None:
    wk, integrations, _ = make()
    ingest(wk)
    sn.faults.append(fault)
    assert integrations.delivery.drain() == 1
    notifier = integrations.notifiers["snow"]
    assert len(sn.incidents) == 1  # a retried create (after a reset or a timeout) finds its ticket
    if fault == (429, 1):
        assert notifier.http.waits and notifier.http.waits[0] >= 1.0  # type: ignore[attr-defined]
    with wk.db.read() as conn:
        assert [m["status"] for m in outbox_store.messages(conn)] == ["delivered"]


def test_a_ticket_made_before_a_crash_is_found_not_made_again(make: Callable[..., Any], sn: ServiceNow) -> None:
    wk, integrations, _ = make()
    incident = ingest(wk)
    with sn.lock:  # the create went through, then the server died before storing the sys_id
        sn.incidents["a" * 32] = {"sys_id": "a" * 32, "number": "INC0000042", "state": "1", "impact": "1",
                                  "urgency": "1", "correlation_id": f"watchkeeper:{incident}", "sys_mod_count": "0",
                                  "sys_updated_by": "wk.integration", "sys_updated_on": sn.stamp()}
    assert integrations.delivery.drain() == 1
    assert len(sn.incidents) == 1 and ref(wk, incident)["sys_id"] == "a" * 32


def test_our_own_updates_never_come_back(make: Callable[..., Any], sn: ServiceNow, clock: Clock) -> None:
    wk, integrations, itsm = make()
    incident = ingest(wk)
    wk.act(incident, Action.ACKNOWLEDGE, "token:alice", "on it")
    wk.act(incident, Action.RESOLVE, "token:alice")
    integrations.delivery.drain()
    with wk.db.read() as conn:
        before = [r.seq for r in audit.records(conn)]
    assert itsm.servicenow["snow"].poll() == 0
    sys_id = ref(wk, incident)["sys_id"]
    # the business rule fires on our own update too (a rule without the usual condition)
    assert itsm.servicenow["snow"].receive([sn.incidents[sys_id]]) == []  # seen as our echo: no change at all
    with wk.db.read() as conn:
        after = [r.seq for r in audit.records(conn)]
    assert before == after  # not one change, comment or audit record from our own updates


def test_a_change_there_comes_back_once_by_poll_and_rule(make: Callable[..., Any], sn: ServiceNow,
                                                        clock: Clock) -> None:
    wk, integrations, itsm = make()
    incident = ingest(wk)
    integrations.delivery.drain()
    sys_id = ref(wk, incident)["sys_id"]
    clock.advance(minutes=1)
    changed = sn.human(sys_id, "beth.anglin", state="2", assigned_to="Beth Anglin", work_notes="looking at the pool")
    sync = itsm.servicenow["snow"]
    # the business rule's call: the record, with the newest work note (current.work_notes.getJournalEntry(1))
    pushed = sync.receive([{**changed, "work_notes": "looking at the pool"}])
    assert {r.outcome.value for r in pushed} == {"applied"}
    assert sync.poll() == 0  # the poll sees the same changes: already applied
    view = wk.incident(incident)
    assert view["status"] == "acknowledged" and view["assignee"] == "Beth Anglin"
    assert sorted(inbound_kinds(wk, incident)) == ["incident.acknowledged", "incident.assigned",
                                                   "incident.commented"]
    acked = next(e for e in view["timeline"] if e["kind"] == "incident.acknowledged")
    assert acked["actor"] == "servicenow:beth.anglin"
    # delivering the resulting messages sends nothing back to ServiceNow
    patches = len(sn.calls("PATCH"))
    integrations.delivery.drain()
    assert len(sn.calls("PATCH")) == patches
    # resolved there later, seen by polling only (the rule's call was lost)
    clock.advance(minutes=1)
    sn.human(sys_id, "beth.anglin", state="6", close_code="Solution provided", close_notes="pool resized")
    assert sync.poll() == 1
    assert wk.incident(incident)["status"] == "resolved"
    assert sync.poll() == 0


def test_work_notes_from_the_journal_by_polling(make: Callable[..., Any], sn: ServiceNow, clock: Clock) -> None:
    wk, integrations, itsm = make()
    incident = ingest(wk)
    integrations.delivery.drain()
    sys_id = ref(wk, incident)["sys_id"]
    clock.advance(minutes=1)
    sn.human(sys_id, "beth.anglin", work_notes="DBA engaged")
    assert itsm.servicenow["snow"].poll() == 1
    comments = [e["text"] for e in wk.incident(incident)["timeline"] if e["kind"] == "incident.commented"]
    assert comments == ["DBA engaged"]  # and not our own "[Watchkeeper]" note


def test_a_ticket_we_did_not_make_changes_nothing(make: Callable[..., Any], sn: ServiceNow, clock: Clock) -> None:
    wk, _integrations, itsm = make()
    incident = ingest(wk)
    forged = {"sys_id": "b" * 32, "number": "INC0099999", "state": "6", "correlation_id": f"watchkeeper:{incident}",
              "sys_mod_count": "1", "sys_updated_by": "mallory", "sys_updated_on": "2026-11-22 06:00:00"}
    [result] = itsm.servicenow["snow"].receive([forged])
    assert result.outcome.value == "unlinked"
    assert wk.incident(incident)["status"] == "open"


# -- the inbound endpoint ------------------------------------------------------------------------
@pytest.fixture
def client(make: Callable[..., Any]) -> Iterator[tuple[TestClient, Watchkeeper, Integrations]]:
    wk, _integrations, _ = make()
    app = create_app(wk, upgrade=False, responder=False, watch=False, rank=False)
    with TestClient(app) as c:
        yield c, wk, app.state.integrations


def test_inbound_endpoint(client: tuple[TestClient, Watchkeeper, Integrations], sn: ServiceNow,
                          clock: Clock) -> None:
    c, wk, integrations = client
    incident = ingest(wk)
    integrations.delivery.drain()
    sys_id = ref(wk, incident)["sys_id"]
    changed = sn.human(sys_id, "beth.anglin", state="6", close_code="Solution provided", close_notes="fixed")
    operator = {"Authorization": f"Bearer {wk.create_token(Role.OPERATOR, 'snow-rule', 'test')}"}
    url = "/api/v1/integrations/servicenow/inbound"
    got = c.post(url, json=changed, headers=operator)
    assert got.status_code == 200, got.text
    assert got.json()["applied"] == 1 and got.json()["results"][0]["incident"] == incident
    again = c.post(url, json={"records": [changed]}, headers=operator)
    assert again.json()["applied"] == 0 and again.json()["results"][0]["outcome"] == "duplicate"
    viewer = {"Authorization": f"Bearer {wk.create_token(Role.VIEWER, 'v', 'test')}"}
    assert c.post(url, json=changed, headers=viewer).status_code == 403
    assert c.post(url, json=changed).status_code == 401
    assert c.post(url + "?target=other", json=changed, headers=operator).status_code == 404
    metrics = c.get("/metrics").text
    assert 'watchkeeper_itsm_inbound_changes_total{outcome="applied",target="snow"} 1.0' in metrics
    assert 'watchkeeper_itsm_inbound_changes_total{outcome="duplicate",target="snow"} 1.0' in metrics


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400), (b"[]", 422), (b'"text"', 422), (b'{"records": []}', 422),
    (b'{"records": [1, 2]}', 422), (orjson.dumps({"records": [{}] * 101}), 422),
    (b'{"sys_id": {"$gt": ""}, "state": [6]}', 200), (b"{" + b'"a": "' + b"x" * (1024 * 1024) + b'"}', 413),
])
def test_hostile_inbound_bodies(client: tuple[TestClient, Watchkeeper, Integrations], body: bytes,
                                status: int) -> None:
    c, wk, _ = client
    operator = {"Authorization": f"Bearer {wk.create_token(Role.OPERATOR, 'snow-rule', 'test')}",
                "Content-Type": "application/json"}
    got = c.post("/api/v1/integrations/servicenow/inbound", content=body, headers=operator)
    assert got.status_code == status, got.text
    if status >= 400:
        assert set(got.json()) == {"error", "status"}


def test_keys_of_applied_changes_are_forgotten_after_30_days(make: Callable[..., Any], sn: ServiceNow,
                                                             clock: Clock) -> None:
    from watchkeeper.storage import itsm as store

    wk, integrations, itsm = make()
    incident = ingest(wk)
    integrations.delivery.drain()
    changed = sn.human(ref(wk, incident)["sys_id"], "beth.anglin", state="2")
    [applied] = itsm.servicenow["snow"].receive([changed])
    clock.advance(days=29)
    itsm.prune()
    with wk.db.read() as conn:
        assert store.seen(conn, "servicenow", applied.change.key)
    clock.advance(days=2)
    itsm.prune()
    with wk.db.read() as conn:
        assert not store.seen(conn, "servicenow", applied.change.key)


def test_polling_reads_on_where_a_truncated_read_stopped(make: Callable[..., Any], sn: ServiceNow, clock: Clock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from watchkeeper.integrations.servicenow import sync as sync_module

    monkeypatch.setattr(sync_module, "NOTES", 2)
    wk, integrations, itsm = make()
    incident = ingest(wk)
    integrations.delivery.drain()
    sys_id = ref(wk, incident)["sys_id"]
    for n in range(3):
        clock.advance(seconds=1)
        sn.human(sys_id, "beth.anglin", work_notes=f"note {n}")
    with sn.lock:  # a ticket whose correlation id names no incident of ours, with a note: skipped
        sn.incidents["c" * 32] = {"sys_id": "c" * 32, "number": "INC0000777", "state": "2",
                                  "correlation_id": "watchkeeper:abc", "sys_mod_count": "1",
                                  "sys_updated_by": "bob", "sys_updated_on": sn.stamp()}
        sn.journal.append({"sys_id": "d" * 32, "name": "incident", "element": "work_notes", "element_id": "c" * 32,
                           "value": "not ours", "sys_created_by": "bob", "sys_created_on": sn.stamp()})
    sync = itsm.servicenow["snow"]
    applied = [sync.poll() for _ in range(4)]
    assert sum(applied) == 3 and applied[-1] == 0
    comments = [e["text"] for e in wk.incident(incident)["timeline"] if e["kind"] == "incident.commented"]
    assert comments == ["note 0", "note 1", "note 2"]


def test_round_trip_on_postgresql(make: Callable[..., Any], sn: ServiceNow, clock: Clock, pg_url: str) -> None:
    wk, integrations, itsm = make(pg_url)
    incident = ingest(wk)
    integrations.delivery.drain()
    sys_id = ref(wk, incident)["sys_id"]
    clock.advance(minutes=1)
    sn.human(sys_id, "beth.anglin", state="6", close_code="Solution provided", close_notes="fixed there",
             work_notes="fixed there")
    assert itsm.servicenow["snow"].poll() == 2  # resolved, and the note
    assert itsm.servicenow["snow"].poll() == 0
    assert wk.incident(incident)["status"] == "resolved"
    integrations.delivery.drain()
    assert sn.incidents[sys_id]["sys_updated_by"] == "beth.anglin"  # nothing went back
