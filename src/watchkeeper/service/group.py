"""Group commit: concurrent writers share one transaction, so one fsync serves them all.

Each caller of :meth:`GroupCommit.submit` queues its item and waits for the commit lock; whoever
takes it first commits everything queued by then (its own item and the others') in one call of
``commit``, and wakes the others. A caller returns only once its item is committed, or raises what
the commit raised: nothing is acknowledged before it is durable.

>>> batches = []
>>> group = GroupCommit(batches.append)
>>> group.submit("a"); group.submit("b")
>>> batches
[['a'], ['b']]

With ``retry_alone``, a group whose commit fails is committed again one item at a time, so that only
the item at fault fails (``commit`` must leave nothing behind when it raises: one transaction).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Items from many threads, committed in groups by ``commit(items)`` (one transaction)."""

    def __init__(self, commit: Callable[[list[T]], None], *, retry_alone: bool = False) -> None:
        self.commit = commit
        #: when a group's commit fails, commit each of its items alone (``commit`` must then be
        #: idempotent on failure): one item the database refuses fails only its own sender
        self.retry_alone = retry_alone
        #: held while a group commits (hold it to read or change what ``commit`` changes)
        self.lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[T, Future[None]]] = []
        #: groups committed, and items in them (a group of one is a commit no one shared)
        self.groups = 0
        self.items = 0

    def submit(self, item: T) -> None:
        """Queue ``item``; return once it is committed (raise what its group's commit raised)."""
        done: Future[None] = Future()
        with self._pending_lock:
            self._pending.append((item, done))
        with self.lock:
            if not done.done():
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit(group)
        done.result()

    def _commit(self, group: list[tuple[T, Future[None]]]) -> None:
        try:
            self.commit([i for i, _ in group])
        except BaseException as exc:
            if not self.retry_alone or len(group) == 1:
                for _, future in group:
                    future.set_exception(exc)
                return
            for one in group:
                self._commit([one])
            return
        self.groups += 1
        self.items += len(group)
        for _, future in group:
            future.set_result(None)
