"""Governance: ranked causes, policy decisions, approvals and votes, action runs, runbook state,
the responder's cursor on the audit log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import Json, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_causes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("component", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_incident_causes_incident_id", "incident_causes", ["incident_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("runbook_id", sa.String(64), nullable=False),
        sa.Column("runbook_version", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("inputs", Json, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("scored_at", UTCDateTime()),
    )
    op.create_index("ix_decisions_incident_id", "decisions", ["incident_id"])
    op.create_index("ix_decisions_runbook_id", "decisions", ["runbook_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id")),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("runbook_id", sa.String(64), nullable=False),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
    )
    op.create_index("ix_approvals_incident_id", "approvals", ["incident_id"])
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_table(
        "approval_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("approval_id", sa.Integer, sa.ForeignKey("approvals.id"), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("approve", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_approval_votes_approval_id", "approval_votes", ["approval_id"])
    op.create_table(
        "action_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id")),
        sa.Column("approval_id", sa.Integer, sa.ForeignKey("approvals.id")),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("runbook_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(256), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("verification", sa.String(16)),
        sa.Column("params", Json, nullable=False),
        sa.Column("result", Json),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
    )
    op.create_index("ix_action_runs_incident_id", "action_runs", ["incident_id"])
    op.create_index("ix_action_runs_runbook_id", "action_runs", ["runbook_id"])
    op.create_index("ix_action_runs_service", "action_runs", ["service"])
    op.create_index("ix_action_runs_status", "action_runs", ["status"])
    op.create_index("ix_action_runs_queued_at", "action_runs", ["queued_at"])
    op.create_table(
        "runbook_state",
        sa.Column("runbook_id", sa.String(64), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("breaker_open", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("cursors", "runbook_state", "action_runs", "approval_votes", "approvals", "decisions",
                  "incident_causes"):
        op.drop_table(table)
