"""The SQLite connection settings that durability and ingest speed depend on."""

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
