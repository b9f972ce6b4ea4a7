"""the human review queue: items, slot assignments, labels, annotators

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
        "review_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=32), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("responses", sa.JSON(), nullable=False),
        sa.Column("origin", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("needed", sa.Integer(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("gold_choice", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index("ix_review_items_next", ["status", "priority", "id"], unique=False)
    op.create_table(
        "review_assignments",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=False),
        sa.Column("swap", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["review_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "slot"),
    )
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_review_assignments_annotator", ["annotator", "item_id"], unique=True)
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("swap", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("attribute", sa.String(length=100), nullable=True),
        sa.Column("comparison_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["review_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_labels", schema=None) as batch_op:
        batch_op.create_index("ix_review_labels_item", ["item_id", "annotator"], unique=True)
        batch_op.create_index(batch_op.f("ix_review_labels_annotator"), ["annotator"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_labels_created_at"), ["created_at"], unique=False)
    op.create_table(
        "review_annotators",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("review_annotators")
    with op.batch_alter_table("review_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_labels_created_at"))
        batch_op.drop_index(batch_op.f("ix_review_labels_annotator"))
        batch_op.drop_index("ix_review_labels_item")
    op.drop_table("review_labels")
    with op.batch_alter_table("review_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_review_assignments_annotator")
    op.drop_table("review_assignments")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index("ix_review_items_next")
    op.drop_table("review_items")
