"""Change events (deploys, rollbacks, config and flag changes) and the true cause of resolved
incidents: evidence for root-cause ranking and the data its confidence model is refitted on.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(256)),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("who", sa.String(256), nullable=False),
        sa.Column("link", sa.Text),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(256), nullable=False),
    )
    op.create_index("ix_changes_service_at", "changes", ["service", "at"])
    op.create_index("ix_changes_at", "changes", ["at"])
    op.create_table(
        "incident_truth",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("component", sa.String(256), nullable=False),
        sa.Column("recorded_by", sa.String(256), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_truth")
    op.drop_index("ix_changes_at", table_name="changes")
    op.drop_index("ix_changes_service_at", table_name="changes")
    op.drop_table("changes")
