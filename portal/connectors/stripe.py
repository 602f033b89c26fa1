"""Stripe Billing (https://api.stripe.com/v1): invoices, credit notes and refunds, webhook endpoints.

Connecting is a form: a restricted key (rk_…, read access to invoices, credit notes, charges, customers and
write access to webhook endpoints) or a secret key (sk_…). The key travels as a Bearer token; every request
pins `Stripe-Version` (API_VERSION) so the shapes we read never change under us, and every POST carries an
`Idempotency-Key` derived from what it creates, so a retried create is the same create.

Webhooks: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the endpoint's own
whsec_ secret (Stripe makes it when the endpoint is created; we store it encrypted on the source link). A
timestamp more than TOLERANCE_SECONDS from now is refused like a wrong signature: a replayed old delivery
is not a delivery. The dedup key is the event id (a resend carries the same id).

Amounts are integers in the currency's minor unit; portal.engine.sources.stripe turns them into Decimal.
See docs/connectors/stripe.md for what is verified and how.
"""

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

import httpx

from portal.connectors import ConnectorContext
from portal.connectors.base import N_
from portal.connectors.errors import NotFound, UnsupportedOperation
from portal.connectors.http import client_for
from portal.connectors.ratelimit import limiter_for, per_second
from portal.connectors.sources import (
    Page,
    RemoteWebhook,
    SourceConnector,
    SourceSystem,
    WebhookDelivery,
    WebhookRejected,
    header,
)
from portal.engine.sources.stripe import credit_documents

KEY = "stripe"
CONFIG_PREFIX = "STRIPE_"
API_VERSION = "2026-10-28.endive"  # the version we read; see docs/connectors/stripe.md
TOLERANCE_SECONDS = 300  # stripe-python's default for Webhook.construct_event
PAGE_SIZE = 100  # Stripe's maximum `limit`
DEFAULT_RATE = 20.0  # requests per second: Stripe allows 100 (live) / 25 (test) per account
# A renewal invoice is created at the period's end and paid up to a few days later (retries): the poll
# lists invoices created this long before its window, so one paid late is still found.
PAYMENT_LOOKBACK_SECONDS = 7 * 86400
FIND_PAGES = 10  # find_order reads at most the newest 1,000 invoices
INVOICE_EXPAND = ("payments",)  # includable since basil: how the invoice was paid

SYSTEM = SourceSystem(
    key=KEY,
    name="Stripe",
    connect="api_key",
    webhook_topics=(
        "invoice.paid",
        "invoice.finalized",
        "invoice.payment_failed",
        "invoice.voided",
        "credit_note.created",
        "charge.refunded",
        "refund.created",
        "refund.updated",  # a pending refund (bank debits) credited once it has succeeded
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ),
    notes=(
        N_(
            "Create a restricted key in Stripe under Developers > API keys with read access to invoices, "
            "credit notes, charges, refunds and customers and write access to webhook endpoints."
        ),
        N_(
            "Bogbro transfers Stripe invoices: the first invoice of a subscription and its renewals, and "
            "their refunds and credit notes as credit notes. Cancellations, pauses and failed payments are "
            "shown in the transfer log without a document."
        ),
    ),
)

MESSAGES = {
    "key": N_("The key starts with rk_ (restricted key) or sk_ (secret key). Copy it from Stripe."),
    "refused": N_("Stripe did not accept this key. Check that it is copied whole and not rolled."),
}


def sandbox_settings(origin: str) -> dict:
    """Bogbro's Stripe emulator and its demo keys."""
    return {
        "api_url": f"{origin}/sandbox/stripe",
        "demo_key": "rk_test_bogbro_demo",
        "requests_per_second": 100,
    }


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """Stripe's {"error": {"type", "code", "message", "param"}}."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:300] or response.reason_phrase), {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:300], {}
    return str(error.get("message") or error.get("type") or response.reason_phrase), error


def _form(data: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: a[b]=…, a[0]=…"""
    pairs = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += _form(value, name)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs += _form(item, f"{name}[{index}]")
                else:
                    pairs.append((f"{name}[{index}]", str(item)))
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


# --- webhooks -----------------------------------------------------------------------------------------------


def verify_webhook(
    headers: Mapping[str, str], raw_body: bytes, secret: str, now: float | None = None
) -> WebhookDelivery:
    """Checks Stripe-Signature on the raw body (any of its v1 signatures may match: Stripe signs with both
    secrets while one is being rolled), then the timestamp's age, then reads the event's id and type."""
    if not secret:
        raise WebhookRejected("no webhook secret is stored for this connection")
    signature = header(headers, "Stripe-Signature")
    parts = [part.split("=", 1) for part in signature.split(",") if "=" in part]
    stamps = [value for key, value in parts if key.strip() == "t"]
    given = [value for key, value in parts if key.strip() == "v1"]
    if not stamps or not given or not stamps[0].isdigit():
        raise WebhookRejected("missing or unreadable Stripe-Signature")
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), value.strip().encode()) for value in given):
        raise WebhookRejected("signature does not match")
    if abs((time.time() if now is None else now) - int(stamps[0])) > TOLERANCE_SECONDS:
        raise WebhookRejected("timestamp outside the tolerance (a replayed delivery?)")
    try:
        event = json.loads(raw_body)
        event_id, event_type = str(event["id"]), str(event["type"])
        resource = (event.get("data") or {}).get("object") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WebhookRejected("not a Stripe event") from None
    return WebhookDelivery(
        delivery_id=event_id,
        topic=event_type,
        resource_id=str(resource.get("id")) if isinstance(resource, dict) and resource.get("id") else None,
    )


# --- the connector ------------------------------------------------------------------------------------------


class StripeConnector(SourceConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings or {}
        key = context.credentials.get()["api_key"]
        rate = float(self.settings.get("requests_per_second") or DEFAULT_RATE)
        account = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.api = client_for(
            context,
            system="Stripe",
            base_url=(self.settings.get("api_url") or context.base_url).rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {key}", "Stripe-Version": API_VERSION},
            timeout=httpx.Timeout(30.0, connect=10.0),
            limiter=limiter_for(context, f"{KEY}:{account}", per_second(rate, burst=max(1, int(rate)))),
            error_message=error_message,
        )

    def close(self):
        self.api.close()

    def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> dict:
        return self.api.request("GET", path, params=params).json()

    def _post(self, path: str, data: Mapping, idempotency_key: str) -> dict:
        response = self.api.request(
            "POST",
            path,
            idempotent=True,  # the Idempotency-Key makes a repeated POST the same POST
            content=urlencode(_form(data)).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": idempotency_key},
        )
        return response.json()

    def _list(self, path: str, params: list[tuple[str, str]]) -> list[dict]:
        items, after = [], None
        while True:
            cursor = [("starting_after", after)] if after else []
            page = self._get(path, [*params, ("limit", str(PAGE_SIZE)), *cursor])
            items += page.get("data") or []
            if not page.get("has_more") or not page.get("data"):
                return items
            after = page["data"][-1]["id"]

    # --- the account ---

    def verify(self) -> dict:
        """One authenticated read: the newest invoice (a restricted key may not read the account itself)."""
        page = self._get("/invoices", [("limit", "1")])
        newest = (page.get("data") or [{}])[0]
        return {"name": newest.get("account_name") or "Stripe", "currency": newest.get("currency")}

    # --- invoices (the sales) and their refunds ---

    def get_order(self, order_id: str) -> dict:
        """An invoice by its id — or by a PaymentIntent that paid it (`pi_…`: what a refund names)."""
        invoice_id = self._paid_invoice(order_id) if order_id.startswith("pi_") else order_id
        return self._get(f"/invoices/{invoice_id}", [("expand[]", e) for e in INVOICE_EXPAND])

    def _paid_invoice(self, payment_intent: str) -> str:
        """The invoice a PaymentIntent paid. Since basil a charge or PaymentIntent no longer names its
        invoice; the invoice payments are listed by their payment (DOCS /api/invoice-payment/list)."""
        page = self._get(
            "/invoice_payments",
            [
                ("payment[type]", "payment_intent"),
                ("payment[payment_intent]", payment_intent),
                ("limit", "1"),
            ],
        )
        found = next((p.get("invoice") for p in page.get("data") or [] if p.get("invoice")), None)
        if found is None:
            raise NotFound(f"no invoice was paid by {payment_intent}", system="Stripe")
        return str(found.get("id") if isinstance(found, dict) else found)

    def list_orders(self, modified_after: datetime | None = None, page: int | str = 1) -> Page:
        """Invoices created since the moment (less PAYMENT_LOOKBACK_SECONDS), newest first as Stripe lists
        them; `page` is the cursor (the last id seen) after the first page."""
        params = [("limit", str(PAGE_SIZE))] + [("expand[]", f"data.{e}") for e in INVOICE_EXPAND]
        if modified_after is not None:
            since = int(modified_after.timestamp()) - PAYMENT_LOOKBACK_SECONDS
            params.append(("created[gte]", str(since)))
        if isinstance(page, str):
            params.append(("starting_after", page))
        result = self._get("/invoices", params)
        items = result.get("data") or []
        return Page(items=items, next_page=items[-1]["id"] if result.get("has_more") and items else None)

    def find_order(self, number: str) -> dict | None:
        """An invoice by the number the customer sees (or its id), for a preview: the newest
        FIND_PAGES pages are read (Stripe's list has no number filter)."""
        if number.startswith("in_"):
            try:
                return self.get_order(number)
            except NotFound:
                return None
        cursor: list[tuple[str, str]] = []
        for _ in range(FIND_PAGES):
            page = self._get("/invoices", [("limit", str(PAGE_SIZE)), *cursor])
            found = next((i for i in page.get("data") or [] if i.get("number") == number), None)
            if found is not None or not page.get("has_more") or not page.get("data"):
                return self.get_order(found["id"]) if found else None
            cursor = [("starting_after", page["data"][-1]["id"])]
        return None

    def list_refunds(self, order_id: str) -> list[dict]:
        """What is credited on an invoice (or the invoice a PaymentIntent paid): the refunds of its payments
        and its credit notes, each krone once (portal.engine.sources.stripe.credit_documents)."""
        if order_id.startswith("pi_"):
            order_id = self._paid_invoice(order_id)
        notes = self._list("/credit_notes", [("invoice", order_id), ("expand[]", "data.lines")])
        payments = self._list("/invoice_payments", [("invoice", order_id)])
        intents = {
            str(intent.get("id") if isinstance(intent, dict) else intent)
            for intent in ((p.get("payment") or {}).get("payment_intent") for p in payments)
            if intent
        }
        refunds = [
            r for intent in sorted(intents) for r in self._list("/refunds", [("payment_intent", intent)])
        ]
        return credit_documents(notes, refunds)

    # --- webhook endpoints ---

    def list_webhooks(self) -> list[RemoteWebhook]:
        return [
            RemoteWebhook(
                id=str(endpoint["id"]),
                topic=",".join(endpoint.get("enabled_events") or []),
                delivery_url=str(endpoint.get("url") or ""),
                status=str(endpoint.get("status") or "enabled"),
                raw=endpoint,
            )
            for endpoint in self._list("/webhook_endpoints", [])
        ]

    def register_webhooks(self, delivery_url: str, secret: str = "") -> list[RemoteWebhook]:
        """One endpoint for every topic. Stripe makes the signing secret and shows it once, in the new
        endpoint's `secret` (RemoteWebhook.raw), for the caller to store: so an endpoint to the same address
        is replaced, never kept with a secret we may no longer have. (`secret` is unused: Stripe's own.)"""
        replaced = sorted(hook.id for hook in self.list_webhooks() if hook.delivery_url == delivery_url)
        self.delete_webhooks(delivery_url)
        # the same replacement retried is the same create (Stripe keeps an Idempotency-Key for 24 hours)
        key = hashlib.sha256(f"{delivery_url} {' '.join(replaced)}".encode()).hexdigest()[:32]
        endpoint = self._post(
            "/webhook_endpoints",
            {
                "url": delivery_url,
                "enabled_events": list(SYSTEM.webhook_topics),
                "api_version": API_VERSION,
                "description": "Bogbro",
            },
            idempotency_key=f"bogbro-endpoint-{key}",
        )
        return [
            RemoteWebhook(
                id=endpoint["id"],
                topic=",".join(SYSTEM.webhook_topics),
                delivery_url=delivery_url,
                raw=endpoint,
            )
        ]

    def delete_webhooks(self, delivery_url: str) -> None:
        for hook in self.list_webhooks():
            if hook.delivery_url == delivery_url:
                with contextlib.suppress(NotFound):  # gone already
                    self.api.request("DELETE", f"/webhook_endpoints/{hook.id}")

    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        raise UnsupportedOperation("Stripe Billing keeps no stock", system="Stripe")


CONNECTOR = StripeConnector
