"""The outbox's pipeline (the next batch claimed while one is in flight) keeps each incident's
order and loses nothing at stop; its health is on ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from conftest import Api, Clock
from integrations.conftest import HOOK_SECRET
from integrations.standins import Fault, StandIn
from watchkeeper.integrations.runtime import Integrations
from watchkeeper.model import Change
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit
from watchkeeper.storage import outbox as store


def open_incident(wk: Watchkeeper, service: str) -> int:
    body = orjson.dumps({"service": service, "name": "Down", "summary": f"{service} down", "severity": "critical"})
    return wk.ingest("events", body, "application/json", "test").incidents[0]


def changes(wk: Watchkeeper, incident: int, count: int) -> None:
    """``count`` numbered changes of one incident, one transaction each (one message each)."""
    for n in range(count):
        with wk.db.write() as conn:
            audit.append(conn, "test", [Change("incident.acknowledged", f"incident:{incident}", wk.clock(),
                                               {"n": n})])


def test_the_pipeline_keeps_each_incident_in_order(
        routed_any: Callable[..., Watchkeeper], standins: dict[str, StandIn],
        runtime: Callable[[Watchkeeper], Integrations]) -> None:
    """Batches of 3 over 4 incidents of 7 messages each, 4 workers: a batch is claimed while the
    one before is in flight, and still each incident's messages arrive in the order of its changes."""
    wk = routed_any(to=["hook"], outbox={"batch": 3, "workers": 4})
    incidents = [open_incident(wk, f"svc-{n}") for n in range(4)]
    for incident in incidents:
        changes(wk, incident, 6)
    standins["webhook"].delay = 0.01  # the next claim happens while requests are open
    integrations = runtime(wk)
    assert integrations.delivery.drain() == 4 * 7
    seen: dict[int, list[int]] = {}
    for request in standins["webhook"].accepted:
        body = request.json()
        if body["event"] == "acknowledged":
            seen.setdefault(body["incident"]["id"], []).append(body["change"]["payload"]["n"])
    assert seen == {incident: list(range(6)) for incident in incidents}
    assert len(standins["webhook"].accepted) == 4 * 7  # each once
    with wk.db.read() as conn:
        assert {m["status"] for m in store.messages(conn, limit=1000)} == {"delivered"}


def test_stop_records_the_batch_in_flight(
        routed: Callable[..., Watchkeeper], standins: dict[str, StandIn],
        runtime: Callable[[Watchkeeper], Integrations]) -> None:
    wk = routed(to=["hook"])
    for n in range(3):
        open_incident(wk, f"svc-{n}")
    integrations = runtime(wk)
    assert integrations.delivery.step() == 3  # claimed and handed to the workers; not yet recorded
    integrations.delivery.stop()  # waits for them, then records them
    with wk.db.read() as conn:
        assert [m["status"] for m in store.messages(conn)] == ["delivered"] * 3
    assert len(standins["webhook"].accepted) == 3


def test_healthz_and_metrics_show_the_queue(
        routed: Callable[..., Watchkeeper], standins: dict[str, StandIn], clock: Clock,
        request: pytest.FixtureRequest) -> None:
    wk = routed(to=["hook"], outbox={"max_attempts": 1})
    api = Api(wk)
    integrations: Integrations = api.client.app.state.integrations  # type: ignore[attr-defined]
    request.addfinalizer(integrations.stop)
    open_incident(wk, "checkout")
    open_incident(wk, "billing")
    clock.advance(seconds=90)
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    outbox = health.json()["details"]["outbox"]
    assert (outbox["pending"], outbox["dead"], outbox["oldest_pending_age_seconds"]) == (2, 0, 90.0)
    assert outbox["targets"] == {"hook": {"pending": 2, "dead": 0, "oldest_pending_age_seconds": 90.0}}
    metrics = api.client.get("/metrics").text
    assert 'watchkeeper_outbox_oldest_pending_age_seconds{target="hook"} 90.0' in metrics
    assert 'watchkeeper_outbox_messages{status="pending",target="hook"} 2.0' in metrics

    integrations.notifiers["hook"].http.retries = 0  # type: ignore[attr-defined]
    standins["webhook"].fail(Fault(400))  # the first one is dead at once; the other is delivered
    integrations.delivery.drain()
    health = api.client.get("/healthz")
    assert health.status_code == 200  # dead messages are shown, not an outage of the server
    outbox = health.json()["details"]["outbox"]
    assert (outbox["pending"], outbox["dead"], outbox["oldest_pending_age_seconds"]) == (0, 1, None)
    metrics = api.client.get("/metrics").text
    assert 'watchkeeper_outbox_oldest_pending_age_seconds{target="hook"} 0.0' in metrics
    assert "127.0.0.1" not in metrics and HOOK_SECRET not in metrics


def test_healthz_says_nothing_of_an_outbox_with_no_targets(make_service: Callable[..., Watchkeeper],
                                                           sqlite_url: str, request: pytest.FixtureRequest) -> None:
    api = Api(make_service(sqlite_url))
    request.addfinalizer(api.client.app.state.integrations.stop)  # type: ignore[attr-defined]
    assert "outbox" not in api.client.get("/healthz").json()["details"]
