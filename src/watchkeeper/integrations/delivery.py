"""The outbox delivery loop ``serve`` runs on a thread of its own.

Each round claims due messages with a lease (``storage.outbox.claim``), delivers each incident's
messages to each target in order — different (incident, target) groups in parallel on
``workers`` threads —, then records every outcome in one write transaction:

- delivered: kept as delivered, with what the target gave back (``integration_refs``);
- failed and retrying can help: tried again after an exponential backoff with jitter (at least
  the receiver's ``Retry-After``); the group's later messages wait for it;
- failed ``max_attempts`` times, or retrying cannot help (a 400, 401, 403, 404), or the target is
  no longer configured: dead-lettered, audited (``outbox.dead``), listed by
  ``watchkeeper outbox list --status dead`` and ``GET /api/v1/outbox?status=dead``.

A server killed mid-delivery leaves its claimed messages leased; after ``lease_seconds`` any
server (the restarted one included) claims them again: delivery is at least once, and receivers
see each message's idempotency key (``X-Watchkeeper-Delivery``, PagerDuty's ``dedup_key``) to
drop the duplicate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter

from watchkeeper.governance import worker_id
from watchkeeper.governance.loop import Loop
from watchkeeper.integrations.base import Delivered, DeliveryError, Message, Notifier, Redactor, short
from watchkeeper.integrations.config import OutboxConfig
from watchkeeper.integrations.http import Backoff
from watchkeeper.model import Change
from watchkeeper.storage import Database, audit
from watchkeeper.storage import outbox as store
from watchkeeper.telemetry import Metrics

log = structlog.get_logger("watchkeeper.outbox")
PRUNE_EVERY = timedelta(hours=1)


def _counter(metrics: Metrics) -> Counter:
    """``watchkeeper_outbox_deliveries_total``, made once per service's metrics."""
    return metrics.counter(
        "watchkeeper_outbox_deliveries",
        "Outbox delivery attempts, by target and outcome (delivered | retry | dead); labels never hold a secret",
        ["target", "outcome"],
    )


class Delivery:
    """Delivers the outbox to ``notifiers`` (target name -> notifier)."""

    def __init__(
        self,
        db: Database,
        notifiers: Mapping[str, Notifier],
        config: OutboxConfig,
        clock: Callable[[], datetime],
        *,
        redactor: Redactor | None = None,
        metrics: Metrics | None = None,
        owner: str | None = None,
        rand: Callable[[], float] = random.random,
        keep_days: float = 0,
    ) -> None:
        self.db = db
        self.notifiers = dict(notifiers)
        self.config = config
        self.clock = clock
        self.redactor = redactor or Redactor()
        self.owner = owner or worker_id()
        self.rand = rand
        self.backoff = Backoff(config.backoff_seconds, config.max_backoff_seconds)
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="watchkeeper-outbox")
        self.keep_days = keep_days
        self._pruned_at: datetime | None = None
        #: outcomes of the last batch, recorded with the next claim: (outcomes, ids claimed but not tried)
        self._unsettled: tuple[list[store.Outcome], list[int]] = ([], [])
        #: the batch handed to the workers and not yet collected: (future, its group) per group
        self._inflight: list[tuple[Future[tuple[list[store.Outcome], list[Message]]], list[Message]]] = []
        self._loop: Loop | None = None
        self.deliveries = _counter(metrics) if metrics is not None else None

    # -- one round ---------------------------------------------------------------------------
    def step(self) -> int:
        """One round of a two-deep pipeline: record the outcomes of the batch delivered last and
        claim the next batch in one write transaction (one commit per batch), hand the new batch to
        the workers, then wait for the batch already in flight; the number of messages recorded,
        claimed and attempted (0: nothing to do).

        While the workers send one batch the next is already queued behind it and this thread talks
        to the database, so the workers never wait for a commit. Order per (incident, target) holds:
        a message in flight is leased, and a leased message holds back its group's later messages
        from every claim. Outcomes wait in memory until the next step (or :meth:`flush`): a crash
        redelivers at most the batch delivered last and the one in flight (their delivery keys
        are the same each time)."""
        now = self.clock()
        self._prune(now)
        outcomes, untried = self._unsettled
        with self.db.write() as conn:  # a failure here (an outage) keeps the outcomes for the next try
            recorded = self._record(conn, outcomes, untried, now)
            claimed = store.claim(
                conn, self.owner, now, now + timedelta(seconds=self.config.lease_seconds), self.config.batch
            )
        self._unsettled = ([], [])
        self._report(recorded)
        groups: dict[tuple[int, str], list[Message]] = {}
        for message in claimed:
            groups.setdefault((message.incident_id, message.target), []).append(message)
        previous, self._inflight = (
            self._inflight,
            [(self._pool.submit(self._deliver_group, group), group) for group in groups.values()],
        )
        self._unsettled = self._collect(previous)
        return len(outcomes) + len(claimed) + len(self._unsettled[0])

    def _collect(
        self, inflight: list[tuple[Future[tuple[list[store.Outcome], list[Message]]], list[Message]]]
    ) -> tuple[list[store.Outcome], list[int]]:
        """Wait for a batch's groups: their outcomes, and the ids claimed but not tried."""
        outcomes: list[store.Outcome] = []
        untried: list[int] = []
        for future, group in inflight:
            try:
                done, left = future.result()
            except Exception:  # a bug in the group loop itself: give the group back, say so
                log.exception("outbox group failed", target=group[0].target, incident=group[0].incident_id)
                done, left = [], group
            outcomes.extend(done)
            untried.extend(m.id for m in left)
        return outcomes, untried

    def flush(self) -> None:
        """Wait for the batch in flight, then record every outcome still held in memory (at stop)."""
        inflight, self._inflight = self._inflight, []
        more, more_untried = self._collect(inflight)
        outcomes, untried = self._unsettled
        self._unsettled = (outcomes + more, untried + more_untried)
        outcomes, untried = self._unsettled
        if not outcomes and not untried:
            return
        with self.db.write() as conn:
            recorded = self._record(conn, outcomes, untried, self.clock())
        self._unsettled = ([], [])
        self._report(recorded)

    def _record(
        self, conn: Any, outcomes: list[store.Outcome], untried: list[int], now: datetime
    ) -> list[store.Outcome]:
        if not outcomes and not untried:
            return []
        recorded = store.settle(conn, self.owner, outcomes, now)
        store.release(conn, self.owner, untried)
        dead = [o for o in recorded if not o.delivered and o.retry_at is None]
        if dead:
            audit.append(
                conn,
                "system:outbox",
                [
                    Change(
                        "outbox.dead",
                        f"incident:{o.incident_id}",
                        now,
                        {"id": o.id, "incident_id": o.incident_id, "target": o.target, "error": o.error},
                    )
                    for o in dead
                ],
            )
        return recorded

    def _report(self, recorded: list[store.Outcome]) -> None:
        for o in recorded:
            outcome = "delivered" if o.delivered else ("retry" if o.retry_at is not None else "dead")
            if self.deliveries is not None:
                self.deliveries.labels(o.target, outcome).inc()
            if not o.delivered:
                log.warning(
                    "outbox delivery failed",
                    id=o.id,
                    target=o.target,
                    incident=o.incident_id,
                    outcome=outcome,
                    error=o.error,
                )

    def _prune(self, now: datetime) -> None:
        """Hourly: delete messages delivered more than ``keep_days`` ago (0: keep them all);
        dead and pending ones are never pruned."""
        if self.keep_days <= 0 or (self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY):
            return
        self._pruned_at = now
        with self.db.write() as conn:
            gone = store.prune(conn, now - timedelta(days=self.keep_days))
        if gone:
            log.info("outbox pruned", delivered_messages=gone, older_than_days=self.keep_days)

    def _deliver_group(self, messages: list[Message]) -> tuple[list[store.Outcome], list[Message]]:
        """One (incident, target)'s messages in order, stopping at the first failure."""
        done: list[store.Outcome] = []
        ref = messages[0].ref
        for index, message in enumerate(messages):
            if ref is not message.ref:
                message = Message(
                    message.id,
                    message.incident_id,
                    message.target,
                    message.event,
                    message.payload,
                    message.attempts,
                    message.created_at,
                    ref,
                )
            outcome = self._deliver(message)
            done.append(outcome)
            if not outcome.delivered:
                return done, messages[index + 1 :]
            if outcome.ref is not None:
                ref = outcome.ref
        return done, []

    def _deliver(self, message: Message) -> store.Outcome:
        notifier = self.notifiers.get(message.target)
        if notifier is None:
            return self._failed(
                message, f"target {message.target!r} is not configured (integrations.targets)", retryable=False
            )
        try:
            result = notifier.deliver(message)
        except DeliveryError as exc:
            return self._failed(message, str(exc), retryable=exc.retryable, retry_after=exc.retry_after)
        except Exception as exc:  # a bug in a notifier: keep the message, retry it, say what happened
            log.exception("notifier failed", target=message.target, id=message.id)
            return self._failed(message, f"{type(exc).__name__}: {exc}", retryable=True)
        if not isinstance(result, Delivered):
            return self._failed(message, f"notifier returned {type(result).__name__}, not Delivered", retryable=True)
        return store.Outcome(message.id, message.target, message.incident_id, True, result.ref)

    def _failed(
        self, message: Message, error: str, *, retryable: bool, retry_after: float | None = None
    ) -> store.Outcome:
        attempts = message.attempts + 1
        text = short(self.redactor.redact(error), 1000)
        if not retryable or attempts >= self.config.max_attempts:
            why = "" if retryable else " (retrying cannot help)"
            return store.Outcome(
                message.id,
                message.target,
                message.incident_id,
                False,
                error=f"{text}{why}; dead after {attempts} attempt{'s' if attempts > 1 else ''}",
            )
        wait = self.backoff.delay(attempts - 1, retry_after, self.rand)
        return store.Outcome(
            message.id,
            message.target,
            message.incident_id,
            False,
            error=text,
            retry_at=self.clock() + timedelta(seconds=wait),
        )

    def drain(self, max_rounds: int = 1000) -> int:
        """Run rounds until nothing is due and every outcome is recorded (tests, benchmarks);
        the number of messages attempted."""
        total = 0
        for _ in range(max_rounds):
            did = self.step()
            total += len(self._unsettled[0])
            if not did:
                break
        return total

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        if self._loop is None:
            self._loop = Loop("outbox", self.step, self.config.poll_seconds)
            self._loop.start()

    def wake(self) -> None:
        if self._loop is not None:
            self._loop.wake()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        self._pool.shutdown(wait=True)
        try:
            self.flush()
        except Exception:  # the database is gone: the leases expire and another round redelivers
            log.warning("outbox outcomes not recorded at stop; they will be delivered again")
        for notifier in self.notifiers.values():
            notifier.close()

    def counts(self) -> dict[tuple[str, str], int]:
        with self.db.read() as conn:
            return store.counts(conn)

    def health(self) -> dict[str, Any]:
        """The outbox for ``/healthz``: pending and dead messages, the oldest pending message's age
        (seconds), and the same per target. Never an error status: a queue that waits on a slow
        receiver is the outbox working (the issue asks for nothing dropped, not for an empty queue)."""
        now = self.clock()
        with self.db.read() as conn:
            found = store.health(conn)
        targets = {
            name: {
                "pending": entry["pending"],
                "dead": entry["dead"],
                "oldest_pending_age_seconds": _age(now, entry["oldest_pending_at"]),
            }
            for name, entry in sorted(found.items())
        }
        oldest = [entry["oldest_pending_at"] for entry in found.values() if entry["oldest_pending_at"] is not None]
        return {
            "pending": sum(e["pending"] for e in found.values()),
            "dead": sum(e["dead"] for e in found.values()),
            "oldest_pending_age_seconds": _age(now, min(oldest)) if oldest else None,
            "targets": targets,
        }

    def status(self) -> dict[str, Any]:
        with self.db.read() as conn:
            counts = store.counts(conn)
            oldest = store.oldest_pending(conn)
        by_status: dict[str, int] = {}
        for (_target, status), n in counts.items():
            by_status[status] = by_status.get(status, 0) + n
        return {"targets": sorted(self.notifiers), "messages": by_status, "oldest_pending": oldest}


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)
