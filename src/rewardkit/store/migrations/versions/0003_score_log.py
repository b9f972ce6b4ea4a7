"""served scores and their per-minute aggregates (the production loop's score log)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_scores",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("normalized", sa.Float(), nullable=True),
        sa.Column("uncertainty", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("served_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_served_scores_created_at"), ["created_at"], unique=False)
    op.create_table(
        "score_aggregates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_sq", sa.Float(), nullable=False),
        sa.Column("edges", sa.JSON(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.Column("uncertain", sa.Integer(), nullable=False),
        sa.Column("uncertainty_total", sa.Float(), nullable=False),
        sa.Column("uncertainty_count", sa.Integer(), nullable=False),
        sa.Column("length_total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("score_aggregates", schema=None) as batch_op:
        batch_op.create_index("ix_score_aggregates_minute", ["minute", "model_version"], unique=False)
    op.create_table(
        "score_references",
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("edges", sa.JSON(), nullable=False),
        sa.Column("proportions", sa.JSON(), nullable=False),
        sa.Column("reward_mean", sa.Float(), nullable=True),
        sa.Column("reward_std", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_version"),
    )


def downgrade() -> None:
    op.drop_table("score_references")
    with op.batch_alter_table("score_aggregates", schema=None) as batch_op:
        batch_op.drop_index("ix_score_aggregates_minute")
    op.drop_table("score_aggregates")
    with op.batch_alter_table("served_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_served_scores_created_at"))
    op.drop_table("served_scores")
