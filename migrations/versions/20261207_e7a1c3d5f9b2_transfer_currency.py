"""transfers.currency: the currency of a transfer's figures (shop_gross, computed_gross)

A bulk undo's confirmation summed the figures of transfers in DKK, EUR and SEK as one kroner amount. Old rows
stay NULL (unknown): their currency is only in the source event's payload, which a migration does not parse.

Revision ID: e7a1c3d5f9b2
Revises: d9e8f7a6b5c4
Create Date: 2026-12-07 12:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e7a1c3d5f9b2"
down_revision = "d9e8f7a6b5c4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", sa.String(length=3), nullable=True))


def downgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("currency")
