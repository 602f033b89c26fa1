"""The WooCommerce sandbox against WooCommerce's published REST API v3 examples.

The reference shape of each resource is learnt from the vendor's JSON examples in
../shared/specs/woocommerce/ (rest-v3/ and subscriptions-v3/): every field the sandbox answers must occur in
them with the same JSON type, and every field of the rest-v3 retrieve/list examples must be present. A
sandbox that adds, drops or retypes a field fails. Where the examples are empty or null (a list that is
always [], a stock quantity that is always null) the shape comes from WooCommerce's REST schema, each with
its source below. Webhook bodies are checked the same way (they are the REST documents), and so is every
request body the connector sends.
"""

import json
import re
from copy import deepcopy
from datetime import UTC, datetime

import httpx
import pytest

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.woocommerce import CONNECTOR, sandbox_settings
from portal.sandbox import woocommerce as sandbox
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import SPECS

WOO = SPECS / "woocommerce"
REST = WOO / "rest-v3"
SUBSCRIPTIONS = WOO / "subscriptions-v3"
SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
SITE = SETTINGS["api_url"]
ANY = "any"  # meta_data values are "mixed" in the schema

if not REST.is_dir():
    pytest.skip(
        f"WooCommerce's published examples are not at {REST} (../shared/specs): contract not checked",
        allow_module_level=True,
    )


# --- learning shapes from examples ---------------------------------------------------------------------


def kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", dict: "object", list: "array"}[type(value)]


def new_node() -> dict:
    return {"types": set(), "fields": {}, "required": None, "items": None}


def learn(node: dict, value, strict: bool) -> None:
    """Merge one example into the shape. Only strict examples (the rest-v3 resource examples) decide which
    fields are required; the others widen what is allowed."""
    node["types"].add(kind(value))
    if isinstance(value, dict):
        if strict:
            keys = set(value)
            node["required"] = keys if node["required"] is None else node["required"] & keys
        for key, item in value.items():
            learn(node["fields"].setdefault(key, new_node()), item, strict)
    elif isinstance(value, list):
        for item in value:
            if node["items"] is None:
                node["items"] = new_node()
            learn(node["items"], item, strict)


def check(node: dict, value, path: str, problems: list[str]) -> None:
    if path.endswith(".value") and ".meta_data[]" in path:
        return  # "mixed"
    found = kind(value)
    allowed = node["types"]
    if found == "float" and "int" in allowed and path.endswith(".price"):
        found = "int"  # "price" is a JSON number (3 in the example, 79.96 in ours)
    if found not in allowed:
        problems.append(f"{path}: {found}, the examples have {sorted(allowed)}")
        return
    if isinstance(value, dict):
        for key in value:
            if key not in node["fields"]:
                problems.append(f"{path}.{key}: not in WooCommerce's examples")
        for key in sorted((node["required"] or set()) - set(value)):
            problems.append(f"{path}.{key}: missing (every example has it)")
        for key, item in value.items():
            if key in node["fields"]:
                check(node["fields"][key], item, f"{path}.{key}", problems)
    elif isinstance(value, list) and value:
        if node["items"] is None:
            problems.append(f"{path}: the examples never fill this list, so its items cannot be checked")
            return
        for item in value:
            check(node["items"], item, f"{path}[]", problems)


def example(name: str, folder=REST):
    return json.loads((folder / f"{name}.json").read_text())


def shape(strict: list, loose: list = ()) -> dict:
    node = new_node()
    for document in strict:
        learn(node, document, True)
    for document in loose:
        learn(node, document, False)
    return node


def _reason_not_refund(order: dict) -> dict:
    """Erratum: the list example writes refunds[] as {"id", "refund", "total"}; WooCommerce writes
    {"id", "reason", "total"} (class-wc-rest-orders-v2-controller.php, get_formatted_item_data, and the
    `refunds` item schema with `reason`)."""
    order = deepcopy(order)
    order["refunds"] = [
        {("reason" if k == "refund" else k): v for k, v in r.items()} for r in order["refunds"]
    ]
    return order


def _subscription_orders() -> list[dict]:
    orders = example("wcs_subscription-orders-retrieve-subscription-orders-response", SUBSCRIPTIONS)
    return [{k: v for k, v in o.items() if k != "order_type"} for o in orders]  # order_type: that route only


def _taxes_item() -> dict:
    return example("orders-retrieve-an-order-response")["line_items"][0]["taxes"][0]


def _meta_item() -> dict:
    return example("orders-retrieve-an-order-response")["meta_data"][0]


def schema_order() -> dict:
    """What the order examples leave empty, from the order item schema (class-wc-rest-orders-v2-
    controller.php get_item_schema): fee_lines, coupon_lines, shipping taxes, and the conditional
    _links customer/up (prepare_links)."""
    taxes, meta = _taxes_item(), _meta_item()
    return {
        "shipping_lines": [{"taxes": [taxes], "meta_data": [meta]}],
        "fee_lines": [
            {
                "id": 1,
                "name": "",
                "tax_class": "",
                "tax_status": "taxable",
                "total": "",
                "total_tax": "",
                "taxes": [taxes],
                "meta_data": [meta],
            }
        ],
        "coupon_lines": [{"id": 1, "code": "", "discount": "", "discount_tax": "", "meta_data": [meta]}],
        "_links": {"customer": [{"href": ""}], "up": [{"href": ""}]},
    }


def order_shape() -> dict:
    strict = [
        example("orders-retrieve-an-order-response"),
        example("orders-create-an-order-response"),
        example("orders-update-an-order-response"),
        *map(_reason_not_refund, example("orders-list-all-orders-response")),
    ]
    return shape(strict, [*_subscription_orders(), schema_order()])


def refund_shape() -> dict:
    # refund line taxes are [] in the examples: the same taxes item as an order line's (same item class)
    strict = [
        example("order-refunds-retrieve-a-refund-response"),
        *example("order-refunds-list-all-refunds-response"),
    ]
    return shape(strict, [{"line_items": [{"taxes": [_taxes_item()]}]}])


def product_shape() -> dict:
    """stock_quantity is null and variations [] in every example; the product schema types them integer
    (class-wc-rest-products-v2-controller.php). A product with a parent links `up` (prepare_links)."""
    strict = [
        example("products-retrieve-a-product-response"),
        *example("products-list-all-products-response"),
    ]
    return shape(strict, [{"stock_quantity": 7, "variations": [1], "_links": {"up": [{"href": ""}]}}])


def variation_shape() -> dict:
    strict = [
        example("product-variations-retrieve-a-product-variation-response"),
        *example("product-variations-list-all-product-variations-response"),
    ]
    return shape(strict, [{"stock_quantity": 7}])


def customer_shape() -> dict:
    return shape(
        [example("customers-retrieve-a-customer-response"), *example("customers-list-all-customers-response")]
    )


def webhook_shape() -> dict:
    return shape(
        [example("webhooks-retrieve-a-webhook-response"), *example("webhooks-list-all-webhooks-response")]
    )


ERROR_SHAPE = shape(
    # WordPress' WP_Error as JSON (WooCommerce REST API docs, "Errors"); rest_invalid_param adds data.params
    [{"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.", "data": {"status": 404}}],
    [{"data": {"params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}}}],
)


def problems_of(node: dict, document, name: str) -> list[str]:
    problems: list[str] = []
    if isinstance(document, dict) and document.get("type") == "variation":
        # The products controller shows a variation's attributes as the variations controller does.
        document = dict(document)
        attributes = document.pop("attributes")
        node = deepcopy(node)
        del node["fields"]["attributes"]
        node["required"] = (node["required"] or set()) - {"attributes"}
        check(variation_shape()["fields"]["attributes"], attributes, f"{name}.attributes", problems)
    check(node, document, name, problems)
    return problems


def assert_matches(node: dict, document, name: str) -> None:
    problems = problems_of(node, document, name)
    assert not problems, "\n".join(problems)


# --- the comparison itself catches drift ---------------------------------------------------------------


def test_the_comparison_catches_added_missing_and_retyped_fields():
    node = order_shape()
    order = example("orders-retrieve-an-order-response")
    assert problems_of(node, order, "order") == []
    drifted = deepcopy(order)
    drifted["total"] = 29.35
    drifted["bogbro"] = 1
    del drifted["order_key"]
    drifted["line_items"][0]["quantity"] = "2"
    assert sorted(problems_of(node, drifted, "order")) == [
        "order.bogbro: not in WooCommerce's examples",
        "order.line_items[].quantity: str, the examples have ['int']",
        "order.order_key: missing (every example has it)",
        "order.total: float, the examples have ['str']",
    ]


# --- the sandbox's documents -----------------------------------------------------------------------------


@pytest.fixture
def shop(app, db, redis):
    sandbox.seed()
    with httpx.Client(
        transport=SandboxTransport(app), base_url=f"{SITE}/wp-json/wc/v3", auth=("ck_demo", "cs_demo")
    ) as client:
        yield client


def ids(shop, sku) -> dict:
    (found,) = shop.get("/products", params={"sku": sku}).json()
    return found


def full_order(shop) -> dict:
    body = {
        "status": "processing",
        "customer_id": 2,
        "billing": {
            "first_name": "Anna",
            "last_name": "Jensen",
            "email": "anna.jensen@example.dk",
            "country": "DK",
        },
        "shipping": {"first_name": "Anna", "last_name": "Jensen", "country": "DK"},
        "payment_method": "quickpay",
        "payment_method_title": "Betalingskort",
        "meta_data": [{"key": "_billing_vat_number", "value": "DK12345674"}],
        "line_items": [
            {
                "product_id": ids(shop, "KAFFE/ESP-500g")["id"],
                "quantity": 2,
                "subtotal": "207.92",
                "total": "187.13",
            },
            {
                "variation_id": ids(shop, "TS-BØNNE.L")["id"],
                "quantity": 1,
                "meta_data": [{"key": "Størrelse", "value": "L"}],
            },
        ],
        "shipping_lines": [{"method_id": "flat_rate", "method_title": "PostNord", "total": "39.20"}],
        "fee_lines": [{"name": "Gebyr", "total": "16.00"}],
        "coupon_lines": [{"code": "sommer10", "discount": "20.79", "discount_tax": "5.20"}],
    }
    response = shop.post("/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_orders_match_the_examples(shop):
    node = order_shape()
    created = full_order(shop)
    assert_matches(node, created, "POST /orders")
    refund = {
        "line_items": [
            {
                "id": created["line_items"][0]["id"],
                "quantity": 1,
                "refund_total": "93.57",
                "refund_tax": [{"id": 1, "refund_total": "23.39"}],
            }
        ]
    }
    assert shop.post(f"/orders/{created['id']}/refunds", json=refund).status_code == 201
    updated = shop.put(f"/orders/{created['id']}", json={"status": "completed"})
    assert_matches(node, updated.json(), "PUT /orders/{id}")
    listed = shop.get("/orders", params={"per_page": 100})
    assert listed.headers["X-WP-Total"] == "3" and listed.headers["X-WP-TotalPages"] == "1"
    for order in listed.json():
        assert_matches(node, order, f"GET /orders ({order['id']})")
    assert any(order["refunds"] for order in listed.json())
    assert_matches(node, shop.get(f"/orders/{created['id']}").json(), "GET /orders/{id}")
    assert_matches(node, shop.delete(f"/orders/{created['id']}").json(), "DELETE /orders/{id}")


def test_refunds_match_the_examples(shop):
    node = refund_shape()
    order = full_order(shop)
    line = order["line_items"][1]
    with_line = shop.post(
        f"/orders/{order['id']}/refunds",
        json={
            "reason": "Forkert størrelse",
            "line_items": [
                {
                    "id": line["id"],
                    "quantity": 1,
                    "refund_total": line["total"],
                    "refund_tax": [{"id": 1, "refund_total": line["total_tax"]}],
                }
            ],
        },
    )
    assert with_line.status_code == 201
    amount_only = shop.post(f"/orders/{order['id']}/refunds", json={"amount": "10.00", "api_refund": False})
    for response in (with_line, amount_only):
        assert_matches(node, response.json(), "POST /orders/{id}/refunds")
    for refund in shop.get(f"/orders/{order['id']}/refunds").json():
        assert_matches(node, refund, "GET /orders/{id}/refunds")
        assert_matches(
            node, shop.get(f"/orders/{order['id']}/refunds/{refund['id']}").json(), "GET …/refunds/{id}"
        )


def test_products_and_variations_match_the_examples(shop):
    products, variations = product_shape(), variation_shape()
    listed = shop.get("/products", params={"per_page": 100}).json()
    assert {p["type"] for p in listed} == {"simple", "variable"}
    for product in listed:
        assert_matches(products, product, f"GET /products ({product['sku']})")
        for variation in shop.get(f"/products/{product['id']}/variations").json():
            assert_matches(variations, variation, f"GET /products/{{id}}/variations ({variation['sku']})")
    variation = ids(shop, "TS-BØNNE.S")  # found through the products controller
    assert_matches(products, variation, "GET /products?sku= (a variation)")
    assert_matches(products, shop.get(f"/products/{variation['id']}").json(), "GET /products/{variation id}")
    stock = {"manage_stock": True, "stock_quantity": 4}
    assert_matches(
        products, shop.put(f"/products/{listed[0]['id']}", json=stock).json(), "PUT /products/{id}"
    )
    path = f"/products/{variation['parent_id']}/variations/{variation['id']}"
    assert_matches(variations, shop.put(path, json=stock).json(), "PUT /products/{id}/variations/{id}")


def test_customers_match_the_examples(shop):
    node = customer_shape()
    for customer in shop.get("/customers").json():
        assert_matches(node, customer, "GET /customers")
        assert_matches(node, shop.get(f"/customers/{customer['id']}").json(), "GET /customers/{id}")


def test_payment_gateways_match_the_examples(shop):
    node = shape([*example("payment-gateways-list-all-payment-gateways-response")])
    gateways = shop.get("/payment_gateways").json()
    assert [g["id"] for g in gateways if g["enabled"]] == ["bacs", "quickpay", "stripe", "mobilepay"]
    for gateway in gateways:
        assert_matches(node, gateway, "GET /payment_gateways")


def test_webhooks_match_the_examples(shop):
    node = webhook_shape()
    created = shop.post(
        "/webhooks",
        json={
            "name": "Bogbro",
            "topic": "order.updated",
            "delivery_url": "https://bogbro.example/h",
            "secret": "s",
        },
    )
    assert created.status_code == 201
    assert_matches(node, created.json(), "POST /webhooks")
    updated = shop.put(f"/webhooks/{created.json()['id']}", json={"status": "paused"})
    assert_matches(node, updated.json(), "PUT /webhooks/{id}")
    for webhook in shop.get("/webhooks").json():
        assert_matches(node, webhook, "GET /webhooks")
    assert_matches(
        node, shop.delete(f"/webhooks/{created.json()['id']}", params={"force": "true"}).json(), "DELETE"
    )


def test_webhook_bodies_are_the_rest_documents(app, shop, run_jobs):
    for topic in ("order.created", "order.updated", "order.deleted", "product.updated"):
        # a delivery URL nobody answers: the body is built, signed and logged all the same
        shop.post(
            "/webhooks", json={"topic": topic, "delivery_url": "http://127.0.0.1:9/hook", "secret": "s"}
        )
    order = full_order(shop)
    shop.put(f"/orders/{order['id']}", json={"status": "completed"})
    shop.delete(f"/orders/{order['id']}")
    shop.put(f"/products/{ids(shop, 'TS-BØNNE.M')['id']}", json={"manage_stock": True, "stock_quantity": 2})
    run_jobs()
    with httpx.Client(transport=SandboxTransport(app), base_url=SITE) as client:
        log = client.get("/_deliveries").json()
    bodies = {record["topic"]: json.loads(record["body"]) for record in log if record["kind"] == "event"}
    assert set(bodies) == {"order.created", "order.updated", "order.deleted", "product.updated"}
    assert_matches(order_shape(), bodies["order.created"], "webhook order.created")
    assert_matches(order_shape(), bodies["order.updated"], "webhook order.updated")
    assert bodies["order.deleted"] == {"id": order["id"]}  # WC_Webhook::build_payload for deleted
    assert_matches(product_shape(), bodies["product.updated"], "webhook product.updated")
    pings = [r for r in log if r["kind"] == "ping"]
    assert len(pings) == 4 and all(re.fullmatch(r"webhook_id=\d+", r["body"]) for r in pings)


def test_errors_are_wordpress_errors(app, shop):
    answers = [
        shop.get("/orders/999999"),
        shop.get("/orders", params={"per_page": 101}),
        shop.get("/nowhere"),
        shop.post("/webhooks", json={"topic": "order.nonsense", "delivery_url": "https://x.example"}),
        shop.delete("/webhooks/1"),
        shop.get("/orders", auth=("ck_demo", "cs_wrong")),
    ]
    with httpx.Client(transport=SandboxTransport(app), base_url=f"{SITE}/wp-json/wc/v3") as nobody:
        answers.append(nobody.get("/orders"))
    expected = [
        (404, "woocommerce_rest_shop_order_invalid_id"),
        (400, "rest_invalid_param"),
        (404, "rest_no_route"),
        (400, "woocommerce_rest_shop_webhook_invalid_topic"),
        (501, "woocommerce_rest_trash_not_supported"),
        (401, "woocommerce_rest_authentication_error"),
        (401, "woocommerce_rest_cannot_view"),
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == expected
    for response in answers:
        assert_matches(ERROR_SHAPE, response.json(), f"error {response.json()['code']}")
        assert response.json()["data"]["status"] == response.status_code


# --- what the connector sends -----------------------------------------------------------------------------

# Request fields WooCommerce accepts but never shows (write-only in the REST schema).
WRITE_ONLY = {"webhooks": {"secret"}}
# Query parameters the connector may send per route (WC_REST_CRUD_Controller::get_collection_params and the
# orders/products/webhooks controllers; `_fields` and the consumer key fallback are WordPress/WooCommerce).
QUERY = {
    "orders": {"status", "orderby", "order", "modified_after", "dates_are_gmt", "per_page", "page"},
    "refunds": {"per_page", "page"},
    "products": {"sku", "per_page", "page"},
    "variations": set(),
    "webhooks": {"per_page", "page", "force"},
    "system_status": {"_fields"},
    "subscriptions": {"per_page"},  # has_subscriptions: whether WooCommerce Subscriptions' route answers
}


class Recording(SandboxTransport):
    def __init__(self, app):
        super().__init__(app)
        self.requests: list[httpx.Request] = []

    def handle_request(self, request):
        self.requests.append(request)
        return super().handle_request(request)


def route_of(path: str) -> str:
    parts = [p for p in path.split("/wc/v3/", 1)[1].split("/") if p and not p.isdigit()]
    return parts[-1]


def test_what_the_connector_sends_is_what_woocommerce_documents(app, db, redis):
    sandbox.seed()
    transport = Recording(app)
    credentials = {"url": SITE, "consumer_key": "ck_demo", "consumer_secret": "cs_demo"}
    connector = CONNECTOR(
        ConnectorContext(
            base_url=SITE, credentials=StaticCredentials(credentials), transport=transport, settings=SETTINGS
        )
    )
    connector.verify()
    orders = connector.list_orders().items
    connector.list_orders(modified_after=datetime.now(UTC))
    connector.get_order(str(orders[0]["id"]))
    connector.list_refunds(str(orders[0]["id"]))
    connector.register_webhooks("https://bogbro.example/hooks/woocommerce/9", "secret")
    connector.register_webhooks("https://bogbro.example/hooks/woocommerce/9", "secret")
    connector.set_stock("KAFFE/ESP-500g", 3)
    connector.set_stock("TS-BØNNE.L", 3)
    connector.delete_webhooks("https://bogbro.example/hooks/woocommerce/9")
    connector.close()
    shapes = {"webhooks": webhook_shape(), "products": product_shape(), "variations": variation_shape()}
    seen = set()
    for sent in transport.requests:
        route = route_of(sent.url.path)
        seen.add((sent.method, route))
        assert set(sent.url.params) <= QUERY[route], f"{sent.method} {sent.url}"
        assert sent.headers["Authorization"].startswith("Basic ")
        if sent.content:
            body = json.loads(sent.content)
            node = shapes[route]
            extra = set(body) - set(node["fields"]) - WRITE_ONLY.get(route, set())
            assert not extra, f"{sent.method} {route}: {extra} are not WooCommerce fields"
            problems: list[str] = []
            for key, value in body.items():
                if key in node["fields"]:
                    check(node["fields"][key], value, f"{sent.method} {route}.{key}", problems)
            assert not problems, problems
    assert seen == {
        ("GET", "system_status"),
        ("GET", "orders"),
        ("GET", "refunds"),
        ("GET", "webhooks"),
        ("POST", "webhooks"),
        ("PUT", "webhooks"),
        ("DELETE", "webhooks"),
        ("GET", "products"),
        ("PUT", "products"),
        ("PUT", "variations"),
        ("GET", "subscriptions"),
    }
