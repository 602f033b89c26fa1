"""Dinero in the pipeline: two requests per booked order, and still never twice — a create whose answer was
lost is found by its reference, and Dinero's own totals are checked on the booking's answer."""

from sqlalchemy import select

from portal.models import Transfer
from portal.sandbox import dinero as sandbox
from portal.sandbox.store import SandboxStore
from tests.pipeline.conftest import (
    faults,
    feed,
    lose_first_answer,
    make_setup,
    make_source_link,
    order,
    remote,
)
from tests.pipeline.test_economic_pipeline import REF


def test_a_create_whose_answer_was_lost_is_found_by_reference_not_made_again(
    db, account, run_jobs, monkeypatch
):
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup)
    calls: list[str] = []
    lost = lose_first_answer(monkeypatch, "/invoices", calls)
    feed(source_link, order())
    run_jobs()

    assert lost == [200]  # Dinero made the draft; we never heard
    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    assert any(log.outcome == "reused" and "answer was lost" in log.message for log in transfer.logs)
    creates = [c for c in calls if c.startswith("POST") and c.endswith(f"/{sandbox.PRO_ORG}/invoices")]
    assert len(creates) == 1  # looked up by reference, never created twice
    found = remote(setup).find_invoice(REF)
    assert found.booked and found.number == transfer.booked_number
    invoices = SandboxStore("dinero", str(sandbox.PRO_ORG)).all("invoices")
    assert [i["ExternalReference"] for i in invoices if i["ExternalReference"] == REF] == [REF]


def test_a_dropped_connection_on_the_create_ends_with_one_booked_invoice(app, db, account, run_jobs):
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    faults(app, "dinero", next=["drop"])  # the customer/product steps are first: drop what comes next
    try:
        run_jobs()
    finally:
        faults(app, "dinero")
    run_jobs()  # a retry, if the drop made one
    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    invoices = SandboxStore("dinero", str(sandbox.PRO_ORG)).all("invoices")
    assert len([i for i in invoices if i["ExternalReference"] == REF]) == 1


def test_dinero_totals_that_differ_are_caught_on_the_booking_answer(db, account, run_jobs):
    """The create answer carries no totals, so a VAT code changed in Dinero after the setup shows on the
    booked invoice: the transfer needs attention and says how to correct it (a credit note)."""
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup)
    store = SandboxStore("dinero", str(sandbox.PRO_ORG))
    for account_row in store.all("accounts"):
        if account_row["VatCode"] == "U25":
            store.put("accounts", account_row["AccountNumber"], {**account_row, "VatCode": None})
    db.session.commit()
    feed(source_link, order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "totals_differ")
    assert "booked the invoice" in transfer.error_message and "credit note" in transfer.error_message
    found = remote(setup).find_invoice(REF)
    assert found.booked and transfer.booked_number == found.number
