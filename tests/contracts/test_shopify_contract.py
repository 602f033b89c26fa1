"""The Shopify sandbox against Shopify's published sample documents (Admin REST API 2026-07).

The samples in ../shared/specs/shopify/rest-admin-2026-07 are Shopify's own documentation objects (from the
official Ruby library's tests). Every document the sandbox answers with, and every webhook payload it
delivers, must have the same shape: the same keys at every level (a key that only some samples of a list
have is optional) and the same JSON types (a null on either side says nothing about the type). A sandbox
that adds, drops or retypes a field fails here.
"""

import json
from functools import cache

import pytest

from portal.connectors.shopify import verify_webhook
from portal.sandbox.transport import IN_PROCESS_ORIGIN
from tests.conftest import SPECS
from tests.connectors.test_shopify import SECRET, Admin, Receiver, make_connector

SAMPLES = SPECS / "shopify" / "rest-admin-2026-07"


@pytest.fixture(scope="module")
def specs():
    if not SAMPLES.is_dir():
        pytest.skip(f"Shopify's sample documents are not at {SAMPLES} (the shared/specs folder)")
    return SAMPLES


@cache
def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def samples(*refs: str) -> list:
    """Sample documents by "file:key" ("order--orders:orders[]" takes every element of the list)."""
    found = []
    for ref in refs:
        name, _, key = ref.partition(":")
        value = sample(name)[key.removesuffix("[]")]
        found.extend(value if key.endswith("[]") else [value])
    return found


# --- the shape comparison -----------------------------------------------------------------------------------


def kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def differences(actual, expected: list, path: str = "$") -> list[str]:
    """Where `actual` differs in shape from the sample values `expected` (all found at the same place)."""
    known = [value for value in expected if value is not None]
    if actual is None or not known:
        return []
    kinds = {kind(value) for value in known}
    if kind(actual) not in kinds:
        return [f"{path}: {kind(actual)}, the samples have {sorted(kinds)}"]
    if isinstance(actual, dict):
        objects = [value for value in known if isinstance(value, dict)]
        required = set.intersection(*(set(o) for o in objects))
        allowed = set.union(*(set(o) for o in objects))
        problems = [f"{path}.{key}: missing" for key in sorted(required - set(actual))]
        problems += [f"{path}.{key}: not in the samples" for key in sorted(set(actual) - allowed)]
        for key in sorted(set(actual) & allowed):
            problems += differences(actual[key], [o[key] for o in objects if key in o], f"{path}.{key}")
        return problems
    if isinstance(actual, list):
        elements = [item for value in known if isinstance(value, list) for item in value]
        if not elements:
            return []
        return [problem for item in actual for problem in differences(item, elements, f"{path}[]")]
    return []


def assert_shape(actual, *refs: str):
    problems = differences(actual, samples(*refs))
    assert not problems, "\n".join(problems[:40])


ORDER = (
    "order--order:order",
    "order--orders:orders[]",
    "order--notice_order:order",
    "customer--orders:orders[]",
)
REFUND = ("refund--refund:refund", "refund--refunds:refunds[]")
TRANSACTION = ("transaction--transactions:transactions[]", "transaction--transaction:transaction")
PRODUCT = ("product--product:product", "product--products:products[]")
WEBHOOK = ("webhook--webhook:webhook", "webhook--webhooks:webhooks[]")


def test_the_comparison_catches_drift(specs):
    order = sample("order--order")["order"]
    assert differences(order, samples(*ORDER)) == []
    assert differences({**order, "vat": "1.00"}, samples(*ORDER)) == ["$.vat: not in the samples"]
    del_key = {k: v for k, v in order.items() if k != "total_price"}
    assert differences(del_key, samples(*ORDER)) == ["$.total_price: missing"]
    retyped = {**order, "line_items": [{**order["line_items"][0], "price": 199.0}]}
    assert differences(retyped, samples(*ORDER)) == [
        "$.line_items[].price: number, the samples have ['string']"
    ]


# --- the sandbox's answers ----------------------------------------------------------------------------------


@pytest.fixture
def admin(app, db):
    admin = Admin(app)
    yield admin
    admin.http.close()


def rich_order(admin):
    """An order with every part filled: variants, a discount code, shipping, a customer, a refund of a line
    and of the shipping, and money moved back."""
    order = admin.create_order(
        line_items=[
            {
                "variant_id": admin.variant("TS-ØKO_M")["id"],
                "quantity": 2,
                "properties": [{"name": "Tryk", "value": "Bo"}],
            },
            {"title": "Gaveindpakning", "price": "25.00", "quantity": 1, "requires_shipping": False},
        ],
        discount_codes=[{"code": "VELKOMMEN10", "amount": "10", "type": "percentage"}],
        shipping_lines=[{"title": "GLS Pakkeshop", "code": "GLS", "price": "49.00"}],
        customer={"id": admin.customer_id("jens.hansen@example.dk")},
        note_attributes=[{"name": "gave", "value": "ja"}],
        transactions=[{"kind": "sale", "status": "success", "gateway": "shopify_payments"}],
    )
    refund = admin.refund(
        order["id"],
        note="Retur",
        refund_line_items=[
            {"line_item_id": order["line_items"][0]["id"], "quantity": 1, "restock_type": "return"}
        ],
        shipping={"full_refund": True},
        transactions=[{"kind": "refund", "amount": "228.10"}],
    )
    return order, refund


def test_orders_refunds_and_transactions_match_the_samples(specs, admin):
    order, refund = rich_order(admin)
    http = admin.http
    assert_shape(order, *ORDER)  # the POST answer
    for listed in http.get("orders.json", params={"status": "any"}).json()["orders"]:
        assert_shape(listed, *ORDER)
    single = http.get(f"orders/{order['id']}.json").json()["order"]
    assert single["refunds"] and single["refunds"][0]["order_adjustments"]
    assert_shape(single, *ORDER)
    assert_shape(refund, *REFUND)
    for listed in http.get(f"orders/{order['id']}/refunds.json").json()["refunds"]:
        assert_shape(listed, *REFUND)
    assert_shape(http.get(f"orders/{order['id']}/refunds/{refund['id']}.json").json()["refund"], *REFUND)
    transactions = http.get(f"orders/{order['id']}/transactions.json").json()["transactions"]
    assert [t["kind"] for t in transactions] == ["sale", "refund"]
    for transaction in transactions:
        assert_shape(transaction, *TRANSACTION)
    authorized = admin.create_order(financial_status="authorized")
    captured = http.post(
        f"orders/{authorized['id']}/transactions.json", json={"transaction": {"kind": "capture"}}
    )
    assert_shape(captured.json()["transaction"], *TRANSACTION)


def test_products_inventory_locations_and_webhooks_match_the_samples(specs, admin):
    http = admin.http
    products = http.get("products.json").json()["products"]
    for product in products:
        assert_shape(product, *PRODUCT)
    assert_shape(http.get(f"products/{products[1]['id']}.json").json()["product"], *PRODUCT)
    variant = products[1]["variants"][0]
    assert_shape(
        http.get(f"variants/{variant['id']}.json").json()["variant"],
        "variant--variant:variant",
        "variant--variants:variants[]",
    )
    levels = http.get(
        "inventory_levels.json", params={"inventory_item_ids": variant["inventory_item_id"]}
    ).json()
    for level in levels["inventory_levels"]:
        assert_shape(level, "inventory_level--inventory_levels:inventory_levels[]")
    locations = http.get("locations.json").json()["locations"]
    for location in locations:
        assert_shape(location, "location--location:location", "location--locations:locations[]")
    body = {
        "location_id": locations[0]["id"],
        "inventory_item_id": variant["inventory_item_id"],
        "available": 7,
    }
    assert_shape(
        http.post("inventory_levels/set.json", json=body).json()["inventory_level"],
        "inventory_level--inventory_level:inventory_level",
    )
    created = http.post(
        "webhooks.json", json={"webhook": {"topic": "orders/create", "address": "https://bogbro.example/h"}}
    )
    assert created.status_code == 201
    assert_shape(created.json()["webhook"], *WEBHOOK)
    for webhook in http.get("webhooks.json").json()["webhooks"]:
        assert_shape(webhook, *WEBHOOK)


def test_webhook_payloads_match_the_samples(specs, app, redis, admin, run_jobs):
    from portal.sandbox import shopify as sandbox

    receiver = Receiver()
    try:
        shopify = make_connector(app, redis, {"shop": sandbox.DEMO_SHOP, **sandbox.issue_token()})
        shopify.register_webhooks(receiver.url, SECRET)
        rich_order(admin)
        run_jobs()
    finally:
        receiver.server.shutdown()
    payloads = {}
    for headers, body in receiver.calls:
        verify_webhook(headers, body, SECRET)
        payloads.setdefault(headers["X-Shopify-Topic"], []).append(json.loads(body))
    assert sorted(payloads) == ["orders/create", "orders/updated", "refunds/create"]
    for order in payloads["orders/create"] + payloads["orders/updated"]:
        assert_shape(order, *ORDER)  # the order itself, without the {"order": …} envelope
    for refund in payloads["refunds/create"]:
        assert_shape(refund, *REFUND)
    assert IN_PROCESS_ORIGIN not in receiver.url
