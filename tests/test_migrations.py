"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL (TEST_DATABASE_URL)."""

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from portal.extensions import db as _db

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def test_upgrade_to_head_yields_the_models_schema(app, db):
    # The session's database was built from empty by `flask db upgrade` (see conftest._build_schema).
    with _db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        difference = compare_metadata(context, _db.metadata)
    assert difference == []
    assert set(inspect(_db.engine).get_table_names()) >= set(_db.metadata.tables)


def test_migration_files_are_date_prefixed():
    names = [path.name for path in VERSIONS.glob("*.py")]
    assert names
    assert all(re.match(r"^\d{8}_[0-9a-f]+_\w+\.py$", name) for name in names), names
