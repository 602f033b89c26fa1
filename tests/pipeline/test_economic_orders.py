"""The document "order": a WooCommerce order in `processing` becomes an e-conomic order (reserving stock),
and when it is `completed` the same transfer turns that order into the booked invoice. Over real HTTP
against the WooCommerce and e-conomic sandboxes, with a real RQ worker; the e-conomic sandbox is checked
itself. Never twice: one order, then one invoice, per shop order, whatever the deliveries do."""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from portal.connectors.economic import EconomicConnector
from portal.models import SourceEvent, Transfer
from portal.pipeline import intake, posting, scheduling, source_links
from portal.sandbox.transport import SandboxTransport
from tests.pipeline.conftest import (
    faults,
    feed,
    make_setup,
    make_source_link,
    release_scheduled,
    remote,
    shop_order,
)
from tests.pipeline.test_economic_pipeline import feed_refund, refund_event

STATES = {"processing": "order", "completed": "booked", "on-hold": "draft"}
ESPRESSO = "KAFFE/ESP-500g"


@pytest.fixture
def setup_booked(account):
    return make_setup(account, "e-conomic", auto_book=True)


def the_transfer(db):
    transfers = db.session.scalars(select(Transfer).where(Transfer.kind == "invoice")).all()
    assert len(transfers) == 1, [(t.source_ref, t.status) for t in transfers]
    return transfers[0]


def documents(setup, reference):
    """Every e-conomic document carrying the reference: {collection: count}."""
    connector = remote(setup)
    wanted = f"references.other$eq:{reference}"
    paths = ("/orders/drafts", "/orders/sent", "/orders/archived", "/invoices/drafts", "/invoices/booked")
    return {path: len(connector._all(path, wanted)) for path in paths}


def reserved(setup, sku):
    return remote(setup).find_product(sku).raw["inventory"]["orderedByCustomers"]


def complete(shop, order):
    response = shop.put(f"/orders/{order['id']}", json={"status": "completed"})
    assert response.status_code == 200, response.text
    return response.json()


def test_processing_makes_an_order_and_completed_turns_it_into_the_booked_invoice(
    db, account, setup_booked, run_jobs, shop
):
    source_link = make_source_link(db, account, setup_booked, states=STATES, paid_methods=["quickpay"])
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()

    transfer = the_transfer(db)
    assert (transfer.status, transfer.document, transfer.reference) == ("done", "order", reference)
    order = remote(setup_booked).find_order(reference)
    assert order is not None and order.state == "draft"
    assert transfer.remote_order == order.id and transfer.booked_number is None
    assert order.totals.gross == transfer.computed_gross
    assert documents(setup_booked, reference)["/orders/drafts"] == 1
    assert remote(setup_booked).find_invoice(reference) is None
    assert reserved(setup_booked, ESPRESSO) == Decimal("2")  # the order holds the stock
    assert [log.step for log in transfer.logs] == ["customer", "products", "order", "done"]
    assert transfer.logs[-1].message == f"Order {order.id}."

    feed(source_link, complete(shop, placed))
    run_jobs()

    db.session.expire_all()
    assert (transfer.status, transfer.document) == ("done", "booked")
    invoice = remote(setup_booked).find_invoice(reference)
    assert invoice.booked and transfer.booked_number == invoice.number
    assert transfer.remote_order is None and transfer.payment_id
    assert invoice.totals == order.totals  # the invoice is the order's
    assert documents(setup_booked, reference) == {
        "/orders/drafts": 0,
        "/orders/sent": 0,
        "/orders/archived": 0,
        "/invoices/drafts": 0,
        "/invoices/booked": 1,
    }
    assert reserved(setup_booked, ESPRESSO) == Decimal("0")  # the reservation ended with the order
    assert any(f"made from order {order.id}" in log.message for log in transfer.logs)


def test_replays_and_a_poll_racing_the_webhook_make_one_order_then_one_invoice(
    db, account, setup_booked, run_jobs, shop
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    assert feed(source_link, placed, delivery_id="w-1") is not None
    assert feed(source_link, placed, delivery_id="w-1") is None  # a replay: not even stored
    feed(source_link, placed, delivery_id=f"poll:{placed['id']}:{placed['date_modified_gmt']}")
    run_jobs()
    feed(source_link, placed, delivery_id="w-2")  # processing once more, after the order was made
    run_jobs()
    assert documents(setup_booked, reference)["/orders/drafts"] == 1

    completed = complete(shop, placed)
    feed(source_link, completed, delivery_id="w-3")
    feed(source_link, completed, delivery_id=f"poll:{placed['id']}:{completed['date_modified_gmt']}")
    run_jobs()
    feed(source_link, completed, delivery_id="w-4")  # completed again after it was booked
    feed(source_link, placed, delivery_id="w-5")  # a late processing delivery never goes back to an order
    run_jobs()

    counts = documents(setup_booked, reference)
    assert counts["/invoices/booked"] == 1
    assert sum(counts.values()) == 1
    transfer = the_transfer(db)
    assert (transfer.status, transfer.document) == ("done", "booked")
    assert db.session.scalar(select(SourceEvent).where(SourceEvent.processed_at.is_(None))) is None


def test_a_500_on_the_order_post_is_retried_into_one_order(
    app, db, account, setup_booked, run_jobs, redis, shop, fast_retries
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    # Warm the caches (customer, products) so the first request of the next transfer is the order POST.
    feed(source_link, shop_order(shop))
    run_jobs()
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    faults(app, "e-conomic", next=["500"])
    feed(source_link, placed)
    run_jobs()
    transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == str(placed["id"])))
    assert transfer.status == "pending" and transfer.error_kind == "transient"
    assert transfer.draft_requested and transfer.remote_order == ""  # sent, answer unknown
    assert release_scheduled(redis) == 1
    run_jobs()

    db.session.expire_all()
    assert transfer.status == "done" and transfer.attempts == 2
    order = remote(setup_booked).find_order(reference)
    assert transfer.remote_order == order.id
    assert documents(setup_booked, reference)["/orders/drafts"] == 1


def _lose_answer(monkeypatch, method, path_end):
    """The sandbox does the work, but the answer to the first matching request never comes back."""
    original = SandboxTransport.handle_request
    lost = []

    def answer_lost(self, request):
        response = original(self, request)
        if request.method == method and request.url.path.endswith(path_end) and not lost:
            lost.append(response.status_code)
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response

    monkeypatch.setattr(SandboxTransport, "handle_request", answer_lost)
    return lost


def test_an_order_made_but_its_answer_lost_is_found_not_made_again(
    db, account, setup_booked, run_jobs, shop, monkeypatch
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    lost = _lose_answer(monkeypatch, "POST", "/orders/drafts")
    feed(source_link, placed)
    run_jobs()

    assert lost == [201]  # the order was made
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.attempts == 1
    assert any(log.outcome == "reused" and "answer was lost" in log.message for log in transfer.logs)
    assert documents(setup_booked, reference)["/orders/drafts"] == 1


def test_an_invoice_made_from_the_order_but_its_answer_lost_ends_with_one_invoice_and_no_order(
    db, account, setup_booked, run_jobs, shop, monkeypatch
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()

    lost = _lose_answer(monkeypatch, "POST", "/invoices/drafts")
    feed(source_link, complete(shop, placed))
    run_jobs()

    assert lost == [201]  # the invoice draft was made from the order; the order was left behind
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.booked_number
    assert any("removed: its invoice exists" in log.message for log in transfer.logs)
    counts = documents(setup_booked, reference)
    assert counts["/invoices/booked"] == 1 and sum(counts.values()) == 1
    assert reserved(setup_booked, ESPRESSO) == Decimal("0")


def test_a_worker_killed_after_the_invoice_post_resumes_into_one_invoice(
    app, db, account, setup_booked, run_jobs, shop, monkeypatch
):
    """The crash: the invoice draft was made from the order (e-conomic kept it), the worker died before
    anything else. The watchdog's rerun finds the invoice by reference and removes the order."""
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()

    original = EconomicConnector.delete_order

    class Killed(BaseException):  # not an Exception: nothing in the pipeline handles it
        pass

    def killed(self, order):
        raise Killed

    monkeypatch.setattr(EconomicConnector, "delete_order", killed)
    feed(source_link, complete(shop, placed))
    with pytest.raises(Killed):
        event = db.session.scalars(select(SourceEvent).order_by(SourceEvent.id.desc())).first()
        intake.process_event(event.id)
        posting.run_transfer(the_transfer(db).id)
    db.session.rollback()
    monkeypatch.setattr(EconomicConnector, "delete_order", original)
    transfer = the_transfer(db)
    assert transfer.status == "running" and transfer.draft_requested
    assert documents(setup_booked, reference)["/orders/drafts"] == 1  # both exist now

    transfer.started_at = transfer.started_at.replace(year=2000)
    db.session.commit()
    scheduling.requeue_stuck(older_than=timedelta(minutes=1))
    run_jobs()

    db.session.expire_all()
    assert transfer.status == "done" and transfer.booked_number
    counts = documents(setup_booked, reference)
    assert counts["/invoices/booked"] == 1 and sum(counts.values()) == 1


def test_a_later_state_meeting_a_running_transfer_is_decided_again_after_it(
    db, account, setup_booked, run_jobs, redis, shop
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()
    transfer = the_transfer(db)
    transfer.status = "running"  # as if a worker were still posting the order
    db.session.commit()

    event = feed(source_link, complete(shop, placed))
    run_jobs()
    db.session.expire_all()
    assert event.processed_at is None and transfer.document == "order"
    transfer.status = "done"  # the worker finished
    db.session.commit()
    assert release_scheduled(redis) == 1
    run_jobs()

    db.session.expire_all()
    assert (transfer.status, transfer.document) == ("done", "booked")
    assert documents(setup_booked, reference)["/invoices/booked"] == 1


def test_an_order_deleted_in_e_conomic_is_invoiced_from_the_shop_order(
    db, account, setup_booked, run_jobs, shop
):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()
    connector = remote(setup_booked)
    connector.delete_order(connector.find_order(reference))  # the bookkeeper deleted it

    feed(source_link, complete(shop, placed))
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.booked_number
    assert any("no longer in the accounting system" in log.message for log in transfer.logs)
    assert documents(setup_booked, reference)["/invoices/booked"] == 1


def test_a_refund_waits_for_the_invoice_not_the_order(db, account, setup_booked, run_jobs, shop):
    source_link = make_source_link(db, account, setup_booked, states=STATES)
    placed = shop_order(shop)
    reference = f"WC-12-{placed['number']}"
    feed(source_link, placed)
    run_jobs()
    item = placed["line_items"][0]  # two espresso; one is refunded
    net, tax = Decimal(item["subtotal"]) / 2, Decimal(item["subtotal_tax"]) / 2
    refund = refund_event(
        placed, amount=str(net + tax), items=[("Espresso", ESPRESSO, 1, str(net), str(tax), item["id"])]
    )
    feed_refund(source_link, refund)
    run_jobs()
    credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
    assert credit.status == "waiting"

    feed(source_link, complete(shop, placed))
    run_jobs()
    db.session.expire_all()
    assert credit.status == "done", (credit.status, credit.error_message)
    assert remote(setup_booked).find_invoice(f"{reference}-R77").is_credit_note


def test_settings_refuse_an_order_for_a_system_without_orders(db, account):
    dinero = make_setup(account, "dinero", auto_book=True)
    with pytest.raises(source_links.SettingsError) as refused:
        source_links.clean_settings({"states": {"processing": "order"}}, dinero)
    assert "Dinero has no orders" in refused.value.errors["states"]
    economic = make_setup(account, "e-conomic", auto_book=True)
    assert source_links.clean_settings({"states": STATES}, economic)["states"] == STATES
