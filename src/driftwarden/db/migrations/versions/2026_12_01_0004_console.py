"""console: the shared cookie-signing key and one-time sign-in tokens

Both tables get row-level security with no policy, like every other table (revision 0002), so
Supabase's Data API roles see nothing; the owner driftwarden connects as is unaffected.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("console_secrets", "console_login_tokens")


def _set_rls(action: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'ALTER TABLE "{table}" {action} ROW LEVEL SECURITY')


def upgrade() -> None:
    op.create_table(
        "console_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_console_secrets")),
    )
    op.create_table(
        "console_login_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            ondelete="CASCADE",
            name=op.f("fk_console_login_tokens_api_key_id_api_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_login_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_console_login_tokens_api_key_id"), "console_login_tokens", ["api_key_id"]
    )
    _set_rls("ENABLE")


def downgrade() -> None:
    _set_rls("DISABLE")
    op.drop_index(op.f("ix_console_login_tokens_api_key_id"), table_name="console_login_tokens")
    op.drop_table("console_login_tokens")
    op.drop_table("console_secrets")
