"""Detector state of the watches, so that ``serve`` keeps what its detectors learned across a restart.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detector_state",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("watch", sa.String(64), nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_detector_state_watch", "detector_state", ["watch"])


def downgrade() -> None:
    op.drop_index("ix_detector_state_watch", table_name="detector_state")
    op.drop_table("detector_state")
