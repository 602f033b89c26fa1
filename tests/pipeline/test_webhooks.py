"""The webhook endpoint with WooCommerce's real verification: signature on the raw body, replays, pings,
unknown tokens."""

import hashlib
import json

import pytest
from sqlalchemy import func, select

from portal.connectors.woocommerce import signature as sign
from portal.models import SourceEvent, Transfer
from tests.engine.factories import wc_order
from tests.pipeline.conftest import SECRET, make_setup, make_source_link, remote


@pytest.fixture
def source_link(db, account):
    return make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))


def deliver(client, source_link, body: bytes, delivery_id="7001", secret=SECRET, **headers):
    return client.post(
        f"/webhooks/woocommerce/{source_link.webhook_token}",
        data=body,
        content_type="application/json",
        headers={
            "X-WC-Webhook-Signature": sign(body, secret),
            "X-WC-Webhook-Delivery-ID": delivery_id,
            "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-Resource-ID": "5001",
            **headers,
        },
        csrf=False,
    )


def events(db):
    return db.session.scalar(select(func.count(SourceEvent.id)))


def test_a_signed_delivery_is_stored_raw_and_transferred(client, db, source_link, run_jobs):
    body = json.dumps(wc_order([("Krus", "KRUS-01", 1, "100.00", "25.00")], number="5001"), indent=1).encode()
    response = deliver(client, source_link, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    event = db.session.scalar(select(SourceEvent))
    assert event.raw_body.encode() == body  # byte for byte, as received
    assert (event.source, event.delivery_id, event.topic, event.resource_id) == (
        "webhook",
        f"7001:{hashlib.sha256(body).hexdigest()[:32]}",
        "order.updated",
        "5001",
    )
    run_jobs()
    assert db.session.scalar(select(Transfer)).status == "done"
    assert remote(source_link.setup).find_invoice("WC-12-5001").booked


def test_a_replayed_delivery_is_harmless(client, db, source_link, run_jobs):
    body = json.dumps(wc_order([("Krus", "KRUS-01", 1, "100.00", "25.00")], number="5001")).encode()
    assert deliver(client, source_link, body).get_json() == {"message": "stored"}
    assert deliver(client, source_link, body).get_json() == {"message": "already received"}
    run_jobs()
    assert events(db) == 1
    booked = remote(source_link.setup)._all("/invoices/booked", "references.other$eq:WC-12-5001")
    assert len(booked) == 1


def test_two_changes_sharing_woocommerces_delivery_id_are_both_kept(client, db, source_link, run_jobs):
    """WooCommerce derives the delivery id from the webhook id and the current second, so two changes of
    an order within a second share it: the body decides whether it is a replay."""
    first = {**wc_order([("Krus", "KRUS-01", 1, "100.00", "25.00")], number="5001"), "status": "on-hold"}
    second = {**first, "status": "processing"}
    assert deliver(client, source_link, json.dumps(first).encode()).get_json() == {"message": "stored"}
    assert deliver(client, source_link, json.dumps(second).encode()).get_json() == {"message": "stored"}
    assert deliver(client, source_link, json.dumps(second).encode()).get_json() == {
        "message": "already received"
    }
    run_jobs()
    assert events(db) == 2
    assert remote(source_link.setup).find_invoice("WC-12-5001").booked  # on-hold → draft, then booked


def test_a_wrong_signature_is_refused_and_nothing_is_stored(client, db, source_link):
    body = json.dumps(wc_order([("Krus", "KRUS-01", 1, "100.00", "25.00")])).encode()
    response = deliver(client, source_link, body, secret="not-the-secret")
    assert response.status_code == 401
    assert "signature" in response.get_json()["message"].lower()
    unsigned = client.post(
        f"/webhooks/woocommerce/{source_link.webhook_token}", data=body, content_type="application/json"
    )
    assert unsigned.status_code == 401
    assert events(db) == 0


def test_the_creation_ping_gets_200_and_is_not_stored(client, db, source_link):
    response = client.post(
        f"/webhooks/woocommerce/{source_link.webhook_token}",
        data=b"webhook_id=15",
        content_type="application/x-www-form-urlencoded",
        csrf=False,
    )
    assert response.status_code == 200
    assert events(db) == 0


def test_an_unknown_token_or_source_is_404(client, db, source_link):
    body = b"{}"
    assert client.post("/webhooks/woocommerce/nope", data=body, csrf=False).status_code == 404
    assert (
        client.post(f"/webhooks/shopify/{source_link.webhook_token}", data=body, csrf=False).status_code
        == 404
    )
