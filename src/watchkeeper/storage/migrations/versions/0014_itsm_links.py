"""ITSM links (our incident id ↔ ServiceNow sys_id / Jira issue), sync cursors and the keys of
inbound changes already applied (idempotency).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "itsm_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("external_key", sa.String(128), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ux_itsm_links_incident", "itsm_links", ["system", "incident_id"], unique=True)
    op.create_index("ux_itsm_links_external", "itsm_links", ["system", "external_id"], unique=True)
    op.create_table(
        "itsm_cursors",
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "itsm_inbound",
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("incident_id", sa.Integer),
        sa.Column("outcome", sa.String(32), nullable=False),
    )
    op.create_index("ix_itsm_inbound_received_at", "itsm_inbound", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_itsm_inbound_received_at", table_name="itsm_inbound")
    op.drop_table("itsm_inbound")
    op.drop_table("itsm_cursors")
    op.drop_index("ux_itsm_links_external", table_name="itsm_links")
    op.drop_index("ux_itsm_links_incident", table_name="itsm_links")
    op.drop_table("itsm_links")
