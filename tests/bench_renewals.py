"""The renewals section of `make bench` (tests.bench_pipeline): Stripe subscription renewals made in the
Stripe sandbox — the same customer, paying by card, on test clocks with PER_CLOCK monthly subscriptions to
the demo coffee plan each, every clock advanced past the period's end, so that each subscription renews, is
invoiced and charged — and their signed `invoice.paid` events, delivered to the demo Stripe link the way
Stripe delivers them."""

import json
import time

import httpx

RENEWAL = "subscription_cycle"
START = 1_780_000_000  # the test clock's start (2026-05-28)
DAY = 86400
# Subscriptions per test clock: advancing one looks at every subscription and invoice of the account at
# each renewal, so many small clocks make a few hundred renewals far sooner than one large one.
PER_CLOCK = 25


def prepare(app):
    """The demo Stripe link (seed_demo made it: its paid invoices booked in the demo e-conomic setup
    and registered as paid), renewals only; its webhook endpoint removed at the sandbox: the bench posts the
    signed events itself, at the pace it measures. Returns (link id, webhook token, whsec_ secret)."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import Connection, SourceLink
    from portal.pipeline.source_links import update_settings
    from portal.sandbox.transport import IN_PROCESS_ORIGIN
    from portal.setups.connections import connector_for

    link = db.session.scalar(select(SourceLink).join(Connection).where(Connection.system == "stripe"))
    update_settings(link, {**link.settings, "sale_kinds": ["renewals"]})
    connector = connector_for(link.connection)
    try:
        connector.delete_webhooks(f"{IN_PROCESS_ORIGIN}/webhooks/stripe/{link.webhook_token}")
    finally:
        connector.close()
    db.session.commit()
    return link.id, link.webhook_token, link.webhook_secret["secret"]


def make_renewals(app, count: int) -> list[bytes]:
    """`count` renewals in the Stripe sandbox, through its API, as the bodies of their invoice.paid events."""
    from portal.sandbox.store import SandboxStore
    from portal.sandbox.stripe import DEMO_ACCOUNT, DEMO_KEY
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

    with httpx.Client(
        transport=SandboxTransport(app),
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/stripe/v1",
        auth=(DEMO_KEY, ""),
        timeout=60,
    ) as api:

        def post(path: str, data: dict) -> dict:
            response = api.post(path, data=data)
            assert response.status_code == 200, response.text
            return response.json()

        listed = api.get("/prices", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        price = next(p for p in listed.json()["data"] if p.get("lookup_key") == "kaffe-maaned")
        rates = api.get("/tax_rates", params={"limit": 100}).json()["data"]
        vat = next(r for r in rates if r["display_name"] == "Moms")  # Danish VAT, included in the price
        for first in range(0, count, PER_CLOCK):
            subscribe(post, price, vat, min(PER_CLOCK, count - first))
    events = SandboxStore("stripe", DEMO_ACCOUNT).all("events")
    paid = [
        e
        for e in events
        if e["type"] == "invoice.paid" and e["data"]["object"].get("billing_reason") == RENEWAL
    ]
    assert len(paid) == count, f"{len(paid)} renewals paid of {count}"
    paid.sort(key=lambda e: e["data"]["object"]["number"])
    return [json.dumps(event).encode() for event in paid]


def subscribe(post, price: dict, vat: dict, count: int) -> None:
    """A test clock, a customer on it paying by card, `count` subscriptions, and the clock advanced past
    the period's end (a month on) and the hour after it when Stripe finalizes and charges the renewals."""
    clock = post("/test_helpers/test_clocks", {"frozen_time": START, "name": "Bench"})
    customer = post(
        "/customers",
        {
            "name": "Ida Holm",  # the same customer on every clock: cached after the warm-up, as for orders
            "email": "ida@example.dk",
            "address[line1]": "Nørregade 1",
            "address[postal_code]": "8000",
            "address[city]": "Aarhus",
            "address[country]": "DK",
            "test_clock": clock["id"],
        },
    )
    method = post("/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    post(f"/customers/{customer['id']}", {"invoice_settings[default_payment_method]": method["id"]})
    for n in range(count):
        post(
            "/subscriptions",
            {
                "customer": customer["id"],
                "items[0][price]": price["id"],
                "items[0][quantity]": str(1 + n % 3),
                "default_tax_rates[0]": vat["id"],
            },
        )
    post(f"/test_helpers/test_clocks/{clock['id']}/advance", {"frozen_time": START + 32 * DAY})


def post_webhooks(client, token: str, secret: str, bodies: list[bytes]) -> None:
    from portal.sandbox.stripe import sign

    for body in bodies:
        response = client.post(
            f"/webhooks/stripe/{token}",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign(body, secret, int(time.time()))},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
