"""Accounting API calls per order in steady state (customer and products cached): what the pipeline
itself adds is nothing beyond draft + book; the rest is each connector's own never-twice lookups."""

import json

import pytest
from sqlalchemy import select

from portal.models import Transfer
from portal.sandbox.transport import SandboxTransport
from tests.pipeline.conftest import feed, make_setup, make_source_link, order

# system -> the requests of one steady-state order (draft + book), as the connectors make them today
EXPECTED = {
    # POST draft (its answer is the whole document), POST booked
    "e-conomic": 2,
    # POST invoice (its uuid5 Guid makes it idempotent; the answer's TimeStamp is what booking needs), POST
    # book (its answer, the booked invoice, carries Dinero's totals, checked then)
    "dinero": 2,
    # the sale as a voucher (Webshop.php put_enclosure): POST put enclosure, POST insert_bulk its accounting
    # rows (no look-up: draft_requested was committed first); no booking call exists (the bookkeeper books)
    "dynaccount": 2,
}


@pytest.mark.parametrize("system", sorted(EXPECTED))
def test_steady_state_calls_per_order(db, account, run_jobs, monkeypatch, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="7000"))
    run_jobs()  # warms the customer and product caches

    calls = []
    original = SandboxTransport.handle_request

    def counting(self, request):
        calls.append(f"{request.method} {request.url.path}")
        return original(self, request)

    monkeypatch.setattr(SandboxTransport, "handle_request", counting)
    for number in ("7001", "7002", "7003", "7004"):
        feed(source_link, order(number=number))
    run_jobs()
    assert len(calls) / 4 == EXPECTED[system], calls
    assert not any("customers" in c and c.startswith("POST") for c in calls)  # cached, never re-created
    assert not any("products" in c for c in calls)  # cached
    if system == "dynaccount":  # GET without data, POST with data: never HTTP PUT or DELETE
        assert {c.split(" ")[0] for c in calls} <= {"GET", "POST"}, calls


def test_steady_state_calls_per_paid_sale_on_economic(db, account, run_jobs, monkeypatch):
    """Sales paid by card (Stripe renewals, paid orders): draft + book each, and their payments registered
    together by the setup's batch job (payment_batches) — one voucher POST of an array, one draft-entries
    read, one bookdraftentries: 2N + 3 calls. The voucher's accounting year comes from the cache the open
    periods fill; no payment looks for its reference (payment_requested), and the journal is read only
    when the payments template names no account."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order(number="7100"))
    run_jobs()

    calls, bodies = [], []
    original = SandboxTransport.handle_request

    def counting(self, request):
        path = request.url.path.split("/", 3)[3]  # past /sandbox/<system>/
        calls.append(f"{request.method} {path.split('/v16.0.1', 1)[-1]}")
        if path.endswith("/vouchers"):
            bodies.append(json.loads(request.content))
        return original(self, request)

    monkeypatch.setattr(SandboxTransport, "handle_request", counting)
    numbers = ("7101", "7102", "7103", "7104")
    for number in numbers:
        feed(source_link, order(number=number))
    run_jobs()
    journal = setup.template("payments").values["journal"]
    batch = [
        f"POST journals/{journal}/vouchers",  # an array: one voucher per payment
        "GET /draft-entries",  # their entries, and none of the bookkeeper's in them
        f"POST /journals/{journal}/bookdraftentries",  # all our entries at once
    ]
    assert sorted(calls) == sorted(["POST invoices/drafts", "POST invoices/booked"] * 4 + batch), calls
    assert len(calls) == 2 * len(numbers) + 3
    [sent] = bodies
    texts = [voucher["entries"]["customerPayments"][0]["text"] for voucher in sent]
    assert [text.split(" ", 1)[1].startswith("Betaling faktura") for text in texts] == [True] * 4
    transfers = db.session.scalars(select(Transfer).where(Transfer.source_link_id == source_link.id)).all()
    assert {t.status for t in transfers} == {"done"}
    assert len({t.payment_id for t in transfers}) == 5 and all(t.pending_payment is None for t in transfers)
