"""Reserved for the traces work of this round (a no-op until it lands): numbers are handed out
before parallel work starts so that two branches never write the same revision.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
