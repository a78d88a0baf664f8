"""The outbox: enqueued in the change's transaction, delivered in order per incident and target,
retried with backoff, dead-lettered, retried by hand, visible by API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from conftest import Api, Clock
from integrations.standins import Fault, StandIn
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as store


def alert(service: str = "checkout", severity: str = "critical", name: str = "HighLatency") -> bytes:
    return orjson.dumps({"service": service, "name": name, "summary": f"{name} on {service}",
                         "severity": severity})


def ingest(wk: Watchkeeper, **kw: Any) -> int:
    result = wk.ingest("events", alert(**kw), "application/json", "test")
    return result.incidents[0]


def test_a_change_and_its_messages_commit_together(routed_any: Callable[..., Watchkeeper]) -> None:
    wk = routed_any(to=["hook", "pd"])
    incident = ingest(wk)
    with wk.db.read() as conn:
        rows = store.messages(conn)
        opened = [r for r in audit.records(conn) if r.kind == "incident.opened"]
    assert sorted((r["target"], r["event"], r["status"]) for r in rows) == [
        ("hook", "opened", "pending"), ("pd", "opened", "pending")]
    assert {r["audit_seq"] for r in rows} == {opened[0].seq}
    assert {r["incident_id"] for r in rows} == {incident}


def test_a_rolled_back_change_leaves_no_message(routed_any: Callable[..., Watchkeeper]) -> None:
    wk = routed_any(to=["hook"])
    incident = ingest(wk)
    inside: list[int] = []

    def failing_change() -> None:
        with wk.db.write() as conn:
            audit.append(conn, "test", [Change("incident.acknowledged", f"incident:{incident}", wk.clock(), {})])
            inside.append(len(store.messages(conn)))  # inside the transaction: the message is there
            raise RuntimeError("the change fails after its message was written")

    with pytest.raises(RuntimeError):
        failing_change()
    assert inside == [2]
    with wk.db.read() as conn:
        assert [r["event"] for r in store.messages(conn)] == ["opened"]


def test_delivered_in_order_per_incident(routed_any: Callable[..., Watchkeeper], standins: dict[str, StandIn],
                                         runtime: Callable[[Watchkeeper], Integrations]) -> None:
    wk = routed_any(to=["hook"])
    first = ingest(wk, service="checkout")
    second = ingest(wk, service="billing")
    wk.act(first, Action.ACKNOWLEDGE, "test")
    wk.act(first, Action.RESOLVE, "test")
    integrations = runtime(wk)
    assert integrations.delivery.drain() == 4
    seen = [(r.json()["incident"]["id"], r.json()["event"]) for r in standins["webhook"].accepted]
    assert [e for i, e in seen if i == first] == ["opened", "acknowledged", "resolved"]
    assert [e for i, e in seen if i == second] == ["opened"]
    with wk.db.read() as conn:
        assert {r["status"] for r in store.messages(conn)} == {"delivered"}


def test_a_failing_message_holds_back_its_incident_only(
        routed_any: Callable[..., Watchkeeper], standins: dict[str, StandIn], clock: Clock,
        runtime: Callable[[Watchkeeper], Integrations]) -> None:
    wk = routed_any(to=["hook"], outbox={"backoff_seconds": 10, "max_attempts": 3, "workers": 1})  # faults in order
    first = ingest(wk, service="checkout")
    wk.act(first, Action.ACKNOWLEDGE, "test")
    integrations = runtime(wk)
    integrations.notifiers["hook"].http.retries = 0  # type: ignore[attr-defined]
    standins["webhook"].fail(Fault(503))
    ingest(wk, service="billing")
    integrations.delivery.drain()
    # incident 1's opening failed: its acknowledgement waits; the other incident went through
    assert [r.json()["incident"]["id"] for r in standins["webhook"].accepted] == [2]
    with wk.db.read() as conn:
        failed = store.messages(conn, incident_id=first, status="pending")
    assert [(m["event"], m["attempts"]) for m in sorted(failed, key=lambda m: m["id"])] == [
        ("opened", 1), ("acknowledged", 0)]
    assert "HTTP 503" in failed[-1]["last_error"] or "HTTP 503" in failed[0]["last_error"]
    clock.advance(seconds=11)  # past the backoff (at most 10 s for the first retry)
    integrations.delivery.drain()
    assert [r.json()["event"] for r in standins["webhook"].accepted if r.json()["incident"]["id"] == first] == [
        "opened", "acknowledged"]


def test_dead_letter_after_max_attempts_then_retry_by_api(
        routed_any: Callable[..., Watchkeeper], standins: dict[str, StandIn], clock: Clock,
        request: pytest.FixtureRequest) -> None:
    wk = routed_any(to=["hook"], outbox={"backoff_seconds": 1, "max_backoff_seconds": 1, "max_attempts": 2})
    incident = ingest(wk)
    api = Api(wk)
    integrations: Integrations = api.client.app.state.integrations  # type: ignore[attr-defined]
    request.addfinalizer(integrations.stop)
    integrations.notifiers["hook"].http.retries = 0  # type: ignore[attr-defined]
    standins["webhook"].fail(Fault(500), Fault(500))
    integrations.delivery.drain()
    clock.advance(seconds=2)
    integrations.delivery.drain()
    viewer = {"Authorization": f"Bearer {api.tokens[Role.VIEWER]}"}
    dead = api.client.get("/api/v1/outbox?status=dead", headers=viewer).json()
    assert [(m["incident_id"], m["attempts"]) for m in dead] == [(incident, 2)]
    assert "dead after 2 attempts" in dead[0]["last_error"]
    with wk.db.read() as conn:
        assert [r.payload["target"] for r in audit.records(conn) if r.kind == "outbox.dead"] == ["hook"]
    refused = api.client.post(f"/api/v1/outbox/{dead[0]['id']}/retry", headers=viewer)
    assert refused.status_code == 403
    operator = {"Authorization": f"Bearer {api.tokens[Role.OPERATOR]}"}
    again = api.client.post(f"/api/v1/outbox/{dead[0]['id']}/retry", headers=operator)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending"
    integrations.delivery.drain()
    assert [r.json()["event"] for r in standins["webhook"].accepted] == ["opened"]
    twice = api.client.post(f"/api/v1/outbox/{dead[0]['id']}/retry", headers=operator)
    assert twice.status_code == 409 and twice.json()["status"] == 409
    missing = api.client.post("/api/v1/outbox/999999/retry", headers=operator)
    assert missing.status_code == 404 and "no outbox message" in missing.json()["error"]
    assert api.client.get("/api/v1/outbox?status=nonsense", headers=viewer).status_code == 422


def test_no_routes_no_messages(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    wk = make_service(sqlite_url)
    ingest(wk)
    with wk.db.read() as conn:
        assert store.messages(conn) == []


def test_delivered_messages_are_pruned_after_retention(
        routed_any: Callable[..., Watchkeeper], clock: Clock, runtime: Callable[[Watchkeeper], Integrations]) -> None:
    wk = routed_any(to=["hook"], retention_days=1)
    ingest(wk)
    integrations = runtime(wk)
    integrations.delivery.drain()
    with wk.db.read() as conn:
        assert [m["status"] for m in store.messages(conn)] == ["delivered"]
    clock.advance(days=2)
    integrations.delivery._pruned_at = None  # its hourly turn
    integrations.delivery.step()
    with wk.db.read() as conn:
        assert store.messages(conn) == []


def test_outcomes_wait_for_a_database_that_failed(
        routed: Callable[..., Watchkeeper], standins: dict[str, StandIn],
        runtime: Callable[[Watchkeeper], Integrations], monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction that records a batch fails (an outage): the outcomes are kept and recorded
    by the next round — the message is not sent again."""
    wk = routed(to=["hook"])
    ingest(wk)
    integrations = runtime(wk)
    integrations.delivery.step()  # delivered; its outcome is recorded with the next claim

    def outage(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(store, "claim", outage)
    with pytest.raises(RuntimeError):
        integrations.delivery.step()
    monkeypatch.undo()
    integrations.delivery.drain()
    with wk.db.read() as conn:
        assert [m["status"] for m in store.messages(conn)] == ["delivered"]
    assert len(standins["webhook"].accepted) == 1
