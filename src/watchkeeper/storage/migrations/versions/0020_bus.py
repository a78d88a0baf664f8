"""The bus: message ids a worker has committed (idempotency), so a JetStream redelivery of a
message whose events are already committed is acknowledged without being applied again.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bus_processed",
        sa.Column("message_id", sa.String(80), primary_key=True),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_bus_processed_at", "bus_processed", ["at"])


def downgrade() -> None:
    op.drop_index("ix_bus_processed_at", "bus_processed")
    op.drop_table("bus_processed")
