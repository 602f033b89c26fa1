"""Bad input gets Stripe's 4xx error shape and changes nothing — never a 500: every parameter of every
endpoint, sent in the wrong shape (a hash for a string, a string for a list, a list of strings for a list of
hashes, a number that is none), on objects that exist."""

import itertools

import httpx

from tests.sandbox_stripe.conftest import subscribe

ENDPOINTS = {
    "customers": [
        "address",
        "tax_id_data",
        "invoice_settings",
        "metadata",
        "payment_method",
        "test_clock",
        "tax_exempt",
        "preferred_locales",
        "email",
    ],
    "customers/{customer}": ["address", "invoice_settings", "metadata", "tax_exempt", "name"],
    "customers/{customer}/tax_ids": ["type", "value"],
    "products": ["name", "default_price_data", "active", "metadata", "id"],
    "prices": [
        "currency",
        "product",
        "product_data",
        "unit_amount",
        "recurring",
        "tax_behavior",
        "unit_amount_decimal",
    ],
    "tax_rates": ["display_name", "percentage", "inclusive"],
    "coupons": ["percent_off", "amount_off", "duration", "duration_in_months", "currency"],
    "payment_methods/pm_card_visa/attach": ["customer"],
    "subscriptions": [
        "customer",
        "items",
        "default_tax_rates",
        "discounts",
        "collection_method",
        "days_until_due",
        "cancel_at_period_end",
        "payment_behavior",
        "default_payment_method",
    ],
    "subscriptions/{subscription}": [
        "items",
        "default_tax_rates",
        "discounts",
        "proration_behavior",
        "proration_date",
        "default_payment_method",
        "cancel_at_period_end",
        "pause_collection",
    ],
    "invoices": [
        "customer",
        "default_tax_rates",
        "due_date",
        "subscription",
        "days_until_due",
        "auto_advance",
        "collection_method",
        "pending_invoice_items_behavior",
        "currency",
    ],
    "invoices/{invoice}/pay": ["payment_method", "paid_out_of_band"],
    "invoiceitems": [
        "customer",
        "pricing",
        "amount",
        "currency",
        "period",
        "tax_rates",
        "quantity",
        "invoice",
    ],
    "refunds": ["charge", "payment_intent", "amount", "reason"],
    "credit_notes": ["invoice", "lines", "refunds", "refund_amount", "credit_amount", "out_of_band_amount"],
    "webhook_endpoints": ["url", "enabled_events", "api_version"],
    "test_helpers/test_clocks": ["frozen_time", "name"],
    "test_helpers/test_clocks/{clock}/advance": ["frozen_time"],
}
SHAPES = [
    lambda n: {n: "x"},
    lambda n: {n: "-5"},
    lambda n: {n: "99999999999"},
    lambda n: {f"{n}[0]": "x"},
    lambda n: {f"{n}[a]": "x"},
    lambda n: {f"{n}[0][a]": "x"},
    lambda n: {f"{n}[1][price]": "x"},
    lambda n: {f"{n}[0][price]": "x", f"{n}[0][quantity]": "y", f"{n}[0][id]": "si_x"},
    lambda n: {
        f"{n}[0][type]": "invoice_line_item",
        f"{n}[0][invoice_line_item]": "il_x",
        f"{n}[0][quantity]": "1",
    },
    lambda n: {f"{n}[0][type]": "custom_line_item", f"{n}[0][unit_amount]": "x"},
]
LISTS = ["customers", "invoices", "subscriptions", "events", "charges", "credit_notes", "prices"]
LIST_SHAPES = [
    {"limit": "x"},
    {"limit": "0"},
    {"starting_after": "cus_x"},
    {"created": "x"},
    {"created[gte]": "x"},
    {"created[between]": "1"},
    {"expand[0]": "data.nothing"},
    {"expand[a]": "x"},
    {"status[0]": "x"},
    {"customer[a]": "x"},
]


def test_no_wrong_shape_is_a_server_error(api, clock, plan, live_server):
    customer, subscription = subscribe(api, clock, plan)
    ids = {
        "customer": customer.id,
        "subscription": subscription.id,
        "invoice": subscription.latest_invoice,
        "clock": clock.id,
    }
    server_errors = []
    with httpx.Client(base_url=f"{live_server}/sandbox/stripe/v1", auth=("sk_test_bogbro_demo", "")) as http:
        for path, names in ENDPOINTS.items():
            for name, shape in itertools.product(names, SHAPES):
                base = (
                    {"customer": customer.id} if path in ("subscriptions", "invoices", "invoiceitems") else {}
                )
                response = http.post(path.format(**ids), data={**base, **shape(name)})
                if response.status_code >= 500 or (
                    "error" not in response.json() and response.status_code >= 400
                ):
                    server_errors.append((path, shape(name), response.status_code))
        for path, params in itertools.product(LISTS, LIST_SHAPES):
            response = http.get(path, params=params)
            if response.status_code >= 500:
                server_errors.append((path, params, response.status_code))
    assert server_errors == []
    # and nothing of all that reached the subscription or its invoice
    assert api.v1.subscriptions.retrieve(subscription.id)["items"].data[0].quantity == 1
    assert api.v1.invoices.retrieve(subscription.latest_invoice).status == "paid"
