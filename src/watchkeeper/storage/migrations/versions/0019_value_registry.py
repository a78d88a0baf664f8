"""Reserved for the value (model registry) work of this round (a no-op until it lands): numbers are handed out
before parallel work starts so that two branches never write the same revision.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
