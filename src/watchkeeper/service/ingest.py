"""Ingest: normalize, correlate and commit request bodies (group commit), dead letters, retention."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from watchkeeper import retention
from watchkeeper.errors import InputError
from watchkeeper.model import Change, Event
from watchkeeper.pipeline import Pipeline
from watchkeeper.retention import Pruned
from watchkeeper.service.core import Core, _no_ids
from watchkeeper.sources import Source
from watchkeeper.sources.limits import MAX_JSON_DEPTH, json_problem, size_problem
from watchkeeper.storage import audit, ingest, queries
from watchkeeper.storage import bus as bus_store
from watchkeeper.storage.db import refused_data
from watchkeeper.views import DeadLetter

#: Pipeline state kept between commits; past this many alerts the least recently seen are forgotten down to
#: 3/4 of it (``storage.ingest.forget``; read again when named). ~1.3 KiB an alert: ~26 MiB when full.
KEEP_ALERTS = 20_000
#: Accepted ingest content types (a missing header is taken as JSON: some senders set none; documented).
JSON_TYPES = ("application/json", "text/json")


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    incidents: list[int] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """One accepted request body waiting for its group's commit."""

    source: str
    batch: list[Event]
    received_at: datetime
    actor: str
    started: float
    future: Future[IngestResult] = field(default_factory=Future)
    #: The batch's rows for the events table, made before the ingest lock is taken (None: under it).
    rows: list[tuple[Any, ...]] | None = None
    #: From the bus: (message id, partition); a message already committed is skipped (idempotent).
    message: tuple[str, int] | None = None
    #: From the bus: raises inside the write transaction when this worker no longer owns the partition.
    guard: Callable[[Connection], None] | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """One bus message's events for :meth:`Ingest.ingest_delivered`."""

    message_id: str
    partition: int
    source: str
    events: list[Event]
    actor: str


class Ingest(Core):
    """Bodies in, committed incidents out; what is refused is kept as a dead letter."""

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise InputError(
                f"unknown source {name!r}; known: {', '.join(sorted(self.sources))}", status=404
            ) from None

    def ingest(
        self, source_name: str, body: bytes, content_type: str | None, actor: str,
        started: float | None = None,
    ) -> IngestResult:
        """Normalize, correlate and commit one request body; reject it to the dead letters."""
        started = time.perf_counter() if started is None else started
        self.reload_correlation()
        batch = self.accept(source_name, body, content_type)
        received_at = batch[0].received_at if batch else self.clock()
        # The event rows depend on this batch alone: made here, outside the ingest lock, while
        # other requests commit. (Correlation keys are not: a strategy may learn as it probes.)
        rows = ingest.event_rows(self.db.engine.dialect.name, batch)
        try:
            return self._submit(_Pending(source_name, batch, received_at, actor, started, rows=rows))
        except InputError as exc:  # the database refused this body alone (see _commit_isolating)
            self.dead_letter(source_name, body, exc, content_type, size=len(body))
            raise

    def accept(self, source_name: str, body: bytes, content_type: str | None) -> list[Event]:
        """Check and normalize one request body (time of receipt: now); a refused body is kept as
        a dead letter and raises InputError. Nothing is committed: ``ingest`` does, or the bus."""
        self.source(source_name)  # an unknown source is a 404, not a dead letter
        try:
            return self.check(source_name, body, content_type, self.clock())
        except InputError as exc:
            self.dead_letter(source_name, body, exc, content_type, size=len(body))
            raise

    def check(self, source_name: str, body: bytes, content_type: str | None, received_at: datetime) -> list[Event]:
        """Check and normalize one request body; InputError (4xx) when refused. Pure CPU: no
        database (the caller keeps a refused body as a dead letter)."""
        source = self.source(source_name)
        return self._normalized(source, self._decoded(body, content_type), received_at)

    def count(self, source_name: str, body: bytes, content_type: str | None, received_at: datetime) -> int:
        """What :meth:`check` accepts and refuses, the same errors, but only the number of events:
        a source's ``plain_count`` takes a plain body in one pass (no events built); anything it
        does not count is normalized as by ``check`` (the journalled intake's request path)."""
        source = self.source(source_name)
        payload = self._decoded(body, content_type)
        plain = getattr(source, "plain_count", None)
        counted = plain(payload) if plain is not None else None
        return counted if counted is not None else len(self._normalized(source, payload, received_at))

    def _decoded(self, body: bytes, content_type: str | None) -> Any:
        media = (content_type or "application/json").split(";")[0].strip().lower()
        if media not in JSON_TYPES and not media.endswith("+json"):
            raise InputError(
                f"unsupported content type {media!r}; send application/json", status=415
            )
        if len(body) > self.settings.max_body_bytes:
            raise InputError(
                f"body of {len(body)} bytes exceeds the limit of {self.settings.max_body_bytes}",
                status=413,
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"malformed JSON: {exc}", status=400) from exc
        problem = json_problem(payload, strings=b"\\u0000" in body) if _may_be_rejected(body) else None
        if problem is not None:
            raise InputError(f"the body cannot be accepted: {problem}")
        return payload

    @staticmethod
    def _normalized(source: Source, payload: Any, received_at: datetime) -> list[Event]:
        batch = source.normalize(payload, received_at)
        problem = size_problem(batch)
        if problem is not None:
            raise InputError(f"the body cannot be stored: {problem}")
        return batch

    def ingest_events(self, source_name: str, events: list[Event], actor: str) -> IngestResult:
        """Events made in-process (the lab's monitor, a detector): committed like a request body."""
        return self._submit(_Pending(source_name, events, self.clock(), actor, time.perf_counter()))

    def ingest_delivered(
        self, messages: list[Delivered], guard: Callable[[Connection], None] | None = None,
    ) -> list[IngestResult]:
        """Bus messages (a worker's batch) committed in one transaction, each at most once: a
        message whose id is already recorded is skipped (accepted 0), so a redelivery never
        counts twice. ``guard`` runs inside the transaction (partition ownership)."""
        started = time.perf_counter()
        self.reload_correlation()
        dialect = self.db.engine.dialect.name  # the event rows made here, before the write lock is taken
        items = [_Pending(m.source, m.events, m.events[0].received_at if m.events else self.clock(), m.actor,
                          started, rows=ingest.event_rows(dialect, m.events), message=(m.message_id, m.partition),
                          guard=guard) for m in messages]
        if not items:
            return []
        self._submit_all(items)
        return [item.future.result() for item in items]

    def _submit(self, item: _Pending) -> IngestResult:
        """Group commit: concurrent requests share one transaction. Whoever gets the lock commits
        everything pending; each caller returns (2xx) only once its events are committed."""
        self._submit_all([item])
        return item.future.result()

    def _submit_all(self, items: list[_Pending]) -> None:
        item = items[-1]
        with self._pending_lock:
            self._pending.extend(items)
        with self._ingest_lock:
            if not item.future.done():
                with self._pending_lock:
                    group, self._pending = self._pending, []
                try:
                    for pending, outcome in zip(group, self._commit_isolating(group), strict=True):
                        if isinstance(outcome, BaseException):
                            pending.future.set_exception(outcome)
                        else:
                            pending.future.set_result(outcome)
                except BaseException as exc:
                    for pending in group:
                        if not pending.future.done():
                            pending.future.set_exception(exc)

    def _commit_isolating(self, group: list[_Pending]) -> list[IngestResult | BaseException]:
        """Commit ``group``; if the database refuses its data (a value too long for its column or
        out of range), commit its halves apart (bisecting), so the body at fault fails alone with
        an InputError (422) and the innocent ones are committed. Any other failure (an outage)
        is every body's, as bisecting cannot help; each body's outcome is returned, never raised,
        so a half already committed keeps its results."""
        try:
            return list(self._commit(group))
        except Exception as exc:
            reason = refused_data(exc)
            if reason is None:
                return [exc] * len(group)
            if len(group) == 1:
                return [InputError(f"the database cannot store this body: {reason}")]
            half = len(group) // 2
            return self._commit_isolating(group[:half]) + self._commit_isolating(group[half:])

    def _commit(self, group: list[_Pending]) -> list[IngestResult]:
        kept, self._kept = self._kept, None  # taken: put back only after a successful commit
        results: list[IngestResult] = []
        records: list[Any] = []
        keys_of = Pipeline(self.config, _no_ids).keys  # pure CPU: outside the database's write lock
        item_keys = [keys_of(item.batch) for item in group]
        # The write lock is taken late: the processed ids and the events are rows of this batch
        # alone (a partition has one owner; a second commit of a message fails on bus_processed's
        # key), so they need no global order; the fence, the state the pipeline reads and the audit
        # chain's head are checked and read only once it is held.
        with self.db.write(deferred=True) as conn:
            if any(item.message is not None for item in group):  # from the bus: each message at most once
                done = bus_store.processed(conn, [i.message[0] for i in group if i.message is not None])
                skipped = {id(i) for i in group if i.message is not None and i.message[0] in done}
                bus_store.mark(conn, [(i.message[0], i.message[1], len(i.batch)) for i in group
                                      if i.message is not None and id(i) not in skipped], self.clock())
            else:
                skipped = set()
            live = [item for item in group if id(item) not in skipped]
            every = [e for item in live for e in item.batch]
            rows = None if any(item.rows is None for item in live) else [r for item in live for r in item.rows or ()]
            if rows:
                ingest.insert_events(conn, rows)
            self.db.serialize(conn)
            for guard in {id(i.guard): i.guard for i in group if i.guard is not None}.values():
                guard(conn)  # the fence: after the wait for the lock, while the partition may have moved
            chain = audit.head(conn)
            if kept is None or kept[0] != chain.seq or kept[3] is not self.config:
                kept = None  # someone else wrote since (every change appends to the audit log)
            keys = set().union(*(k for item, k in zip(group, item_keys, strict=True) if id(item) not in skipped))
            state, loaded = ingest.load_state(conn, every, keys, *(kept[1:3] if kept else ()))
            pipeline = Pipeline(self.config, loaded.new_incident_id)
            changes: list[list[Change]] = []
            accepted = _Accepted()
            for item in group:
                if id(item) in skipped:
                    results.append(IngestResult(0))
                    continue
                opened_before, repeats_before = set(state.new_incidents), state.repeats
                pipeline.observe_all(item.batch, state)
                changes.append(list(state.changes))
                state.changes.clear()
                accepted.add(item, state.repeats - repeats_before, changes[-1])
                touched = sorted({i for e in item.batch if (i := state.alerts[e.fingerprint].incident_id) is not None})
                results.append(IngestResult(len(item.batch), touched, sorted(state.new_incidents - opened_before)))
            accepted.close()
            ingest.persist(conn, every, state, loaded, [] if rows is not None else None)
            for actor, actor_changes in _runs(live, changes):
                records = audit.append(conn, actor, actor_changes, chain)
        for item in live:
            if self.metrics is not None:
                self.metrics.events.labels(item.source).inc(len(item.batch))
                self.metrics.pipeline_seconds.labels(item.source).observe(time.perf_counter() - item.started)
        state.clear_changes()
        if records:
            if len(state.alerts) > KEEP_ALERTS:
                ingest.forget(state, loaded, KEEP_ALERTS * 3 // 4)
            self._kept = (records[-1].seq, state, loaded, self.config)
        return results

    def keys(self, batch: list[Event]) -> set[str]:
        """The correlation keys a batch may probe or be indexed under."""
        return Pipeline(self.config, _no_ids).keys(batch)

    def dead_letter(
        self, source_name: str, body: bytes, error: InputError, content_type: str | None,
        *, size: int, truncated: bool = False,
    ) -> int:
        with self.db.write() as conn:
            dl_id = queries.add_dead_letter(
                conn, at=self.clock(), source=source_name, content_type=content_type,
                status=error.status, error=str(error), size=size, body=body, truncated=truncated,
            )
        if self.metrics is not None:
            self.metrics.dead_letters.labels(source_name, str(error.status)).inc()
        return dl_id

    def prune(self, days: float | None = None) -> Pruned:
        """Delete events and dead letters received more than ``days`` (default: the setting
        ``retention_days``) ago, and spans and RED rows past ``traces.retention``, a chunk per
        transaction; audited when anything was deleted."""
        days = self.settings.retention_days if days is None else days
        if days < 0:
            raise InputError(f"retention of {days} days: it must be 0 or more")
        now = self.clock()
        before = now - timedelta(days=days)
        counts = dict.fromkeys(retention.PRUNED, 0)
        for what in retention.PRUNED:
            while True:
                with self.db.write() as conn:
                    deleted = queries.delete_received_before(conn, what, before, retention.CHUNK)
                counts[what] += deleted
                if deleted < retention.CHUNK:
                    break
        with self.db.write() as conn:  # the bus's processed message ids, as old as the events (docs/scaling.md)
            bus_store.prune(conn, before)
        from watchkeeper.service import traces  # traces: their own windows (settings.traces.retention)

        spans, red_rows = traces.prune(self.db, self.settings.traces, now)
        pruned = retention.Pruned(before, counts["events"], counts["dead_letters"], spans, red_rows)
        if pruned.anything:
            extra = {"spans": spans, "red_rows": red_rows} if spans or red_rows else {}
            with self.db.write() as conn:
                audit.append(conn, "system:retention", [Change("retention.pruned", "retention", now, {
                    "before": before, "days": days, "events": pruned.events, "dead_letters": pruned.dead_letters,
                    **extra})])
        return pruned

    def dead_letters(self, limit: int = 50) -> list[DeadLetter]:
        """The newest rejected bodies, newest first."""
        with self.db.read() as conn:
            return [DeadLetter.from_row(r) for r in queries.list_dead_letters(conn, limit)]


class _Accepted:
    """The ``ingest.accepted`` audit records of one commit: one per request body, as always; for
    bus messages one per source and actor of the worker's batch (``messages`` says how many it
    sums; a request's events span a message per partition, so one record per message would
    write more audit records than the events they count).

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> acc, c1, c2 = _Accepted(), [], []
    >>> for m, changes in (("m1", c1), ("m2", c2)):
    ...     acc.add(_Pending("api", [], t, "a", 0.0, message=(m, 0)), 1, changes)
    >>> acc.close()
    >>> c1, [(c.kind, c.payload) for c in c2]
    ([], [('ingest.accepted', {'source': 'api', 'events': 0, 'repeats': 2, 'messages': 2})])
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, str], tuple[Change, list[Change]]] = {}

    def add(self, item: _Pending, repeats: int, changes: list[Change]) -> None:
        if item.message is None:  # a request body: its own record, after its changes
            changes.append(Change("ingest.accepted", f"source:{item.source}", item.received_at, {
                "source": item.source, "events": len(item.batch), "repeats": repeats}))
            return
        key = (item.source, item.actor)
        before = self._sums.pop(key, None)
        payload = {"source": item.source, "events": len(item.batch), "repeats": repeats, "messages": 1}
        at = item.received_at
        if before is not None:
            old = before[0].payload
            payload = {**payload, "events": old["events"] + len(item.batch), "repeats": old["repeats"] + repeats,
                       "messages": old["messages"] + 1}
            at = max(at, before[0].at)
        # written after the changes of the batch's last message of this source and actor
        self._sums[key] = (Change("ingest.accepted", f"source:{item.source}", at, payload), changes)

    def close(self) -> None:
        for change, changes in self._sums.values():
            changes.append(change)
        self._sums.clear()


def _runs(items: list[_Pending], changes: list[list[Change]]) -> list[tuple[str, list[Change]]]:
    """Each item's changes with its actor, in order; consecutive bus messages of one actor
    joined into one list, so their records are written in one statement (same records, same
    order). Request bodies stay one call each, as before.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> bus = [_Pending("s", [], t, "a", 0.0, message=(m, 0)) for m in ("m1", "m2")]
    >>> c = [[Change("k", "x", t, {})], [Change("k", "y", t, {})]]
    >>> [(actor, [x.subject for x in ch]) for actor, ch in _runs(bus, c)]
    [('a', ['x', 'y'])]
    """
    out: list[tuple[str, list[Change]]] = []
    previous: _Pending | None = None
    for item, item_changes in zip(items, changes, strict=True):
        if (previous is not None and item.message is not None and previous.message is not None
                and previous.actor == item.actor):
            out[-1][1].extend(item_changes)
        else:
            out.append((item.actor, list(item_changes)))
        previous = item
    return out


def _may_be_rejected(body: bytes) -> bool:
    """Whether ``json_problem`` could object to this body: it holds a NUL escape, or enough
    brackets to nest deeper than the limit (counted in C; most bodies need no walk)."""
    return b"\\u0000" in body or body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH
