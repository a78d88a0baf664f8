"""Reserved for the integrations work of this round (a no-op until it lands): numbers are handed out
before parallel work starts so that two branches never write the same revision.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
