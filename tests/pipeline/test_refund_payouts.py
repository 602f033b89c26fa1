"""Refunds are paid back in the books: after a paid invoice and a full refund, the customer owes nothing.

The invoice's payment is registered (paid_methods), the refund becomes a booked credit note, and its payout
is registered on the credit note, through real HTTP to each system's sandbox. e-conomic registers payouts
by a guess, so its source links turn `refund_payouts_guessed` on; Dinero's credit note payments and
Dynaccount's vouchers (LEDGER rows, as the official library's Webshop.php posts them) are documented and
need nothing but the payments template.
"""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import Transfer
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote
from tests.pipeline.test_economic_pipeline import REF, feed_refund, refund_event

CUSTOMER_KEY = {
    "e-conomic": lambda raw: str(raw["customer"]["customerNumber"]),
    "dinero": lambda raw: raw["ContactGuid"],
    "dynaccount": lambda raw: str(raw["module_id_"]),
}


def paid_and_refunded(db, account, run_jobs, system, **settings):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"], **settings)
    payload = order()
    feed(source_link, payload)
    run_jobs()
    invoice = db.session.scalar(select(Transfer).where(Transfer.kind == "invoice"))
    assert invoice.status == "done" and invoice.payment_id, invoice.error_message
    feed_refund(source_link, refund_event(payload, amount="549.00"))  # all of it, amount only
    run_jobs()
    credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
    assert credit.status == "done", credit.error_message
    return setup, credit


@pytest.mark.parametrize("system", ["e-conomic", "dinero"])
def test_after_payment_and_full_refund_the_customer_owes_nothing(db, account, run_jobs, system):
    setup, credit = paid_and_refunded(db, account, run_jobs, system, refund_payouts_guessed=True)
    connector = remote(setup)
    note = connector.find_invoice(f"{REF}-R77")
    assert note.booked and abs(note.totals.gross) == Decimal("549.00")
    assert credit.payment_id
    assert connector.customer_balance(CUSTOMER_KEY[system](note.raw)) == 0


def test_without_the_payout_the_customer_would_be_owed_the_refund(db, account, run_jobs):
    # The guess stays off by default: no payout on e-conomic, and the ledger says we owe the customer.
    setup, credit = paid_and_refunded(db, account, run_jobs, "e-conomic")
    assert credit.payment_id is None
    note = remote(setup).find_invoice(f"{REF}-R77")
    assert remote(setup).customer_balance(CUSTOMER_KEY["e-conomic"](note.raw)) == Decimal("-549.00")


def test_dynaccount_posts_the_payout_to_the_kladde_by_default(db, account, run_jobs):
    # Dynaccount's payments are vouchers the bookkeeper books (no booking call is public); the receivable
    # account the sale charged is back at zero once the payment and the payout are posted.
    setup, credit = paid_and_refunded(db, account, run_jobs, "dynaccount")  # no guess to turn on
    assert credit.payment_id
    connector = remote(setup)
    note = connector.find_invoice(f"{REF}-R77")
    assert note.booked and note.is_credit_note and note.totals.gross == Decimal("549.00")
    rows = connector._get("accounting", where={"enclosure_id": credit.payment_id}, order="id")
    assert [(row["type"], row["account_id_"], Decimal(row["amount"])) for row in rows] == [
        ("LEDGER", 5830, Decimal("-549.00")),  # the money leaves the clearing account
        ("LEDGER", 5600, Decimal("549.00")),  # and settles what the credit note left on the receivable
    ]
    receivable = [
        Decimal(row["amount"])
        for enclosure in connector._get("enclosure")
        for row in connector._get("accounting", where={"enclosure_id": enclosure["id"]})
        if row["account_id_"] == 5600
    ]
    assert len(receivable) == 4 and sum(receivable) == 0  # sale, payment, credit note, payout
