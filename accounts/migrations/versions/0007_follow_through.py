"""promise and plan follow-through (issue 20): obligations, one row per promise or installment part

Each row carries its reminder (before the date), its deadline check (date + grace), what was paid toward it and
the campaign re-entry after a broken promise; campaigns/followup.py drives them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "obligations",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("promise_id", sa.Integer(), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("paid", sa.Numeric(12, 2), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("made_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remind_at", sa.Float(), nullable=True),
        sa.Column("remind_state", sa.String(length=16), nullable=False),
        sa.Column("remind_tries", sa.Integer(), nullable=False),
        sa.Column("remind_claimed_at", sa.Float(), nullable=True),
        sa.Column("remind_detail", sa.JSON(), nullable=False),
        sa.Column("check_at", sa.Float(), nullable=False),
        sa.Column("settled_at", sa.Float(), nullable=True),
        sa.Column("reentry_state", sa.String(length=16), nullable=True),
        sa.Column("reentry_detail", sa.JSON(), nullable=False),
        sa.Column("announce", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_obligations_account_id", "obligations", ["account_id"])
    op.create_index("ix_obligations_status", "obligations", ["status"])


def downgrade() -> None:
    op.drop_index("ix_obligations_status", table_name="obligations")
    op.drop_index("ix_obligations_account_id", table_name="obligations")
    op.drop_table("obligations")
