"""The pure hash chain: any edit, deletion or reordering is named."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from watchkeeper.audit import AuditChain, verify
from watchkeeper.model import AuditRecord

T = datetime(2026, 11, 22, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    c = AuditChain()
    return [c.append("alice", "incident.acknowledged", f"incident:{i}", {"i": i, "note": "é"}, T) for i in range(n)]


def test_intact_chain_verifies() -> None:
    verdict = verify(chain(5))
    assert verdict.ok and verdict.checked == 5 and str(verdict).startswith("OK")


def test_edited_payload_is_named() -> None:
    rs = chain(5)
    rs[2] = dataclasses.replace(rs[2], payload={"i": 99, "note": "é"})
    verdict = verify(rs)
    assert (verdict.ok, verdict.broken_seq, verdict.checked) == (False, 3, 2)
    assert "edited" in verdict.problem


def test_edited_actor_with_recomputed_own_hash_breaks_the_next_link() -> None:
    rs = chain(4)
    from watchkeeper.audit import record_hash

    r = dataclasses.replace(rs[1], actor="mallory")
    rs[1] = dataclasses.replace(r, hash=record_hash(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash))
    assert verify(rs).broken_seq == 3


def test_deleted_record_is_named() -> None:
    rs = chain(4)
    del rs[1]
    assert verify(rs).broken_seq == 3


def test_reordered_records_are_named() -> None:
    rs = chain(4)
    rs[1], rs[2] = rs[2], rs[1]
    assert verify(rs).broken_seq == 3


def test_chain_continues_from_a_head() -> None:
    rs = chain(2)
    more = AuditChain(rs[-1].seq, rs[-1].hash).append("bob", "k", "s", {}, T)
    assert verify([*rs, more]).ok
