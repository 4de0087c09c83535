"""the console's work queue (issue 20): work_items, one per (kind, source)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=240), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_work_items_account_id", "work_items", ["account_id"])
    op.create_index("ix_work_items_due_at", "work_items", ["due_at"])
    op.create_index("ix_work_items_state", "work_items", ["state"])


def downgrade() -> None:
    op.drop_index("ix_work_items_state", table_name="work_items")
    op.drop_index("ix_work_items_due_at", table_name="work_items")
    op.drop_index("ix_work_items_account_id", table_name="work_items")
    op.drop_table("work_items")
