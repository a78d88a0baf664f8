"""The migrations build exactly the schema ``tables.py`` describes, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from watchkeeper.service import Watchkeeper
from watchkeeper.storage.tables import metadata


def test_migrations_match_the_tables(service: Watchkeeper) -> None:
    with service.db.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert service.db.is_current()


def test_upgrade_is_idempotent(service: Watchkeeper) -> None:
    service.upgrade()
    service.upgrade()
    assert service.db.current_revision() == "0020"
