"""The official stripe library against the Stripe sandbox over real HTTP (the live server), and a real
HTTP endpoint that receives the sandbox's webhook deliveries."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from portal.sandbox.stripe import DEMO_KEY

DAY = 86400
START = 1_780_000_000  # 2026-05-28 20:26:40 UTC: a test clock's start


@pytest.fixture
def api(live_server, db):
    """A StripeClient as a customer's source link would make it; no retries, so every answer is seen."""
    return stripe.StripeClient(
        DEMO_KEY, base_addresses={"api": f"{live_server}/sandbox/stripe"}, max_network_retries=0
    )


class Receiver:
    """Webhook deliveries as they arrived: (headers, raw body)."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        self.status = 200

    def of_type(self, event_type: str) -> list[tuple[dict, bytes]]:
        import json

        return [(h, body) for h, body in self.deliveries if json.loads(body)["type"] == event_type]


@pytest.fixture
def receiver():
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.deliveries.append((dict(self.headers.items()), body))
            self.send_response(found.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(api, receiver):
    """A webhook endpoint for every event, delivering to the receiver; its whsec_ secret in `.secret`."""
    return api.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})


@pytest.fixture
def clock(api):
    return api.v1.test_helpers.test_clocks.create({"frozen_time": START, "name": "Fornyelse"})


@pytest.fixture
def plan(api):
    """A monthly plan of 100,00 DKK excl. VAT, and Danish VAT (25 %, exclusive)."""
    product = api.v1.products.create({"name": "Kaffeabonnement"})
    price = api.v1.prices.create(
        {
            "product": product.id,
            "currency": "dkk",
            "unit_amount": 10000,
            "recurring": {"interval": "month"},
            "tax_behavior": "exclusive",
        }
    )
    vat = api.v1.tax_rates.create(
        {"display_name": "Moms", "percentage": 25, "inclusive": False, "country": "DK"}
    )
    return price, vat


def subscribe(api, clock, plan, card="pm_card_visa", **extra):
    """A customer on the clock with `card` as default payment method, subscribed to the plan."""
    price, vat = plan
    customer = api.v1.customers.create(
        {
            "name": "Ida Holm",
            "email": "ida@example.dk",
            "address": {"line1": "Nørregade 1", "postal_code": "8000", "city": "Aarhus", "country": "DK"},
            "test_clock": clock.id,
        }
    )
    method = api.v1.payment_methods.attach(card, {"customer": customer.id})
    api.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}})
    subscription = api.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id, "quantity": 1}],
            "default_tax_rates": [vat.id],
            **extra,
        }
    )
    return customer, subscription
