"""portal.models.row_updates: an event's and a transfer's changed columns are written as the unit of work
would write them — the same rows, updated_at, refusals and rollback — by one prepared UPDATE per table."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm.exc import StaleDataError

from portal.models import SourceEvent, Transfer, utcnow
from tests.pipeline.conftest import feed, make_setup, make_source_link, order


@pytest.fixture
def rows(db, account):
    """Two transfers of one event, committed, and the SQL each flush sends from then on."""
    source_link = make_source_link(db, account, make_setup(account, "e-conomic"))
    source_event = feed(source_link, order())
    transfers = [
        Transfer(
            account_id=account.id,
            source_link_id=source_link.id,
            kind="invoice",
            source_ref=ref,
            order_ref=ref,
            event_id=source_event.id,
            updated_at=utcnow() - timedelta(hours=1),
        )
        for ref in ("5001", "5002")
    ]
    db.session.add_all(transfers)
    db.session.commit()
    for loaded in (source_event, *transfers):
        db.session.refresh(loaded)
    statements = []

    def sent(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement.split()[0], statement.split()[1], executemany))

    def by_the_unit_of_work(mapper, connection, target):
        statements.append(("unit of work", type(target).__name__, None))

    event.listen(db.engine, "before_cursor_execute", sent)
    for cls in (SourceEvent, Transfer):
        event.listen(cls, "before_update", by_the_unit_of_work)
    yield source_event, transfers, statements
    event.remove(db.engine, "before_cursor_execute", sent)
    for cls in (SourceEvent, Transfer):
        event.remove(cls, "before_update", by_the_unit_of_work)


def stored(db, transfer_id: int) -> dict:
    """The row as the database holds it, read past the session."""
    with db.engine.connect() as connection:
        table = Transfer.__table__
        columns = [
            table.c[name] for name in ("status", "attempts", "shop_gross", "pending_payment", "updated_at")
        ]
        return dict(connection.execute(select(*columns).where(table.c.id == transfer_id)).mappings().one())


def test_changed_columns_go_in_one_update_per_table_with_updated_at(db, rows):
    source_event, (first, second), statements = rows
    before = stored(db, first.id)["updated_at"]
    statements.clear()
    for transfer in (first, second):
        transfer.status, transfer.attempts = "running", transfer.attempts + 1
    first.shop_gross = Decimal("1234.50")
    second.shop_gross = Decimal("99.95")
    first.pending_payment = {"method": "card", "amount": "1234.50"}
    second.pending_payment = {"method": "card", "amount": "99.95"}
    source_event.processed_at, source_event.outcome = utcnow(), "transfer 1"
    db.session.commit()

    # the event's UPDATE, then both transfers' in one executemany, not the unit of work's; nothing else
    assert statements == [("UPDATE", "source_events", False), ("UPDATE", "transfers", True)]
    row = stored(db, first.id)
    assert (
        row["status"] == "running"
        and row["attempts"] == 1
        and Decimal(str(row["shop_gross"])) == Decimal("1234.50")
    )
    assert "1234.50" in str(row["pending_payment"])
    assert stored(db, second.id)["status"] == "running"
    assert str(row["updated_at"]) > str(before) and first.updated_at > utcnow() - timedelta(minutes=1)
    assert db.session.get(SourceEvent, source_event.id).outcome == "transfer 1"
    assert not db.session.dirty


def test_a_value_set_again_to_what_it_was_writes_nothing(db, rows):
    _source_event, (first, _second), statements = rows
    first.status = first.status
    first.attempts = 0
    db.session.flush()
    assert statements == []


def test_a_rollback_leaves_the_rows_and_the_objects_as_they_were(db, rows):
    _source_event, (first, _second), statements = rows
    first.status = "done"
    db.session.flush()
    assert statements == [("UPDATE", "transfers", False)]
    db.session.rollback()
    assert stored(db, first.id)["status"] == "pending"
    assert first.status == "pending"  # expired by the rollback, read again


def test_a_row_deleted_meanwhile_is_refused_as_the_unit_of_work_refuses_it(db, rows):
    _source_event, (first, _second), _statements = rows
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM transfers WHERE id = :id"), {"id": first.id})
    first.status = "done"
    with pytest.raises(StaleDataError):
        db.session.flush()
    db.session.rollback()


def test_what_is_not_a_plain_column_change_is_left_to_the_unit_of_work(db, rows):
    source_event, (first, second), statements = rows
    other = feed(first.source_link, order(number="5002"), delivery_id="other")
    statements.clear()
    first.event = other  # a relationship: the unit of work writes it (event_id from the object)
    second.attempts = Transfer.attempts + 5  # SQL as the value
    db.session.commit()
    assert [s for s in statements if s[0] == "unit of work"] == [("unit of work", "Transfer", None)] * 2
    assert stored(db, first.id)["attempts"] == 0
    assert db.session.scalar(select(Transfer.event_id).where(Transfer.id == first.id)) == other.id
    assert stored(db, second.id)["attempts"] == 5
    assert source_event.id != other.id
