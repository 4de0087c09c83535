"""money KPIs by branch: account_branches (the business office of each account, from the import's `branch`)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_branches",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index("ix_account_branches_branch", "account_branches", ["branch"])


def downgrade() -> None:
    op.drop_index("ix_account_branches_branch", table_name="account_branches")
    op.drop_table("account_branches")
