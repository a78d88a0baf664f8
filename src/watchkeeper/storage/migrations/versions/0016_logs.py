"""Reserved for the logs work of this round (a no-op until it lands): numbers are handed out
before parallel work starts so that two branches never write the same revision.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
