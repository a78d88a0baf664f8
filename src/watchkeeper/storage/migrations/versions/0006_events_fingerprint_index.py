"""Drop the index on ``events.fingerprint``.

Nothing reads events by fingerprint (the deduplicated state per fingerprint is ``alerts``; events
are read by time, for KPIs). The index cost the most in the ingest write path: every commit
touched one random index page per distinct fingerprint, about a third of the bytes SQLite wrote
per alert in ``benchmarks/ingest.py``. A feature that needs events by fingerprint can bring
an index back with it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_fingerprint", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_fingerprint", "events", ["fingerprint"])
