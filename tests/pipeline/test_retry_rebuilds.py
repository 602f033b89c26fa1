"""Retry after the customer fixes the order: while the ledger document is still a draft, a retry makes it
again from the order as it is now — same reference, never a second document. Tried before: corrected the
order in the shop (the webhook arrived), pressed "Prøv igen" twice and re-transferred in bulk: the same
error, and the wrong draft stayed."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import Transfer
from portal.pipeline import retries
from portal.pipeline.filters import TransferFilters
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote
from tests.pipeline.test_economic_pipeline import REF

TEAPOT_ONLY = [("Tekande", "TE-02", 1, "240.00", "60.00")]


def transfer_of(db) -> Transfer:
    return db.session.scalar(select(Transfer).execution_options(populate_existing=True))


def wrong_then_corrected(db, account, run_jobs, system):
    """An order the shop first sent with a wrong total (the draft is made, not booked: totals differ), then
    corrected to the teapot alone."""
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    wrong = order()
    wrong["total"] = "999.00"
    feed(source_link, wrong)
    run_jobs()
    transfer = transfer_of(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "totals_differ"
    draft = remote(setup).find_invoice(REF)
    assert draft is not None and not draft.booked and draft.totals.gross == Decimal("549.00")

    feed(source_link, order(items=TEAPOT_ONLY, shipping=[]))  # the corrected order: its webhook
    run_jobs()
    assert transfer_of(db).status == "needs_attention"  # waits for the person's retry
    return setup, source_link, draft


@pytest.mark.parametrize("system", ["e-conomic", "dinero"])
def test_a_retry_makes_the_draft_again_from_the_corrected_order(owner_client, db, account, run_jobs, system):
    setup, _source_link, draft = wrong_then_corrected(db, account, run_jobs, system)
    transfer = transfer_of(db)
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Prøv igen laver kladden i regnskabsprogrammet igen" in page  # says what the retry will do

    retries.retry(transfer)
    run_jobs()
    transfer = transfer_of(db)
    assert transfer.status == "done", transfer.error_message
    booked = remote(setup).find_invoice(REF)
    assert booked.booked and booked.totals.gross == Decimal("300.00")  # the teapot alone
    assert booked.number == transfer.booked_number
    if system == "dinero":
        assert booked.id == draft.id  # the same document, made again
    steps = [(log.step, log.outcome, log.message) for log in transfer.logs]
    assert any(step == "draft" and "made again" in text for step, _outcome, text in steps)


def test_a_bulk_re_transfer_rebuilds_the_draft_too(db, account, run_jobs):
    setup, _source_link, _draft = wrong_then_corrected(db, account, run_jobs, "e-conomic")
    assert retries.retry_matching(account, TransferFilters(status="needs_attention")) == 1
    run_jobs()
    assert transfer_of(db).status == "done"
    connector = remote(setup)
    booked = connector._all("/invoices/booked", f"references.other$eq:{REF}")
    assert len(booked) == 1 and Decimal(str(booked[0]["grossAmount"])) == Decimal("300.00")
    assert connector._all("/invoices/drafts", f"references.other$eq:{REF}") == []


def test_a_retry_without_a_correction_keeps_one_draft(db, account, run_jobs):
    """Retrying twice with the order unchanged makes the same draft again: still one, still unbooked."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    wrong = order()
    wrong["total"] = "999.00"
    feed(source_link, wrong)
    run_jobs()
    for _ in range(2):
        retries.retry(transfer_of(db))
        run_jobs()
    transfer = transfer_of(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "totals_differ"
    assert len(remote(setup)._all("/invoices/drafts", f"references.other$eq:{REF}")) == 1
