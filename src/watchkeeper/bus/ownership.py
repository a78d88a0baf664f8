"""Which worker consumes which partition: PostgreSQL advisory locks (docs/scaling.md).

A worker holds, on one dedicated connection, a membership lock (one slot per live worker) and
one lock per partition it owns. PostgreSQL releases them the moment that connection ends — the
process died (kill -9 closes its socket), the host went away (TCP keepalive), or an operator
ran ``pg_terminate_backend`` — so a survivor can take the partitions at its next rebalance.
Each worker aims at ``ceil(partitions / live workers)``: it takes free partitions up to that
share and gives back any above it, so partitions move back when a worker returns. Every commit
checks, inside its transaction, that this worker still holds the partition's lock (a fence)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import structlog
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from watchkeeper.errors import WatchkeeperError
from watchkeeper.storage import bus as bus_store

log = structlog.get_logger("watchkeeper.bus")

#: Membership slots: at most this many workers at once.
MAX_WORKERS = 1024


class OwnershipLost(WatchkeeperError):
    """This worker no longer owns a partition it was committing for (its lock went away)."""


class SoloOwnership:
    """One worker owns every partition (SQLite: one process writes; run one worker)."""

    def __init__(self, partitions: int) -> None:
        self.owned: set[int] = set()
        self.partitions = partitions

    def rebalance(self) -> tuple[set[int], set[int]]:
        """All partitions, gained at the first call (so their consumers are rewound)."""
        gained = set(range(self.partitions)) - self.owned
        self.owned |= gained
        return gained, set()

    def guard(self, _partitions: Iterable[int]) -> Callable[[Connection], None] | None:
        return None

    def close(self) -> None:
        self.owned = set()


class PgOwnership:
    """Advisory locks on one connection of ``engine`` (PostgreSQL)."""

    def __init__(self, engine: Engine, partitions: int, stream: str = "WATCHKEEPER") -> None:
        # its own engine without a pool: closing the connection really ends the session (and its locks)
        self.engine = create_engine(engine.url, poolclass=NullPool, connect_args={"connect_timeout": 5})
        self.partitions = partitions
        self.locks, self.member_locks = bus_store.lock_classes(stream)
        self.owned: set[int] = set()
        self._conn: Connection | None = None
        self.pid = 0

    def _connect(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        for slot in range(MAX_WORKERS):
            if conn.execute(text("SELECT pg_try_advisory_lock(:c, :s)"),
                            {"c": self.member_locks, "s": slot}).scalar_one():
                return conn
        conn.close()
        raise WatchkeeperError(f"more than {MAX_WORKERS} workers on this database")

    def rebalance(self) -> tuple[set[int], set[int]]:
        """Take free partitions up to this worker's share, give back those above it:
        ``(gained, lost)``. A dead connection loses every partition (the locks went with it)."""
        lost: set[int] = set()
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            conn.execute(text("SELECT 1"))
        except Exception as exc:  # the connection (and with it every lock) is gone
            log.warning("partition locks lost: reconnecting", error=str(exc).splitlines()[0])
            lost, self.owned = set(self.owned), set()
            self._drop()
            return set(), lost
        share = math.ceil(self.partitions / max(1, bus_store.members(conn, self.member_locks)))
        for p in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :p)"), {"c": self.locks, "p": p})
            self.owned.discard(p)
            lost.add(p)
        gained: set[int] = set()
        if len(self.owned) < share:
            taken = bus_store.owned_elsewhere(conn, self.locks, self.pid)
            for p in range(self.partitions):
                if len(self.owned) >= share:
                    break
                if p in self.owned or p in taken:
                    continue
                if conn.execute(text("SELECT pg_try_advisory_lock(:c, :p)"),
                                {"c": self.locks, "p": p}).scalar_one():
                    self.owned.add(p)
                    gained.add(p)
        if gained or lost:
            log.info("partitions rebalanced", gained=sorted(gained), lost=sorted(lost), owned=sorted(self.owned))
        return gained, lost

    def guard(self, partitions: Iterable[int]) -> Callable[[Connection], None]:
        """Run inside a commit: raises OwnershipLost unless this worker still holds every lock."""
        wanted, pid, locks = sorted(set(partitions)), self.pid, self.locks

        def check(conn: Connection) -> None:
            missing = sorted(set(wanted) - bus_store.held(conn, locks, wanted, pid))
            if missing:
                raise OwnershipLost(f"partition {missing[0]} is no longer this worker's")

        return check

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: S110 - already broken; its locks died with it
                pass
            self._conn = None

    def close(self) -> None:
        """Release every lock (closing the connection does)."""
        self._drop()
        self.owned = set()
        self.engine.dispose()
