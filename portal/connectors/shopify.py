"""Shopify: a shop's Admin REST API (https://{shop}.myshopify.com/admin/api/2026-07/…) with an offline
access token from Shopify's OAuth install.

- Connecting: `start_connect` sends the merchant's browser to the shop's install page
  (admin/oauth/authorize, comma-separated scopes); `finish_connect` checks the callback's `hmac` (hex
  HMAC-SHA256 of the other query parameters with the app's client secret), the shop domain and the
  `state`, then exchanges the code at admin/oauth/access_token (through ApiClient, without retries) for
  {"shop", "access_token", "scope"}. Offline tokens do not expire; an uninstall revokes them (401).
- Every call sends X-Shopify-Access-Token, has a timeout, goes through a Redis token bucket per shop
  that stays under Shopify's leaky bucket (40 requests, leaking 2 a second) and maps errors to
  portal.connectors.errors with Shopify's own `errors` text.
- Lists page by cursor: the `Link` header's rel="next" URL carries `page_info`, which may only be combined
  with `limit`; `Page.next_page` is that cursor, passed back as list_orders(page=cursor).
- Money stays exactly as Shopify sends it (decimal strings) in the raw documents; the engine
  (portal.engine.sources.shopify) parses it with Decimal.
- Webhooks are signed by Shopify with the app's client secret (not a per-subscription secret):
  `verify_webhook` checks X-Shopify-Hmac-Sha256 on the raw body before anything is parsed.
"""

import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from portal.connectors import ConnectorContext
from portal.connectors.base import N_
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFound,
    ValidationError,
)
from portal.connectors.http import ApiClient, client_for
from portal.connectors.ratelimit import RateLimit, configured_limit, limiter_for
from portal.connectors.sources import (
    Page,
    RemoteWebhook,
    SourceConnector,
    SourceSystem,
    WebhookDelivery,
    WebhookRejected,
    header,
    hmac_base64,
    whole_units,
)

KEY = "shopify"
NAME = "Shopify"
CONFIG_PREFIX = "SHOPIFY_"
API_VERSION = "2026-07"
SCOPES = "read_orders,read_products,read_inventory,write_inventory,read_locations"
TIMEOUT_SECONDS = 20.0
PAGE_SIZE = 250  # Shopify's maximum `limit`
CALLBACK_MAX_AGE_SECONDS = 24 * 3600
# Shopify's REST bucket holds 40 requests and leaks 2 a second, per app and shop. A token bucket of 36
# refilled at 1.8 a second never sends more than the leaky bucket can take, leaving room for clock skew.
RATE_LIMIT = RateLimit(requests=36, per_seconds=20.0)
TOPICS = ("orders/create", "orders/updated", "refunds/create", "app/uninstalled")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9\-]*\.myshopify\.com$")
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([a-z]+)"?')

SYSTEM = SourceSystem(
    key=KEY,
    name=NAME,
    connect="oauth",
    webhook_topics=TOPICS,
    notes=(
        N_(
            "Bogbro reads orders, refunds and transactions and writes stock levels; the app asks Shopify "
            "for exactly that."
        ),
        N_("Without the read_all_orders permission Shopify only shows orders from the last 60 days."),
        N_(
            "Shopify removes a webhook subscription when its deliveries keep failing; Bogbro's regular "
            "check for changed orders picks up what was missed."
        ),
    ),
)

MESSAGES = {
    "shop": N_("Enter the shop's address, e.g. my-shop.myshopify.com."),
    "hmac": N_("The answer from Shopify was not signed by Shopify. Start connecting again."),
    "state": N_(
        "The answer from Shopify does not belong to this connection attempt. Start connecting again."
    ),
    "expired": N_("The answer from Shopify is too old. Start connecting again."),
    "code": N_("Shopify sent no authorisation code back. Start connecting again."),
    "scopes": N_("Shopify granted fewer permissions than Bogbro needs. Install the app again."),
    "setup": N_("Shopify is not set up: SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET are missing."),
    "location": N_(
        "The product is stocked at several Shopify locations. Choose the location Bogbro writes stock to."
    ),
    "untracked": N_("Shopify does not track stock for this product. Turn on 'Track quantity' in Shopify."),
}


def sandbox_settings(origin: str) -> dict:
    """Bogbro's app as registered with the Shopify emulator (portal/sandbox/shopify.py) and its demo shop."""
    return {
        "client_id": "5f3a9c1e7b2d4a6c8e0f1a3b5c7d9e2f",
        "client_secret": "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",
        "api_url": f"{origin}/sandbox/shopify",
        "api_version": API_VERSION,
        "scopes": SCOPES,
        # The install page is opened by the merchant's browser: a path on this app. One sandbox serves every
        # shop, so the shop travels as a query parameter (the real host name is the shop).
        "authorize_url": "/sandbox/shopify/admin/oauth/authorize?shop={shop}",
        "token_url": f"{origin}/sandbox/shopify/admin/oauth/access_token",
        "shop": "bogbro-demo.myshopify.com",
    }


# --- connecting -------------------------------------------------------------------------------------------


def normalise_shop(value: str | None) -> str:
    """The shop's myshopify.com domain from what a person types: "my-shop", "my-shop.myshopify.com" or
    "https://my-shop.myshopify.com/admin"."""
    text = (value or "").strip().lower()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/")[0]
    if text and "." not in text:
        text = f"{text}.myshopify.com"
    if not SHOP_DOMAIN.match(text):
        raise ConfigurationError(MESSAGES["shop"], system=NAME, details={"field": "shop"})
    return text


def _require_app(settings: dict) -> None:
    if not settings.get("client_id") or not settings.get("client_secret"):
        raise ConfigurationError(MESSAGES["setup"], system=NAME)


def _scopes(settings: dict) -> list[str]:
    return [s.strip() for s in (settings.get("scopes") or SCOPES).split(",") if s.strip()]


def start_connect(settings: dict, callback_url: str, state: str, shop: str | None = None) -> str:
    """The shop's install page (Shopify's authorization code grant, offline access). `shop` defaults to
    settings["shop"] (the sandbox's demo shop)."""
    _require_app(settings)
    shop = normalise_shop(shop or settings.get("shop"))
    url = settings["authorize_url"].format(shop=shop)
    query = urlencode(
        {
            "client_id": settings["client_id"],
            "scope": ",".join(_scopes(settings)),
            "redirect_uri": callback_url,
            "state": state,
        }
    )
    return f"{url}{'&' if '?' in url else '?'}{query}"


def callback_signature(params: Mapping[str, str], secret: str) -> str:
    """Shopify's `hmac` on a callback: hex HMAC-SHA256 of the other parameters sorted by name, as
    name=value joined with "&" (values as received, i.e. URL-decoded)."""
    message = "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_callback(settings: dict, params: Mapping[str, str], expected_state: str | None = None) -> str:
    """Check a callback from Shopify (signature, age, state); returns its shop domain."""
    _require_app(settings)
    given = str(params.get("hmac") or "")
    expected = callback_signature(params, settings["client_secret"])
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ConfigurationError(MESSAGES["hmac"], system=NAME)
    if expected_state is not None and not hmac.compare_digest(
        str(params.get("state") or "").encode(), expected_state.encode()
    ):
        raise ConfigurationError(MESSAGES["state"], system=NAME)
    try:
        age = time.time() - int(params.get("timestamp") or 0)
    except ValueError:
        age = CALLBACK_MAX_AGE_SECONDS + 1
    if age > CALLBACK_MAX_AGE_SECONDS:
        raise ConfigurationError(MESSAGES["expired"], system=NAME)
    return normalise_shop(params.get("shop"))


def finish_connect(
    settings: dict, params: dict, callback_url: str, transport=None, expected_state: str | None = None
) -> dict:
    """The install callback's query parameters -> {"shop", "access_token", "scope"} (an offline token)."""
    if params.get("error"):
        raise ConfigurationError(
            f"Shopify did not install the app: {params.get('error_description') or params['error']}",
            system=NAME,
        )
    shop = verify_callback(settings, params, expected_state)
    if not params.get("code"):
        raise ConfigurationError(MESSAGES["code"], system=NAME)
    token_url = settings["token_url"].format(shop=shop)
    body = {
        "client_id": settings["client_id"],
        "client_secret": settings["client_secret"],
        "code": params["code"],
    }
    api = ApiClient(
        system=NAME,
        base_url="",
        headers={"Accept": "application/json"},
        transport=transport,
        timeout=httpx.Timeout(float(settings.get("timeout", TIMEOUT_SECONDS)), connect=5.0),
        retries=0,  # the merchant's browser waits for this answer: they can start again
        error_message=error_message,
    )
    try:
        token = api.post(token_url, json=body).json()
    except ConfigurationError as exc:
        if exc.status != 400:
            raise
        # The token endpoint's 400 is OAuth's invalid_client or a used/expired code: access was not granted.
        raise AuthenticationError(exc.message, system=NAME, status=exc.status, details=exc.details) from exc
    finally:
        api.close()
    granted = {s.strip() for s in str(token.get("scope", "")).split(",") if s.strip()}
    # write_x implies read_x at Shopify.
    granted |= {s.replace("write_", "read_", 1) for s in granted if s.startswith("write_")}
    if not set(_scopes(settings)) <= granted:
        raise ConfigurationError(MESSAGES["scopes"], system=NAME, details={"granted": sorted(granted)})
    return {"shop": shop, "access_token": token["access_token"], "scope": token.get("scope", "")}


# --- webhooks -----------------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str:
    """A Shopify header by name, with or without the "X-" prefix (Shopify's libraries accept both)."""
    return header(headers, f"x-{name}", name)


def verify_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
    """A Shopify delivery, checked before its body is read: X-Shopify-Hmac-Sha256 must be the base64
    HMAC-SHA256 of the raw body with the app's client secret (compared in constant time)."""
    signature = _header(headers, "shopify-hmac-sha256")
    if not signature:
        raise WebhookRejected("no X-Shopify-Hmac-Sha256 header: not a Shopify webhook")
    if not secret:
        raise WebhookRejected("no Shopify app secret to check the signature with")
    if not hmac.compare_digest(hmac_base64(raw_body, secret).encode(), signature.strip().encode()):
        raise WebhookRejected("the X-Shopify-Hmac-Sha256 signature does not match the body")
    topic = _header(headers, "shopify-topic")
    delivery_id = _header(headers, "shopify-webhook-id")
    if not topic or not delivery_id:
        raise WebhookRejected("a signed Shopify request without X-Shopify-Topic or X-Shopify-Webhook-Id")
    try:
        payload = json.loads(raw_body)
    except ValueError as exc:
        raise WebhookRejected("the webhook body is not JSON") from exc
    resource_id = None
    if isinstance(payload, dict):
        if topic.startswith("orders/"):
            resource_id = payload.get("id")
        elif topic.startswith("refunds/"):
            resource_id = payload.get("order_id")
    return WebhookDelivery(
        delivery_id=delivery_id,
        topic=topic,
        resource_id=str(resource_id) if resource_id is not None else None,
    )


# --- errors and paging --------------------------------------------------------------------------------------


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """Shopify's `{"errors": "…" | ["…"] | {"field": ["…"]}}` (or OAuth's `{"error", "error_description"}`)
    -> (its message, {"errors": …})."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("errors" in body or "error" in body):
        errors = body.get("errors", body.get("error"))
        if isinstance(errors, dict):
            parts = []
            for field, texts in errors.items():
                texts = texts if isinstance(texts, list) else [texts]
                parts.extend(f"{field} {text}" if field != "base" else str(text) for text in texts)
            message = "; ".join(parts)
        elif isinstance(errors, list):
            message = "; ".join(str(text) for text in errors)
        else:
            message = str(errors)
        if body.get("error_description"):
            message = f"{message}: {body['error_description']}"
        return message or response.reason_phrase, {"errors": errors}
    text = response.text.strip()
    return (text[:500] or response.reason_phrase), {}


def next_page_info(response: httpx.Response) -> str | None:
    """The `page_info` of the Link header's rel="next" URL, if there is a next page."""
    for url, rel in _LINK.findall(response.headers.get("Link", "")):
        if rel == "next":
            values = parse_qs(urlsplit(url).query).get("page_info")
            return values[0] if values else None
    return None


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("modified_after must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- the connector ------------------------------------------------------------------------------------------


class ShopifyConnector(SourceConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings
        credentials = context.credentials.get()
        self.shop = normalise_shop(credentials.get("shop") or context.external_id)
        version = self.settings.get("api_version") or API_VERSION
        base_url = context.base_url.format(shop=self.shop).rstrip("/") + f"/admin/api/{version}"
        self.api = client_for(
            context,
            system=NAME,
            base_url=base_url,
            timeout=httpx.Timeout(float(self.settings.get("timeout", TIMEOUT_SECONDS)), connect=5.0),
            limiter=limiter_for(context, f"{KEY}:{self.shop}", configured_limit(self.settings, RATE_LIMIT)),
            error_message=error_message,
        )
        self.page_size = int(self.settings.get("page_size", PAGE_SIZE))
        self._variants: dict[str, list[dict]] | None = None  # SKU -> variants, read once per connector
        self._shop: dict | None = None

    # --- plumbing -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body=None, **kwargs) -> httpx.Response:
        headers = {
            "X-Shopify-Access-Token": self.context.credentials.get()["access_token"],
            "Accept": "application/json",
        }
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.api.request(method, path, headers=headers, **kwargs)

    def _json(self, method: str, path: str, **kwargs) -> dict:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else {}

    def _all(self, path: str, key: str, params: dict) -> list[dict]:
        """Every page of a list, following the Link header."""
        items, query = [], {**params, "limit": self.page_size}
        while True:
            response = self._request("GET", path, params=query)
            items.extend(response.json()[key])
            cursor = next_page_info(response)
            if cursor is None:
                return items
            query = {
                "page_info": cursor,
                "limit": self.page_size,
                **({"fields": params["fields"]} if "fields" in params else {}),
            }

    def close(self):
        self.api.close()

    # --- the shop -----------------------------------------------------------------------------------------

    def shop_document(self) -> dict:
        if self._shop is None:
            self._shop = self._json("GET", "shop.json")["shop"]
        return self._shop

    def verify(self) -> dict:
        """GET shop.json: the shop's basics (a 401 here means the app was uninstalled)."""
        self._shop = None
        shop = self.shop_document()
        return {
            "id": str(shop["id"]),
            "name": shop.get("name"),
            "domain": shop.get("myshopify_domain") or self.shop,
            "email": shop.get("email"),
            "country": shop.get("country_code"),
            "currency": shop.get("currency"),
            "prices_include_tax": bool(shop.get("taxes_included")),
            "timezone": shop.get("iana_timezone"),
        }

    # --- orders, refunds, transactions --------------------------------------------------------------------

    def list_orders(self, modified_after: datetime | None = None, page: int | str = 1) -> Page:
        """One page of orders of any status, least recently changed first; `page` is 1 or the previous
        Page's next_page (a page_info cursor, which carries the filters)."""
        if isinstance(page, str):
            params = {"page_info": page, "limit": self.page_size}
        elif page == 1:
            params = {"status": "any", "limit": self.page_size, "order": "updated_at asc"}
            if modified_after is not None:
                params["updated_at_min"] = _utc_iso(modified_after)
        else:
            raise ValueError("Shopify pages by cursor: pass the next_page of the previous Page")
        response = self._request("GET", "orders.json", params=params)
        return Page(items=response.json()["orders"], total=None, next_page=next_page_info(response))

    def get_order(self, order_id: str) -> dict:
        return self._json("GET", f"orders/{int(order_id)}.json")["order"]

    def find_order(self, number: str) -> dict | None:
        """The order whose number (`order_number` 1001, shown as the `name` "#1001") is `number`, asked for
        with the `name` filter and checked here (a shop may prefix names), else the order with that id."""
        number = str(number).strip().lstrip("#")
        if not number:
            return None
        found = self._json("GET", "orders.json", params={"name": number, "status": "any", "limit": PAGE_SIZE})
        for order in found.get("orders") or []:
            if number in (str(order.get("order_number")), str(order.get("name") or "").lstrip("#")):
                return order
        if number.isdigit():
            with contextlib.suppress(NotFound):
                return self.get_order(number)
        return None

    def list_refunds(self, order_id: str) -> list[dict]:
        return self._json("GET", f"orders/{int(order_id)}/refunds.json", params={"limit": PAGE_SIZE})[
            "refunds"
        ]

    def list_transactions(self, order_id: str) -> list[dict]:
        """The order's payments (sale/authorization/capture/refund), e.g. for payout matching."""
        return self._json("GET", f"orders/{int(order_id)}/transactions.json")["transactions"]

    # --- webhooks -----------------------------------------------------------------------------------------

    @staticmethod
    def _remote(webhook: dict) -> RemoteWebhook:
        return RemoteWebhook(
            id=str(webhook["id"]), topic=webhook["topic"], delivery_url=webhook["address"], raw=webhook
        )

    def list_webhooks(self) -> list[RemoteWebhook]:
        return [self._remote(w) for w in self._all("webhooks.json", "webhooks", {})]

    def register_webhooks(self, delivery_url: str, secret: str) -> list[RemoteWebhook]:
        """One subscription per topic to `delivery_url`, reusing those that exist. `secret` is not sent:
        Shopify signs every delivery with the app's client secret."""
        existing = self.list_webhooks()
        result = []
        for topic in SYSTEM.webhook_topics:
            mine = [w for w in existing if w.topic == topic and w.delivery_url == delivery_url]
            if mine:
                result.append(mine[0])
                continue
            body = {"webhook": {"topic": topic, "address": delivery_url, "format": "json"}}
            try:
                result.append(self._remote(self._json("POST", "webhooks.json", body=body)["webhook"]))
            except (ValidationError, AmbiguousWriteError) as exc:
                # Taken meanwhile (another worker) or maybe created: look again before giving up.
                if isinstance(exc, ValidationError) and "already been taken" not in exc.message:
                    raise
                again = [
                    w for w in self.list_webhooks() if w.topic == topic and w.delivery_url == delivery_url
                ]
                if not again:
                    raise
                result.append(again[0])
        return result

    def delete_webhooks(self, delivery_url: str) -> None:
        for webhook in self.list_webhooks():
            if webhook.delivery_url == delivery_url:
                with contextlib.suppress(NotFound):  # gone already
                    self._request("DELETE", f"webhooks/{int(webhook.id)}.json")

    # --- stock --------------------------------------------------------------------------------------------

    def _variants_by_sku(self, refresh: bool = False) -> dict[str, list[dict]]:
        if self._variants is None or refresh:
            variants: dict[str, list[dict]] = {}
            for product in self._all("products.json", "products", {"fields": "id,variants"}):
                for variant in product.get("variants") or []:
                    if variant.get("sku"):
                        variants.setdefault(variant["sku"], []).append(variant)
            self._variants = variants
        return self._variants

    def _location_for(self, inventory_item_id: int) -> int:
        if self.settings.get("location_id"):
            return int(self.settings["location_id"])
        levels = self._json(
            "GET", "inventory_levels.json", params={"inventory_item_ids": str(inventory_item_id)}
        )["inventory_levels"]
        locations = {level["location_id"] for level in levels}
        primary = self.shop_document().get("primary_location_id")
        if len(locations) == 1:
            return locations.pop()
        if not locations or primary in locations:
            return int(primary)
        raise ConfigurationError(MESSAGES["location"], system=NAME, details={"locations": sorted(locations)})

    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        """inventory_levels/set.json for every variant with this SKU (Shopify does not enforce unique SKUs),
        at the configured location, else the one the item is stocked at, else the primary location."""
        variants = self._variants_by_sku().get(sku) or self._variants_by_sku(refresh=True).get(sku)
        if not variants:
            return False
        available = whole_units(quantity)
        for variant in variants:
            if not variant.get("inventory_management"):
                raise ConfigurationError(MESSAGES["untracked"], system=NAME, details={"sku": sku})
            item_id = int(variant["inventory_item_id"])
            body = {
                "location_id": self._location_for(item_id),
                "inventory_item_id": item_id,
                "available": available,
            }
            try:
                self._request("POST", "inventory_levels/set.json", body=body)
            except AmbiguousWriteError:
                # Setting an absolute level is safe to repeat.
                self._request("POST", "inventory_levels/set.json", body=body)
        return True


CONNECTOR = ShopifyConnector
