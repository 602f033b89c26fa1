"""Stripe Billing renewals through the whole pipeline: the official stripe library drives the Stripe sandbox
(test clocks renew), the sandbox delivers signed events to the link's webhook endpoint (registered through
the connector), and the RQ jobs post into the e-conomic (or Dinero) sandbox."""

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.models import Connection, SourceEvent, SourceLink, Transfer
from portal.sandbox.stripe import DEMO_ACCOUNT, resend
from portal.shops import operations as shops
from tests.pipeline.conftest import make_setup, remote
from tests.sandbox_stripe.conftest import DAY, START, subscribe

SHOP_ID = "7"


@pytest.fixture
def setup_booked(account):
    return make_setup(account, "e-conomic", auto_book=True)


def link(app, db, account, setup, **settings) -> SourceLink:
    """A Stripe source link as connecting it makes one: the restricted demo key, the webhook endpoint
    registered at the sandbox (its whsec_ secret stored on the link)."""
    connection = Connection(
        account_id=account.id,
        system="stripe",
        role="subscription",
        label="Stripe",
        credentials={"api_key": "rk_test_bogbro_demo"},
        sandbox=True,
    )
    values = {"shop_id": SHOP_ID, "states": {"paid": "booked", "open": "booked"}, "paid_methods": ["stripe"]}
    values.update(settings)
    source_link = SourceLink(
        account_id=account.id,
        connection=connection,
        setup=setup,
        name="Stripe",
        settings=values,
        webhook_secret={"secret": "not-yet"},
        active=True,
    )
    db.session.add(source_link)
    db.session.commit()
    with app.test_request_context():
        shops.register_webhooks(source_link)
    assert source_link.webhook_secret["secret"].startswith("whsec_")
    return source_link


def transfers(db, kind="invoice") -> dict[str, Transfer]:
    db.session.expire_all()
    return {t.order_number: t for t in db.session.scalars(select(Transfer).where(Transfer.kind == kind))}


def renew(api, clock, subscription):
    end = subscription["items"].data[0].current_period_end
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": end + 2 * 3600})
    invoices = api.v1.invoices.list({"subscription": subscription.id}).data
    return next(i for i in invoices if i.billing_reason == "subscription_cycle")


def test_a_renewal_becomes_one_booked_invoice_registered_as_paid(
    app,
    db,
    account,
    setup_booked,
    api,
    clock,
    plan,
    run_jobs,
):
    source_link = link(app, db, account, setup_booked)
    _customer, subscription = subscribe(api, clock, plan)
    run_jobs()
    renewal = renew(api, clock, subscription)
    run_jobs()

    first = api.v1.invoices.retrieve(subscription.latest_invoice)
    done = transfers(db)
    assert set(done) == {first.number, renewal.number}
    transfer = done[renewal.number]
    assert (transfer.status, transfer.document) == ("done", "booked"), transfer.error_message
    assert transfer.payment_id  # paid by card: registered as paid
    found = remote(setup_booked).find_invoice(f"ST-{SHOP_ID}-{renewal.number}")
    assert found.booked and found.totals.gross == Decimal("125.00") and found.totals.vat == Decimal("25.00")
    assert found.raw["remainder"] == 0
    assert source_link.id == transfer.source_link_id

    # Stripe resends the renewal's invoice.paid three times: still one document
    paid = db.session.scalars(select(SourceEvent).where(SourceEvent.topic == "invoice.paid")).all()
    event_id = next(e.delivery_id for e in paid if e.resource_id == renewal.id)
    for _ in range(3):
        resend(DEMO_ACCOUNT, event_id)
    db.session.commit()
    stored = db.session.scalar(select(func.count(SourceEvent.id)))
    run_jobs()
    assert db.session.scalar(select(func.count(SourceEvent.id))) == stored
    assert len(transfers(db)) == 2


def test_a_proration_lands_as_a_negative_line_and_the_totals_agree(
    app,
    db,
    account,
    setup_booked,
    api,
    clock,
    plan,
    run_jobs,
):
    link(app, db, account, setup_booked)
    _customer, subscription = subscribe(api, clock, plan)
    item = subscription["items"].data[0]
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + 15 * DAY})
    api.v1.subscriptions.update(subscription.id, {"items": [{"id": item.id, "quantity": 3}]})
    api.v1.subscriptions.update(subscription.id, {"items": [{"id": item.id, "quantity": 2}]})
    renewal = renew(api, clock, subscription)
    assert any(line.amount < 0 for line in renewal.lines.data)
    run_jobs()

    transfer = transfers(db)[renewal.number]
    assert transfer.status == "done", transfer.error_message
    found = remote(setup_booked).find_invoice(f"ST-{SHOP_ID}-{renewal.number}")
    assert found.totals.gross == Decimal(renewal.total) / 100
    assert any(Decimal(str(line["totalNetAmount"])) < 0 for line in found.raw["lines"])


def test_a_credit_note_becomes_a_credit_note_for_exactly_the_amount(
    app,
    db,
    account,
    setup_booked,
    api,
    clock,
    plan,
    run_jobs,
):
    link(app, db, account, setup_booked)
    _customer, subscription = subscribe(api, clock, plan)
    run_jobs()
    invoice = api.v1.invoices.retrieve(subscription.latest_invoice)
    line = invoice.lines.data[0]
    api.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 4000}],
            "refund_amount": 5000,
        }
    )
    run_jobs()

    notes = list(transfers(db, "credit_note").values())
    assert len(notes) == 1 and notes[0].status == "done", [n.error_message for n in notes]
    assert notes[0].computed_gross == Decimal("50.00")


def test_an_eu_business_customer_is_invoiced_with_reverse_charge(
    app,
    db,
    account,
    setup_booked,
    api,
    clock,
    plan,
    run_jobs,
):
    link(app, db, account, setup_booked)
    price, _vat = plan
    customer = api.v1.customers.create(
        {
            "name": "Kaffee GmbH",
            "email": "einkauf@kaffee.de",
            "address": {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "tax_exempt": "reverse",
            "tax_id_data": [{"type": "eu_vat", "value": "DE136695976"}],
            "test_clock": clock.id,
        }
    )
    method = api.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    api.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}})
    subscription = api.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    run_jobs()

    invoice = api.v1.invoices.retrieve(subscription.latest_invoice)
    assert invoice.total == 10000
    transfer = transfers(db)[invoice.number]
    assert transfer.status == "done", transfer.error_message
    found = remote(setup_booked).find_invoice(f"ST-{SHOP_ID}-{invoice.number}")
    assert found.totals.gross == Decimal("100.00") and found.totals.vat == 0


def test_an_open_invoice_is_booked_with_the_payment_terms_and_not_as_paid(
    app,
    db,
    account,
    setup_booked,
    api,
    plan,
    run_jobs,
):
    link(app, db, account, setup_booked)
    _price, vat = plan
    customer = api.v1.customers.create(
        {"name": "Ole Bager", "email": "ole@example.dk", "address": {"country": "DK", "postal_code": "2100"}}
    )
    api.v1.invoice_items.create(
        {"customer": customer.id, "amount": 20000, "currency": "dkk", "tax_rates": [vat.id]}
    )
    invoice = api.v1.invoices.create(
        {
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": 14,
            "pending_invoice_items_behavior": "include",
        }
    )
    invoice = api.v1.invoices.finalize_invoice(invoice.id)
    run_jobs()

    transfer = transfers(db)[invoice.number]
    assert (transfer.status, transfer.payment_id) == ("done", None), transfer.error_message
    found = remote(setup_booked).find_invoice(f"ST-{SHOP_ID}-{invoice.number}")
    assert found.booked and found.totals.gross == Decimal("250.00")
    assert found.raw["paymentTerms"]["paymentTermsNumber"]


def test_a_failed_payment_is_skipped_with_the_reason(
    app,
    db,
    account,
    setup_booked,
    api,
    clock,
    plan,
    run_jobs,
):
    link(app, db, account, setup_booked)
    _customer, subscription = subscribe(api, clock, plan)
    run_jobs()
    customer = api.v1.customers.retrieve(subscription.customer)
    failing = api.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    api.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": failing.id}})
    renewal = renew(api, clock, subscription)
    assert renewal.status == "open"
    run_jobs()

    transfer = transfers(db)[renewal.number]
    assert transfer.status == "skipped"
    assert "Payment failed" in transfer.reason and "not set to transfer" in transfer.reason


# --- the webhook endpoint -----------------------------------------------------------------------------------


def signed(body: bytes, secret: str, at: int | None = None) -> dict:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={digest}", "Content-Type": "application/json"}


def test_forged_and_stale_signatures_are_refused_and_unknown_events_stored_as_ignored(
    app, client, db, account, setup_booked, run_jobs
):
    source_link = link(app, db, account, setup_booked)
    secret = source_link.webhook_secret["secret"]
    url = f"/webhooks/stripe/{source_link.webhook_token}"
    body = json.dumps(
        {"id": "evt_1", "object": "event", "type": "customer.subscription.paused", "data": {"object": {}}}
    ).encode()
    forged = client.post(url, data=body, headers=signed(body, "whsec_wrong"), csrf=False)
    stale = client.post(url, data=body, headers=signed(body, secret, int(time.time()) - 301), csrf=False)
    absent = client.post(url, data=body, headers={"Content-Type": "application/json"}, csrf=False)
    assert (forged.status_code, stale.status_code, absent.status_code) == (401, 401, 401)
    assert db.session.scalar(select(func.count(SourceEvent.id))) == 0

    accepted = client.post(url, data=body, headers=signed(body, secret), csrf=False)
    assert accepted.status_code == 200
    run_jobs()
    event = db.session.scalar(select(SourceEvent))
    assert event.topic == "customer.subscription.paused" and "ignored" in event.outcome
    assert db.session.scalar(select(func.count(Transfer.id))) == 0


def test_a_renewal_into_dinero(app, db, account, api, clock, plan, run_jobs):
    setup = make_setup(account, "dinero", auto_book=True)
    link(app, db, account, setup)
    _customer, subscription = subscribe(api, clock, plan)
    run_jobs()
    renewal = renew(api, clock, subscription)
    run_jobs()

    transfer = transfers(db)[renewal.number]
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(f"ST-{SHOP_ID}-{renewal.number}")
    assert found.booked and found.totals.gross == Decimal("125.00")


def test_a_renewal_whose_webhook_was_missed_is_found_by_the_poll(
    app, db, account, setup_booked, api, clock, plan, run_jobs
):
    from portal.pipeline.polls import poll_orders

    # the first poll reads from the activation date (the test clock's invoices are dated in its time)
    source_link = link(app, db, account, setup_booked, activation_date="2026-05-01")
    _customer, subscription = subscribe(api, clock, plan)
    run_jobs()
    endpoint = api.v1.webhook_endpoints.list().data[0]
    api.v1.webhook_endpoints.update(endpoint.id, {"disabled": True})  # the renewal's events never arrive
    renewal = renew(api, clock, subscription)
    run_jobs()
    assert renewal.number not in transfers(db)

    assert poll_orders(source_link.id) >= 1
    run_jobs()
    transfer = transfers(db)[renewal.number]
    assert transfer.status == "done" and transfer.payment_id, transfer.error_message
    assert poll_orders(source_link.id) == 0  # the same versions are not recorded twice


def test_zero_invoices_and_first_invoices_are_skipped_as_the_settings_say(
    app, db, account, setup_booked, api, clock, plan, run_jobs
):
    link(app, db, account, setup_booked, sale_kinds=["renewals"])
    api.v1.coupons.create({"id": "GRATIS", "percent_off": 100, "duration": "once"})
    _customer, free = subscribe(api, clock, plan, discounts=[{"coupon": "GRATIS"}])
    run_jobs()

    invoice = api.v1.invoices.retrieve(free.latest_invoice)
    assert invoice.total == 0
    transfer = transfers(db)[invoice.number]
    assert transfer.status == "skipped" and "this sale is not one" in transfer.reason  # the stored msgid
    renewal = renew(api, clock, free)
    run_jobs()
    assert transfers(db)[renewal.number].status == "done"  # renewals transfer; the coupon was once
