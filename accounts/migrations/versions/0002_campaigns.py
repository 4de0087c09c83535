"""outbound campaigns: campaigns, campaign_accounts, campaign_attempts; accounts.phone_zones

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("phone_zones", sa.String(length=200), nullable=True))
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("launched_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_accounts",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("queued", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "account_id"),
    )
    op.create_index("ix_campaign_accounts_due", "campaign_accounts", ["campaign_id", "state", "queued", "due_at"])
    op.create_table(
        "campaign_attempts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("reservation_id", sa.String(length=200), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("next_allowed_at", sa.Float(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("right_party", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=32), nullable=True),
        sa.Column("handled_by", sa.String(length=16), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_campaign_attempts_campaign_id", "campaign_attempts", ["campaign_id"])
    op.create_index("ix_campaign_attempts_account_id", "campaign_attempts", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_attempts_account_id", table_name="campaign_attempts")
    op.drop_index("ix_campaign_attempts_campaign_id", table_name="campaign_attempts")
    op.drop_table("campaign_attempts")
    op.drop_index("ix_campaign_accounts_due", table_name="campaign_accounts")
    op.drop_table("campaign_accounts")
    op.drop_table("campaigns")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("phone_zones")
