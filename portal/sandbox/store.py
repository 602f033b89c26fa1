"""Sandbox state: JSON documents per (system, tenant, collection, key) in the database, so every process
(web, workers, tests) sees the same emulated system and it survives restarts."""

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.extensions import db
from portal.models import SandboxRecord, utcnow


class SandboxStore:
    def __init__(self, system: str, tenant: str):
        self.system = system
        self.tenant = str(tenant)

    def _query(self, collection):
        return select(SandboxRecord).where(
            SandboxRecord.system == self.system,
            SandboxRecord.tenant == self.tenant,
            SandboxRecord.collection == collection,
        )

    def get(self, collection: str, key) -> dict | None:
        record = db.session.scalar(self._query(collection).where(SandboxRecord.key == str(key)))
        return None if record is None else record.document

    def all(self, collection: str) -> list[dict]:
        return [document for _, document in self.items(collection)]

    def items(self, collection: str, **fields: str) -> list[tuple[str, dict]]:
        """(key, document) pairs in the order they were stored. `fields` keeps only the documents whose
        top-level fields have these string values; the database filters, nothing else is loaded."""
        query = self._query(collection)
        for name, value in fields.items():
            query = query.where(SandboxRecord.document[name].as_string() == value)
        records = db.session.scalars(query.order_by(SandboxRecord.id))
        return [(record.key, record.document) for record in records]

    def put(self, collection: str, key, document: dict) -> dict:
        """Insert or replace; the caller commits."""
        record = db.session.scalar(self._query(collection).where(SandboxRecord.key == str(key)))
        if record is None:
            record = SandboxRecord(
                system=self.system, tenant=self.tenant, collection=collection, key=str(key), document=document
            )
            db.session.add(record)
        else:
            record.document = dict(document)  # a new object, so SQLAlchemy sees the change
        return document

    def delete(self, collection: str, key) -> bool:
        record = db.session.scalar(self._query(collection).where(SandboxRecord.key == str(key)))
        if record is None:
            return False
        db.session.delete(record)
        return True

    def count(self, collection: str) -> int:
        return db.session.scalar(select(func.count()).select_from(self._query(collection).subquery()))

    def next_number(self, counter: str, start: int = 1) -> int:
        """A per-tenant sequence (invoice numbers, customer numbers …), safe across processes: the counter
        row is created once (a second creator's insert does nothing), then moved on by compare-and-set on
        its `updated_at` — two workers booking at once get two numbers, never the same one. The caller
        commits."""
        now = utcnow()
        values = {
            "system": self.system,
            "tenant": self.tenant,
            "collection": "_counters",
            "key": counter,
            "document": {"n": start - 1},
            "created_at": now,
            "updated_at": now,
        }
        insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        db.session.execute(insert(SandboxRecord).values(**values).on_conflict_do_nothing())
        current = (
            self._query("_counters")
            .where(SandboxRecord.key == counter)
            .with_only_columns(SandboxRecord.id, SandboxRecord.document, SandboxRecord.updated_at)
        )
        while True:
            record_id, document, seen = db.session.execute(current).one()
            value = document["n"] + 1
            moved = db.session.execute(
                update(SandboxRecord)
                .where(SandboxRecord.id == record_id, SandboxRecord.updated_at == seen)
                .values(document={"n": value}, updated_at=max(utcnow(), seen + timedelta(microseconds=1)))
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount == 1:
                return value

    def is_seeded(self) -> bool:
        return self.get("_meta", "seeded") is not None

    def mark_seeded(self) -> None:
        self.put("_meta", "seeded", {"seeded": True})
