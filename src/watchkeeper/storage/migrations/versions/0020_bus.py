"""Reserved for the bus work of this round (a no-op until it lands): numbers are handed out
before parallel work starts so that two branches never write the same revision.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
