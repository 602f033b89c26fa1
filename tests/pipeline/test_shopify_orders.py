"""A Shopify order (prices incl. VAT, a discount) through the pipeline into e-conomic: the state is the
financial status."""

from decimal import Decimal

from sqlalchemy import select

from portal.models import Transfer
from tests.engine.test_shopify import dk_order
from tests.pipeline.conftest import feed, make_setup, make_source_link, remote


def test_a_paid_shopify_order_is_booked_and_a_pending_one_skipped(db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, states={"paid": "booked"})
    source_link.connection.system = "shopify"
    db.session.commit()

    paid = dk_order()["order"]
    paid["created_at"] = paid["processed_at"] = "2026-11-20T10:15:00+01:00"
    pending = {**paid, "id": 5002, "order_number": 1043, "name": "#1043", "financial_status": "pending"}
    feed(source_link, paid, topic="orders/paid")
    feed(source_link, pending, topic="orders/create")
    run_jobs()

    transfers = {t.order_number: t for t in db.session.scalars(select(Transfer))}
    assert transfers["1042"].status == "done", transfers["1042"].error_message
    assert transfers["1043"].status == "skipped" and "Pending payment" in transfers["1043"].reason
    found = remote(setup).find_invoice("SH-12-1042")
    assert found.booked and found.totals.gross == Decimal("407.20")
    assert remote(setup).find_invoice("SH-12-1043") is None
