"""drift guards: accounting_setups.drift, accounting_setups.drift_checked_on

Revision ID: f5a6b7c8d9e0
Revises: f2a3b4c5d6e7
Create Date: 2026-12-07 06:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f5a6b7c8d9e0"
down_revision = "f2a3b4c5d6e7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accounting_setups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drift", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("drift_checked_on", sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table("accounting_setups", schema=None) as batch_op:
        batch_op.drop_column("drift_checked_on")
        batch_op.drop_column("drift")
