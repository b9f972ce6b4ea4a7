"""imports.process: which process runs an import, so one that was killed can be told from one running

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 05:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch_op:
        batch_op.add_column(sa.Column("process", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch_op:
        batch_op.drop_column("process")
