"""Action leases on SQLite and PostgreSQL: one claim per action, renewals and releases only by the
owner, recovery only of an expired lease, and no double claim under concurrent servers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson

from conftest import Clock
from watchkeeper.execute.actions import ActionStatus, Lease
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import Database
from watchkeeper.storage import governance as store


def incident(wk: Watchkeeper, service: str = "web") -> int:
    body = {"service": service, "name": "Down", "summary": "down", "fingerprint": f"fp-{service}"}
    return wk.ingest("events", orjson.dumps(body), "application/json", "test").incidents[0]


def queue(wk: Watchkeeper, incident_id: int, at: datetime, service: str = "web", n: int = 1) -> list[int]:
    with wk.db.write() as conn:
        return [store.add_action(conn, decision_id=None, approval_id=None, incident_id=incident_id,
                                 runbook_id="restart", service=service, trigger="auto", actor="policy",
                                 status="queued", params={"n": i}, queued_at=at) for i in range(n)]


def test_one_claim_per_action_and_only_the_owner_renews(
        make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk = make_service(db_url)
    [action_id] = queue(wk, incident(wk), clock.now)
    a, b = Lease("a", clock.now + timedelta(seconds=60)), Lease("b", clock.now + timedelta(seconds=60))
    with wk.db.write() as conn:
        run = store.claim(conn, a, clock.now, 1, skip_locked=not wk.db.is_sqlite)
        assert run is not None and (run.id, run.status, run.lease) == (action_id, ActionStatus.RUNNING, a)
        assert store.claim(conn, b, clock.now, 1) is None  # nothing else is queued
        later = Lease("a", clock.now + timedelta(seconds=90))
        assert store.renew(conn, action_id, later)
        assert not store.renew(conn, action_id, b)  # not b's
        assert not store.finish(conn, action_id, "b", status="succeeded")
        assert store.action_run(conn, action_id).lease == later
        assert store.finish(conn, action_id, "a", status="succeeded")
        done = store.action_run(conn, action_id)
        assert done.status is ActionStatus.SUCCEEDED and done.lease is None
        assert not store.renew(conn, action_id, later)  # finished: nothing to renew


def test_only_an_expired_lease_is_recovered(make_service: Callable[..., Watchkeeper], db_url: str,
                                            clock: Clock) -> None:
    wk = make_service(db_url)
    [action_id] = queue(wk, incident(wk), clock.now)
    with wk.db.write() as conn:
        store.claim(conn, Lease("a", clock.now + timedelta(seconds=60)), clock.now, 1)
    with wk.db.write() as conn:
        assert store.expired_leases(conn, clock.advance(seconds=59)) == []
        assert not store.interrupt(conn, action_id, clock.now)  # the lease still holds
        assert store.action_run(conn, action_id).status is ActionStatus.RUNNING
        [expired] = store.expired_leases(conn, clock.advance(seconds=1))
        assert expired.id == action_id and expired.lease is not None and expired.lease.owner == "a"
        assert store.interrupt(conn, action_id, clock.now)
        assert not store.interrupt(conn, action_id, clock.now)  # once
        assert store.action_run(conn, action_id).status is ActionStatus.INTERRUPTED
        assert not store.finish(conn, action_id, "a", status="succeeded")  # too late for its old owner


def test_a_busy_service_waits(make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    wk = make_service(db_url)
    first, second = queue(wk, incident(wk), clock.now, n=2)
    other = queue(wk, incident(wk, "db"), clock.now, service="db")[0]
    lease = Lease("a", clock.now + timedelta(seconds=60))
    with wk.db.write() as conn:
        assert [store.claim(conn, lease, clock.now, 1).id for _ in range(2)] == [first, other]  # type: ignore[union-attr]
        assert store.claim(conn, lease, clock.now, 1) is None  # web is busy with `first`
        store.finish(conn, first, "a", status="succeeded")
        assert store.claim(conn, lease, clock.now, 1).id == second  # type: ignore[union-attr]


def test_concurrent_servers_never_claim_one_action_twice(
        make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock) -> None:
    """Four "servers" (each its own engine and pool) race for 40 actions on 40 services."""
    wk = make_service(db_url)
    at = clock.now
    wanted: list[int] = []
    for n in range(40):
        wanted += queue(wk, incident(wk, f"svc{n}"), at, service=f"svc{n}")
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def server(name: str) -> None:
        db = Database(db_url)
        mine = claimed.setdefault(name, [])
        try:
            while True:
                with db.write() as conn:
                    run = store.claim(conn, Lease(name, at + timedelta(seconds=60)), at, 1,
                                      skip_locked=not db.is_sqlite)
                if run is None:
                    return
                mine.append(run.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=server, args=(f"wk-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    every = sorted(i for ids in claimed.values() for i in ids)
    assert every == sorted(wanted)  # each action exactly once
    with wk.db.read() as conn:
        owners = {store.action_run(conn, i).lease.owner for i in wanted}  # type: ignore[union-attr]
    assert owners <= set(claimed)
