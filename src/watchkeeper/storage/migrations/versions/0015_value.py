"""Use cases, gates and model registry: the AIOps portfolio with its versions, stage-gate
proposals awaiting an approver, model versions with their scores, and drift events.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "use_cases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("doc", Json, nullable=False),
        sa.Column("stage_since", UTCDateTime(), nullable=False),
        sa.Column("pilot_started_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "use_case_versions",
        sa.Column("use_case_id", sa.String(64), sa.ForeignKey("use_cases.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("doc", Json, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "gate_proposals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("use_case_id", sa.String(64), sa.ForeignKey("use_cases.id"), nullable=False),
        sa.Column("use_case_version", sa.Integer, nullable=False),
        sa.Column("from_stage", sa.String(16), nullable=False),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("evaluation", Json, nullable=False),
        sa.Column("proposed_by", sa.String(256), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_gate_proposals_use_case_id", "gate_proposals", ["use_case_id"])
    op.create_index("ix_gate_proposals_status", "gate_proposals", ["status"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("train_start", UTCDateTime()),
        sa.Column("train_end", UTCDateTime()),
        sa.Column("scores", Json, nullable=False),
        sa.Column("baseline", Json, nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("registered_by", sa.String(256), nullable=False),
    )
    op.create_index("ux_models_kind_name_version", "models", ["kind", "name", "version"], unique=True)
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("psi", sa.Float),
        sa.Column("ks", sa.Float),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("details", Json, nullable=False),
    )
    op.create_index("ix_drift_events_model", "drift_events", ["model"])
    op.create_index("ix_drift_events_at", "drift_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_drift_events_at", table_name="drift_events")
    op.drop_index("ix_drift_events_model", table_name="drift_events")
    op.drop_table("drift_events")
    op.drop_index("ux_models_kind_name_version", table_name="models")
    op.drop_table("models")
    op.drop_index("ix_gate_proposals_status", table_name="gate_proposals")
    op.drop_index("ix_gate_proposals_use_case_id", table_name="gate_proposals")
    op.drop_table("gate_proposals")
    op.drop_table("use_case_versions")
    op.drop_table("use_cases")
