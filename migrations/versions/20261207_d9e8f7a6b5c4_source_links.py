"""One name per thing: order_integrations → source_links, integration_id → source_link_id

"Integration" named both an accounting setup and a shop's link into it. The link is a *source link* now (a
webshop or subscription system posting into one accounting setup; "salgskilde" in the UI).

Revision ID: d9e8f7a6b5c4
Revises: a9f3c1e2d4b7
Create Date: 2026-12-07 12:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d9e8f7a6b5c4"
down_revision = "a9f3c1e2d4b7"
branch_labels = None
depends_on = None

CHILDREN = ("source_events", "transfers", "completeness_reports")


def _renamed(name: str, forward: bool) -> str:
    pairs = [
        ("order_integrations", "source_links"),
        ("integration_id", "source_link_id"),
        ("ix_completeness_reports_integration", "ix_completeness_reports_source_link"),
    ]
    for old, new in pairs if forward else [(n, o) for o, n in reversed(pairs)]:
        name = name.replace(old, new)
    return name


def _rename(old_table: str, new_table: str, old_column: str, new_column: str, forward: bool) -> None:
    bind = op.get_bind()
    op.rename_table(old_table, new_table)
    for table in CHILDREN:
        op.execute(f"ALTER TABLE {table} RENAME COLUMN {old_column} TO {new_column}")
    inspector = sa.inspect(bind)
    tables = (new_table, *CHILDREN)
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER SEQUENCE IF EXISTS {old_table}_id_seq RENAME TO {new_table}_id_seq")
        for table in tables:
            names = [inspector.get_pk_constraint(table)["name"]]
            names += [c["name"] for c in inspector.get_unique_constraints(table)]
            names += [c["name"] for c in inspector.get_foreign_keys(table)]
            for name in names:
                if name and _renamed(name, forward) != name:
                    op.execute(
                        f'ALTER TABLE {table} RENAME CONSTRAINT "{name}" TO "{_renamed(name, forward)}"'
                    )
            for index in inspector.get_indexes(table):
                if "duplicates_constraint" not in index and _renamed(index["name"], forward) != index["name"]:
                    op.execute(
                        f'ALTER INDEX "{index["name"]}" RENAME TO "{_renamed(index["name"], forward)}"'
                    )
        return
    # SQLite keeps constraint names in the table's own SQL: rebuild each table with the new names (batch mode
    # copies the rows), then its indexes (a partial index's WHERE is read back from its SQL).
    for table in tables:
        indexes = bind.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
            ),
            {"t": table},
        ).all()
        for name, _sql in indexes:
            op.execute(f'DROP INDEX "{name}"')
        uniques = sa.inspect(bind).get_unique_constraints(table)
        foreign = sa.inspect(bind).get_foreign_keys(table)
        primary = sa.inspect(bind).get_pk_constraint(table)
        with op.batch_alter_table(table, recreate="always") as batch:
            if primary["name"] and _renamed(primary["name"], forward) != primary["name"]:
                batch.drop_constraint(primary["name"], type_="primary")
                batch.create_primary_key(_renamed(primary["name"], forward), primary["constrained_columns"])
            for unique in uniques:
                if unique["name"] and _renamed(unique["name"], forward) != unique["name"]:
                    batch.drop_constraint(unique["name"], type_="unique")
                    batch.create_unique_constraint(_renamed(unique["name"], forward), unique["column_names"])
            for key in foreign:
                if key["name"] and _renamed(key["name"], forward) != key["name"]:
                    batch.drop_constraint(key["name"], type_="foreignkey")
                    batch.create_foreign_key(
                        _renamed(key["name"], forward),
                        key["referred_table"],
                        key["constrained_columns"],
                        key["referred_columns"],
                    )
        for name, sql in indexes:
            new = _renamed(name, forward)
            op.execute(sql.replace(f'"{name}"', f'"{new}"', 1).replace(f"INDEX {name} ", f"INDEX {new} ", 1))


def upgrade():
    _rename("order_integrations", "source_links", "integration_id", "source_link_id", forward=True)


def downgrade():
    _rename("source_links", "order_integrations", "source_link_id", "integration_id", forward=False)
