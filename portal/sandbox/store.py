"""Sandbox state: JSON documents per (system, tenant, collection, key) in the database, so every process
(web, workers, tests) sees the same emulated system and it survives restarts."""

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import SandboxRecord


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
        """A per-tenant sequence (invoice numbers, customer numbers …); the caller commits."""
        query = self._query("_counters").where(SandboxRecord.key == counter)
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        record = db.session.scalar(query)
        if record is None:
            record = SandboxRecord(
                system=self.system,
                tenant=self.tenant,
                collection="_counters",
                key=counter,
                document={"n": start},
            )
            db.session.add(record)
            db.session.flush()
            return start
        value = record.document["n"] + 1
        record.document = {"n": value}
        return value

    def is_seeded(self) -> bool:
        return self.get("_meta", "seeded") is not None

    def mark_seeded(self) -> None:
        self.put("_meta", "seeded", {"seeded": True})
