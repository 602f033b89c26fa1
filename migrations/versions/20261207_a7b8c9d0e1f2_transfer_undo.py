"""legal undo: transfer_undos (one open per transfer), transfers.undone

Revision ID: a7b8c9d0e1f2
Revises: f5a6b7c8d9e0
Create Date: 2026-12-07 07:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a7b8c9d0e1f2"
down_revision = "f5a6b7c8d9e0"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "transfer_undos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("afterwards", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("document_number", sa.String(length=100), nullable=True),
        sa.Column("gross", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=True),
        sa.Column("credit_requested", sa.Boolean(), nullable=False),
        sa.Column("credit_note_id", sa.String(length=100), nullable=True),
        sa.Column("credit_note_number", sa.String(length=100), nullable=True),
        sa.Column("payout_id", sa.String(length=100), nullable=True),
        sa.Column("message", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transfer_undos_account_id", "transfer_undos", ["account_id"])
    op.create_index("ix_transfer_undos_transfer_id", "transfer_undos", ["transfer_id"])
    open_where = sa.text("status IN ('queued', 'running', 'needs_attention')")
    op.create_index(
        "ux_transfer_undos_open",
        "transfer_undos",
        ["transfer_id"],
        unique=True,
        postgresql_where=open_where,
        sqlite_where=open_where,
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undone", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_column("undone")
    op.drop_index("ux_transfer_undos_open", table_name="transfer_undos")
    op.drop_index("ix_transfer_undos_transfer_id", table_name="transfer_undos")
    op.drop_index("ix_transfer_undos_account_id", table_name="transfer_undos")
    op.drop_table("transfer_undos")
