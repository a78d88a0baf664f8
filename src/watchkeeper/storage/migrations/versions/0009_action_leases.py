"""Action leases: ``action_runs.lease_owner`` and ``action_runs.lease_expires_at``.

A worker claims a queued action by writing its owner id and a lease deadline in the same
conditional UPDATE that sets ``status = 'running'``; a heartbeat pushes the deadline forward
while the runbook runs. Another server recovers a running action only once its lease expired.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_runs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(128)))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("action_runs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
