"""Frisbii as a source: webhooks signed in the body with the account's one secret, naming the invoice by
handle only (the invoice is fetched before anything is decided), the invoice's `state` as its state, credit
notes embedded whole in the invoice."""

from collections.abc import Mapping

from portal.connectors import frisbii as client
from portal.connectors.base import N_
from portal.connectors.sources import WebhookDelivery
from portal.engine.documents import Refund, SalesDocument
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import frisbii as documents
from portal.sources import Source

# The events about an invoice that may be transferred (or skipped with its state): the invoice is fetched.
INVOICE_EVENTS = (
    "invoice_settled",
    "invoice_authorized",
    "invoice_failed",
    "invoice_cancelled",
    "invoice_refund",
    "invoice_credited",
)


class Frisbii(Source):
    key = "frisbii"
    reference_prefix = documents.PREFIX
    states = ("settled", "authorized", "pending", "dunning", "failed", "cancelled", "created")
    paid_states = ("settled",)
    # the paying transaction's payment_type: money received when the invoice is settled
    paid_methods = ("card", "mobilepay", "mobilepay_subscriptions", "vipps_recurring")
    renewals = True  # the first invoice of a subscription and each renewal (period_number > 1)
    invoices = True

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
        return client.verify_webhook(headers, raw_body, secret)

    def to_fetch(self, topic: str, payload: object) -> str | None:
        if topic in INVOICE_EVENTS and isinstance(payload, dict) and payload.get("invoice"):
            return str(payload["invoice"])
        return None

    def is_sale(self, payload: object) -> bool:
        return isinstance(payload, dict) and bool(payload.get("id")) and "order_lines" in payload

    def ignored_reason(self, topic: str, payload: object) -> str:
        if topic.startswith("subscription_"):
            return N_("A change to a subscription (created, renewed, cancelled …): stored, not transferred.")
        if topic.startswith("customer_"):
            return N_("A change to a customer: stored, not transferred.")
        if topic == "invoice_created":
            return N_("A new invoice, not paid yet: it is transferred when it is settled.")
        return super().ignored_reason(topic, payload)

    def subscription_of(self, payload: dict) -> str | None:
        # A subscription's first invoice is period 1; each renewal's is the next period.
        if payload.get("subscription") and int(payload.get("period_number") or 1) > 1:
            return str(payload["subscription"])
        return None

    def is_zero(self, sale: dict) -> bool:
        return sale.get("amount") == 0  # minor units: a 100 % discount leaves 0

    def refunds_in(self, payload: dict) -> list[dict]:
        return [
            note for note in payload.get("credit_notes") or [] if isinstance(note, dict) and note.get("id")
        ]

    def refund_complete(self, refund: dict) -> bool:
        return "amount" in refund  # embedded whole in the invoice

    def sale_state(self, payload: dict) -> str:
        return str(payload.get("state") or "")

    def sale_number(self, payload: dict) -> str:
        return documents.number_of(payload)

    def sale_created(self, payload: dict) -> str | None:
        return payload.get("created")

    def sale_modified(self, payload: dict) -> str | None:
        return (
            payload.get("settled")
            or payload.get("authorized")
            or payload.get("failed")
            or payload.get("created")
        )

    def normalise(self, payload: dict, settings: SourceLinkSettings) -> SalesDocument:
        return documents.normalise_order(payload, settings)

    def normalise_refund(self, sale: dict, refund: dict, settings: SourceLinkSettings) -> Refund:
        return documents.normalise_refund(sale, refund, settings)


SOURCE = Frisbii()
