"""The log's pages, the dashboard and the bulk re-transfer count read their rows off the indexes made for
them, on PostgreSQL (where a year of history lives; `make bench-portal` times them at 1,000,000 transfers).
The queries are the real ones, caught as the functions run them, then EXPLAINed with sequential scans
priced out: a plan that still reads the whole table, or sorts the whole account, lost its index."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, insert, text

from portal.extensions import db as _db
from portal.models import Transfer
from portal.pipeline import retries
from portal.pipeline.filters import TransferFilters, transfer_page
from portal.pipeline.overview import account_overview
from tests.pipeline.conftest import make_setup, make_source_link

HISTORY = 2_000  # enough, with ANALYZE, for the planner to price an order number as rare, as it is


@pytest.fixture
def history(db, account):
    """2,000 transfers a minute apart, one in 50 needing attention, order numbers 995001 … 997000."""
    if _db.engine.dialect.name != "postgresql":
        pytest.skip("query plans are PostgreSQL's: run with TEST_DATABASE_URL")
    source_link = make_source_link(db, account, make_setup(account, "dinero"))
    now = datetime.now(UTC)
    rows = [
        {
            "account_id": account.id,
            "source_link_id": source_link.id,
            "kind": "invoice",
            "source_ref": str(n),
            "order_ref": str(n),
            "order_number": str(995000 + n),
            "status": "needs_attention" if n % 50 == 7 else "done",
            "created_at": now - timedelta(minutes=HISTORY - n),
        }
        for n in range(1, HISTORY + 1)
    ]
    db.session.execute(insert(Transfer), rows)
    db.session.commit()
    with _db.engine.connect() as connection:
        connection.execute(text("ANALYZE transfers"))
        connection.commit()


def plans(call) -> list[tuple[str, str]]:
    """(statement, plan) of every query on transfers that `call` runs."""
    caught = []

    def catch(conn, cursor, statement, parameters, context, executemany):
        if "FROM transfers" in statement and not statement.lstrip().startswith("EXPLAIN"):
            caught.append((statement, parameters))

    event.listen(_db.engine, "before_cursor_execute", catch)
    try:
        call()
    finally:
        event.remove(_db.engine, "before_cursor_execute", catch)
    result = []
    with _db.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET enable_bitmapscan = off")
        for statement, parameters in caught:
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            result.append((statement, "\n".join(row[0] for row in rows)))
    assert result, "no query on transfers ran"
    return result


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (TransferFilters(), "ix_transfers_account_created"),
        (TransferFilters(status="needs_attention"), "ix_transfers_account_status"),
        (
            TransferFilters(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30)),
            "ix_transfers_account_created",
        ),
        (TransferFilters(order="995001"), "ix_transfers_account_order"),
        (TransferFilters(order="9950*"), "ix_transfers_account_order"),
    ],
)
def test_each_page_of_the_log_reads_its_index(history, account, filters, index):
    older = transfer_page(account.id, TransferFilters(), size=1).older
    for statement, plan in plans(lambda: transfer_page(account.id, filters, before=older, size=50)):
        assert "Seq Scan" not in plan, plan
        if "ORDER BY" in statement and "LIMIT" in statement:  # the page itself
            assert index in plan, plan
            if not filters.order:  # an order number's few rows may be sorted; a whole account may not
                assert "Sort" not in plan, plan


def test_the_dashboard_and_the_bulk_count_read_indexes(history, account):
    month = TransferFilters(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30))
    for call in (
        lambda: account_overview(account),
        lambda: retries.count_retryable(account, TransferFilters()),
        lambda: retries.count_retryable(account, month),
    ):
        for _statement, plan in plans(call):
            assert "Seq Scan" not in plan, plan
            assert "ix_transfers_account_id" not in plan  # the old single-column index is gone
