"""Shopify as a source: webhooks signed with the app's client secret and naming their shop, refunds embedded
whole in the order, `financial_status` (or "cancelled") as its state."""

from collections.abc import Callable, Mapping

from portal.connectors import shopify as client
from portal.connectors.sources import WebhookDelivery
from portal.engine.documents import Refund, SalesDocument
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import shopify as documents
from portal.sources import Source


class Shopify(Source):
    key = "shopify"
    reference_prefix = documents.PREFIX
    states = ("pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded", "voided")
    paid_states = ("paid",)

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
        return client.verify_webhook(headers, raw_body, secret)

    def webhook_secret(self, link_secret: str, app_settings: Callable[[], Mapping]) -> str:
        # Shopify signs every delivery of the app with the app's client secret, whichever shop it is for.
        return app_settings().get("client_secret") or ""

    def webhook_account(self, credentials: Mapping) -> str | None:
        # X-Shopify-Shop-Domain: deliveries of every shop carry the same app signature.
        return (credentials.get("shop") or "").lower() or None

    def refund_complete(self, refund: dict) -> bool:
        return "refund_line_items" in refund or "transactions" in refund  # embedded whole in the order

    def sale_state(self, payload: dict) -> str:
        if payload.get("cancelled_at"):
            return "cancelled"
        return str(payload.get("financial_status") or "")

    def sale_created(self, payload: dict) -> str | None:
        return payload.get("created_at")

    def sale_modified(self, payload: dict) -> str | None:
        return payload.get("updated_at")

    def normalise(self, payload: dict, settings: SourceLinkSettings) -> SalesDocument:
        return documents.normalise_order(payload, settings)

    def normalise_refund(self, sale: dict, refund: dict, settings: SourceLinkSettings) -> Refund:
        return documents.normalise_refund(sale, refund, settings)


SOURCE = Shopify()
