"""The JetStream bus against a real nats-server of the test's own: set-up and its checks,
acknowledged publish, durable consumers with ack / nak / redelivery, takeover rewind, the API
publishing (202 only after JetStream's ack) and 503 + Retry-After while NATS is away."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from bus.natsd import NatsServer, wait_for
from bus.streams import bodies, grouping_of, replay
from watchkeeper.bus import BusUnavailable, open_jetstream
from watchkeeper.bus.jetstream import JetStreamBus
from watchkeeper.bus.node import make_worker
from watchkeeper.errors import ConfigError
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings


def settings_for(url: str, **more: object) -> Settings:
    return Settings(bus_url=url, bus_partitions=4, bus_publish_timeout_seconds=1.0, **more)  # type: ignore[arg-type]


@pytest.fixture
def js(nats_server: NatsServer) -> Iterator[JetStreamBus]:
    bus = open_jetstream(settings_for(nats_server.url), check=False)
    bus.init(10_000)
    try:
        yield bus
    finally:
        bus.close()


def test_serve_and_worker_refuse_a_missing_stream_with_a_sentence(nats_server: NatsServer) -> None:
    with pytest.raises(ConfigError, match="run 'watchkeeper bus init'"):
        open_jetstream(settings_for(nats_server.url))


def test_a_partition_count_other_than_the_stream_s_is_refused(js: JetStreamBus, nats_server: NatsServer) -> None:
    s = Settings(bus_url=nats_server.url, bus_partitions=8)
    with pytest.raises(ConfigError, match="bus_partitions"):
        open_jetstream(s)


def test_a_consumer_a_peer_is_making_anew_is_waited_for_and_a_missing_one_refused(
        js: JetStreamBus, nats_server: NatsServer) -> None:
    """A worker starting while another rewinds a partition (delete, then add its consumer) finds the
    consumer missing for a moment: the start-up check asks again instead of exiting; a consumer that
    stays missing is still a sentence."""
    import threading

    def delete(p: int) -> None:
        js._run(js._jetstream().delete_consumer(js.stream, f"wk-p{p}"))

    delete(1)
    again = threading.Timer(0.5, lambda: js._run(js._jetstream().add_consumer(js.stream, js._consumer_config(1))))
    again.start()
    try:
        open_jetstream(settings_for(nats_server.url)).close()  # waited for the consumer: no error
    finally:
        again.join()
    delete(2)
    with pytest.raises(ConfigError, match=r"'wk-p2' .* is missing; run 'watchkeeper bus init'"):
        open_jetstream(settings_for(nats_server.url))


def test_unreachable_nats_is_a_sentence() -> None:
    from watchkeeper.lab.prometheus import free_port

    with pytest.raises(ConfigError, match="cannot reach NATS"):
        open_jetstream(settings_for(f"nats://127.0.0.1:{free_port()}"))


def test_publish_fetch_ack_nak_and_rewind(js: JetStreamBus) -> None:
    for i in range(5):
        js.publish(2, f"m{i}".encode(), f"id{i}")
    js.publish(2, b"m0", "id0")  # a retried publish: JetStream's duplicate window drops it
    assert js.lag()[2] == 5
    first = js.fetch(2, 2, 1.0)
    assert [d.data for d in first] == [b"m0", b"m1"]
    assert first[0].message_id == "id0"
    first[0].ack()
    first[1].nak()
    again = js.fetch(2, 10, 1.0)
    for _ in range(20):  # redelivered (the nak may reach the server after the pull)
        if b"m1" in [d.data for d in again]:
            break
        again = [*again, *js.fetch(2, 10, 1.0)]
    assert sorted(d.data for d in again) == [b"m1", b"m2", b"m3", b"m4"]
    js.ack_many([d for d in again if d.data == b"m1"])
    # a new owner takes the partition over: what was fetched and never acknowledged comes back, in order
    js.rewind(2)
    rest = js.fetch(2, 10, 1.0)
    assert [d.data for d in rest] == [b"m2", b"m3", b"m4"]
    js.ack_many(rest)
    wait_for(lambda: js.lag()[2] == 0, timeout=10, what="lag 0")
    assert js.fetch(2, 10, 0.1) == []


def test_the_api_answers_202_after_the_ack_and_503_while_nats_is_away(
    nats_server: NatsServer, make_service: Callable[..., Watchkeeper], pg_url: str,
) -> None:
    service = make_service(pg_url, **settings_for(nats_server.url).model_dump(include={
        "bus_url", "bus_partitions", "bus_publish_timeout_seconds"}))
    setup = open_jetstream(service.settings, check=False)
    setup.init(10_000)
    setup.close()
    bus = open_jetstream(service.settings)
    worker = make_worker(service, bus, batch=50)
    worker.rebalance_seconds = 0.2
    try:
        app = create_app(service, upgrade=False, responder=False, watch=False, rank=False, bus=bus)
        token = service.create_token(Role.INGEST, "bus-test", "test")
        headers = {"Authorization": f"Bearer {token}"}
        sent_bodies = list(bodies(30))
        with TestClient(app) as client:
            for body in sent_bodies[:20]:
                r = client.post("/api/v1/ingest/events", json=body, headers=headers)
                assert r.status_code == 202 and r.json()["queued"] is True, r.text
            assert r.json()["accepted"] == 5
            bad = client.post("/api/v1/ingest/events", json={"nope": 1}, headers=headers)
            assert bad.status_code == 422  # refused before the bus, kept as a dead letter
            lag = client.get("/metrics").text
            assert 'watchkeeper_bus_consumer_lag{partition="0"}' in lag and "watchkeeper_bus_up 1.0" in lag

            nats_server.stop()
            wait_for(lambda: not bus.connected, timeout=10, what="the client to see NATS gone")
            r = client.post("/api/v1/ingest/events", json=sent_bodies[20], headers=headers)
            assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
            assert "watchkeeper_bus_up 0.0" in client.get("/metrics").text

            nats_server.start()
            wait_for(lambda: bus.connected, timeout=20, what="the client to reconnect")
            for body in sent_bodies[20:]:
                r = client.post("/api/v1/ingest/events", json=body, headers=headers)
                assert r.status_code == 202, r.text
        accepted = sent_bodies  # every body was acknowledged in the end (the 503'd one on its retry)
        worker.start()
        wait_for(lambda: worker.stats.events == 5 * len(accepted), timeout=60, what="the worker to commit all")
        sent = [e for b in accepted for e in service.accept("events", orjson.dumps(b), None)]
        assert grouping_of(service) == replay(service, sent)[0]
    finally:
        worker.close()
        bus.close()


def test_a_full_stream_refuses_with_503(nats_server: NatsServer) -> None:
    bus = open_jetstream(settings_for(nats_server.url), check=False)
    try:
        bus.init(3)  # at most 3 messages: the workers are far behind
        for i in range(3):
            bus.publish(0, b"x", f"m{i}")
        with pytest.raises(BusUnavailable, match="retry later"):
            bus.publish(0, b"x", "m3")
    finally:
        bus.close()
