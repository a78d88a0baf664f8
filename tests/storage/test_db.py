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
