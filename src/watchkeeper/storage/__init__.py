"""Persistence: the only package that knows SQL (SQLAlchemy Core + Alembic)."""

from watchkeeper.storage.db import Database

__all__ = ["Database"]
