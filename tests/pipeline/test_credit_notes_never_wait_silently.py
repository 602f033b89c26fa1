"""Credit notes never wait silently: a refund of an order that was never transferred says so and lets the
customer leave it out; one waiting for an invoice the bookkeeper books in e-conomic notices the booking by
itself, with the reconciliation poll, and its "waits" message is gone once it is done."""

from decimal import Decimal

from sqlalchemy import select

from portal.models import AuditEvent, Transfer
from portal.pipeline.overview import account_overview
from portal.queue import get_queue
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote
from tests.pipeline.test_economic_pipeline import REF, feed_refund, refund_event


def credit_note(db) -> Transfer:
    return db.session.scalar(
        select(Transfer).where(Transfer.kind == "credit_note").execution_options(populate_existing=True)
    )


def refund_teapot(source_link, payload):
    teapot = payload["line_items"][1]["id"]
    feed_refund(
        source_link, refund_event(payload, items=[("Tekande", "TE-02", 1, "240.00", "60.00", teapot)])
    )


def test_a_refund_of_an_order_never_transferred_needs_a_decision(owner_client, db, account, run_jobs):
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    payload = order()
    payload["status"] = "pending"  # awaiting payment: not set to transfer
    feed(source_link, payload)
    run_jobs()
    refund_teapot(source_link, payload)
    run_jobs()

    credit = credit_note(db)
    assert (credit.status, credit.error_kind) == ("needs_attention", "order")
    assert "no invoice to credit" in credit.error_message and "Pending payment" in credit.error_message
    assert account_overview(account).attention_count == 1  # counted, not waiting forever
    page = owner_client.get(f"/transfers/{credit.id}").get_data(as_text=True)
    assert "Der er ingen faktura at kreditere" in page  # why, in Danish, quoting the invoice's own reason
    assert "Ordrestatus “Afventer betaling” er ikke sat til at blive overført" in page
    assert "Udelad" in page  # the choice

    owner_client.open(f"/transfers/{credit.id}/leave-out", method="POST")
    credit = credit_note(db)
    assert credit.status == "skipped" and "Left out on request" in credit.reason
    assert account_overview(account).attention_count == 0
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "transfer.left_out")) is not None
    assert "Udeladt efter ønske" in owner_client.get(f"/transfers/{credit.id}").get_data(as_text=True)


def test_a_transfer_that_posted_something_cannot_be_left_out(owner_client, db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    payload = order()
    payload["total"] = "999.00"  # the totals differ: a draft is made, not booked
    feed(source_link, payload)
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "needs_attention" and transfer.draft_id
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Udelad" not in page
    assert "laver kladden i regnskabsprogrammet igen" in page  # what a retry will do
    owner_client.open(f"/transfers/{transfer.id}/leave-out", method="POST")
    db.session.expire_all()
    assert transfer.status == "needs_attention"


def test_a_credit_note_notices_an_invoice_booked_in_the_ledger_by_itself(db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    payload = order()
    payload["status"] = "on-hold"  # a draft only: the bookkeeper books it in e-conomic
    feed(source_link, payload)
    run_jobs()
    refund_teapot(source_link, payload)
    run_jobs()
    assert credit_note(db).status == "waiting"

    ledger = remote(setup)
    ledger.book_invoice(ledger.find_invoice(REF))  # the bookkeeper, in e-conomic
    get_queue().enqueue("workers.jobs.poll_orders", source_link.id)  # the reconciliation poll
    run_jobs()

    credit = credit_note(db)
    assert credit.status == "done", credit.error_message
    assert credit.reason is None and credit.error_message is None  # no "waits" left behind
    assert ledger.find_invoice(f"{REF}-R77").totals.gross == Decimal("-300.00")
    invoice = db.session.scalar(select(Transfer).where(Transfer.kind == "invoice"))
    assert invoice.booked_number  # learnt from the ledger
