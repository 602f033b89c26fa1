"""Dinero: a paid order's payment is registered on the booked invoice against the payments template's deposit
account (POST /v1/{org}/invoices/{guid}/payments), once — a lost answer is found again by its
ExternalReference — and a setup without a deposit account says what to choose instead of failing vaguely."""

from decimal import Decimal

import httpx
from sqlalchemy import select

from portal.models import Transfer
from portal.pipeline import retries
from portal.pipeline.messages import shown
from portal.sandbox import dinero as sandbox
from portal.sandbox.store import SandboxStore
from portal.sandbox.transport import SandboxTransport
from portal.setups import operations as setup_operations
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote
from tests.pipeline.test_economic_pipeline import REF


def booked_invoice(db):
    store = SandboxStore("dinero", str(sandbox.PRO_ORG))
    (invoice,) = [i for i in store.all("invoices") if i["ExternalReference"] == REF]
    return invoice


def only_transfer(db) -> Transfer:
    db.session.expire_all()
    return db.session.scalar(select(Transfer))


def test_a_paid_order_registers_its_payment_once(db, account, run_jobs):
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "done", transfer.error_message
    invoice = booked_invoice(db)
    (payment,) = invoice["Payments"]
    assert payment["Guid"] == transfer.payment_id
    assert (payment["ExternalReference"], payment["DepositAccountNumber"]) == (f"{REF}-P", 55000)
    assert Decimal(payment["Amount"]) == Decimal(invoice["Calc"]["TotalInclVat"]) == Decimal("549.00")
    assert remote(setup).find_invoice(REF).raw["Status"] == "Paid"  # computed on read, as Dinero shows it

    retries.retry(transfer)  # a done transfer is not retried: nothing more happens
    feed(source_link, order())  # the same order again
    run_jobs()
    assert len(booked_invoice(db)["Payments"]) == 1


def test_a_lost_payment_answer_is_found_by_its_reference_not_paid_twice(db, account, run_jobs, monkeypatch):
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    original = SandboxTransport.handle_request
    lost = []

    def answer_lost(self, request):
        response = original(self, request)
        if request.method == "POST" and request.url.path.endswith("/payments") and not lost:
            lost.append(response.status_code)
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response

    monkeypatch.setattr(SandboxTransport, "handle_request", answer_lost)
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    if transfer.status != "done":  # an ambiguous write waits for its retry, or asks for one
        retries.retry(transfer)
        run_jobs()
        transfer = only_transfer(db)
    assert lost == [200]  # Dinero registered the payment; we never heard
    assert transfer.status == "done", transfer.error_message
    (payment,) = booked_invoice(db)["Payments"]
    assert payment["Guid"] == transfer.payment_id


def test_without_a_deposit_account_a_paid_order_says_what_to_choose_and_a_retry_pays_it(
    app, db, account, run_jobs
):
    setup = make_setup(account, "dinero", auto_book=True)
    template = setup.template("payments")
    assert setup_operations.save_template(template, {"account": ""}, {"account": []}) == {}
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "configuration")
    assert transfer.booked_number and not transfer.payment_id
    assert "“Deposit account” in the template “Payments”" in transfer.error_message
    with app.test_request_context():  # as the transfer's page shows it, in Danish
        assert "vælg “Indbetalingskonto” i skabelonen “Betalinger”" in shown(transfer)
    assert booked_invoice(db)["Payments"] == []  # nothing was asked of Dinero without an account

    available = {"account": setup_operations.choices(setup, "deposit_accounts")}
    assert setup_operations.save_template(template, {"account": "55010"}, available) == {}
    retries.retry(transfer)
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "done", transfer.error_message
    (payment,) = booked_invoice(db)["Payments"]
    assert payment["DepositAccountNumber"] == 55010
    store = SandboxStore("dinero", str(sandbox.PRO_ORG))
    assert len([i for i in store.all("invoices") if i["ExternalReference"] == REF]) == 1  # booked once


def test_a_paid_order_costs_two_requests_more(db, account, run_jobs, monkeypatch):
    """The payment adds its never-twice look-up (GET /v2/…/payments) and the POST; the booking's answer
    carries the TimeStamp the payment needs, so the invoice is not read again."""
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order(number="7000"))
    run_jobs()  # warms the customer and product caches
    calls = []
    original = SandboxTransport.handle_request

    def counting(self, request):
        calls.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")
        return original(self, request)

    monkeypatch.setattr(SandboxTransport, "handle_request", counting)
    feed(source_link, order(number="7001"))
    run_jobs()
    assert calls == ["POST invoices", "POST book", "GET payments", "POST payments"]
