"""WooCommerce Subscriptions in the WooCommerce sandbox, over real HTTP (httpx through the in-process
transport), webhooks delivered by a real RQ worker to a throwaway loopback receiver. The shapes are checked
against the plugin's published examples (../shared/specs/woocommerce/subscriptions-v3/)."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from portal.models import Transfer
from portal.sandbox import woocommerce as sandbox
from portal.sandbox import woocommerce_subscriptions as subscriptions
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import SPECS
from tests.connectors.test_woocommerce import Receiver
from tests.contracts import test_woocommerce_contract as contract
from tests.pipeline.conftest import make_setup, remote
from tests.shops.test_shops import connect_woocommerce, link

SITE = f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce"
SECRET = "abonnement-hemmelighed-æøå"
EXAMPLES = SPECS / "woocommerce" / "subscriptions-v3"


@pytest.fixture
def shop(app, db, redis):
    sandbox.seed()
    with httpx.Client(
        transport=SandboxTransport(app), base_url=SITE, auth=("ck_demo", "cs_demo"), timeout=10
    ) as client:
        yield client


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def api(client, method, path, **kwargs) -> httpx.Response:
    return client.request(method, f"/wp-json/wc/v3{path}", **kwargs)


def example(name):
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def signed(headers: dict, body: bytes) -> bool:
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["X-Wc-Webhook-Signature"])


def subscribe(shop, receiver, run_jobs, *topics):
    for topic in topics:
        body = {"topic": topic, "delivery_url": receiver.url, "secret": SECRET}
        assert api(shop, "POST", "/webhooks", json=body).status_code == 201
    run_jobs()
    receiver.take()  # the creation pings


def the_subscription(shop) -> dict:
    (subscription,) = api(shop, "GET", "/subscriptions").json()
    return subscription


@pytest.mark.parametrize(
    ("start", "period", "interval", "expected"),
    [
        ("2026-12-07T10:00:00", "month", 1, "2027-01-07T10:00:00"),
        ("2027-01-31T10:00:00", "month", 1, "2027-02-28T10:00:00"),
        ("2028-01-31T10:00:00", "month", 1, "2028-02-29T10:00:00"),
        ("2026-11-30T10:00:00", "month", 3, "2027-02-28T10:00:00"),
        ("2026-12-07T10:00:00", "week", 2, "2026-12-21T10:00:00"),
        ("2026-12-07T10:00:00", "year", 1, "2027-12-07T10:00:00"),
    ],
)
def test_the_next_payment_is_one_period_on(start, period, interval, expected):
    moment = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert subscriptions.add_period(moment, period, interval).strftime("%Y-%m-%dT%H:%M:%S") == expected


def test_a_subscription_has_the_plugins_fields(shop):
    subscription = the_subscription(shop)
    published = example("wcs_subscriptions-retrieve-a-subscription-response")
    assert set(subscription) == set(published)
    assert subscription["status"] == "active" and subscription["billing_period"] == "month"
    assert subscription["billing_interval"] == "1" and subscription["next_payment_date_gmt"]
    assert subscription["total"] == "178.95" and subscription["currency"] == "DKK"  # 129,95 + 39,20 + 25 %
    assert api(shop, "GET", f"/subscriptions/{subscription['id']}").json() == subscription
    # Subscriptions are not orders: the order list is what it was.
    assert all(o["id"] != subscription["id"] for o in api(shop, "GET", "/orders").json())


# The shop's own order rules leave these out (docs/connectors/woocommerce.md, guess 6); the 2021
# subscription examples have them.
KNOWN = (
    "subscription.line_items[].parent_name: missing (every example has it)",
    "subscription.shipping_lines[].instance_id: missing (every example has it)",
)


def test_subscriptions_and_their_orders_match_the_examples(shop):
    names = ("retrieve-a-subscription", "create-a-subscription", "update-a-subscription")
    strict = [example(f"wcs_subscriptions-{name}-response") for name in names]
    strict += example("wcs_subscriptions-list-all-subscriptions-response")
    node = contract.shape(strict, [contract.schema_order()])
    subscription = the_subscription(shop)
    problems = []
    contract.check(node, subscription, "subscription", problems)
    assert [problem for problem in problems if problem not in KNOWN] == []

    renewal = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={}).json()
    (related,) = api(shop, "GET", f"/subscriptions/{subscription['id']}/orders").json()
    assert related.pop("order_type") == "renewal_order"  # the one field only this route adds
    orders = contract.order_shape()
    contract.assert_matches(orders, renewal, "the renewal order")
    contract.assert_matches(orders, related, "GET /subscriptions/{id}/orders")


def test_create_list_and_bad_input(shop):
    customer = next(c for c in api(shop, "GET", "/customers").json() if c["billing"]["company"])  # Holm & Søn
    body = {
        "customer_id": customer["id"],
        "status": "active",
        "billing_period": "week",
        "billing_interval": 2,
        "payment_method": "quickpay",
        "line_items": [{"product_id": api(shop, "GET", "/products").json()[0]["id"], "quantity": 1}],
    }
    created = api(shop, "POST", "/subscriptions", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["billing_interval"] == "2" and created.json()["created_via"] == "rest-api"
    assert set(created.json()) == set(example("wcs_subscriptions-create-a-subscription-response"))
    listed = api(shop, "GET", "/subscriptions", params={"per_page": 1})
    assert listed.headers["X-WP-Total"] == "2" and len(listed.json()) == 1
    active = api(shop, "GET", "/subscriptions", params={"status": "active", "customer": customer["id"]})
    assert [s["id"] for s in active.json()] == [created.json()["id"]]

    before = api(shop, "GET", "/subscriptions").headers["X-WP-Total"]
    bad_input = (
        {"billing_period": "fortnight"}, {"status": "paused"}, {"customer_id": 0}, {"customer_id": "anna"},
        {"billing_interval": 7}, {"start_date": "i morgen"},
    )  # fmt: skip
    for bad in bad_input:
        refused = api(shop, "POST", "/subscriptions", json={**body, **bad})
        assert refused.status_code == 400 and refused.json()["code"].startswith(
            ("rest_", "woocommerce_rest_")
        )
    assert api(shop, "GET", "/subscriptions").headers["X-WP-Total"] == before
    assert api(shop, "GET", "/subscriptions/999999").status_code == 404
    with httpx.Client(transport=shop._transport, base_url=SITE) as anonymous:
        assert anonymous.get("/wp-json/wc/v3/subscriptions").status_code == 401


def test_a_renewal_order_is_linked_and_fires_signed_webhooks(shop, receiver, run_jobs):
    subscribe(shop, receiver, run_jobs, "order.created", "order.updated", "subscription.updated")
    subscription = the_subscription(shop)

    renewed = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={"paid": True})
    assert renewed.status_code == 201, renewed.text
    order = renewed.json()
    assert order["created_via"] == "subscription" and order["status"] == "processing" and order["date_paid"]
    assert {"key": "_subscription_renewal", "value": str(subscription["id"])} in [
        {"key": m["key"], "value": m["value"]} for m in order["meta_data"]
    ]
    assert order["total"] == subscription["total"] and order["id"] != subscription["id"]
    assert [i["id"] for i in order["line_items"]] != [i["id"] for i in subscription["line_items"]]
    assert api(shop, "GET", f"/orders/{order['id']}").json() == order  # an ordinary order

    related = api(shop, "GET", f"/subscriptions/{subscription['id']}/orders").json()
    assert [(o["id"], o["order_type"]) for o in related] == [(order["id"], "renewal_order")]
    published = example("wcs_subscription-orders-retrieve-subscription-orders-response")[1]
    assert set(related[0]) - {"refunds"} == set(published)  # refunds: every order has it here

    run_jobs()
    received = {headers["X-Wc-Webhook-Topic"]: (headers, body) for headers, body in receiver.take()}
    assert sorted(received) == ["order.created", "order.updated", "subscription.updated"]
    for headers, body in received.values():
        assert signed(headers, body)
        assert not signed(headers, body + b" ")
    created = json.loads(received["order.created"][1])
    assert created["id"] == order["id"] and created["created_via"] == "subscription"
    updated = json.loads(received["subscription.updated"][1])
    assert updated["id"] == subscription["id"] and updated["last_payment_date_gmt"]
    due = datetime.fromisoformat(subscription["next_payment_date_gmt"]).replace(tzinfo=UTC)
    assert updated["next_payment_date_gmt"] == subscriptions.add_period(due, "month", 1).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    assert received["subscription.updated"][0]["X-Wc-Webhook-Resource"] == "subscription"


def test_a_failed_renewal_puts_the_subscription_on_hold(shop, receiver, run_jobs):
    subscribe(shop, receiver, run_jobs, "subscription.updated")
    subscription = the_subscription(shop)
    failed = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={"paid": False}).json()
    assert failed["status"] == "failed" and failed["date_paid"] is None
    after = api(shop, "GET", f"/subscriptions/{subscription['id']}").json()
    assert (
        after["status"] == "on-hold"
        and after["next_payment_date_gmt"] == subscription["next_payment_date_gmt"]
    )
    run_jobs()
    ((headers, body),) = receiver.take()
    assert signed(headers, body) and json.loads(body)["status"] == "on-hold"
    again = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={})
    assert again.status_code == 400  # only an active subscription renews


def test_subscription_topics_cancel_and_delete(shop, receiver, run_jobs):
    subscribe(
        shop, receiver, run_jobs, "subscription.created", "subscription.updated", "subscription.deleted"
    )
    assert api(
        shop, "POST", "/webhooks", json={"topic": "subscription.switched", "delivery_url": receiver.url}
    )
    subscription = the_subscription(shop)
    cancelled = api(shop, "PUT", f"/subscriptions/{subscription['id']}", json={"status": "cancelled"}).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_date_gmt"]
    assert api(shop, "DELETE", f"/subscriptions/{subscription['id']}").status_code == 200
    run_jobs()
    topics = [(h["X-Wc-Webhook-Topic"], b) for h, b in receiver.take() if h.get("X-Wc-Webhook-Topic")]
    assert [t for t, _ in topics] == ["subscription.updated", "subscription.deleted"]
    assert topics[1][1] == f'{{"id":{subscription["id"]}}}'.encode()


def test_a_switch_makes_a_switch_order_and_fires_subscription_switched(shop, receiver, run_jobs):
    subscribe(shop, receiver, run_jobs, "subscription.switched", "order.created")
    subscription = the_subscription(shop)
    mug = api(shop, "GET", "/products", params={"sku": "KRUS_HYGGE 2,5 dl"}).json()[0]
    lines = [{"product_id": mug["id"], "quantity": 2}]
    switched = shop.post(f"/_subscriptions/{subscription['id']}/switch", json={"line_items": lines})
    assert switched.status_code == 201, switched.text
    order = switched.json()
    assert order["status"] == "processing" and order["created_via"] == "checkout"
    assert {"key": "_subscription_switch", "value": str(subscription["id"])} in [
        {"key": m["key"], "value": m["value"]} for m in order["meta_data"]
    ]
    after = api(shop, "GET", f"/subscriptions/{subscription['id']}").json()
    assert [(i["product_id"], i["quantity"]) for i in after["line_items"]] == [(mug["id"], 2)]
    assert after["total"] == "227.00"  # 2 × 89,00 + shipping 39,20 + 25 %
    related = api(shop, "GET", f"/subscriptions/{subscription['id']}/orders").json()
    assert [(o["id"], o["order_type"]) for o in related] == [(order["id"], "switch_order")]
    run_jobs()
    topics = sorted(h["X-Wc-Webhook-Topic"] for h, _ in receiver.take())
    assert topics == ["order.created", "subscription.switched"]
    assert shop.post(f"/_subscriptions/{subscription['id']}/switch", json={}).status_code == 400


def test_a_renewal_order_becomes_a_transfer_like_any_order(app, owner_client, db, account, shop, run_jobs):
    """Today's pipeline already takes a renewal order as the ordinary order it is (the subscription-aware
    handling is issue 16's pipeline part)."""
    setup = make_setup(account, "e-conomic")
    source_link = link(owner_client, db, connect_woocommerce(owner_client, db), setup)
    assert owner_client.post(f"/shops/source_links/{source_link.id}/activate").status_code == 302
    run_jobs()  # the creation pings
    subscription = the_subscription(shop)
    order = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={"paid": True}).json()
    for _ in range(5):  # delivery → event → transfer
        run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer is not None and transfer.status == "done", transfer and transfer.error_message
    assert transfer.order_number == order["number"]
    assert remote(setup).find_invoice(transfer.reference) is not None
