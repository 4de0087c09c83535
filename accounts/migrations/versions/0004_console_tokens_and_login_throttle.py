"""web console: API tokens (console_api_tokens) and login throttling per user name and address
(console_login_throttle)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_api_tokens",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["username"], ["console_users.username"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_api_tokens_token_sha256", "console_api_tokens", ["token_sha256"], unique=True)
    op.create_index("ix_console_api_tokens_username", "console_api_tokens", ["username"])
    op.create_table(
        "console_login_throttle",
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "address"),
    )
    op.create_index("ix_console_login_throttle_expires_at", "console_login_throttle", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_login_throttle_expires_at", table_name="console_login_throttle")
    op.drop_table("console_login_throttle")
    op.drop_index("ix_console_api_tokens_username", table_name="console_api_tokens")
    op.drop_index("ix_console_api_tokens_token_sha256", table_name="console_api_tokens")
    op.drop_table("console_api_tokens")
