"""The SQLite connection settings that durability and ingest speed depend on, and PostgreSQL's global write lock."""

from __future__ import annotations

from watchkeeper.storage.db import Database


def test_sqlite_commits_are_fsynced_to_the_wal(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with db.read() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                      for name in ("journal_mode", "synchronous", "wal_autocheckpoint", "foreign_keys")}
    finally:
        db.dispose()
    # synchronous=2 is FULL: a 2xx (sent after the commit) survives an OS crash, not only ours.
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "wal_autocheckpoint": 10000, "foreign_keys": 1}


def test_a_thread_of_its_own_checkpoints_the_wal_and_stops_with_the_database(sqlite_url: str) -> None:
    import threading

    from sqlalchemy import text

    db = Database(sqlite_url)
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    names = [t.name for t in threading.enumerate()]
    assert names.count("watchkeeper-sqlite-checkpoint") >= 1
    checkpointer = db._checkpointer
    assert checkpointer is not None
    db.dispose()
    assert not checkpointer._thread.is_alive() and db._checkpointer is None
    again = Database(sqlite_url)
    try:
        with again.read() as conn:  # what was committed is there
            assert conn.execute(text("SELECT x FROM t")).scalar_one() == 1
    finally:
        again.dispose()


def test_a_database_dropped_without_dispose_ends_its_checkpoint_thread(sqlite_url: str) -> None:
    import gc

    from sqlalchemy import text

    db = Database(sqlite_url)
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    checkpointer = db._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    db.engine.dispose()
    del db
    gc.collect()
    checkpointer._thread.join(timeout=10)
    assert not checkpointer._thread.is_alive()


def test_a_deferred_write_takes_the_global_lock_only_when_asked(pg_url: str) -> None:
    """``write(deferred=True)`` (a bus batch writing its own rows first) holds no global write lock
    until ``serialize``; then it holds it until the transaction ends."""
    from sqlalchemy import text

    from watchkeeper.storage.db import WRITE_LOCK

    db = Database(pg_url)
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k "
                 "AND objsubid = 1 AND granted AND pid = :pid")
    try:
        with db.write(deferred=True) as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with db.engine.connect() as other:
                assert other.execute(query, {"k": WRITE_LOCK, "pid": pid}).scalar_one() == 0
                db.serialize(conn)
                assert other.execute(query, {"k": WRITE_LOCK, "pid": pid}).scalar_one() == 1
        with db.engine.connect() as other:
            assert other.execute(query, {"k": WRITE_LOCK, "pid": pid}).scalar_one() == 0
        with db.write() as conn, db.engine.connect() as other:  # the default: taken at the start
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert other.execute(query, {"k": WRITE_LOCK, "pid": pid}).scalar_one() == 1
    finally:
        db.dispose()
