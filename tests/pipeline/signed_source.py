"""A stand-in source module for the webhook endpoint's tests (the WooCommerce module is built elsewhere):
WooCommerce's scheme — base64 HMAC-SHA256 of the raw body in X-WC-Webhook-Signature, the delivery id in
X-WC-Webhook-Delivery-ID, and an unsigned `webhook_id=N` creation ping."""

import base64
import hashlib
import hmac

from portal.connectors.sources import WebhookDelivery, WebhookRejected


def sign(raw_body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_webhook(headers, raw_body: bytes, secret: str) -> WebhookDelivery:
    headers = {k.lower(): v for k, v in headers.items()}
    if raw_body.startswith(b"webhook_id=") and "x-wc-webhook-signature" not in headers:
        return WebhookDelivery(delivery_id="", topic="ping", resource_id=None, is_ping=True)
    given = headers.get("x-wc-webhook-signature", "")
    if not given or not hmac.compare_digest(given, sign(raw_body, secret)):
        raise WebhookRejected("the signature (X-WC-Webhook-Signature) does not match the shared secret")
    return WebhookDelivery(
        delivery_id=headers.get("x-wc-webhook-delivery-id", ""),
        topic=headers.get("x-wc-webhook-topic", ""),
        resource_id=headers.get("x-wc-webhook-resource-id"),
    )


# --- a stand-in source connector: the shop's orders and refunds, as the test puts them here -------------

CONFIG_PREFIX = "SIGNED_SOURCE_"
SHOP: dict = {"orders": {}, "refunds": {}}


def sandbox_settings(origin: str) -> dict:
    return {"api_url": f"{origin}/sandbox/woocommerce/wp-json/wc/v3"}


class CONNECTOR:
    def __init__(self, context):
        self.context = context

    def get_order(self, order_id: str) -> dict:
        return SHOP["orders"][str(order_id)]

    def list_refunds(self, order_id: str) -> list[dict]:
        return SHOP["refunds"].get(str(order_id), [])

    def list_orders(self, modified_after=None, page: int = 1):
        from portal.connectors.sources import Page

        SHOP.setdefault("polled_since", []).append(modified_after)
        orders = list(SHOP["orders"].values())
        size = 1  # one order per page: the poll must follow the pages
        chunk = orders[(page - 1) * size : page * size]
        return Page(items=chunk, total=len(orders), next_page=page + 1 if page * size < len(orders) else None)
