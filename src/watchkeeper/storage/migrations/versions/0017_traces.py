"""Traces: raw spans (kept for a window, with a size cap) and RED rows per step and per service,
edge and operation (kept longer); both pruned by the retention job.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                     autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "spans",
        _id(),
        sa.Column("received_s", sa.Float, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.String(16)),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("operation", sa.String(256), nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("error", sa.Boolean, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_spans_received_s", "spans", ["received_s"])
    op.create_index("ix_spans_trace_id", "spans", ["trace_id"])
    op.create_index("ix_spans_service_start", "spans", ["service", "start_s"])
    op.create_table(
        "trace_red",
        _id(),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("step", sa.Float, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.String(520), nullable=False),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("p50", sa.Float),
        sa.Column("p95", sa.Float),
        sa.Column("p99", sa.Float),
        sa.Column("extra", Json),
    )
    op.create_index("ix_trace_red_at", "trace_red", ["at"])
    op.create_index("ix_trace_red_scope_name_at", "trace_red", ["scope", "name", "at"])
    op.create_index("ix_trace_red_service_at", "trace_red", ["service", "at"])


def downgrade() -> None:
    op.drop_table("trace_red")
    op.drop_table("spans")
