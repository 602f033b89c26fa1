"""What every sending system's connector offers (webshops now; subscription systems and POS later).

The pipeline stores every inbound payload raw, then asks the source's portal.sources.Source what it means.
A source connector only moves data: it reads orders/refunds/products, registers Bogbro's webhooks,
verifies signatures, and writes stock back. Like the accounting connectors it is Flask-free and built
from a ConnectorContext (portal.connectors); errors come from portal.connectors.errors.
"""

import base64
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Literal


@dataclass(frozen=True)
class SourceSystem:
    key: str  # "woocommerce" | "shopify"
    name: str
    connect: Literal["api_key", "oauth"]
    webhook_topics: tuple[str, ...]  # what Bogbro subscribes to, in the system's own names
    notes: tuple[str, ...] = ()  # English msgids (N_) shown in the settings


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified inbound webhook, ready to be stored raw."""

    delivery_id: str  # the sender's id for deduplication (X-WC-Webhook-Delivery-ID, X-Shopify-Event-Id)
    topic: str  # e.g. "order.updated", "orders/updated"
    resource_id: str | None  # the order id the payload is about, when there is one
    is_ping: bool = False  # WooCommerce's unsigned creation ping: answer 200, store nothing
    # The shop the delivery says it comes from (X-Shopify-Shop-Domain), when the system says so: it must be
    # the source link's own shop, as every shop's deliveries carry the same app signature.
    shop: str | None = None


class WebhookRejected(Exception):
    """Signature missing or wrong, or not a webhook of this system: answer 401, store nothing."""


@dataclass
class Page:
    items: list[dict]  # raw documents, exactly as the system sent them
    total: int | None = None
    # None: this was the last page. Else pass it back as list_orders(page=…): a page number, or an opaque
    # cursor for systems that only page by cursor (Shopify's page_info).
    next_page: int | str | None = None


@dataclass
class RemoteWebhook:
    id: str
    topic: str
    delivery_url: str
    status: str = "active"
    raw: dict = field(default_factory=dict)


class SourceConnector(ABC):
    system: SourceSystem

    @abstractmethod
    def verify(self) -> dict:
        """Check the credentials; returns the shop's basics (name, currency, prices incl. tax …)."""

    @abstractmethod
    def list_orders(self, modified_after: datetime | None = None, page: int | str = 1) -> Page:
        """Orders changed after the moment (UTC), oldest change first where the system can sort so."""

    @abstractmethod
    def get_order(self, order_id: str) -> dict: ...

    @abstractmethod
    def list_refunds(self, order_id: str) -> list[dict]: ...

    @abstractmethod
    def list_webhooks(self) -> list[RemoteWebhook]: ...

    @abstractmethod
    def register_webhooks(self, delivery_url: str, secret: str) -> list[RemoteWebhook]:
        """Ensure exactly one active subscription per topic to `delivery_url` (idempotent)."""

    @abstractmethod
    def delete_webhooks(self, delivery_url: str) -> None: ...

    def account_webhook_secret(self) -> str | None:
        """The secret the system signs with where it is the account's own, not one Bogbro sets (Frisbii):
        read after registering and kept as the link's. None where Bogbro's secret is used."""
        return None

    @abstractmethod
    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        """Write stock for a SKU (product or variation); False when the shop has no such SKU."""


# Each source's connector module also provides, as plain functions (no connector needed):
#   verify_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery
#       (raises WebhookRejected; compares signatures in constant time, before any JSON parsing; the pipeline
#       calls it through the source's portal.sources.Source)
#   start_connect / finish_connect(settings, params, callback_url, transport=None) -> credentials
#   sandbox_settings(origin) -> dict, CONFIG_PREFIX, SYSTEM, CONNECTOR


# --- shared by the source modules ---------------------------------------------------------------------------


def header(headers: Mapping[str, str], *names: str) -> str:
    """The first of `names` present, compared case-insensitively (a webhook's headers may arrive as a plain
    dict); "" when none is."""
    lowered = {str(key).lower(): value for key, value in headers.items()}
    for name in names:
        if lowered.get(name.lower()) is not None:
            return str(lowered[name.lower()])
    return ""


def hmac_base64(raw_body: bytes, secret: str) -> str:
    """base64 of the HMAC-SHA256 of the raw body: how WooCommerce and Shopify both sign webhooks."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def whole_units(quantity: Decimal) -> int:
    """Shops keep stock in whole units: a fraction is rounded down (half a unit cannot be sold)."""
    return int(Decimal(quantity).to_integral_value(rounding=ROUND_FLOOR))
