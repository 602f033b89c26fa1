"""transfer_logs.text: a step's msgid and parameters, so the step log is shown in the reader's language

Revision ID: d4a5e6f7b8c9
Revises: d1e2f3a4b5c6
Create Date: 2026-12-07 05:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d4a5e6f7b8c9"
down_revision = "d1e2f3a4b5c6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transfer_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("transfer_logs", schema=None) as batch_op:
        batch_op.drop_column("text")
