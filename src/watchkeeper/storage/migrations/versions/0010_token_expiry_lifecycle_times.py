"""API tokens expire and record their last use; incidents keep every lifecycle time ever set.

* ``api_tokens.expires_at`` (NULL: never; only ingest tokens may be made so) and ``last_used_at``.
  Tokens made before this revision get no expiry: rotate them (``watchkeeper token rotate``).
* ``incidents.started_at``: the source's ``startsAt`` of the incident's first alert (NULL for
  incidents opened before this revision: the source's start was not kept).
* ``incidents.first_acknowledged_at`` / ``first_mitigated_at``: reopening clears
  ``acknowledged_at`` but not these. They are filled from the audit log, which kept every
  acknowledgement and mitigation, so incidents reopened before this revision get theirs back.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _first(kinds: str, column: str) -> str:
    """SQL: the earliest audit record of ``kinds`` for each incident, else its ``column``."""
    return (
        "COALESCE((SELECT min(a.at) FROM audit_log a WHERE a.subject = "  # noqa: S608 - constants only
        f"'incident:' || CAST(incidents.id AS VARCHAR(20)) AND a.kind IN ({kinds})), incidents.{column})"
    )


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime()))
        batch.add_column(sa.Column("last_used_at", UTCDateTime()))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("started_at", UTCDateTime()))
        batch.add_column(sa.Column("first_acknowledged_at", UTCDateTime()))
        batch.add_column(sa.Column("first_mitigated_at", UTCDateTime()))
    acked = _first("'incident.acknowledged', 'incident.mitigated'", "acknowledged_at")
    mitigated = _first("'incident.mitigated'", "mitigated_at")
    op.execute(f"UPDATE incidents SET first_acknowledged_at = {acked}, "  # noqa: S608 - constants only
               f"first_mitigated_at = {mitigated}")


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("first_mitigated_at")
        batch.drop_column("first_acknowledged_at")
        batch.drop_column("started_at")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
