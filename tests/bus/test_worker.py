"""The worker on the in-process bus (no NATS): it commits what the API published, each message
at most once, and makes the incidents a single-process replay makes of the same stream."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson
import pytest

from bus.streams import bodies, counts_of, events_stored, grouping_of, replay
from watchkeeper.bus.base import Message, messages_of
from watchkeeper.bus.memory import InProcessBus
from watchkeeper.bus.ownership import SoloOwnership
from watchkeeper.bus.worker import Worker
from watchkeeper.model import Event
from watchkeeper.service import Watchkeeper

PARTITIONS = 4


def publish(service: Watchkeeper, bus: InProcessBus, n: int) -> list[Event]:
    """What the API does with a bus: accept each body, publish one message per partition."""
    sent: list[Event] = []
    for body in bodies(n):
        events = service.accept("events", orjson.dumps(body), "application/json")
        for p, payload, mid in messages_of("events", "token:test", events, uuid.uuid4().hex, PARTITIONS):
            bus.publish(p, payload, mid)
        sent.extend(events)
    return sent


def drain(worker: Worker, bus: InProcessBus) -> None:
    worker._rebalance()
    for _ in range(1000):
        if not any(bus.lag().values()):
            return
        got = worker._fetch(sorted(worker.ownership.owned))
        if got:
            worker._commit(got)
    raise AssertionError("the bus did not drain")


def test_worker_commits_what_was_published_like_a_replay(
    make_service: Callable[..., Watchkeeper], db_url: str,
) -> None:
    service = make_service(db_url)
    bus = InProcessBus(PARTITIONS)
    worker = Worker(service, bus, SoloOwnership(PARTITIONS), batch=7)
    sent = publish(service, bus, 60)
    drain(worker, bus)
    assert events_stored(service) == len(sent) == worker.stats.events
    grouping, counts = replay(service, sent)
    assert grouping_of(service) == grouping
    assert counts_of(service) == counts


def test_a_batch_writes_one_accepted_record_per_source_and_actor(
    make_service: Callable[..., Watchkeeper], db_url: str,
) -> None:
    """A request spans a message per partition; the audit log counts a worker's batch once per
    source and actor (``messages`` says how many), and the chain verifies."""
    from watchkeeper.storage import audit

    service = make_service(db_url)
    bus = InProcessBus(PARTITIONS)
    worker = Worker(service, bus, SoloOwnership(PARTITIONS), batch=1000)
    sent = publish(service, bus, 20)
    messages = sum(bus.lag().values())
    drain(worker, bus)
    with service.db.read() as conn:
        accepted = [r.payload for r in audit.records(conn) if r.kind == "ingest.accepted"]
    assert len(accepted) == 1 < messages
    repeats = accepted[0].pop("repeats")
    assert accepted[0] == {"source": "events", "events": len(sent), "messages": messages}
    assert 0 < repeats < len(sent)  # the stream repeats fingerprints (streams.bodies)
    assert service.verify_audit().ok


def test_a_redelivered_message_is_never_applied_twice(
    make_service: Callable[..., Watchkeeper], db_url: str,
) -> None:
    service = make_service(db_url)
    bus = InProcessBus(PARTITIONS)
    worker = Worker(service, bus, SoloOwnership(PARTITIONS), batch=100)
    sent = publish(service, bus, 10)
    worker._rebalance()
    got = worker._fetch(list(range(PARTITIONS)))
    # committed, but the worker "dies" before acknowledging: every message comes back
    from watchkeeper.service.ingest import Delivered

    delivered = [Delivered(d.message_id, p, "events", Message.decode(d.data).events, "token:test")
                 for p, ds in got.items() for d in ds]
    service.ingest_delivered(delivered)
    for ds in got.values():
        for d in ds:
            d.nak()
    assert sum(bus.lag().values()) == len(delivered)
    drain(worker, bus)
    assert worker.stats.skipped == len(delivered) and worker.stats.events == 0
    assert events_stored(service) == len(sent)
    assert counts_of(service) == replay(service, sent)[1]


def test_a_failed_commit_naks_the_batch_in_order(
    make_service: Callable[..., Watchkeeper], sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service(sqlite_url)
    bus = InProcessBus(PARTITIONS)
    worker = Worker(service, bus, SoloOwnership(PARTITIONS), batch=100)
    sent = publish(service, bus, 10)
    real = service.ingest_delivered

    def broken(*_a: object, **_k: object) -> object:
        raise ConnectionError("database away")

    monkeypatch.setattr(service, "ingest_delivered", broken)
    worker._rebalance()
    with pytest.raises(ConnectionError):
        worker._commit(worker._fetch(list(range(PARTITIONS))))
    assert sum(bus.lag().values()) > 0 and events_stored(service) == 0
    monkeypatch.setattr(service, "ingest_delivered", real)
    drain(worker, bus)
    assert grouping_of(service) == replay(service, sent)[0]


def test_retention_forgets_old_processed_ids(make_service: Callable[..., Watchkeeper], sqlite_url: str) -> None:
    from datetime import timedelta

    from watchkeeper.storage import bus as bus_store

    service = make_service(sqlite_url)
    now = service.clock()
    with service.db.write() as conn:
        bus_store.mark(conn, [("old.0", 0, 1)], now - timedelta(days=100))
        bus_store.mark(conn, [("new.0", 0, 1)], now)
    service.prune(90)
    with service.db.read() as conn:
        assert bus_store.processed(conn, ["old.0", "new.0"]) == {"new.0"}
