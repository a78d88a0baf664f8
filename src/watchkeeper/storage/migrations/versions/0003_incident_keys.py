"""Correlation keys: incidents indexed by the keys their alerts' strategies give (labels, topology,
text templates), back-filled from the services of existing incidents.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_keys",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
    )
    op.create_index("ix_incident_keys_key", "incident_keys", ["key"])
    op.execute(
        "INSERT INTO incident_keys (incident_id, key) "
        "SELECT incident_id, 'labels:service=' || service FROM incident_services"
    )


def downgrade() -> None:
    op.drop_table("incident_keys")
