"""transfers.rebuild_draft: a retry makes an unbooked draft anew from the order as it is now

Revision ID: b3c1d2e4f5a6
Revises: 6a53ef472c4e
Create Date: 2026-12-07 02:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b3c1d2e4f5a6"
down_revision = "6a53ef472c4e"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rebuild_draft", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("rebuild_draft")
