"""The outbox's claim and settle on both databases: one ``UPDATE … RETURNING`` leases due messages
in order per (incident, target), a lease keeps every other server off a message and off its
group's later messages, and an owner whose lease was taken over records nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from watchkeeper.storage import Database
from watchkeeper.storage import outbox as store
from watchkeeper.storage.tables import outbox

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    found = Database(db_url)
    found.upgrade()
    yield found
    found.dispose()


def enqueue(db: Database, *groups: tuple[int, str]) -> list[int]:
    rows = [
        {
            "incident_id": i,
            "target": t,
            "event": "opened",
            "audit_seq": n,
            "payload": {"n": n},
            "status": "pending",
            "attempts": 0,
            "created_at": T0,
            "next_attempt_at": T0,
        }
        for n, (i, t) in enumerate(groups)
    ]
    with db.write() as conn:
        conn.execute(insert(outbox), rows)
        return list(conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars())


def claim(db: Database, owner: str, now: datetime, limit: int = 100) -> list[tuple[int, int, str]]:
    with db.write() as conn:
        return [
            (m.id, m.incident_id, m.target) for m in store.claim(conn, owner, now, now + timedelta(seconds=60), limit)
        ]


def test_claims_due_messages_in_id_order_up_to_the_limit(db: Database) -> None:
    ids = enqueue(db, (1, "a"), (2, "a"), (3, "b"), (4, "a"))
    assert claim(db, "one", T0, limit=3) == [(ids[0], 1, "a"), (ids[1], 2, "a"), (ids[2], 3, "b")]
    assert claim(db, "two", T0) == [(ids[3], 4, "a")]  # the leased ones are nobody else's
    assert claim(db, "three", T0) == []
    with db.read() as conn:
        owners = dict(conn.execute(select(outbox.c.id, outbox.c.lease_owner)).all())
    assert owners == {ids[0]: "one", ids[1]: "one", ids[2]: "one", ids[3]: "two"}


def test_a_leased_or_waiting_message_holds_back_its_group_only(db: Database) -> None:
    ids = enqueue(db, (1, "a"), (1, "a"), (1, "b"), (2, "a"))
    with db.write() as conn:  # the first message of (1, a) is leased elsewhere
        conn.execute(
            outbox.update()
            .where(outbox.c.id == ids[0])
            .values(lease_owner="other", lease_expires_at=T0 + timedelta(seconds=30))
        )
    assert claim(db, "me", T0) == [(ids[2], 1, "b"), (ids[3], 2, "a")]  # (1, a)'s second one waits
    # the lease ran out: the group comes together, in order (one worker delivers it in turn)
    assert claim(db, "me", T0 + timedelta(seconds=31)) == [(ids[0], 1, "a"), (ids[1], 1, "a")]
    with db.write() as conn:  # the first failed and waits 10 s; the second was never tried
        store.settle(
            conn,
            "me",
            [store.Outcome(ids[0], "a", 1, False, error="HTTP 503", retry_at=T0 + timedelta(seconds=41))],
            T0,
        )
        store.release(conn, "me", [ids[1]])
    assert claim(db, "me", T0 + timedelta(seconds=32)) == []  # the second waits for the first
    assert claim(db, "me", T0 + timedelta(seconds=41)) == [(ids[0], 1, "a"), (ids[1], 1, "a")]


def test_settle_records_only_what_this_owner_still_holds(db: Database) -> None:
    ids = enqueue(db, (1, "a"), (2, "a"), (3, "a"))
    assert len(claim(db, "slow", T0)) == 3
    later = T0 + timedelta(seconds=61)  # the slow owner's lease ran out; another server took over
    assert [m[0] for m in claim(db, "fast", later, limit=1)] == [ids[0]]
    outcomes = [
        store.Outcome(ids[0], "a", 1, True, ref={"ts": "1"}),
        store.Outcome(ids[1], "a", 2, False, error="HTTP 503", retry_at=later + timedelta(seconds=5)),
        store.Outcome(ids[2], "a", 3, False, error="HTTP 400"),
    ]
    with db.write() as conn:
        recorded = store.settle(conn, "slow", outcomes, later)
    assert [o.id for o in recorded] == [ids[1], ids[2]]  # ids[0] is the fast server's now
    with db.read() as conn:
        rows = {r.id: r for r in conn.execute(select(outbox))}
        assert store.get_ref(conn, "a", 1) is None  # not recorded by the owner that lost the lease
    assert rows[ids[0]].status == "pending" and rows[ids[0]].lease_owner == "fast"
    assert (rows[ids[1]].status, rows[ids[1]].attempts, rows[ids[1]].last_error) == ("pending", 1, "HTTP 503")
    assert rows[ids[1]].lease_owner is None and rows[ids[1]].next_attempt_at == later + timedelta(seconds=5)
    assert (rows[ids[2]].status, rows[ids[2]].attempts) == ("dead", 1)


def test_many_delivered_outcomes_settle_together(db: Database) -> None:
    ids = enqueue(db, *[(n % 50, "a") for n in range(1000)])
    claimed: list[int] = []
    while found := claim(db, "me", T0, limit=1000):
        claimed += [m[0] for m in found]
        with db.write() as conn:
            recorded = store.settle(conn, "me", [store.Outcome(m[0], "a", m[1], True) for m in found], T0)
        assert len(recorded) == len(found)
    assert sorted(claimed) == ids  # every message once, each group in order over the rounds
    with db.read() as conn:
        assert store.counts(conn) == {("a", "delivered"): 1000}


def test_each_claimed_message_carries_its_groups_ref(db: Database) -> None:
    enqueue(db, (1, "a"), (1, "b"), (2, "a"), (1, "a"))
    with db.write() as conn:
        store.set_ref(conn, "a", 1, {"ts": "1.5"}, T0)
        store.set_ref(conn, "b", 2, {"ts": "2.5"}, T0)  # no message of (2, b) waits
        found = store.claim(conn, "me", T0, T0 + timedelta(seconds=60), 100)
    assert [(m.incident_id, m.target, m.ref) for m in found] == [
        (1, "a", {"ts": "1.5"}),
        (1, "b", None),
        (2, "a", None),
        (1, "a", {"ts": "1.5"}),
    ]
