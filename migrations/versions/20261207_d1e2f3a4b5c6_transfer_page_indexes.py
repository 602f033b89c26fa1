"""transfers: indexes shaped for the log, its filters, the dashboard and the bulk re-transfer count;
source_events: the waiting ones

Revision ID: d1e2f3a4b5c6
Revises: e1f2a3b4c5d6
Create Date: 2026-12-07 05:00:00

On PostgreSQL the indexes are built CONCURRENTLY (outside the migration's transaction), so a live table of
a year's transfers keeps taking writes while they build.
"""

import sqlalchemy as sa
from alembic import op

revision = "d1e2f3a4b5c6"
down_revision = "e1f2a3b4c5d6"
branch_labels = None
depends_on = None

ATTENTION = sa.text("status = 'needs_attention'")
WAITING = sa.text("processed_at IS NULL")
INDEXES = (
    ("ix_transfers_account_created", ["account_id", "created_at", "id"], {}),
    ("ix_transfers_account_status", ["account_id", "status", "created_at", "id"], {}),
    (
        "ix_transfers_account_order",
        ["account_id", "order_number"],
        {"postgresql_ops": {"order_number": "varchar_pattern_ops"}},
    ),
    (
        "ix_transfers_attention",
        ["account_id", "updated_at"],
        {"postgresql_where": ATTENTION, "sqlite_where": ATTENTION},
    ),
)
EVENTS_WAITING = ("ix_source_events_waiting", "source_events", ["received_at", "integration_id"])


def _concurrently() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    if _concurrently():
        with op.get_context().autocommit_block():
            for name, columns, options in INDEXES:
                op.create_index(name, "transfers", columns, postgresql_concurrently=True, **options)
            op.create_index(*EVENTS_WAITING, postgresql_concurrently=True, postgresql_where=WAITING)
            op.drop_index("ix_transfers_account_id", table_name="transfers", postgresql_concurrently=True)
    else:
        for name, columns, options in INDEXES:
            op.create_index(name, "transfers", columns, **options)
        op.create_index(*EVENTS_WAITING, sqlite_where=WAITING)
        op.drop_index("ix_transfers_account_id", table_name="transfers")


def downgrade():
    op.create_index("ix_transfers_account_id", "transfers", ["account_id"])
    op.drop_index(EVENTS_WAITING[0], table_name="source_events")
    for name, _columns, _options in INDEXES:
        op.drop_index(name, table_name="transfers")
