"""Logs: templates per service, per-minute counts per template, raw lines (pruned by window and
size), file offsets and the miners' state (docs/logs.md).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_templates",
        sa.Column("service", sa.String(256), primary_key=True),
        sa.Column("template_id", sa.String(64), primary_key=True),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_log_templates_last_seen", "log_templates", ["last_seen"])
    op.create_table(
        "log_counts",
        sa.Column("service", sa.String(256), primary_key=True),
        sa.Column("template_id", sa.String(64), primary_key=True),
        sa.Column("minute", UTCDateTime(), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
    )
    op.create_index("ix_log_counts_minute", "log_counts", ["minute"])
    op.create_table(
        "log_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("input", sa.String(1024), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_log_lines_received_at", "log_lines", ["received_at"])
    op.create_index("ix_log_lines_service_at", "log_lines", ["service", "at"])
    op.create_table(
        "log_offsets",
        sa.Column("input", sa.String(1024), primary_key=True),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("device", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("lines", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "log_state",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("log_state", "log_offsets", "log_lines", "log_counts", "log_templates"):
        op.drop_table(table)
