"""The Shopify connector against the Shopify sandbox, over real HTTP (in-process WSGI, or loopback), and the
sandbox's signed webhook deliveries caught by a small receiving app of the test's own on a loopback port."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from portal.connectors import ConnectorContext, StaticCredentials, available_systems, get_system
from portal.connectors import shopify_graphql as queries
from portal.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFound,
    TransientError,
)
from portal.connectors.shopify import (
    API_VERSION,
    CONNECTOR,
    SYSTEM,
    finish_connect,
    normalise_shop,
    sandbox_settings,
    start_connect,
    verify_webhook,
)
from portal.connectors.sources import SourceSystem, WebhookRejected
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources.shopify import normalise_order, normalise_refund
from portal.extensions import db as _db
from portal.sandbox import shopify as sandbox
from portal.sandbox.faults import set_faults
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
SECRET = SETTINGS["client_secret"]
SHOP = SETTINGS["shop"]
VERSION = "2026-07"
ENGINE = SourceLinkSettings(shop_id="demo")
ADMIN_SCOPES = "read_orders,write_orders,read_products,write_inventory,read_locations,read_all_orders"


def make_connector(app, redis, credentials, *, transport="sandbox", base_url=None, sleeps=None, **settings):
    sleeps = [] if sleeps is None else sleeps
    context = ConnectorContext(
        base_url=base_url or SETTINGS["api_url"],
        credentials=StaticCredentials(credentials),
        transport=SandboxTransport(app) if transport == "sandbox" else transport,
        redis=redis,
        settings={**SETTINGS, **settings},
        sleep=sleeps.append,  # every retry waits once (0 s here): the tests count them
        backoff=0.0,
    )
    return CONNECTOR(context)


@pytest.fixture
def token(db):
    return sandbox.issue_token()


@pytest.fixture
def shopify(app, redis, token):
    return make_connector(app, redis, {"shop": SHOP, **token})


class Admin:
    """The shop's own side: what the merchant (or a storefront) does in Shopify, through the sandbox's
    Admin API with a token that may write orders."""

    def __init__(self, app):
        token = sandbox.issue_token(scope=ADMIN_SCOPES)["access_token"]
        self.http = httpx.Client(
            base_url=f"{SETTINGS['api_url']}/admin/api/{VERSION}",
            transport=SandboxTransport(app),
            headers={"X-Shopify-Access-Token": token},
        )

    def variant(self, sku):
        for product in self.http.get("products.json").json()["products"]:
            for variant in product["variants"]:
                if variant["sku"] == sku:
                    return variant
        raise LookupError(sku)

    def customer_id(self, email):
        for order in self.http.get("orders.json", params={"status": "any"}).json()["orders"]:
            if order["customer"] and order["customer"]["email"] == email:
                return order["customer"]["id"]
        raise LookupError(email)

    def create_order(self, **order):
        order.setdefault("line_items", [{"variant_id": self.variant("KRUS-30CL/HYGGE")["id"], "quantity": 1}])
        answer = self.http.post("orders.json", json={"order": order})
        assert answer.status_code == 201, answer.text
        return answer.json()["order"]

    def refund(self, order_id, **refund):
        answer = self.http.post(f"orders/{order_id}/refunds.json", json={"refund": refund})
        assert answer.status_code == 201, answer.text
        return answer.json()["refund"]


@pytest.fixture
def admin(app, db, token):
    admin = Admin(app)
    yield admin
    admin.http.close()


class Receiver:
    """A throwaway webhook endpoint on a free loopback port: records raw bodies and headers, answers the
    given statuses in turn (then 200)."""

    def __init__(self, statuses=()):
        self.calls: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        web = Flask("receiver")

        @web.post("/hooks/shopify")
        def hook():
            self.calls.append((dict(request.headers), request.get_data()))
            return "", self.statuses.pop(0) if self.statuses else 200

        self.server = make_server("127.0.0.1", 0, web, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/shopify"

    def topics(self):
        return [headers["X-Shopify-Topic"] for headers, _ in self.calls]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def quick_retries(app):
    app.config["SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS"] = (0, 0)
    yield
    app.config.pop("SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS")


def fresh():
    """End the test's own transaction, so it sees what the sandbox committed in its requests."""
    _db.session.rollback()


def all_orders(connector, modified_after=None) -> list[dict]:
    orders, page = [], 1
    while page is not None:
        result = connector.list_orders(modified_after, page)
        orders.extend(result.items)
        page = result.next_page
    return orders


# --- the system ---------------------------------------------------------------------------------------------


def test_system_is_a_registered_source_system():
    assert get_system("shopify") is SYSTEM and isinstance(SYSTEM, SourceSystem)
    assert SYSTEM.connect == "oauth"
    assert SYSTEM.webhook_topics == ("orders/create", "orders/updated", "refunds/create", "app/uninstalled")
    assert SYSTEM not in available_systems()  # the accounting wizard does not offer it
    assert normalise_shop("https://Bogbro-Demo.myshopify.com/admin") == SHOP == normalise_shop("bogbro-demo")
    with pytest.raises(ConfigurationError, match=r"myshopify\.com"):
        normalise_shop("evil.example.com")


# --- connecting ---------------------------------------------------------------------------------------------


def test_install_through_the_sandbox_consent_page(app, client, redis):
    callback = "http://localhost/integrations/shopify/callback"
    url = start_connect(SETTINGS, callback, "state-123")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/sandbox/shopify/admin/oauth/authorize"
    assert query == {
        "shop": SHOP,
        "client_id": SETTINGS["client_id"],
        "scope": "read_orders,read_products,read_inventory,write_inventory,read_locations",
        "redirect_uri": callback,
        "state": "state-123",
    }
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SANDKASSE" in html and SHOP in html and "write_inventory" in html

    answer = client.post(parts.path, data={**query, "answer": "install"})
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == callback
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["state"] == "state-123" and params["shop"] == SHOP

    credentials = finish_connect(
        SETTINGS, params, callback, SandboxTransport(app), expected_state="state-123"
    )
    assert set(credentials) == {"shop", "access_token", "scope"}
    assert credentials["shop"] == SHOP and credentials["access_token"].startswith("shpua_")
    assert make_connector(app, redis, credentials).verify()["name"] == "Bogbro Demo Butik"

    # A code works once; a changed parameter breaks the signature; another attempt's state is refused.
    with pytest.raises(AuthenticationError, match="already used"):
        finish_connect(SETTINGS, params, callback, SandboxTransport(app))
    with pytest.raises(ConfigurationError, match="not signed by Shopify"):
        finish_connect(SETTINGS, {**params, "shop": "other.myshopify.com"}, callback, SandboxTransport(app))
    with pytest.raises(ConfigurationError, match="not signed by Shopify"):
        finish_connect({**SETTINGS, "client_secret": "shpss_wrong"}, params, callback, SandboxTransport(app))
    with pytest.raises(ConfigurationError, match="does not belong"):
        finish_connect(SETTINGS, params, callback, SandboxTransport(app), expected_state="another")


def test_install_refusals(app, client, db):
    callback = "http://localhost/cb"
    url = start_connect(SETTINGS, callback, "s")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    cancelled = client.post(urlsplit(url).path, data={**query, "answer": "cancel"})
    assert cancelled.status_code == 200 and "ikke installeret" in cancelled.get_data(as_text=True)
    unknown = client.get(start_connect({**SETTINGS, "client_id": "someone-else"}, callback, "s"))
    assert unknown.status_code == 400 and "ikke registreret" in unknown.get_data(as_text=True)
    greedy = client.get(start_connect({**SETTINGS, "scopes": "read_orders,read_everything"}, callback, "s"))
    assert greedy.status_code == 400
    elsewhere = client.get(start_connect(SETTINGS, "ftp://shop.example/cb", "s"))
    assert elsewhere.status_code == 400 and "returadresse er ikke tilladt" in elsewhere.get_data(as_text=True)
    with pytest.raises(ConfigurationError, match="SHOPIFY_CLIENT_ID"):
        start_connect({**SETTINGS, "client_id": None}, callback, "s")
    with pytest.raises(ConfigurationError, match="too old"):
        stale = {"code": "x", "shop": SHOP, "state": "s", "timestamp": str(int(time.time()) - 90_000)}
        stale["hmac"] = sandbox.sign_query(stale, SECRET)
        finish_connect(SETTINGS, stale, callback, SandboxTransport(app))


@pytest.mark.parametrize(
    ("status", "answer", "error", "message"),
    [
        (
            400,
            {"error": "invalid_request", "error_description": "used"},
            AuthenticationError,
            "invalid_request: used",
        ),
        (401, {"errors": "[API] Invalid API key"}, AuthenticationError, "[API] Invalid API key"),
        (403, {"errors": "Forbidden"}, AuthenticationError, "Forbidden"),
        (404, {"errors": "Not Found"}, NotFound, "Not Found"),
        (422, {"errors": {"code": ["is invalid"]}}, ConfigurationError, "code is invalid"),
        (429, {"errors": "Exceeded 2 calls per second"}, TransientError, "rate limit"),
        (502, {"errors": "Bad Gateway"}, TransientError, "answered 502"),
        (None, None, TransientError, "could not be reached"),
    ],
)
def test_the_code_exchange_classifies_failures_as_every_call_does(status, answer, error, message):
    """The token request goes through ApiClient (no retries: the merchant is waiting); only OAuth's 400
    (a bad client or a used code) is a refused grant rather than a validation error."""
    sent = []

    def shopify(request):
        sent.append(request)
        if status is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(status, json=answer)

    params = {"code": "abc", "shop": SHOP, "state": "s", "timestamp": str(int(time.time()))}
    params["hmac"] = sandbox.sign_query(params, SECRET)
    with pytest.raises(error, match=re.escape(message)) as refused:
        finish_connect(SETTINGS, params, "http://localhost/cb", httpx.MockTransport(shopify))
    assert refused.value.status == status and refused.value.system == "Shopify"
    assert len(sent) == 1 and sent[0].url == SETTINGS["token_url"]


def test_verify_and_a_wrong_token(app, redis, shopify, db):
    assert shopify.verify() == {
        "id": str(sandbox.shop_document(SHOP)["id"]),
        "name": "Bogbro Demo Butik",
        "domain": SHOP,
        "email": "butik@bogbro-demo.dk",
        "country": "DK",
        "currency": "DKK",
        "prices_include_tax": True,
        "timezone": "Europe/Copenhagen",
    }
    wrong = make_connector(app, redis, {"shop": SHOP, "access_token": "shpua_wrong", "scope": ""})
    with pytest.raises(AuthenticationError) as refused:
        wrong.verify()
    assert refused.value.status == 401
    assert refused.value.message == sandbox.INVALID_TOKEN


def test_uninstall_revokes_the_token_and_fires_app_uninstalled(app, redis, shopify, receiver, run_jobs):
    other = make_connector(
        app, redis, {"shop": "anden-butik.myshopify.com", **sandbox.issue_token("anden-butik.myshopify.com")}
    )
    shopify.register_webhooks(receiver.url, SECRET)
    sandbox.uninstall(SHOP)
    run_jobs()
    assert receiver.topics() == ["app/uninstalled"]
    with pytest.raises(AuthenticationError):
        shopify.verify()
    assert other.verify()["domain"] == "anden-butik.myshopify.com"  # another shop's install is untouched


# --- orders ------------------------------------------------------------------------------------------------


def test_orders_page_by_cursor_oldest_change_first(app, redis, shopify, admin):
    created = [admin.create_order(note=f"Ordre {n}")["id"] for n in range(5)]
    small = make_connector(app, redis, {"shop": SHOP, **sandbox.issue_token()}, page_size=2)
    first = small.list_orders()
    assert len(first.items) == 2 and isinstance(first.next_page, str)
    orders = all_orders(small)
    ids = [o["id"] for o in orders]
    assert len(ids) == len(set(ids)) == 8  # three seeded orders and five new ones, each once
    assert set(created) <= set(ids)
    moments = [datetime.fromisoformat(o["updated_at"]) for o in orders]
    assert moments == sorted(moments)
    with pytest.raises(ValueError, match="cursor"):
        small.list_orders(page=2)


def test_modified_after_polls_only_changed_orders(app, shopify, admin):
    order = admin.create_order()
    time.sleep(1.1)  # Shopify's timestamps have whole seconds
    marker = datetime.now(UTC)
    assert all_orders(shopify, marker) == []
    admin.http.put(f"orders/{order['id']}.json", json={"order": {"note": "Ring før levering"}})
    changed = all_orders(shopify, marker)
    assert [(o["id"], o["note"]) for o in changed] == [(order["id"], "Ring før levering")]
    refund = admin.refund(
        order["id"], refund_line_items=[{"line_item_id": order["line_items"][0]["id"], "quantity": 1}]
    )
    assert [o["financial_status"] for o in all_orders(shopify, marker)] == ["paid"]  # no money moved
    assert shopify.list_refunds(str(order["id"]))[0]["id"] == refund["id"]


def test_get_order_not_found_and_old_orders_need_read_all_orders(app, redis, shopify, admin):
    with pytest.raises(NotFound) as missing:
        shopify.get_order("1")
    assert missing.value.message == "Shopify has no order 1"  # order(id:) answered null
    old = admin.create_order(processed_at=(datetime.now(UTC) - timedelta(days=90)).isoformat())
    with pytest.raises(NotFound):
        shopify.get_order(str(old["id"]))
    assert old["id"] not in [o["id"] for o in all_orders(shopify)]
    everything = make_connector(app, redis, {"shop": SHOP, **sandbox.issue_token(scope=ADMIN_SCOPES)})
    assert everything.get_order(str(old["id"]))["id"] == old["id"]


def test_find_order_by_its_number_or_id(shopify, admin):
    first, second = admin.create_order(), admin.create_order()
    assert shopify.find_order(str(second["order_number"]))["id"] == second["id"]
    assert shopify.find_order(second["name"])["id"] == second["id"]  # "#1002" as the shop shows it
    assert shopify.find_order(str(first["id"]))["id"] == first["id"]
    assert shopify.find_order("999999") is None


def test_transactions_and_capture_make_an_order_paid(shopify, admin):
    order = admin.create_order(financial_status="authorized")
    assert order["financial_status"] == "authorized"
    assert [t["kind"] for t in shopify.list_transactions(str(order["id"]))] == ["authorization"]
    captured = admin.http.post(
        f"orders/{order['id']}/transactions.json", json={"transaction": {"kind": "capture"}}
    )
    assert captured.status_code == 201 and captured.json()["transaction"]["amount"] == order["total_price"]
    assert shopify.get_order(str(order["id"]))["financial_status"] == "paid"
    assert [t["kind"] for t in shopify.list_transactions(str(order["id"]))] == ["authorization", "capture"]


# --- normalisation: the sandbox's documents through the engine ---------------------------------------------


def assert_normalises(order: dict):
    doc = normalise_order(order, ENGINE)
    assert doc.shop_totals.gross == Decimal(order["total_price"])
    assert doc.shop_totals.vat == Decimal(order["total_tax"])
    assert doc.line_totals() == doc.shop_totals  # lines and shipping explain the totals to the øre
    assert all(line.vat_rate == 25 for line in doc.lines if line.vat_total)
    # Danish 25 % VAT inside the gross prices: VAT is a fifth of the gross (rounded per line).
    assert abs(doc.shop_totals.vat - doc.shop_totals.gross / 5) <= Decimal("0.01") * len(doc.lines)
    return doc


def test_every_fetched_order_normalises_with_danish_vat(shopify, admin):
    admin.create_order(
        line_items=[
            {"variant_id": admin.variant("TS-ØKO_M")["id"], "quantity": 3},
            {"variant_id": admin.variant("BØNNER 1KG.ESP")["id"], "quantity": 1},
        ],
        discount_codes=[{"code": "SOMMER15", "amount": "15", "type": "percentage"}],
        shipping_lines=[{"title": "GLS", "price": "49.00"}],
    )
    admin.create_order(discount_codes=[{"code": "MINUS20", "amount": "20.00", "type": "fixed_amount"}])
    orders = all_orders(shopify)
    assert len(orders) == 5
    for order in orders:
        assert_normalises(order)
    b2b = next(o for o in orders if o["po_number"])
    doc = normalise_order(b2b, ENGINE)
    assert (doc.customer.type, doc.customer.vat_number, doc.customer.name) == (
        "b2b",
        "DK12345674",
        "Nordisk Kaffe ApS",
    )
    # 4 x 249.95 + 79.00 freight = 1078.80 incl. 25 % VAT (215.76)
    assert (doc.shop_totals.gross, doc.shop_totals.vat) == (Decimal("1078.80"), Decimal("215.76"))


def test_a_refund_normalises_to_what_the_shop_paid_back(shopify, admin):
    order = admin.create_order(
        line_items=[{"variant_id": admin.variant("TS-ØKO_S")["id"], "quantity": 2}],
        discount_codes=[{"code": "VELKOMMEN10", "amount": "10", "type": "percentage"}],
        shipping_lines=[{"title": "GLS", "price": "49.00"}],
    )
    line = order["line_items"][0]
    # One of two T-shirts back: 199.00 - 19.90 discount = 179.10 incl. 35.82 VAT.
    admin.refund(
        order["id"],
        note="Forkert størrelse",
        refund_line_items=[{"line_item_id": line["id"], "quantity": 1, "restock_type": "return"}],
        transactions=[{"kind": "refund", "amount": "179.10"}],
    )
    fetched = shopify.get_order(str(order["id"]))
    assert fetched["financial_status"] == "partially_refunded"
    assert fetched["current_total_price"] == "228.10"  # 407.20 - 179.10
    refund = shopify.list_refunds(str(order["id"]))[0]
    webhook_shaped = admin.http.get(f"orders/{order['id']}/refunds.json").json()["refunds"][0]
    for refund_document in (refund, webhook_shaped):  # the GraphQL refund and the REST/webhook one agree
        normalised = normalise_refund(fetched, refund_document, ENGINE)
        assert normalised.amount == Decimal("179.10") and normalised.unallocated == 0
        assert [(li.sku, li.quantity, li.net_total, li.vat_total) for li in normalised.lines] == [
            ("TS-ØKO_S", 1, Decimal("143.28"), Decimal("35.82"))
        ]
    assert_normalises(fetched)


def test_a_shipping_refund_normalises_with_its_tax(shopify, admin):
    order = admin.create_order(shipping_lines=[{"title": "GLS", "price": "49.00"}])
    admin.refund(
        order["id"], shipping={"full_refund": True}, transactions=[{"kind": "refund", "amount": "49.00"}]
    )
    fetched = shopify.get_order(str(order["id"]))
    normalised = normalise_refund(fetched, shopify.list_refunds(str(order["id"]))[0], ENGINE)
    assert [(li.kind, li.net_total, li.vat_total) for li in normalised.lines] == [
        ("freight", Decimal("39.20"), Decimal("9.80"))
    ]
    assert normalised.amount == Decimal("49.00") and normalised.unallocated == 0


def test_a_shipping_refund_from_refunds_json_normalises(shopify, admin):
    order = admin.create_order(shipping_lines=[{"title": "GLS", "price": "49.00"}])
    admin.refund(
        order["id"], shipping={"full_refund": True}, transactions=[{"kind": "refund", "amount": "49.00"}]
    )
    refund = shopify.list_refunds(str(order["id"]))[0]
    normalised = normalise_refund(shopify.get_order(str(order["id"])), refund, ENGINE)
    assert sum(li.gross_total for li in normalised.lines) == Decimal("49.00")


# --- webhooks -----------------------------------------------------------------------------------------------


def test_registering_webhooks_is_idempotent(shopify, db):
    url, other = "https://bogbro.example/hooks/shopify/1", "https://bogbro.example/hooks/shopify/2"
    first = shopify.register_webhooks(url, "ignored")
    second = shopify.register_webhooks(url, "ignored")
    assert [w.id for w in first] == [w.id for w in second]
    shopify.register_webhooks(other, "ignored")
    hooks = shopify.list_webhooks()
    assert sorted(w.topic for w in hooks if w.delivery_url == url) == sorted(SYSTEM.webhook_topics)
    assert all(w.raw["format"] == "JSON" for w in hooks)
    assert all(w.id.startswith("gid://shopify/WebhookSubscription/") for w in hooks)
    shopify.delete_webhooks(url)
    assert {w.delivery_url for w in shopify.list_webhooks()} == {other}
    variables = {"topic": "ORDERS_CREATE", "subscription": {"uri": other, "format": "JSON"}}
    taken = shopify.graphql(queries.WEBHOOK_CREATE, variables, write=True)["webhookSubscriptionCreate"]
    assert taken == {
        "webhookSubscription": None,
        "userErrors": [
            {
                "field": ["webhookSubscription", "callbackUrl"],
                "message": "Address for this topic has already been taken",
            }
        ],
    }


def test_orders_fire_signed_webhooks_that_verify(shopify, admin, receiver, run_jobs):
    shopify.register_webhooks(receiver.url, SECRET)
    order = admin.create_order()
    admin.http.post(f"orders/{order['id']}/close.json")
    admin.refund(
        order["id"], refund_line_items=[{"line_item_id": order["line_items"][0]["id"], "quantity": 1}]
    )
    assert receiver.calls == []  # delivered by the worker, not in the request
    run_jobs()
    assert sorted(receiver.topics()) == [
        "orders/create",
        "orders/updated",
        "orders/updated",
        "refunds/create",
    ]
    deliveries = [verify_webhook(headers, body, SECRET) for headers, body in receiver.calls]
    assert {d.resource_id for d in deliveries} == {str(order["id"])}
    assert len({d.delivery_id for d in deliveries}) == 4  # a new delivery id for every event
    headers, _ = receiver.calls[0]
    assert headers["X-Shopify-Shop-Domain"] == SHOP and headers["X-Shopify-Api-Version"] == API_VERSION
    assert headers["Content-Type"] == "application/json" and headers["X-Shopify-Event-Id"]
    assert datetime.fromisoformat(headers["X-Shopify-Triggered-At"]).tzinfo is not None
    created = next(body for headers, body in receiver.calls if headers["X-Shopify-Topic"] == "orders/create")
    assert_normalises(httpx.Response(200, content=created).json())


def test_a_tampered_body_or_a_wrong_secret_is_rejected(shopify, admin, receiver, run_jobs):
    shopify.register_webhooks(receiver.url, SECRET)
    admin.create_order()
    run_jobs()
    headers, body = receiver.calls[0]
    assert verify_webhook(headers, body, SECRET).topic == "orders/create"
    lower = {name.lower().removeprefix("x-"): value for name, value in headers.items()}
    assert verify_webhook(lower, body, SECRET).topic == "orders/create"  # names without X- work too
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(headers, body.replace(b'"total_price":"', b'"total_price":"1'), SECRET)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(headers, body, "shpss_somebody_else")
    with pytest.raises(WebhookRejected, match="not a Shopify webhook"):
        verify_webhook({k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}, body, SECRET)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook({**headers, "X-Shopify-Hmac-Sha256": "bm90IGEgc2lnbmF0dXJl"}, b"not json", SECRET)


def test_a_failed_delivery_is_retried_with_the_same_delivery_id(shopify, admin, run_jobs, quick_retries):
    receiver = Receiver(statuses=[500])
    try:
        shopify.register_webhooks(receiver.url, SECRET)
        order = admin.create_order()
        run_jobs()
        admin.http.put(f"orders/{order['id']}.json", json={"order": {"tags": "VIP"}})
        run_jobs()
    finally:
        receiver.server.shutdown()
    (first, retry, update) = receiver.calls
    assert first == retry  # the replay: the same delivery id, body and signature
    assert update[0]["X-Shopify-Webhook-Id"] != first[0]["X-Shopify-Webhook-Id"]  # a new event
    fresh()
    assert {d["status"] for d in sandbox.deliveries(SHOP)} == {"delivered"}


def test_a_subscription_is_removed_after_its_retries_fail(shopify, admin, run_jobs, quick_retries):
    receiver = Receiver(statuses=[500, 503, 500])
    try:
        shopify.register_webhooks(receiver.url, SECRET)
        admin.create_order()
        run_jobs()
    finally:
        receiver.server.shutdown()
    assert len(receiver.calls) == 3 and len({h["X-Shopify-Webhook-Id"] for h, _ in receiver.calls}) == 1
    assert "orders/create" not in {w.topic for w in shopify.list_webhooks()}
    fresh()
    failed = [d for d in sandbox.deliveries(SHOP) if d["status"] == "failed"]
    assert [a["outcome"] for a in failed[0]["attempts"]] == ["500", "503", "500"]


def test_in_process_delivery_addresses_use_the_app_itself(shopify, admin, run_jobs, app):
    app.config["SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS"] = ()
    try:
        shopify.register_webhooks(f"{IN_PROCESS_ORIGIN}/no-such-receiver", SECRET)
        admin.create_order()
        run_jobs()
    finally:
        app.config.pop("SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS")
    fresh()
    # Answered by this app's own 404 page, not by a network (there is no such host).
    assert [d["attempts"][0]["outcome"] for d in sandbox.deliveries(SHOP)] == ["404"]


# --- stock --------------------------------------------------------------------------------------------------


def test_stock_by_sku_for_a_simple_product_and_a_variant(shopify, admin):
    assert shopify.set_stock("KRUS-30CL/HYGGE", Decimal("17")) is True
    assert shopify.set_stock("TS-ØKO_L", Decimal("5.7")) is True  # whole units only
    assert shopify.set_stock("FINDES-IKKE", Decimal("1")) is False
    for sku, quantity in (("KRUS-30CL/HYGGE", 17), ("TS-ØKO_L", 5)):
        variant = admin.variant(sku)
        assert variant["inventory_quantity"] == quantity
        levels = admin.http.get(
            "inventory_levels.json", params={"inventory_item_ids": variant["inventory_item_id"]}
        ).json()["inventory_levels"]
        assert [level["available"] for level in levels] == [quantity]


def test_stock_at_several_locations_needs_a_chosen_location(app, redis, token, admin):
    item = admin.variant("BØNNER 1KG.ESP")["inventory_item_id"]
    locations = [loc["id"] for loc in admin.http.get("locations.json").json()["locations"]]
    admin.http.post(
        "inventory_levels/set.json",
        json={"location_id": locations[1], "inventory_item_id": item, "available": 3},
    )
    shopify = make_connector(app, redis, {"shop": SHOP, **token})
    assert shopify.set_stock("BØNNER 1KG.ESP", Decimal(9))  # the primary location is among them
    levels = admin.http.get("inventory_levels.json", params={"inventory_item_ids": item}).json()[
        "inventory_levels"
    ]
    assert sorted((lv["location_id"], lv["available"]) for lv in levels) == [
        (locations[0], 9),
        (locations[1], 3),
    ]
    chosen = make_connector(app, redis, {"shop": SHOP, **token}, location_id=str(locations[1]))
    assert chosen.set_stock("BØNNER 1KG.ESP", Decimal(4))
    assert admin.variant("BØNNER 1KG.ESP")["inventory_quantity"] == 13


# --- failures and limits ------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried(app, redis, token):
    sleeps = []
    shopify = make_connector(app, redis, {"shop": SHOP, **token}, sleeps=sleeps)
    set_faults("shopify", {"retry_after": 0, "next": ["429", "429"]})
    assert shopify.verify()["currency"] == "DKK"
    assert len(sleeps) == 2  # both refusals were waited out and retried


def test_500_on_a_read_is_retried(app, redis, token):
    sleeps = []
    shopify = make_connector(app, redis, {"shop": SHOP, **token}, sleeps=sleeps)
    set_faults("shopify", {"next": ["500"]})
    assert len(shopify.list_orders().items) == 3
    assert len(sleeps) == 1


def test_a_dropped_connection_on_a_read_is_retried_and_on_a_stock_write_repeated(shopify, admin):
    set_faults("shopify", {"next": ["drop"]})
    assert shopify.list_refunds(str(all_orders(shopify)[-1]["id"]))
    shopify.set_stock("TS-ØKO_M", Decimal(1))  # reads the SKUs first
    set_faults("shopify", {"next": ["drop"]})  # the SKU is known: the write itself is dropped
    assert shopify.set_stock("TS-ØKO_M", Decimal(8))
    assert admin.variant("TS-ØKO_M")["inventory_quantity"] == 8


def test_the_sandbox_leaky_bucket(app, token):
    app.config["SANDBOX_SHOPIFY_BUCKET"] = (3, 0.5)
    try:
        with httpx.Client(
            base_url=f"{SETTINGS['api_url']}/admin/api/{VERSION}",
            transport=SandboxTransport(app),
            headers={"X-Shopify-Access-Token": token["access_token"]},
        ) as http:
            answers = [http.get("shop.json") for _ in range(4)]
    finally:
        app.config.pop("SANDBOX_SHOPIFY_BUCKET")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Shopify-Shop-Api-Call-Limit"] for a in answers[:3]] == ["1/3", "2/3", "3/3"]
    assert answers[-1].json() == {"errors": sandbox.RATE_LIMITED}
    assert answers[-1].headers["Retry-After"] == "2.0"


def test_throttling_is_avoided_from_the_reported_bucket_and_waited_out_when_it_happens(app, redis, token):
    """Shopify reports its bucket on every answer (extensions.cost.throttleStatus): a connector waits before
    a query the bucket cannot pay for. Another worker spending from the same bucket gets THROTTLED (HTTP
    200) and waits the time the bucket needs to refill to the query's cost, then asks again."""
    app.config["SANDBOX_SHOPIFY_GRAPHQL_BUCKET"] = (4, 4.0)  # the shop query costs 2
    answers, waits = [], []

    def connector():
        shopify = make_connector(app, redis, {"shop": SHOP, **token})
        shopify.context.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))
        shopify.api.http.event_hooks["response"].append(lambda r: (r.read(), answers.append(r.json())))
        return shopify

    try:
        first = connector()
        assert [first.verify()["currency"] for _ in range(4)] == ["DKK"] * 4
        assert not [a for a in answers if a.get("errors")] and len(answers) == 4
        assert len(waits) >= 1 and all(w <= 0.6 for w in waits)  # paced: 2 points at 4/s
        answers.clear(), waits.clear()
        second = connector()  # knows nothing of the bucket yet
        first.verify()
        assert second.verify()["currency"] == "DKK"
    finally:
        app.config.pop("SANDBOX_SHOPIFY_GRAPHQL_BUCKET")
    throttled = [a for a in answers if a.get("errors")]
    assert len(throttled) == 1 and throttled[0]["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled[0]["extensions"]["cost"]["actualQueryCost"] is None
    assert 1.0 <= waits[-1] <= 2.0  # (2 - available) / 4 per second, at least a second
    assert sum(1 for a in answers if a.get("data")) == 2


def test_over_loopback(app, redis, token, live_server):
    shopify = make_connector(
        app, redis, {"shop": SHOP, **token}, transport=None, base_url=f"{live_server}/sandbox/shopify"
    )
    assert shopify.verify()["domain"] == SHOP
    assert len(all_orders(shopify)) == 3


# --- sandbox conventions ------------------------------------------------------------------------------------


def test_sandbox_list_conventions(app, token, admin):
    for n in range(3):
        admin.create_order(note=str(n))
    http = admin.http
    first = http.get("orders.json", params={"status": "any", "limit": 2, "fields": "id,name"})
    assert first.headers["X-Shopify-Api-Version"] == VERSION
    assert set(first.json()["orders"][0]) == {"id", "name"}
    link = first.headers["Link"]
    assert link.startswith("<http://sandbox.bogbro.internal/sandbox/shopify/admin/api/2026-07/orders.json?")
    assert link.endswith('>; rel="next"') and "page_info=" in link and "limit=2" in link
    second = http.get(
        urlsplit(link[1 : link.index(">")]).path.split("/admin/api/2026-07/")[1],
        params=parse_qs(urlsplit(link[1 : link.index(">")]).query),
    )
    assert 'rel="previous"' in second.headers["Link"] and 'rel="next"' in second.headers["Link"]
    cursor = parse_qs(urlsplit(link[1 : link.index(">")]).query)["page_info"][0]
    mixed = http.get("orders.json", params={"page_info": cursor, "status": "any"})
    assert mixed.status_code == 400
    assert mixed.json() == {"errors": {"status": "status cannot be passed when page_info is present"}}
    assert http.get("orders.json", params={"page_info": "garbage"}).status_code == 400
    assert len(http.get("orders.json", params={"limit": 999, "status": "any"}).json()["orders"]) == 6
    assert http.get("orders/count.json", params={"status": "any"}).json() == {"count": 6}
    assert http.get("orders.json", params={"status": "closed"}).json() == {"orders": []}
    missing = http.get("orders/1.json")
    assert missing.status_code == 404 and missing.json() == {"errors": "Not Found"}
    invalid = http.post("orders.json", json={"order": {"line_items": []}})
    assert invalid.status_code == 422 and "line_items" in invalid.json()["errors"]
    assert http.post("orders.json", json={"nothing": 1}).status_code == 400
    assert http.get("/sandbox/shopify/admin/api/1999-13/shop.json").status_code == 404
    read_only = httpx.Client(
        base_url=http.base_url,
        transport=SandboxTransport(app),
        headers={"X-Shopify-Access-Token": token["access_token"]},
    )
    forbidden = read_only.post(
        "orders.json", json={"order": {"line_items": [{"title": "X", "price": "1", "quantity": 1}]}}
    )
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "errors": "[API] This action requires merchant approval for write_orders scope."
    }


def test_seed_is_idempotent(db):
    sandbox.seed(SHOP)
    sandbox.seed(SHOP)
    store = sandbox.SandboxStore("shopify", SHOP)
    assert (store.count("products"), store.count("variants"), store.count("orders")) == (3, 5, 3)
    skus = {v["sku"] for v in store.all("variants")}
    assert {"KRUS-30CL/HYGGE", "TS-ØKO_S", "BØNNER 1KG.ESP"} <= skus


@pytest.mark.browser
def test_install_page_in_a_browser(page, live_server):
    """The sandbox install page works in a real browser under the strict CSP and comes back signed."""
    url = start_connect(sandbox_settings(live_server), f"{live_server}/sandbox/", "state-b")
    page.goto(url)
    assert "SANDKASSE" in page.content() and SHOP in page.content()
    page.get_by_role("button", name="Installér app").click()
    page.wait_for_url("**/sandbox/?code=*")
    params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert params["state"] == "state-b" and params["hmac"] == sandbox.sign_query(params, SECRET)
