"""The Stripe sandbox: https://api.stripe.com/v1/… under /sandbox/stripe/v1/…, usable unchanged by the
official library: `stripe.StripeClient(key, base_addresses={"api": "<portal>/sandbox/stripe"})`.

Customers, products, prices, tax rates, coupons, payment methods (Stripe's test tokens), subscriptions with
prorations, invoices, invoice payments, charges, refunds, credit notes, events with signed webhook
deliveries, and test clocks that renew subscriptions. Answers in one API version (api.API_VERSION). What
each endpoint is checked against, and what the sandbox guesses, is in docs/connectors/stripe.md.
"""

from portal.sandbox.stripe import catalog, clocks, credits, customers, invoices, subscriptions  # noqa: F401
from portal.sandbox.stripe.api import API_VERSION, DEMO_ACCOUNT, KEYS, Call, bp  # noqa: F401
from portal.sandbox.stripe.events import deliver, deliveries, resend, sign  # noqa: F401

DEMO_KEY = "sk_test_bogbro_demo"

# Injected faults in Stripe's error shape, so the official library raises what it would for the real ones.
FAULT_BODIES = {
    "429": {
        "error": {
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly. We "
            "recommend an exponential backoff of your requests.",
            "type": "invalid_request_error",
        }
    },
    "500": {
        "error": {"message": "An unknown error occurred (injected by the sandbox).", "type": "api_error"}
    },
}


def seed(tenant=DEMO_ACCOUNT) -> None:
    """The demo account's catalogue (idempotent): Danish VAT as an inclusive tax rate and a monthly coffee
    subscription priced with VAT included, as a Danish shop sells to consumers."""
    call = Call(str(tenant), {})
    if call.store.is_seeded():
        return
    call.store.mark_seeded()
    catalog.create_tax_rate(
        Call(
            call.account,
            {
                "display_name": "Moms",
                "percentage": "25",
                "inclusive": "true",
                "country": "DK",
                "jurisdiction": "DK",
                "tax_type": "vat",
            },
        )
    )
    product = catalog.create_product(
        Call(call.account, {"name": "Kaffeabonnement", "id": "prod_BogbroKaffe"})
    )
    catalog.create_price(
        Call(
            call.account,
            {
                "product": product["id"],
                "currency": "dkk",
                "unit_amount": "14900",
                "recurring": {"interval": "month"},
                "tax_behavior": "inclusive",
                "lookup_key": "kaffe-maaned",
            },
        )
    )
