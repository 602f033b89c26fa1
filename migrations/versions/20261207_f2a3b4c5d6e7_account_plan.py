"""the account's chosen plan: accounts.plan

Revision ID: f2a3b4c5d6e7
Revises: d4a5e6f7b8c9
Create Date: 2026-12-07 06:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f2a3b4c5d6e7"
down_revision = "d4a5e6f7b8c9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("plan")
