"""A renewal as Stripe lets one test it: a subscription on a test clock, the clock advanced past the period's
end → a paid subscription_cycle invoice, and a signed invoice.paid delivered to the webhook endpoint."""

import json

import stripe

from tests.sandbox_stripe.conftest import DAY, START, subscribe


def test_advancing_past_the_period_end_renews_invoices_charges_and_signs(
    api, clock, plan, endpoint, receiver, run_jobs
):
    _customer, subscription = subscribe(api, clock, plan)
    assert subscription.status == "active"
    first = api.v1.invoices.retrieve(subscription.latest_invoice)
    assert (first.billing_reason, first.status, first.total, first.amount_paid) == (
        "subscription_create",
        "paid",
        12500,
        12500,
    )

    item = subscription["items"].data[0]
    assert item.current_period_end == START + 31 * DAY  # 28 May → 28 June
    clock = api.v1.test_helpers.test_clocks.advance(
        clock.id, {"frozen_time": item.current_period_end + 2 * 3600}
    )
    assert clock.status == "ready"

    invoices = api.v1.invoices.list({"subscription": subscription.id}).data
    renewal = next(i for i in invoices if i.billing_reason == "subscription_cycle")
    assert renewal.status == "paid"
    assert (renewal.subtotal, renewal.total, renewal.amount_paid) == (10000, 12500, 12500)
    assert renewal.parent.subscription_details.subscription == subscription.id
    assert renewal.total_taxes[0].amount == 2500
    line = renewal.lines.data[0]
    assert line.period.start == item.current_period_end
    assert line.parent.subscription_item_details.subscription_item == item.id
    assert line.pricing.price_details.price == plan[0].id
    assert line.taxes[0].tax_rate_details.tax_rate == plan[1].id
    assert renewal.number.endswith("-0002")
    assert (renewal.period_start, renewal.period_end) == (START, item.current_period_end)  # the ended period

    expanded = api.v1.invoices.retrieve(renewal.id, {"expand": ["payments.data.payment.payment_intent"]})
    intent = expanded.payments.data[0].payment.payment_intent
    assert intent.status == "succeeded" and intent.amount == 12500
    charge = api.v1.charges.retrieve(intent.latest_charge)
    assert (charge.paid, charge.payment_method_details.card.last4) == (True, "4242")

    renewed = api.v1.subscriptions.retrieve(subscription.id)
    assert renewed["items"].data[0].current_period_start == item.current_period_end

    run_jobs()
    paid = [
        body
        for _, body in receiver.of_type("invoice.paid")
        if json.loads(body)["data"]["object"]["id"] == renewal.id
    ]
    assert len(paid) == 1
    headers = next(h for h, body in receiver.deliveries if body == paid[0])
    event = stripe.Webhook.construct_event(paid[0], headers["Stripe-Signature"], endpoint.secret)
    assert event.type == "invoice.paid"
    assert event.request.id is None  # made by Stripe's own renewal, not by a request
    assert event.data.object.billing_reason == "subscription_cycle"
    types = [json.loads(body)["type"] for _, body in receiver.deliveries]
    for expected in ("invoice.created", "invoice.finalized", "invoice.paid", "customer.subscription.updated"):
        assert expected in types
    assert types.index("invoice.created") < types.index("invoice.finalized") < types.index("invoice.paid")
