"""The database handle: engine set-up, read and write transactions, migrations.

Writes are serialized: SQLite takes its write lock at ``BEGIN IMMEDIATE``; PostgreSQL takes a
transaction-scoped advisory lock. The pipeline's state and the audit chain's head are therefore
read and written by one writer at a time, on one process or many.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import DataError, OperationalError, StatementError
from sqlalchemy.pool import ConnectionPoolEntry

from watchkeeper.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
#: Key of the advisory lock that serializes writers on PostgreSQL ("wk" in ASCII, arbitrary).
WRITE_LOCK = 0x776B


def json_text(value: Any) -> str:
    """JSON as every JSON column stores it (also used by writers that bypass SQLAlchemy)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def refused_data(exc: BaseException) -> str | None:
    """Why the database refused the data itself (a value too long for its column, a number out
    of range, a character it cannot store), in one line; None for any other failure (an outage,
    a bug), where retrying the same data elsewhere cannot help."""
    if isinstance(exc, DataError):
        return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "invalid value"
    if isinstance(exc, StatementError) and isinstance(exc.orig, (OverflowError, ValueError)):
        return str(exc.orig)
    if isinstance(exc, OverflowError):
        return str(exc)
    return None


class Database:
    """One engine per process; ``read()`` and ``write()`` hand out transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock()
        self._checkpointer: _Checkpointer | None = None
        #: Run by ``audit.append`` with every batch of records, inside the writing transaction
        #: (the integration outbox enqueues there: same transaction as the change). None: nothing.
        self.audit_hook: Callable[[Connection, Sequence[Any]], None] | None = None
        try:
            if self.is_sqlite:
                self.engine = create_engine(
                    url, echo=echo, json_serializer=json_text, json_deserializer=orjson.loads,
                    connect_args={"check_same_thread": False, "timeout": 30},
                )
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            else:
                self.engine = create_engine(
                    url, echo=echo, json_serializer=json_text, json_deserializer=orjson.loads,
                    pool_pre_ping=True, pool_size=10, max_overflow=10,
                    connect_args={"connect_timeout": 5},  # an unreachable host fails fast (503), never hangs
                )
        except Exception as exc:  # SQLAlchemy raises several types for a bad URL
            raise ConfigError(f"cannot use database URL {_redact(url)}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, *, deferred: bool = False) -> Iterator[Connection]:
        """A transaction that holds the global write lock until it commits or rolls back.

        ``deferred`` (PostgreSQL): the lock is not taken at the start; the caller first writes
        what needs no global order (rows only it writes: a partition's events, its processed
        message ids) and then calls :meth:`serialize`, before reading any shared state. SQLite
        takes its one write lock at ``BEGIN IMMEDIATE`` either way."""
        if self.is_sqlite and self._checkpointer is None:
            self._checkpointer = _Checkpointer.start(self.engine.url.database)
            if self._checkpointer is not None:  # a Database dropped without dispose() ends it too
                weakref.finalize(self, self._checkpointer.signal)
        with self._write_lock, self.engine.connect() as conn:
            conn = conn.execution_options(wk_write=True, wk_audit_hook=self.audit_hook)
            with conn.begin():
                if not deferred:
                    self.serialize(conn)
                yield conn

    def serialize(self, conn: Connection) -> None:
        """Take the global write lock in ``conn``'s transaction (PostgreSQL; held until it ends)."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})

    def ping(self) -> None:
        """``SELECT 1`` on a fresh transaction; raises what the driver raises when it cannot."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def upgrade(self, revision: str = "head") -> None:
        """Run Alembic migrations up to ``revision`` (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.write() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except OperationalError as exc:
            raise ConfigError(f"cannot reach the database {_redact(self.url)}: {exc.orig}") from exc

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def is_current(self) -> bool:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return self.current_revision() == ScriptDirectory.from_config(cfg).get_current_head()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()


#: SQLite settings of every connection. ``synchronous=FULL``: each commit fsyncs the WAL, so an
#: acknowledged event survives an OS crash or power loss, not only a process crash (``NORMAL``
#: would not). The WAL is copied back into the database by ``_Checkpointer``, off the commit
#: path; a connection checkpoints by itself only past 10,000 WAL pages (~40 MB), should that
#: thread fall behind. The WAL file is truncated to 64 MB after a checkpoint. None of this
#: changes what a commit guarantees.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000",
                  "wal_autocheckpoint=10000", "journal_size_limit=67108864")


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling defers it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class _Checkpointer:
    """Copies committed WAL pages back into the SQLite database from a thread of its own
    (``PRAGMA wal_checkpoint(PASSIVE)``, which runs alongside the writer). Left to the connections,
    the checkpoint runs inside the commit that crosses the threshold, under the ingest lock, and
    every request queued behind it waits: a latency spike per checkpoint."""

    INTERVAL = 0.25

    def __init__(self, path: str) -> None:
        self.path = path
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchkeeper-sqlite-checkpoint", daemon=True)

    @classmethod
    def start(cls, path: str | None) -> _Checkpointer | None:
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        checkpointer = cls(path)
        checkpointer._thread.start()
        return checkpointer

    def signal(self) -> None:
        """Ask the thread to end (without waiting for it)."""
        self._stopped.set()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the writers' own automatic checkpoint still applies
        try:
            while not self._stopped.wait(self.INTERVAL):
                with contextlib.suppress(sqlite3.Error):  # busy or gone: the next turn (or a writer) does it
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("wk_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _redact(url: str) -> str:
    """Hide a password in a database URL before it reaches a message or a log."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
