"""Prorations, refunds and credit notes, coupons, EU business customers and declined cards, through the
official stripe library against the Stripe sandbox."""

import json

import pytest
import stripe

from tests.sandbox_stripe.conftest import DAY, START, subscribe


def test_a_quantity_change_mid_period_prorates_onto_the_next_invoice(api, clock, plan):
    customer, subscription = subscribe(api, clock, plan)
    item = subscription["items"].data[0]
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + 15 * DAY})
    updated = api.v1.subscriptions.update(subscription.id, {"items": [{"id": item.id, "quantity": 3}]})
    assert updated["items"].data[0].quantity == 3

    pending = api.v1.invoice_items.list({"customer": customer.id, "pending": True}).data
    share = 16 / 31  # 16 of the period's 31 days are left
    amounts = sorted(i.amount for i in pending)
    assert amounts == [-round(10000 * share), round(30000 * share)]
    assert all(i.proration for i in pending)
    assert any(i.description.startswith("Unused time on 1 × Kaffeabonnement") for i in pending)

    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": item.current_period_end + 2 * 3600})
    renewal = api.v1.invoices.list({"subscription": subscription.id, "status": "paid"}).data[0]
    assert renewal.billing_reason == "subscription_cycle"
    prorations = [line for line in renewal.lines.data if line.parent.subscription_item_details.proration]
    assert sorted(line.amount for line in prorations) == amounts
    assert any(line.amount < 0 for line in prorations)
    cycle = [line for line in renewal.lines.data if not line.parent.subscription_item_details.proration]
    assert [(line.quantity, line.amount) for line in cycle] == [(3, 30000)]
    subtotal = 30000 + sum(amounts)
    assert renewal.subtotal == subtotal
    assert renewal.total == subtotal + sum(line.taxes[0].amount for line in renewal.lines.data)


def test_a_subscription_item_changed_on_its_own_prorates_the_same_way(api, clock, plan):
    customer, subscription = subscribe(api, clock, plan)
    item = subscription["items"].data[0]
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + 15 * DAY})
    changed = api.v1.subscription_items.update(item.id, {"quantity": 3})
    assert changed.quantity == api.v1.subscription_items.retrieve(item.id).quantity == 3
    pending = api.v1.invoice_items.list({"customer": customer.id, "pending": True}).data
    assert sorted(i.amount for i in pending) == [-round(10000 * 16 / 31), round(30000 * 16 / 31)]
    assert api.v1.subscriptions.retrieve(subscription.id)["items"].data[0].quantity == 3


def test_always_invoice_bills_the_change_at_once_as_subscription_update(api, clock, plan):
    _customer, subscription = subscribe(api, clock, plan)
    item = subscription["items"].data[0]
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + 15 * DAY})
    updated = api.v1.subscriptions.update(
        subscription.id, {"items": [{"id": item.id, "quantity": 2}], "proration_behavior": "always_invoice"}
    )
    invoice = api.v1.invoices.retrieve(updated.latest_invoice)
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")
    assert len(invoice.lines.data) == 2 and invoice.total == invoice.amount_paid > 0


def test_a_refund_and_a_credit_note_on_a_paid_invoice(api, clock, plan):
    _customer, subscription = subscribe(api, clock, plan)
    invoice = api.v1.invoices.retrieve(subscription.latest_invoice, {"expand": ["payments"]})
    intent_id = invoice.payments.data[0].payment.payment_intent

    refund = api.v1.refunds.create({"payment_intent": intent_id, "amount": 2500})
    assert (refund.status, refund.amount) == ("succeeded", 2500)
    charge = api.v1.charges.retrieve(api.v1.payment_intents.retrieve(intent_id).latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2500, False)

    line = invoice.lines.data[0]
    note = api.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 4000}],
            "refund_amount": 5000,
            "reason": "product_unsatisfactory",
        }
    )
    assert (note.type, note.status, note.subtotal, note.total) == ("post_payment", "issued", 4000, 5000)
    assert note.total_taxes[0].amount == 1000
    assert note.number == f"{invoice.number}-CN-01"
    assert note.refunds[0].amount_refunded == 5000
    assert api.v1.charges.retrieve(charge.id).amount_refunded == 7500
    assert api.v1.invoices.retrieve(invoice.id).post_payment_credit_notes_amount == 5000

    whole_line = [{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 1}]
    with pytest.raises(stripe.InvalidRequestError, match=r"credit note amount \(12500\) exceeds .* \(7500\)"):
        api.v1.credit_notes.create({"invoice": invoice.id, "lines": whole_line})
    part = [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 1000}]
    with pytest.raises(stripe.InvalidRequestError, match="must equal the credit note amount"):
        api.v1.credit_notes.create(
            {"invoice": invoice.id, "lines": part, "refund_amount": 1, "credit_amount": 0}
        )
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount"):
        api.v1.refunds.create({"charge": charge.id, "amount": 5001})


def test_a_100_percent_coupon_makes_a_zero_invoice_that_is_paid_without_a_charge(api, clock, plan):
    api.v1.coupons.create({"id": "GRATIS", "percent_off": 100, "duration": "once"})
    _customer, subscription = subscribe(api, clock, plan, discounts=[{"coupon": "GRATIS"}])
    invoice = api.v1.invoices.retrieve(subscription.latest_invoice, {"expand": ["payments", "discounts"]})
    assert (invoice.status, invoice.subtotal, invoice.total, invoice.amount_paid) == ("paid", 10000, 0, 0)
    assert invoice.total_discount_amounts[0].amount == 10000
    assert invoice.discounts[0].source.coupon == "GRATIS"
    assert invoice.payments.data == []
    assert subscription.status == "active"

    # "once": the next invoice is at full price
    end = subscription["items"].data[0].current_period_end
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": end + 2 * 3600})
    renewal = api.v1.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.total, renewal.status) == ("subscription_cycle", 12500, "paid")


def test_an_eu_business_customer_carries_its_vat_number_onto_the_invoice(api, clock, plan):
    customer = api.v1.customers.create(
        {
            "name": "Beispiel GmbH",
            "email": "buchhaltung@beispiel.de",
            "tax_exempt": "reverse",
            "address": {"line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
            "tax_id_data": [{"type": "eu_vat", "value": "DE136695976"}],
            "test_clock": clock.id,
        }
    )
    tax_ids = api.v1.customers.retrieve(customer.id, {"expand": ["tax_ids"]}).tax_ids.data
    assert tax_ids == api.v1.customers.tax_ids.list(customer.id).data
    assert [(t.type, t.value, t.country, t.verification.status) for t in tax_ids] == [
        ("eu_vat", "DE136695976", "DE", "verified")
    ]
    method = api.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    euro = api.v1.prices.create(
        {
            "product": plan[0].product,
            "currency": "eur",
            "unit_amount": 1350,
            "recurring": {"interval": "year"},
        }
    )
    subscription = api.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": euro.id}], "default_payment_method": method.id}
    )
    invoice = api.v1.invoices.retrieve(subscription.latest_invoice)
    assert (invoice.currency, invoice.status) == ("eur", "paid")
    assert invoice.customer_tax_exempt == "reverse"
    assert [(t.type, t.value) for t in invoice.customer_tax_ids] == [("eu_vat", "DE136695976")]
    assert invoice.customer_address.country == "DE"
    assert (invoice.total, invoice.total_taxes) == (1350, [])
    assert api.v1.customers.retrieve(customer.id).currency == "eur"

    with pytest.raises(stripe.InvalidRequestError, match="Invalid value for eu_vat") as error:
        api.v1.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": "DE123"})
    assert error.value.code == "tax_id_invalid"


def test_a_declined_card_leaves_the_renewal_open_and_fires_payment_failed(
    api, clock, plan, endpoint, receiver, run_jobs
):
    with pytest.raises(stripe.CardError) as declined:
        customer = api.v1.customers.create({"name": "Bo", "test_clock": clock.id})
        api.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": customer.id})
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"

    customer, subscription = subscribe(api, clock, plan)
    failing = api.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    api.v1.subscriptions.update(subscription.id, {"default_payment_method": failing.id})
    end = subscription["items"].data[0].current_period_end
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": end + 2 * 3600})

    renewal = api.v1.invoices.list({"subscription": subscription.id}).data[0]
    assert (renewal.billing_reason, renewal.status, renewal.attempt_count) == (
        "subscription_cycle",
        "open",
        1,
    )
    assert renewal.amount_remaining == 12500
    assert api.v1.subscriptions.retrieve(subscription.id).status == "past_due"

    run_jobs()
    failed = receiver.of_type("invoice.payment_failed")
    assert [json.loads(body)["data"]["object"]["id"] for _, body in failed] == [renewal.id]
    event = stripe.Webhook.construct_event(failed[0][1], failed[0][0]["Stripe-Signature"], endpoint.secret)
    assert event.data.object.status == "open"

    with pytest.raises(stripe.CardError):
        api.v1.invoices.pay(renewal.id)
    paid = api.v1.invoices.pay(
        renewal.id,
        {"payment_method": api.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id}).id},
    )
    assert paid.status == "paid"
    assert api.v1.subscriptions.retrieve(subscription.id).status == "active"


def test_an_open_invoice_with_payment_terms_is_paid_out_of_band(api, plan):
    customer = api.v1.customers.create({"name": "Kommune", "email": "faktura@kommune.dk"})
    api.v1.invoice_items.create(
        {"customer": customer.id, "pricing": {"price": plan[0].id}, "quantity": 2, "tax_rates": [plan[1].id]}
    )
    invoice = api.v1.invoices.create(
        {
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": 14,
            "pending_invoice_items_behavior": "include",
        }
    )
    assert (invoice.status, invoice.billing_reason, invoice.total) == ("draft", "manual", 25000)
    invoice = api.v1.invoices.finalize_invoice(invoice.id)
    assert invoice.status == "open" and invoice.due_date == invoice.created + 14 * DAY
    paid = api.v1.invoices.pay(invoice.id, {"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid) == ("paid", 25000)


def test_a_credit_note_on_an_open_invoice_lowers_what_is_left_to_pay(api, plan):
    customer = api.v1.customers.create({"name": "Kommune"})
    api.v1.invoice_items.create(
        {"customer": customer.id, "pricing": {"price": plan[0].id}, "tax_rates": [plan[1].id]}
    )
    invoice = api.v1.invoices.create(
        {
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "pending_invoice_items_behavior": "include",
        }
    )
    invoice = api.v1.invoices.finalize_invoice(invoice.id)
    line = invoice.lines.data[0]
    with pytest.raises(stripe.InvalidRequestError, match="paid invoices only"):
        api.v1.credit_notes.create(
            {
                "invoice": invoice.id,
                "refund_amount": 100,
                "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 100}],
            }
        )
    note = api.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 2000}],
        }
    )
    assert (note.type, note.total, note.pre_payment_amount) == ("pre_payment", 2500, 2500)
    assert api.v1.invoices.retrieve(invoice.id).amount_remaining == 10000

    voided = api.v1.credit_notes.void_credit_note(note.id)
    assert voided.status == "void"
    assert api.v1.invoices.retrieve(invoice.id).amount_remaining == 12500

    api.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 1}],
        }
    )
    credited = api.v1.invoices.retrieve(invoice.id)
    assert (credited.status, credited.amount_remaining, credited.amount_paid) == ("paid", 0, 0)
    notes = api.v1.credit_notes.list({"invoice": invoice.id}).data
    assert sorted(n.number for n in notes) == [f"{invoice.number}-CN-01", f"{invoice.number}-CN-02"]


def test_paused_collection_voids_or_keeps_the_renewal_and_charges_nothing(api, clock, plan):
    _, voiding = subscribe(api, clock, plan)
    _, drafting = subscribe(api, clock, plan)
    api.v1.subscriptions.update(voiding.id, {"pause_collection": {"behavior": "void"}})
    api.v1.subscriptions.update(drafting.id, {"pause_collection": {"behavior": "keep_as_draft"}})
    end = voiding["items"].data[0].current_period_end
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": end + 2 * 3600})

    voided = api.v1.invoices.list({"subscription": voiding.id}).data[0]
    assert (voided.billing_reason, voided.status, voided.amount_paid) == ("subscription_cycle", "void", 0)
    kept = api.v1.invoices.list({"subscription": drafting.id}).data[0]
    assert (kept.billing_reason, kept.status) == ("subscription_cycle", "draft")
    assert {api.v1.subscriptions.retrieve(s.id).status for s in (voiding, drafting)} == {"active"}
    assert len(api.v1.charges.list().data) == 2  # the two first invoices only

    resumed = api.v1.subscriptions.update(drafting.id, {"pause_collection": ""})
    assert resumed.pause_collection is None
    uncollectible = api.v1.invoices.mark_uncollectible(api.v1.invoices.finalize_invoice(kept.id).id)
    assert uncollectible.status == "uncollectible"
