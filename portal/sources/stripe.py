"""Stripe Billing as a source: the sale is an invoice (a subscription's first invoice, a renewal, a one-off),
delivered wrapped in a signed event (`{"object": "event", "type", "data": {"object": <invoice>}}`) and
stored as the event; the poll stores invoices bare. Its state is the invoice's status, with an open invoice
told apart by who pays it: "open" (send_invoice: the customer pays by bank transfer), "payment_due" (Stripe
charges it) or "payment_failed" (Stripe tried and failed: dunning, never a document). Refunds arrive as
`credit_note.created` events (naming the invoice) and as `refund.created` / `charge.refunded` (naming only the
PaymentIntent, which the connector resolves to the invoice it paid): then the invoice's refunds and credit
notes are fetched (list_refunds) and each is credited once (engine credit_documents)."""

from collections.abc import Mapping

from portal.connectors import stripe as client
from portal.connectors.sources import WebhookDelivery
from portal.engine.documents import Refund, SalesDocument
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import stripe as documents
from portal.sources import Source

# The invoice events that carry a sale to decide; every other event is stored and ignored with its type.
SALE_EVENTS = frozenset(
    {
        "invoice.paid",
        "invoice.finalized",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.payment_succeeded",
    }
)
# Refunds of a payment, with or without a credit note (a refund made in the Dashboard has none).
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "charge.refunded"})
RENEWAL = "subscription_cycle"  # the billing_reason of a renewal; any other invoice is a sale of its own


def subscription_id(invoice: dict) -> str | None:
    """The subscription an invoice bills: `parent.subscription_details` since basil, `subscription` before."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = details.get("subscription") or invoice.get("subscription")
    return (found if isinstance(found, str) else (found or {}).get("id")) or None


class Stripe(Source):
    key = "stripe"
    reference_prefix = documents.PREFIX
    states = ("paid", "open", "payment_due", "payment_failed", "draft", "void", "uncollectible")
    paid_states = ("paid",)
    renewals = (
        True  # a subscription's renewals (billing_reason subscription_cycle) besides its other invoices
    )
    paid_methods = ("stripe",)  # what Stripe charged (card, direct debit) is paid: registered so
    invoices = True

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
        return client.verify_webhook(headers, raw_body, secret)

    # --- what a payload means ---

    def is_sale(self, payload: object) -> bool:
        if not isinstance(payload, dict):
            return False
        if payload.get("object") == "event":
            sale = (payload.get("data") or {}).get("object") or {}
            return (
                payload.get("type") in SALE_EVENTS
                and sale.get("object") == "invoice"
                and bool(sale.get("id"))
            )
        return payload.get("object") == "invoice" and bool(payload.get("id"))

    def sale_of(self, payload: dict) -> dict:
        if payload.get("object") == "event":
            return (payload.get("data") or {}).get("object") or {}
        return payload

    def refunded_sale(self, payload: dict) -> str | None:
        """The invoice a credit note is on, or the PaymentIntent a refund went back on (the connector reads
        the invoice it paid: since basil a charge does not name its invoice)."""
        if payload.get("object") != "event":
            return None
        found = (payload.get("data") or {}).get("object") or {}
        if payload.get("type") == "credit_note.created":
            found = found.get("invoice")
        elif payload.get("type") in REFUND_EVENTS:
            found = found.get("payment_intent")  # a charge made without a PaymentIntent paid no invoice
        else:
            return None
        return str(found.get("id") if isinstance(found, dict) else found) if found else None

    def refunds_in(self, payload: dict) -> list[dict]:
        return []  # an invoice lists no credit notes: they come as credit_note.created events (and the poll)

    def refund_complete(self, refund: dict) -> bool:
        return "lines" in refund or refund.get("object") == "refund"

    def subscription_of(self, payload: dict) -> str | None:
        if payload.get("billing_reason") != RENEWAL:
            return None
        return subscription_id(payload) or ""

    def is_zero(self, sale: dict) -> bool:
        return sale.get("total") == 0

    def sale_state(self, payload: dict) -> str:
        status = str(payload.get("status") or "")
        if status != "open":
            return status
        if payload.get("collection_method") == "send_invoice":
            return "open"
        return "payment_failed" if payload.get("attempt_count") else "payment_due"

    def sale_number(self, payload: dict) -> str:
        return documents.invoice_number(payload)

    def sale_created(self, payload: dict) -> str | None:
        return documents.issued_at(payload)

    def sale_modified(self, payload: dict) -> str | None:
        # Stripe keeps no modification time: the latest status change stands for the version.
        moments = [v for v in (payload.get("status_transitions") or {}).values() if v]
        return f"{payload.get('status')}:{max(moments, default=payload.get('created'))}"

    # --- normalising ---

    def normalise(self, payload: dict, settings: SourceLinkSettings) -> SalesDocument:
        return documents.normalise_order(payload, settings)

    def normalise_refund(self, sale: dict, refund: dict, settings: SourceLinkSettings) -> Refund:
        return documents.normalise_refund(sale, refund, settings)


SOURCE = Stripe()
