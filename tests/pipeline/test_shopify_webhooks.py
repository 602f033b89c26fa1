"""Shopify's deliveries at the webhook endpoint: signed with the app's secret, deduplicated on
X-Shopify-Event-Id (Shopify: "the same value across more than one webhook indicates a duplicate",
shopify.dev/docs/apps/build/webhooks/ignore-duplicates), and refused when X-Shopify-Shop-Domain is not the
source_link's shop (every shop's deliveries carry the same app signature)."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from portal.connectors.shopify import sandbox_settings
from portal.connectors.sources import hmac_base64
from portal.models import SourceEvent
from portal.sandbox.transport import IN_PROCESS_ORIGIN
from tests.engine.test_shopify import dk_order
from tests.pipeline.conftest import make_setup, make_source_link

SHOP = "bogbro-demo.myshopify.com"
SECRET = sandbox_settings(IN_PROCESS_ORIGIN)["client_secret"]


@pytest.fixture
def source_link(db, account):
    source_link = make_source_link(db, account, make_setup(account, "e-conomic"), states={"paid": "draft"})
    source_link.connection.system = "shopify"
    source_link.connection.credentials = {"shop": SHOP, "access_token": "shpua_test"}
    db.session.commit()
    return source_link


def deliver(client, source_link, body: bytes, *, event_id: str, shop: str = SHOP, secret: str = SECRET):
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": hmac_base64(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),  # one per delivery, even of the same event
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": "2026-11-20T09:15:00.000000Z",
    }
    return client.post(
        f"/webhooks/shopify/{source_link.webhook_token}",
        data=body,
        content_type="application/json",
        headers=headers,
        csrf=False,
    )


def events(db):
    return db.session.scalar(select(func.count(SourceEvent.id)))


def test_the_same_event_delivered_twice_is_stored_once(client, db, source_link):
    body = json.dumps(dk_order()["order"]).encode()
    event = str(uuid.uuid4())
    first = deliver(client, source_link, body, event_id=event)
    again = deliver(client, source_link, body, event_id=event)  # a second subscription, or a retry
    assert (first.status_code, first.get_json()["message"]) == (200, "stored")
    assert (again.status_code, again.get_json()["message"]) == (200, "already received")
    assert events(db) == 1
    assert db.session.scalar(select(SourceEvent.delivery_id)) == event
    other = deliver(client, source_link, body, event_id=str(uuid.uuid4()))  # a new event of the order
    assert other.get_json()["message"] == "stored" and events(db) == 2


def test_a_delivery_from_another_shop_is_refused_and_nothing_stored(client, db, source_link):
    body = json.dumps(dk_order()["order"]).encode()
    response = deliver(
        client, source_link, body, event_id=str(uuid.uuid4()), shop="someone-else.myshopify.com"
    )
    assert response.status_code == 403
    assert "someone-else.myshopify.com" in response.get_json()["message"]
    missing = deliver(client, source_link, body, event_id=str(uuid.uuid4()), shop="")
    assert missing.status_code == 401 and "X-Shopify-Shop-Domain" in missing.get_json()["message"]
    forged = deliver(client, source_link, body, event_id=str(uuid.uuid4()), secret="not-the-app-secret")
    assert forged.status_code == 401
    assert events(db) == 0
