"""transfers.pending_payment: a booked invoice's payment waiting for its setup's payment batch

Revision ID: a9f3c1e2d4b7
Revises: c1d2e3f4a5b6
Create Date: 2026-12-07 10:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a9f3c1e2d4b7"
down_revision = "c1d2e3f4a5b6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_payment", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("pending_payment")
