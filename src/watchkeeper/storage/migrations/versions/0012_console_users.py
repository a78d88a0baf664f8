"""Console users and sessions (reserved; filled in by the console work): people who sign in to
the web console (argon2 hashes, a role, disabled rather than deleted so the audit log's names
stay meaningful), their sessions (stored hashed), approval-link nonces already used (each link
acts once) and the console's generated secrets (when the setting ``console.secret`` is unset).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from watchkeeper.storage.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime()),
        sa.Column("last_login_at", UTCDateTime()),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("console_users.id"), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
    )
    op.create_table(
        "console_link_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("approval_id", sa.Integer, nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("used_by", sa.String(256), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    )
    op.create_table(
        "console_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_secrets")
    op.drop_table("console_link_nonces")
    op.drop_index(op.f("ix_console_sessions_expires_at"), table_name="console_sessions")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
