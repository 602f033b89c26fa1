"""Frisbii (formerly Reepay) as a source: subscription invoices read through the /v1 API with the account's
private key (HTTP Basic, the key as the user name, no password), amounts in minor units.

Webhooks are signed in the body: `signature` = hex(HMAC-SHA256(secret, timestamp + id)) with the account's
one webhook secret (GET /v1/account/webhook_settings), and name objects by handle only — the pipeline
fetches the invoice they name (get_order) before it decides. The account has ONE list of webhook urls: ours is
added to it and removed from it, the customer's other urls are left as they are.
Sources: docs/connectors/frisbii.md and portal/connectors/evidence/frisbii.py.
"""

import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.base import N_
from portal.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NotFound,
    TransientError,
    UnsupportedOperation,
)
from portal.connectors.http import client_for
from portal.connectors.ratelimit import limiter_for, per_second
from portal.connectors.sources import (
    Page,
    RemoteWebhook,
    SourceConnector,
    SourceSystem,
    WebhookDelivery,
    WebhookRejected,
)

KEY = "frisbii"
CONFIG_PREFIX = "FRISBII_"
API_URL = "https://api.reepay.com"
PAGE_SIZE = 100  # the invoice list's maximum `size`
DEFAULT_RATE = 5.0
WEBHOOK_TOPIC = (
    "all events"  # Frisbii sends every event to every url of the account: no per-topic subscription
)

SYSTEM = SourceSystem(
    key=KEY,
    name="Frisbii",
    connect="api_key",
    webhook_topics=(WEBHOOK_TOPIC,),
    notes=(
        N_(
            "Create a private API key in Frisbii under Developers > API credentials and enter it here. "
            "Bogbro adds its own address to the account's webhook URLs and leaves your other URLs as they "
            "are."
        ),
        N_(
            "Frisbii sends every event to every webhook URL; Bogbro transfers invoices and their refunds "
            "only."
        ),
    ),
)

MESSAGES = {
    "private_key": N_(
        "The private API key starts with priv_. Copy it from Frisbii > Developers > API credentials."
    ),
    "refused": N_(
        "Frisbii did not accept this private API key. Check that it is a private key of the right account."
    ),
    "unreachable": N_("Frisbii could not be reached. Try again in a moment."),
}


def sandbox_settings(origin: str) -> dict:
    """Bogbro's Frisbii emulator and its demo private key."""
    return {
        "api_url": f"{origin}/sandbox/frisbii",
        "demo_private_key": "priv_bogbro_demo",
        "requests_per_second": 50,
    }


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """Frisbii's {code, error, message, …} error body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] if text else response.reason_phrase), {}
    if not isinstance(body, dict):
        return str(body)[:300], {}
    return str(body.get("message") or body.get("error") or response.reason_phrase), body


class FrisbiiConnector(SourceConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings or {}
        key = context.credentials.get()["private_key"]
        rate = float(self.settings.get("requests_per_second") or DEFAULT_RATE)
        account = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.api = client_for(
            context,
            system="Frisbii",
            base_url=(self.settings.get("api_url") or context.base_url or API_URL).rstrip("/") + "/v1",
            auth=httpx.BasicAuth(key, ""),
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(30.0, connect=10.0),
            limiter=limiter_for(context, f"{KEY}:{account}", per_second(rate, burst=max(1, int(rate)))),
            error_message=error_message,
        )

    def close(self) -> None:
        self.api.close()

    def _json(self, method: str, path: str, *, params=None, body=None):
        kwargs = {"params": params} if params else {}
        if body is not None:
            kwargs.update(content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        response = self.api.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise TransientError(
                f"Frisbii answered {response.status_code} without JSON", system="Frisbii"
            ) from None

    # --- the account ---

    def verify(self) -> dict:
        """One authenticated read: the webhook settings (every private key may read them)."""
        self._json("GET", "/account/webhook_settings")
        return {"name": "Frisbii"}

    # --- invoices and their refunds ---

    def _with_customer(self, invoice: dict, customers: dict[str, dict]) -> dict:
        """The invoice with its customer's record under `_customer` (the invoice names it by handle only),
        so the stored payload holds all normalising needs."""
        handle = invoice.get("customer")
        if handle and handle not in customers:
            customers[handle] = self._json("GET", f"/customer/{handle}")
        return {**invoice, "_customer": customers.get(handle) or {}}

    def get_order(self, order_id: str) -> dict:
        """An invoice by id or handle, with its customer."""
        return self._with_customer(self._json("GET", f"/invoice/{order_id}"), {})

    def find_order(self, number: str) -> dict | None:
        """By handle (inv-<number> for subscription invoices) or id."""
        number = str(number).strip().lstrip("#")
        for key in (number, f"inv-{number}") if number.isdigit() else (number,):
            with contextlib.suppress(NotFound):
                return self.get_order(key)
        return None

    def list_orders(self, modified_after: datetime | None = None, page: int | str = 1) -> Page:
        """Invoices created since the moment, then those settled since it that were created before it (the
        list's `range`: created or settled), a page of up to 100: an invoice created before the last poll and
        settled after it is found too, and none is listed twice. `page` after the first is
        `<range>:<next_page_token>`."""
        since = (modified_after or datetime.now(UTC) - timedelta(days=1)).astimezone(UTC)
        range_, token = page.split(":", 1) if isinstance(page, str) else ("created", "")
        params = {"size": PAGE_SIZE, "from": since.strftime("%Y-%m-%dT%H:%M:%S"), "range": range_}
        if token:
            params["next_page_token"] = token
        result = self._json("GET", "/list/invoice", params=params)
        listed = result.get("content") or []
        if range_ == "settled":  # the ones created since were on the created pages
            listed = [i for i in listed if not i.get("created") or _moment(i["created"]) < since]
        customers: dict[str, dict] = {}
        items = [self._with_customer(invoice, customers) for invoice in listed]
        if result.get("next_page_token"):
            next_page = f"{range_}:{result['next_page_token']}"
        else:
            next_page = "settled:" if range_ == "created" else None
        return Page(items=items, total=None, next_page=next_page)

    def list_refunds(self, order_id: str) -> list[dict]:
        """The invoice's credit notes (a refund makes one, with the amount that went back)."""
        return list(self._json("GET", f"/invoice/{order_id}").get("credit_notes") or [])

    # --- webhooks: one list of urls per account ---

    def webhook_settings(self) -> dict:
        return self._json("GET", "/account/webhook_settings")

    def account_webhook_secret(self) -> str:
        """The secret Frisbii signs every webhook of the account with (Bogbro cannot choose it)."""
        return str(self.webhook_settings().get("secret") or "")

    def list_webhooks(self) -> list[RemoteWebhook]:
        config = self.webhook_settings()
        status = "disabled" if config.get("disabled") else "active"
        return [
            RemoteWebhook(id=url, topic=WEBHOOK_TOPIC, delivery_url=url, status=status)
            for url in config.get("urls") or []
        ]

    def register_webhooks(self, delivery_url: str, secret: str) -> list[RemoteWebhook]:
        """Our url added to the account's list, the customer's others kept (`secret` is not ours to set:
        read account_webhook_secret)."""
        urls = list(self.webhook_settings().get("urls") or [])
        if delivery_url not in urls:
            self._json("PUT", "/account/webhook_settings", body={"urls": [*urls, delivery_url]})
        return [webhook for webhook in self.list_webhooks() if webhook.delivery_url == delivery_url]

    def delete_webhooks(self, delivery_url: str) -> None:
        """Only our url leaves the list."""
        urls = list(self.webhook_settings().get("urls") or [])
        if delivery_url in urls:
            self._json(
                "PUT", "/account/webhook_settings", body={"urls": [u for u in urls if u != delivery_url]}
            )

    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        raise UnsupportedOperation("Frisbii sells subscriptions: it keeps no stock", system="Frisbii")


CONNECTOR = FrisbiiConnector


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- webhooks in -------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, webhook_id: str) -> str:
    return hmac.new(secret.encode(), (timestamp + webhook_id).encode(), hashlib.sha256).hexdigest()


def verify_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
    """A verified delivery, or WebhookRejected. The body's `signature` must equal hex(HMAC-SHA256(secret,
    timestamp + id)) (compared in constant time). The webhook `id` is the dedup key: Frisbii resends a webhook
    with the same id, body and signature, so there is no freshness window to check."""
    if not secret:
        raise WebhookRejected("no webhook secret is stored for this Frisbii account")
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise WebhookRejected("the body is not JSON: not a Frisbii webhook") from None
    if not isinstance(body, dict):
        raise WebhookRejected("the body is not a JSON object: not a Frisbii webhook")
    webhook_id, timestamp, provided = body.get("id"), body.get("timestamp"), body.get("signature")
    if not all(isinstance(value, str) and value for value in (webhook_id, timestamp, provided)):
        raise WebhookRejected("id, timestamp or signature is missing: not a Frisbii webhook")
    if not re.fullmatch(r"[0-9a-f]{64}", provided):
        raise WebhookRejected("the signature is not a hex HMAC-SHA256")
    if not hmac.compare_digest(signature(secret, timestamp, webhook_id), provided):
        raise WebhookRejected("the signature does not match")
    invoice = body.get("invoice")
    return WebhookDelivery(
        delivery_id=webhook_id[:200],
        topic=str(body.get("event_type") or "unknown"),
        resource_id=str(invoice) if invoice else None,
    )


# --- connecting ---------------------------------------------------------------------------------------------


def start_connect(settings: dict, callback_url: str, state: str) -> str | None:
    """No redirect: the customer enters a private API key in a form."""
    return None


def finish_connect(settings: dict, params: dict, callback_url: str, transport=None) -> dict:
    """The submitted private key → {"private_key"}, after one authenticated call."""
    key = str(params.get("private_key") or "").strip()
    if not re.fullmatch(r"priv_\w+", key):
        raise ConfigurationError(MESSAGES["private_key"], system=KEY, details={"field": "private_key"})
    credentials = {"private_key": key}
    connector = FrisbiiConnector(
        ConnectorContext(
            base_url=settings.get("api_url") or API_URL,
            credentials=StaticCredentials(credentials),
            transport=transport,
            settings=settings,
            retries=1,
        )
    )
    try:
        connector.verify()
    except AuthenticationError as error:
        raise ConfigurationError(MESSAGES["refused"], system=KEY, details={"field": "private_key"}) from error
    except (TransientError, ConnectorError) as error:
        raise ConfigurationError(
            MESSAGES["unreachable"], system=KEY, details={"frisbii": error.message}
        ) from error
    finally:
        connector.close()
    return credentials
