"""Silences, and the hold state and recent state changes of alerts (flapping).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("matchers", Json, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("held", sa.String(32)))
        batch.add_column(sa.Column("changes", Json))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("changes")
        batch.drop_column("held")
    op.drop_table("silences")
