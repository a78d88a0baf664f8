"""Integration outbox: messages to external systems, written in the transaction of the change that
causes them, and what each system gave back per incident (``integration_refs``: Slack's message
``ts``, an ITSM ticket id).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", UTCDateTime()),
    )
    op.create_index("ix_outbox_status_id", "outbox", ["status", "id"])  # due messages in order, skipping delivered ones
    op.create_index("ix_outbox_group", "outbox", ["incident_id", "target", "status", "id"])
    op.create_table(
        "integration_refs",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("incident_id", sa.Integer, primary_key=True),
        sa.Column("ref", Json, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integration_refs")
    op.drop_index("ix_outbox_group", table_name="outbox")
    op.drop_index("ix_outbox_status_id", table_name="outbox")
    op.drop_table("outbox")
