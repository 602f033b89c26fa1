"""The WooCommerce connector against Bogbro's WooCommerce sandbox, over real HTTP: in-process (WSGI) for the
operations and injected faults, over loopback for a real socket, and webhooks delivered by a real RQ worker
to a throwaway receiver on a free loopback port. Nothing of ours is mocked."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from portal.connectors import ConnectorContext, StaticCredentials, system_module
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFound,
)
from portal.connectors.sources import SourceConnector, SourceSystem, WebhookRejected
from portal.connectors.woocommerce import (
    CONFIG_PREFIX,
    CONNECTOR,
    SUBSCRIPTION_TOPICS,
    SYSTEM,
    finish_connect,
    sandbox_settings,
    signature,
    start_connect,
    verify_webhook,
)
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources.woocommerce import normalise_order, normalise_refund
from portal.sandbox import SANDBOXES
from portal.sandbox import woocommerce as sandbox
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
SITE = SETTINGS["api_url"]
DEMO = {"url": SITE, "consumer_key": SETTINGS["demo_consumer_key"], "consumer_secret": "cs_demo"}
ENGINE = SourceLinkSettings(shop_id="7")
SECRET = "bogbro-webhook-secret-æøå"


def make_connector(app, redis, credentials=None, *, sleeps=None, transport=None, **settings):
    sleeps = [] if sleeps is None else sleeps
    return CONNECTOR(
        ConnectorContext(
            base_url=SITE,
            credentials=StaticCredentials(dict(credentials or DEMO)),
            transport=transport or SandboxTransport(app),
            redis=redis,
            settings={**SETTINGS, **settings},
            sleep=sleeps.append,
            backoff=0.001,
        )
    )


@pytest.fixture
def wc(app, db, redis):
    sandbox.seed()
    connector = make_connector(app, redis)
    yield connector
    connector.close()


@pytest.fixture
def shop(app, db, redis):
    """The shop's own REST API, as the shop owner's scripts (or WooCommerce admin) would change it."""
    sandbox.seed()
    with httpx.Client(
        transport=SandboxTransport(app), base_url=SITE, auth=("ck_demo", "cs_demo"), timeout=10
    ) as client:
        yield client


def api(client, method, path, **kwargs) -> httpx.Response:
    return client.request(method, f"/wp-json/wc/v3{path}", **kwargs)


def create_order(client, **body) -> dict:
    body.setdefault(
        "billing", {"first_name": "Sofie", "last_name": "Lund", "email": "sofie@example.dk", "country": "DK"}
    )
    body.setdefault("payment_method", "quickpay")
    body.setdefault("line_items", [{"product_id": product(client, "KAFFE/ESP-500g")["id"], "quantity": 2}])
    body.setdefault(
        "shipping_lines", [{"method_id": "flat_rate", "method_title": "PostNord", "total": "39.20"}]
    )
    response = api(client, "POST", "/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def product(client, sku) -> dict:
    (found,) = api(client, "GET", "/products", params={"sku": sku}).json()
    return found


def faults(app, settings):
    """Through the sandbox's own fault endpoint, like any developer would."""
    with httpx.Client(transport=SandboxTransport(app), base_url=SITE) as client:
        method = "DELETE" if settings is None else "PUT"
        assert client.request(method, "/_faults", json=settings).status_code == 200


def without_subscriptions(app):
    """A shop without WooCommerce Subscriptions (the sandbox's switch): only the order topics are ours."""
    with httpx.Client(transport=SandboxTransport(app), base_url=SITE) as client:
        assert client.put("/_settings", json={"subscriptions_plugin": False}).status_code == 200


class Receiver:
    """A throwaway webhook endpoint on a free loopback port: records raw bodies and headers."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        receiver = Flask("receiver")

        @receiver.post("/hook")
        def hook():
            self.received.append((dict(request.headers), request.get_data()))
            return "", self.status

        self.server = make_server("127.0.0.1", 0, receiver, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self) -> list[tuple[dict, bytes]]:
        taken, self.received = self.received, []
        return taken

    def close(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def deliveries(received, secret=SECRET):
    return [(verify_webhook(headers, body, secret), headers, body) for headers, body in received]


# --- the system and connecting ---


def test_the_system_and_the_module():
    assert isinstance(SYSTEM, SourceSystem) and issubclass(CONNECTOR, SourceConnector)
    assert system_module("woocommerce").SYSTEM is SYSTEM
    assert SANDBOXES["woocommerce"] == "portal.sandbox.woocommerce"
    assert SYSTEM.connect == "api_key" and CONFIG_PREFIX == "WOOCOMMERCE_"
    assert SYSTEM.webhook_topics == ("order.created", "order.updated", "order.deleted")
    assert SETTINGS["api_url"] == f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce"
    assert (SETTINGS["demo_consumer_key"], SETTINGS["demo_consumer_secret"]) == ("ck_demo", "cs_demo")
    assert start_connect(SETTINGS, "http://localhost/cb", "state") is None


def test_finish_connect_checks_the_form_and_verifies_the_key(app, db, redis):
    transport = SandboxTransport(app)

    def connect(settings=SETTINGS, **params):
        return finish_connect(settings, params, "", transport=transport)

    with pytest.raises(ConfigurationError, match="https://"):
        connect({}, url="http://www.minbutik.dk", consumer_key="ck_1", consumer_secret="cs_1")
    with pytest.raises(ConfigurationError, match="address") as missing:
        connect({}, consumer_key="ck_1", consumer_secret="cs_1")
    assert missing.value.details == {"field": "url"}
    with pytest.raises(ConfigurationError, match="ck_"):
        connect(url=SITE, consumer_key="key", consumer_secret="cs_demo")
    with pytest.raises(ConfigurationError, match="cs_"):
        connect(url=SITE, consumer_key="ck_demo", consumer_secret="")
    with pytest.raises(ConfigurationError, match="did not accept") as wrong_secret:
        connect(url=SITE, consumer_key="ck_demo", consumer_secret="cs_wrong")
    assert wrong_secret.value.details["woocommerce"] == "Consumer secret is invalid."
    with pytest.raises(ConfigurationError, match="did not accept"):
        connect(url=SITE, consumer_key="ck_unknown", consumer_secret="cs_unknown")
    # the sandbox's own address needs no https; a pasted /wp-json/… suffix is dropped
    credentials = connect(url=f"{SITE}/wp-json/wc/v3/", consumer_key="ck_demo", consumer_secret="cs_demo")
    assert credentials == DEMO
    assert connect(consumer_key="ck_demo", consumer_secret="cs_demo") == DEMO  # the sandbox by default


def test_no_woocommerce_at_the_address(app, db, redis):
    with pytest.raises(ConfigurationError, match="No WooCommerce REST API"):
        finish_connect(
            {**SETTINGS, "api_url": f"{IN_PROCESS_ORIGIN}/sandbox/nothing-here"},
            {"consumer_key": "ck_demo", "consumer_secret": "cs_demo"},
            "",
            transport=SandboxTransport(app),
        )


def test_a_host_that_strips_the_authorization_header_gets_the_keys_in_the_query(app, db, redis, shop):
    assert shop.put("/_settings", json={"strips_authorization_header": True}).status_code == 200
    credentials = finish_connect(
        SETTINGS, {"consumer_key": "ck_demo", "consumer_secret": "cs_demo"}, "", SandboxTransport(app)
    )
    assert credentials == {**DEMO, "auth": "query"}
    connector = make_connector(app, redis, credentials)
    assert connector.list_orders().total == 2
    connector.close()
    with pytest.raises(AuthenticationError, match="cannot list"):
        make_connector(app, redis).list_orders()  # Basic auth alone reaches WooCommerce as nobody


def test_verify_gives_the_shops_basics(wc):
    assert wc.verify() == {
        "name": "sandbox.bogbro.internal",
        "url": SITE,
        "currency": "DKK",
        "wc_version": sandbox.WC_VERSION,
        "wp_version": sandbox.WP_VERSION,
    }


def test_errors_carry_woocommerces_own_message(app, db, redis, wc):
    with pytest.raises(NotFound, match="Invalid ID") as missing:
        wc.get_order("999999")
    assert missing.value.details["code"] == "woocommerce_rest_shop_order_invalid_id"
    wrong = make_connector(app, redis, {**DEMO, "consumer_secret": "cs_nope"})
    with pytest.raises(AuthenticationError, match="Consumer secret is invalid"):
        wrong.verify()
    read_only = make_connector(
        app, redis, {**DEMO, "consumer_key": "ck_demo_read", "consumer_secret": "cs_demo_read"}
    )
    assert read_only.list_webhooks() == []
    with pytest.raises(AuthenticationError, match="does not have write permissions"):
        read_only.register_webhooks("https://bogbro.example/hooks/wc/1", SECRET)


# --- orders and refunds ---


def test_orders_come_page_by_page(app, db, redis, shop):
    created = [create_order(shop)["id"] for _ in range(3)]
    wc = make_connector(app, redis, page_size=2)
    first = wc.list_orders()
    assert (first.total, first.next_page, len(first.items)) == (5, 2, 2)
    pages, page = [first], first.next_page
    while page is not None:
        pages.append(wc.list_orders(page=page))
        page = pages[-1].next_page
    assert [len(p.items) for p in pages] == [2, 2, 1]
    ids = [order["id"] for p in pages for order in p.items]
    assert len(set(ids)) == 5 and set(created) <= set(ids)
    modified = [order["date_modified_gmt"] for p in pages for order in p.items]
    assert modified == sorted(modified)  # least recently changed first
    assert wc.get_order(str(created[0]))["id"] == created[0]
    wc.close()


def test_find_order_by_the_number_the_customer_sees_or_the_id(wc, shop):
    renumbered = create_order(shop, number="2026-0042")  # a sequential-numbers plugin's own number
    plain = create_order(shop)
    assert wc.find_order("2026-0042")["id"] == renumbered["id"]
    assert wc.find_order(f"#{plain['number']}")["id"] == plain["id"]
    assert wc.find_order(str(renumbered["id"]))["id"] == renumbered["id"]  # by id as well
    assert wc.find_order("2026-004") is None  # a number is never matched by a part of it
    assert wc.find_order("999999") is None and wc.find_order(" ") is None


def test_polling_with_modified_after(wc, shop):
    mark = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
    before = create_order(shop, date_modified_gmt="2025-03-10T11:59:59")
    at_mark = create_order(shop, date_modified_gmt="2025-03-10T12:00:00")
    after = create_order(shop, date_modified_gmt="2025-03-10T12:00:01")
    found = [o["id"] for o in wc.list_orders(modified_after=mark).items]
    # the seeded orders are newer; at_mark comes again (one second of overlap), `before` does not
    assert found[:2] == [at_mark["id"], after["id"]] and before["id"] not in found
    newest = max(o["date_modified_gmt"] for o in wc.list_orders().items)
    assert (
        wc.list_orders(
            modified_after=datetime.fromisoformat(newest).replace(tzinfo=UTC) + timedelta(seconds=2)
        ).items
        == []
    )
    api(shop, "PUT", f"/orders/{before['id']}", json={"status": "completed"})
    since = datetime.now(UTC) - timedelta(seconds=1)
    changed = wc.list_orders(modified_after=since).items
    assert [o["id"] for o in changed] == [before["id"]] and changed[0]["status"] == "completed"


def test_an_order_with_a_refund_normalises_to_the_shops_totals(wc, shop):
    order = create_order(
        shop,
        status="processing",
        line_items=[
            {"product_id": product(shop, "KAFFE/ESP-500g")["id"], "quantity": 3},
            {"variation_id": product(shop, "TS-BØNNE.M")["id"], "quantity": 1},
            {"product_id": product(shop, "GAVEKORT#250")["id"], "quantity": 1},
        ],
        fee_lines=[{"name": "Gebyr for faktura", "total": "16.00"}],
    )
    # 3 × 129.95 incl. VAT = 389.85 → 311.88 + 77.97; 199.00 → 159.20 + 39.80; a gift card carries no VAT
    lines = {line["sku"]: (line["total"], line["total_tax"]) for line in order["line_items"]}
    assert lines == {
        "KAFFE/ESP-500g": ("311.88", "77.97"),
        "TS-BØNNE.M": ("159.20", "39.80"),
        "GAVEKORT#250": ("250.00", "0.00"),
    }
    assert (order["shipping_total"], order["shipping_tax"], order["total_tax"], order["total"]) == (
        "39.20",
        "9.80",
        "131.57",
        "907.85",
    )
    fetched = wc.get_order(str(order["id"]))
    document = normalise_order(fetched, ENGINE)
    assert document.shop_totals.gross == Decimal("907.85") and document.shop_totals.vat == Decimal("131.57")
    assert document.line_totals() == document.shop_totals
    rates = {line.sku or line.description: (line.vat_rate, line.vat_rate_exact) for line in document.lines}
    assert rates["KAFFE/ESP-500g"] == (Decimal(25), True) and rates["GAVEKORT#250"] == (Decimal(0), False)
    assert document.customer.type == "b2c" and document.prices_include_tax

    espresso = next(line for line in order["line_items"] if line["sku"] == "KAFFE/ESP-500g")
    refund_body = {
        "reason": "Én pose var knust",
        "line_items": [
            {
                "id": espresso["id"],
                "quantity": 1,
                "refund_total": "103.96",
                "refund_tax": [{"id": 1, "refund_total": "25.99"}],
            }
        ],
    }
    response = api(shop, "POST", f"/orders/{order['id']}/refunds", json=refund_body)
    assert response.status_code == 201, response.text
    (refund,) = wc.list_refunds(str(order["id"]))
    assert (refund["amount"], refund["line_items"][0]["quantity"], refund["line_items"][0]["total"]) == (
        "129.95",
        -1,
        "-103.96",
    )
    credited = normalise_refund(wc.get_order(str(order["id"])), refund, ENGINE)
    assert (credited.kind, credited.amount, credited.unallocated) == ("lines", Decimal("129.95"), 0)
    (line,) = credited.lines
    assert (line.sku, line.quantity, line.net_total, line.vat_total) == (
        "KAFFE/ESP-500g",
        1,
        Decimal("103.96"),
        Decimal("25.99"),
    )
    after = wc.get_order(str(order["id"]))
    assert after["refunds"] == [{"id": refund["id"], "reason": "Én pose var knust", "total": "-129.95"}]
    assert after["status"] == "processing"
    rest = api(shop, "POST", f"/orders/{order['id']}/refunds", json={"amount": "777.90"})
    assert rest.status_code == 201 and rest.json()["line_items"] == []  # an amount-only refund
    assert wc.get_order(str(order["id"]))["status"] == "refunded"
    assert len(wc.list_refunds(str(order["id"]))) == 2
    too_much = api(shop, "POST", f"/orders/{order['id']}/refunds", json={"amount": "0.01"})
    assert (too_much.status_code, too_much.json()["message"]) == (500, "Invalid refund amount.")


def test_every_seeded_and_created_order_normalises_exactly(wc, shop):
    create_order(
        shop,
        meta_data=[
            {"key": "is_vat_exempt", "value": "yes"},
            {"key": "_billing_vat_number", "value": "SE556677889901"},
        ],
    )
    orders = wc.list_orders().items
    assert len(orders) == 3
    for order in orders:
        document = normalise_order(order, ENGINE)
        assert document.shop_totals.gross == Decimal(order["total"]), order["id"]
        assert document.line_totals() == document.shop_totals, order["id"]
        for line in document.lines:
            if line.vat_total:
                assert line.vat_rate == Decimal(25) and line.vat_rate_exact
    parties = {normalise_order(o, ENGINE).customer.type for o in orders}
    assert parties == {"b2c", "b2b"}
    b2b = next(o for o in orders if o["billing"]["company"] == "Holm & Søn ApS")
    assert normalise_order(b2b, ENGINE).customer.vat_number == "DK12345674"
    exempt = next(o for o in orders if o["billing"]["first_name"] == "Sofie")
    assert exempt["total_tax"] == "0.00" and exempt["tax_lines"] == []


# --- webhooks ---


def test_registering_webhooks_is_idempotent(wc, shop):
    url = "https://bogbro.example/hooks/woocommerce/1"
    first = wc.register_webhooks(url, SECRET)
    topics = SYSTEM.webhook_topics + SUBSCRIPTION_TOPICS  # the sandbox shop runs WooCommerce Subscriptions
    assert [w.topic for w in first] == list(topics)
    assert all(w.status == "active" and w.delivery_url == url for w in first)
    # a duplicate made by hand and a subscription paused in WooCommerce's admin
    extra = api(
        shop, "POST", "/webhooks", json={"topic": "order.created", "delivery_url": url, "secret": "x"}
    )
    assert extra.status_code == 201
    api(shop, "PUT", f"/webhooks/{first[1].id}", json={"status": "paused"})
    other = api(
        shop, "POST", "/webhooks", json={"topic": "order.created", "delivery_url": "https://other.example/h"}
    )
    second = wc.register_webhooks(url, SECRET)
    assert [w.id for w in second] == [w.id for w in first]
    ours = [w for w in wc.list_webhooks() if w.delivery_url == url]
    assert sorted((w.topic, w.status) for w in ours) == sorted((t, "active") for t in topics)
    wc.delete_webhooks(url)
    assert [w.id for w in wc.list_webhooks()] == [str(other.json()["id"])]


def test_orders_fire_signed_webhooks(wc, shop, receiver, run_jobs):
    registered = wc.register_webhooks(receiver.url, SECRET)
    run_jobs()
    pings = deliveries(receiver.take())
    assert sorted(body for _, _, body in pings) == sorted(f"webhook_id={w.id}".encode() for w in registered)
    assert all(d.is_ping for d, _, _ in pings)

    order = create_order(shop, status="on-hold", payment_method="bacs")
    run_jobs()
    # WooCommerce saves a new order twice, so order.updated comes with order.created (woocommerce#43019)
    on_create = {d.topic: (d, h, b) for d, h, b in deliveries(receiver.take())}
    assert sorted(on_create) == ["order.created", "order.updated"]
    created, headers, body = on_create["order.created"]
    assert (created.topic, created.resource_id, created.is_ping) == ("order.created", str(order["id"]), False)
    assert headers["X-Wc-Webhook-Source"] == f"{SITE}/" and headers["X-Wc-Webhook-Resource"] == "order"
    assert headers["X-Wc-Webhook-Event"] == "created" and headers["X-Wc-Webhook-Id"] == registered[0].id
    assert (
        headers["User-Agent"].startswith("WooCommerce/") and "Hookshot (WordPress/" in headers["User-Agent"]
    )
    assert headers["Content-Type"] == "application/json"
    assert b"\\/wp-json\\/wc\\/v3\\/orders" in body  # serialised the way PHP's json_encode does it
    assert json.loads(body)["id"] == order["id"]

    api(shop, "PUT", f"/orders/{order['id']}", json={"status": "processing"})
    run_jobs()
    ((updated, _, body),) = deliveries(receiver.take())
    assert updated.topic == "order.updated" and json.loads(body)["status"] == "processing"
    assert updated.delivery_id != created.delivery_id

    refund = {"amount": "50.00", "api_refund": False, "reason": "Rabat"}
    assert api(shop, "POST", f"/orders/{order['id']}/refunds", json=refund).status_code == 201
    run_jobs()
    ((refunded, _, body),) = deliveries(receiver.take())
    assert refunded.topic == "order.updated"
    assert json.loads(body)["refunds"][0]["total"] == "-50.00"

    assert api(shop, "DELETE", f"/orders/{order['id']}").status_code == 200
    run_jobs()
    ((deleted, _, body),) = deliveries(receiver.take())
    assert deleted.topic == "order.deleted" and body == f'{{"id":{order["id"]}}}'.encode()


def test_tampered_bodies_and_wrong_secrets_are_rejected(wc, shop, receiver, run_jobs):
    wc.register_webhooks(receiver.url, SECRET)
    run_jobs()
    receiver.take()
    create_order(shop)
    run_jobs()
    headers, body = receiver.take()[0]
    assert verify_webhook(headers, body, SECRET).topic == "order.created"
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(headers, body.replace(b'"total":"', b'"total":"1'), SECRET)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_webhook(headers, body, "another-secret")
    with pytest.raises(WebhookRejected, match="no X-WC-Webhook-Signature"):
        verify_webhook({k: v for k, v in headers.items() if k != "X-Wc-Webhook-Signature"}, body, SECRET)
    with pytest.raises(WebhookRejected, match="not base64"):
        verify_webhook({**headers, "X-Wc-Webhook-Signature": "%%%"}, body, SECRET)
    with pytest.raises(WebhookRejected, match="no webhook secret"):
        verify_webhook(headers, body, "")
    # the documented test vector (sending-systems.md §1.6)
    assert (
        signature(b'{"id":727,"status":"processing"}', "test_secret")
        == "phx3PeK1IlWCKwcdUE2Xcf11tmnHsA9SC9c1S+NrH/o="
    )


def test_replays_carry_the_same_delivery_id_and_new_deliveries_a_new_one(wc, shop, receiver, run_jobs):
    wc.register_webhooks(receiver.url, SECRET)
    run_jobs()
    receiver.take()
    first, second = create_order(shop), create_order(shop)
    run_jobs()
    received = deliveries(receiver.take())
    assert sorted((d.topic, d.resource_id) for d, _, _ in received) == sorted(
        (topic, str(order["id"])) for topic in ("order.created", "order.updated") for order in (first, second)
    )
    assert len({d.delivery_id for d, _, _ in received}) == 4
    delivery, headers, body = received[0]
    shop_id = headers["X-Wc-Webhook-Delivery-Id"]  # ours adds the body's hash (verify_webhook)
    assert delivery.delivery_id.startswith(f"{shop_id}:")
    replay = shop.post(f"/_deliveries/{shop_id}/redeliver")
    assert replay.status_code == 202
    run_jobs()
    ((again, again_headers, again_body),) = deliveries(receiver.take())
    assert again.delivery_id == delivery.delivery_id and again_body == body
    assert again_headers["X-Wc-Webhook-Signature"] == headers["X-Wc-Webhook-Signature"]
    log = shop.get("/_deliveries").json()
    replayed = next(r for r in log if r["delivery_id"] == shop_id)
    assert [a["response_code"] for a in replayed["attempts"]] == [200, 200]


def test_changes_waiting_for_delivery_are_coalesced_into_the_latest_state(wc, shop, receiver, run_jobs):
    wc.register_webhooks(receiver.url, SECRET)
    run_jobs()
    receiver.take()
    order = create_order(shop, status="pending")
    run_jobs()
    receiver.take()
    api(shop, "PUT", f"/orders/{order['id']}", json={"status": "processing"})
    api(shop, "PUT", f"/orders/{order['id']}", json={"status": "completed"})
    run_jobs()
    ((delivery, _, body),) = deliveries(receiver.take())
    assert delivery.topic == "order.updated" and json.loads(body)["status"] == "completed"


def test_failing_deliveries_are_not_retried_and_disable_the_webhook(app, wc, shop, receiver, run_jobs):
    without_subscriptions(app)
    (created_hook, updated_hook, _) = wc.register_webhooks(receiver.url, SECRET)
    run_jobs()
    receiver.take()
    receiver.status = 500

    def statuses():
        return {w.topic: w.status for w in wc.list_webhooks()}

    for _ in range(6):
        create_order(shop)
        run_jobs()
    assert len(receiver.take()) == 12  # created + updated, one attempt each: WooCommerce does not retry
    assert statuses() == dict.fromkeys(SYSTEM.webhook_topics, "active")
    create_order(shop)
    run_jobs()
    assert len(receiver.take()) == 2  # the seventh consecutive failure disables each of them
    assert statuses() == {"order.created": "disabled", "order.updated": "disabled", "order.deleted": "active"}
    create_order(shop)
    run_jobs()
    assert receiver.take() == []
    receiver.status = 200
    again = wc.register_webhooks(receiver.url, SECRET)  # re-registering turns them on again
    assert [w.id for w in again[:2]] == [created_hook.id, updated_hook.id]
    run_jobs()
    create_order(shop)
    run_jobs()
    assert sorted(verify_webhook(h, b, SECRET).topic for h, b in receiver.take()) == [
        "order.created",
        "order.updated",
    ]
    assert statuses() == dict.fromkeys(SYSTEM.webhook_topics, "active")


# --- faults, loopback, rate limit ---


def test_429_is_retried_after_retry_after(app, db, redis, wc):
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    faults(app, {"retry_after": 2, "next": ["429"]})
    assert connector.list_orders().total == 2
    assert 2 in sleeps
    connector.close()


def test_500_and_a_dropped_connection_on_a_read_are_retried(app, db, redis, wc):
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    faults(app, {"next": ["500", "drop"]})
    assert connector.list_orders().total == 2
    assert len(sleeps) == 2  # the 500 and the dropped connection were each retried
    faults(app, None)
    connector.close()


def test_a_dropped_connection_on_a_write_is_ambiguous(app, db, redis, wc):
    without_subscriptions(app)
    wc.list_webhooks()  # the first request would take the fault otherwise
    faults(app, {"next": ["ok", "ok", "drop"]})  # the webhooks read, the subscriptions probe, then a create
    with pytest.raises(AmbiguousWriteError):
        wc.register_webhooks("https://bogbro.example/hooks/woocommerce/2", SECRET)
    faults(app, None)
    # the look-up decides: WooCommerce may or may not have made it; registering again converges
    hooks = wc.register_webhooks("https://bogbro.example/hooks/woocommerce/2", SECRET)
    assert len({w.topic for w in hooks}) == 3 == len(wc.list_webhooks())


def test_over_loopback_with_a_real_socket(app, db, redis, live_server):
    sandbox.seed()
    settings = sandbox_settings(live_server)
    credentials = finish_connect(settings, {"consumer_key": "ck_demo", "consumer_secret": "cs_demo"}, "")
    assert credentials["url"] == f"{live_server}/sandbox/woocommerce"
    connector = CONNECTOR(
        ConnectorContext(
            base_url=settings["api_url"],
            credentials=StaticCredentials(credentials),
            redis=redis,
            settings=settings,
            sleep=lambda s: None,
            backoff=0.001,
        )
    )
    assert connector.verify()["url"] == f"{live_server}/sandbox/woocommerce"
    faults(app, {"next": ["drop"]})  # the socket is really shut; the read is retried
    orders = connector.list_orders()
    assert orders.total == 2 and orders.items[0]["_links"]["self"][0]["href"].startswith(live_server)
    connector.close()


def test_requests_share_a_rate_limit_per_shop(app, db, redis, wc):
    waits = []

    def sleep(seconds):  # really waits: the bucket refills on Redis' clock
        waits.append(seconds)
        time.sleep(seconds)

    one, two = (make_connector(app, redis, requests_per_second=2) for _ in range(2))
    for connector in (one, two):
        connector.api.limiter.sleep = sleep
    for connector in (one, two, one):
        connector.list_webhooks()
    assert waits and 0 < sum(waits) <= 0.6
    one.close()
    two.close()


# --- stock ---


def test_stock_is_written_by_sku_for_products_and_variations(wc, shop):
    assert wc.set_stock("KRUS_HYGGE 2,5 dl", Decimal("7")) is True  # a comma and spaces in the SKU
    mug = product(shop, "KRUS_HYGGE 2,5 dl")
    assert (mug["manage_stock"], mug["stock_quantity"], mug["stock_status"]) == (True, 7, "instock")
    assert wc.set_stock("TS-BØNNE.M", Decimal("3.9")) is True  # a variation; whole units, rounded down
    variation = product(shop, "TS-BØNNE.M")
    assert (variation["type"], variation["stock_quantity"]) == ("variation", 3)
    parent = variation["parent_id"]
    by_variations = api(shop, "GET", f"/products/{parent}/variations/{variation['id']}").json()
    assert by_variations["stock_quantity"] == 3
    assert wc.set_stock("ts-bønne.s", Decimal("0")) is True  # WooCommerce matches SKUs case-insensitively
    assert product(shop, "TS-BØNNE.S")["stock_status"] == "outofstock"
    filtre = next(p for p in api(shop, "GET", "/products", params={"per_page": 100}).json() if p["sku"] == "")
    assert filtre["manage_stock"] is False
    assert wc.set_stock("GAVEKORT#250", Decimal("100")) is True  # '#' survives the query string
    assert product(shop, "GAVEKORT#250")["stock_quantity"] == 100
    assert wc.set_stock("FINDES-IKKE", Decimal("1")) is False
    assert wc.set_stock("", Decimal("1")) is False


# --- configuration and the sandbox shop itself ---


def test_configuration_reaches_the_connector(app, db):
    from portal.setups.connections import system_settings

    assert system_settings("woocommerce", sandbox=False) == {
        "api_url": "",  # each shop's own address is stored with its connection
        "requests_per_second": 5.0,
        "timeout_seconds": 30.0,
        "public_addresses_only": False,  # PRODUCTION: internal addresses refused (SSRF)
    }
    assert system_settings("woocommerce", sandbox=True) == SETTINGS


def test_the_demo_shop_is_seeded_once(app, db, redis, shop):
    sandbox.seed()
    sandbox.seed()
    products = api(shop, "GET", "/products", params={"per_page": 100})
    assert products.headers["X-WP-Total"] == "5"
    assert api(shop, "GET", "/customers").headers["X-WP-Total"] == "2"
    assert api(shop, "GET", "/orders").headers["X-WP-Total"] == "2"
    variable = next(p for p in products.json() if p["type"] == "variable")
    assert (
        len(api(shop, "GET", f"/products/{variable['id']}/variations").json())
        == len(variable["variations"])
        == 3
    )


def test_plain_permalinks_and_the_public_indexes(app, db, redis, shop):
    plain = shop.get("/", params={"rest_route": "/wc/v3/orders"})
    assert plain.status_code == 200 and len(plain.json()) == 2
    with httpx.Client(transport=SandboxTransport(app), base_url=SITE) as anonymous:
        site = anonymous.get("/wp-json/").json()
        assert site["name"] == "Kaffekompagniet" and "wc/v3" in site["namespaces"]
        assert "/wc/v3/orders" in anonymous.get("/wp-json/wc/v3").json()["routes"]
        refused = anonymous.get("/wp-json/wc/v3/orders/1")
        assert (refused.status_code, refused.json()["code"]) == (401, "woocommerce_rest_cannot_view")


def test_a_shop_with_prices_excluding_vat(app, db, redis, shop):
    assert shop.put("/_settings", json={"prices_include_tax": False}).json()["prices_include_tax"] is False
    order = create_order(
        shop, line_items=[{"product_id": product(shop, "KAFFE/ESP-500g")["id"], "quantity": 2}]
    )
    (line,) = order["line_items"]
    assert (line["total"], line["total_tax"], order["total"], order["prices_include_tax"]) == (
        "259.90",
        "64.98",
        "373.88",
        False,
    )
    document = normalise_order(order, ENGINE)
    assert document.line_totals() == document.shop_totals and not document.prices_include_tax
