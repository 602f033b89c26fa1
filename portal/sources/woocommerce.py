"""WooCommerce as a source: order webhooks signed with the link's own secret, refunds listed on the order by
id only (their lines are fetched), the order `status` as its state."""

from collections.abc import Mapping

from portal.connectors import woocommerce as client
from portal.connectors.base import N_
from portal.connectors.sources import WebhookDelivery
from portal.engine.documents import Refund, SalesDocument
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import woocommerce as documents
from portal.sources import Source


class WooCommerce(Source):
    key = "woocommerce"
    reference_prefix = documents.PREFIX
    states = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
    paid_states = ("processing", "completed")
    renewals = True  # WooCommerce Subscriptions' renewal orders, where the plugin is active

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
        return client.verify_webhook(headers, raw_body, secret)

    def is_sale(self, payload: object) -> bool:
        # A subscription's own document (subscription.* topics) has line items too, and a billing period.
        return super().is_sale(payload) and "billing_period" not in payload

    def ignored_reason(self, topic: str, payload: object) -> str:
        if topic.startswith("subscription.") or (isinstance(payload, dict) and "billing_period" in payload):
            return N_("A change to a subscription: stored, not transferred (its renewals arrive as orders).")
        return super().ignored_reason(topic, payload)

    def subscription_of(self, payload: dict) -> str | None:
        """WooCommerce Subscriptions marks a renewal order with meta _subscription_renewal (the subscription
        id) and created_via "subscription" (wcs-order-functions.php)."""
        for meta in payload.get("meta_data") or ():
            if isinstance(meta, dict) and meta.get("key") == "_subscription_renewal" and meta.get("value"):
                return str(meta["value"])
        return "" if payload.get("created_via") == "subscription" else None

    def refund_complete(self, refund: dict) -> bool:
        return False  # the order's `refunds` holds {id, reason, total} only: each is fetched with its lines

    def sale_state(self, payload: dict) -> str:
        return str(payload.get("status") or "")

    def sale_created(self, payload: dict) -> str | None:
        return payload.get("date_created_gmt") or payload.get("date_created")

    def sale_modified(self, payload: dict) -> str | None:
        return payload.get("date_modified_gmt") or payload.get("date_modified")

    def normalise(self, payload: dict, settings: SourceLinkSettings) -> SalesDocument:
        return documents.normalise_order(payload, settings)

    def normalise_refund(self, sale: dict, refund: dict, settings: SourceLinkSettings) -> Refund:
        return documents.normalise_refund(sale, refund, settings)


SOURCE = WooCommerce()
