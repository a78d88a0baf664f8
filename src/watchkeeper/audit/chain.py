"""Hash chain: ``hash = sha256(canonical JSON of the record without its hash)``; each record
carries the previous record's hash, so editing, deleting or reordering any record breaks the
chain from that record on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from watchkeeper.model import AuditRecord, utc

GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTC times with ``Z``: one byte string per value.

    >>> canonical_json({"b": 1, "a": [True, None]})
    b'{"a":[true,null],"b":1}'
    """
    return orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    )


def record_hash(
    seq: int, at: datetime, actor: str, kind: str, subject: str, payload: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": seq, "at": utc(at), "actor": actor, "kind": kind, "subject": subject,
        "payload": payload, "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


class AuditChain:
    """Build the next records of a chain whose head is ``(seq, hash)``.

    >>> from datetime import UTC, datetime
    >>> chain = AuditChain()
    >>> r1 = chain.append("alice", "incident.acknowledged", "incident:1", {"id": 1},
    ...                   datetime(2026, 1, 1, tzinfo=UTC))
    >>> r2 = chain.append("bob", "incident.resolved", "incident:1", {"id": 1},
    ...                   datetime(2026, 1, 1, tzinfo=UTC))
    >>> (r1.seq, r2.seq, r2.prev_hash == r1.hash, verify([r1, r2]).ok)
    (1, 2, True, True)
    """

    def __init__(self, seq: int = 0, head: str = GENESIS) -> None:
        self.seq = seq
        self.head = head

    def append(
        self, actor: str, kind: str, subject: str, payload: Mapping[str, Any], at: datetime
    ) -> AuditRecord:
        # Round-trip the payload through canonical JSON so what is hashed is what is stored.
        stored = orjson.loads(canonical_json(payload))
        seq = self.seq + 1
        digest = record_hash(seq, at, actor, kind, subject, stored, self.head)
        record = AuditRecord(seq, utc(at), actor, kind, subject, stored, self.head, digest)
        self.seq, self.head = seq, digest
        return record


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.checked} audit records, hash chain intact"
        return f"BROKEN at record seq={self.broken_seq}: {self.problem} ({self.checked} verified before it)"


def verify(records: Iterable[AuditRecord]) -> Verdict:
    """Recompute the chain over ``records`` (in storage order) and name the first broken one.

    >>> from datetime import UTC, datetime
    >>> chain, t = AuditChain(), datetime(2026, 1, 1, tzinfo=UTC)
    >>> rs = [chain.append("a", "k", "s", {"n": n}, t) for n in range(3)]
    >>> verify([rs[0], rs[2]]).broken_seq
    3
    """
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    for r in records:
        if r.seq != expected_seq:
            problem = f"expected seq {expected_seq}: a record is missing or moved"
            return Verdict(False, checked, r.seq, problem)
        if r.prev_hash != expected_prev:
            return Verdict(False, checked, r.seq, "prev_hash does not match the previous record's hash")
        actual = record_hash(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash)
        if actual != r.hash:
            return Verdict(False, checked, r.seq, "content does not match its hash: the record was edited")
        expected_prev, expected_seq, checked = r.hash, expected_seq + 1, checked + 1
    return Verdict(True, checked)
