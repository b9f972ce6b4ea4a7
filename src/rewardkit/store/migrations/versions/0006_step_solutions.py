"""step-labelled solutions for process reward models

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_solutions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prompt_id", sa.String(length=32), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("n_steps", sa.Integer(), nullable=False),
        sa.Column("first_error", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Boolean(), nullable=True),
        sa.Column("annotator_id", sa.String(length=200), nullable=False),
        sa.Column("annotator_kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_event_id", sa.String(length=200), nullable=True),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["annotator_id"], ["annotators.id"]),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_event_id"),
    )
    with op.batch_alter_table("step_solutions", schema=None) as batch_op:
        batch_op.create_index("ix_step_solutions_filters", ["source", "annotator_kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_solutions", schema=None) as batch_op:
        batch_op.drop_index("ix_step_solutions_filters")
    op.drop_table("step_solutions")
