"""WooCommerce (REST API v3 at <shop>/wp-json/wc/v3): orders, refunds, webhooks and stock by SKU.

Connecting is a form: the shop's address and a REST API key (WooCommerce › Settings › Advanced › REST API,
Read/Write). Keys travel by HTTP Basic auth over HTTPS only; a host that strips the Authorization header is
handled by sending the keys as the consumer_key/consumer_secret query parameters instead (WooCommerce's own
documented fallback), which finish_connect detects and stores as `"auth": "query"`.

The shop's address is part of the credentials (`url`); the connector uses it as the site root and falls
back to the context's base_url. Documents are returned exactly as WooCommerce sent them: money stays in its
strings for the engine (portal.engine.sources.woocommerce) to parse with Decimal.

Webhooks are signed base64(HMAC-SHA256(raw body, secret)); a new webhook first gets an unsigned
`webhook_id=N` ping. WooCommerce does not retry a failed delivery and disables a webhook after more than
five consecutive failures, so the pipeline must also poll (list_orders with modified_after).
See docs/connectors/woocommerce.md for what is verified and what is a guess.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import httpx

from portal.connectors import ConnectorContext, StaticCredentials, addresses
from portal.connectors.base import N_
from portal.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    NotFound,
    TransientError,
    ValidationError,
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
    header,
    hmac_base64,
    whole_units,
)

KEY = "woocommerce"
CONFIG_PREFIX = "WOOCOMMERCE_"
API_PATH = "/wp-json/wc/v3"
PAGE_SIZE = 100  # the REST API's maximum per_page
DEFAULT_RATE = 5.0  # requests per second per shop: WooCommerce has no limit of its own, shared hosts do
DEFAULT_TIMEOUT_SECONDS = 30.0  # WordPress answers slowly on small hosts
WEBHOOK_NAME = "Bogbro {topic}"
PING = re.compile(rb"webhook_id=(\d+)")
# WooCommerce Subscriptions' own topics (WCS_Webhooks::add_topics): subscribed where the plugin is active, so
# the transfer log shows them as stored and ignored (a renewal arrives as its order's order.* topics).
SUBSCRIPTION_TOPICS = (
    "subscription.created",
    "subscription.updated",
    "subscription.deleted",
    "subscription.switched",
)

SYSTEM = SourceSystem(
    key=KEY,
    name="WooCommerce",
    connect="api_key",
    # Stock flows from the accounting system to the shop, so product.updated would only echo our own writes.
    webhook_topics=("order.created", "order.updated", "order.deleted"),
    notes=(
        N_(
            "Create a REST API key with Read/Write permissions in WooCommerce under Settings > Advanced > "
            "REST API, and enter it together with your shop's address."
        ),
        N_(
            "WooCommerce does not resend a webhook that failed and turns a webhook off after repeated "
            "failures, so Bogbro also checks your shop for changed orders regularly."
        ),
        N_("Refunds arrive as order updates: WooCommerce has no webhook of its own for refunds."),
    ),
)

MESSAGES = {
    "url": N_("Enter your shop's address, e.g. https://www.minbutik.dk."),
    "https": N_(
        "Your shop's address must start with https://. WooCommerce keys must not be sent unencrypted: "
        "install an SSL certificate on the shop first."
    ),
    "consumer_key": N_(
        "The consumer key starts with ck_. Copy it from WooCommerce > Settings > Advanced > REST API."
    ),
    "consumer_secret": N_(
        "The consumer secret starts with cs_. It is shown only once, when the key is created: create a new "
        "key if you no longer have it."
    ),
    "refused": N_(
        "WooCommerce did not accept this key. Check the consumer key and secret, and that the key belongs "
        "to a user who may manage WooCommerce."
    ),
    "not_woocommerce": N_(
        "No WooCommerce REST API answered at this address. Check the address, that WooCommerce is "
        "active, and that permalinks are not set to 'Plain'."
    ),
    "unreachable": N_("Your shop could not be reached. Check the address and try again."),
    "private": N_(
        "This address leads to a private or internal network. Enter your shop's public address, e.g. "
        "https://www.minbutik.dk."
    ),
}


def sandbox_settings(origin: str) -> dict:
    """Bogbro's WooCommerce emulator (a shop's site root) and its demo key."""
    return {
        "api_url": f"{origin}/sandbox/woocommerce",
        "demo_consumer_key": "ck_demo",
        "demo_consumer_secret": "cs_demo",
        "requests_per_second": 50,
    }


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """WordPress' own message from {"code", "message", "data": {"status", "params"}}; `details` keeps the
    body (its `code` tells e.g. a missing permission from an unknown id)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] if text else response.reason_phrase), {}
    if not isinstance(body, dict):
        return str(body)[:300], {}
    message = str(body.get("message") or body.get("code") or response.reason_phrase)
    params = (body.get("data") or {}).get("params") if isinstance(body.get("data"), dict) else None
    if isinstance(params, dict) and params:
        message = f"{message} ({'; '.join(str(v) for v in params.values())})"
    return message, body


def wc_code(error: ConnectorError) -> str:
    return str((error.details or {}).get("code") or "")


def site_root(url: str) -> str:
    """The shop's address without a trailing slash or a pasted /wp-json… or /wp-admin… suffix."""
    url = url.strip()
    if url and "://" not in url:
        url = "https://" + url
    url = re.sub(r"/(wp-json|wp-admin|wp-login\.php)(/.*)?$", "", url.split("?")[0].split("#")[0])
    return url.rstrip("/")


def _gmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class WooCommerceConnector(SourceConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings or {}
        credentials = context.credentials.get()
        self.site = site_root(credentials.get("url") or context.base_url)
        rate = float(self.settings.get("requests_per_second") or DEFAULT_RATE)
        shop = hashlib.sha256(self.site.encode()).hexdigest()[:16]
        seconds = float(self.settings.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
        self.api = client_for(
            context,
            system="WooCommerce",
            base_url=self.site + API_PATH,
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            limiter=limiter_for(context, f"{KEY}:{shop}", per_second(rate, burst=max(1, int(rate)))),
            error_message=error_message,
        )
        self.page_size = int(self.settings.get("page_size") or PAGE_SIZE)

    def close(self):
        self.api.close()

    # --- transport ---

    def _request(self, method: str, path: str, *, params=None, body=None) -> httpx.Response:
        if self.settings.get("public_addresses_only") and not addresses.is_public(self.site):
            raise ConfigurationError(MESSAGES["private"], system=KEY, details={"field": "url"})
        credentials = self.context.credentials.get()
        key, secret = credentials["consumer_key"], credentials["consumer_secret"]
        params = dict(params or {})
        kwargs = {}
        if credentials.get("auth") == "query":
            params.update(consumer_key=key, consumer_secret=secret)
        else:
            kwargs["auth"] = httpx.BasicAuth(key, secret)
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        return self.api.request(method, path, params=params or None, **kwargs)

    def _json(self, method: str, path: str, **kwargs):
        return self._parse(self._request(method, path, **kwargs))

    @staticmethod
    def _parse(response: httpx.Response):
        try:
            return response.json()
        except ValueError:
            # A 2xx that is not JSON: a caching plugin, a login page or PHP notices before the body.
            raise TransientError(
                f"WooCommerce answered {response.status_code} without JSON", system="WooCommerce"
            ) from None

    def _page(self, path: str, params: dict, page: int) -> Page:
        response = self._request("GET", path, params={**params, "per_page": self.page_size, "page": page})
        items = self._parse(response)
        total = int(response.headers.get("X-WP-Total", len(items)))
        pages = int(response.headers.get("X-WP-TotalPages", 1))
        return Page(items=items, total=total, next_page=page + 1 if page < pages else None)

    def _all(self, path: str, params: dict | None = None) -> list[dict]:
        items, page = [], 1
        while page is not None:
            result = self._page(path, params or {}, page)
            items.extend(result.items)
            page = result.next_page
        return items

    # --- the shop ---

    def verify(self) -> dict:
        """One authenticated read (system_status needs the key's user to manage WooCommerce)."""
        status = self._json("GET", "/system_status", params={"_fields": "environment,settings"})
        environment = status.get("environment") or {}
        settings = status.get("settings") or {}
        home = environment.get("home_url") or self.site
        return {
            "name": urlsplit(home).netloc or home,
            "url": home,
            "currency": settings.get("currency"),
            "wc_version": environment.get("version"),
            "wp_version": environment.get("wp_version"),
        }

    # --- orders and refunds ---

    def list_orders(self, modified_after: datetime | None = None, page: int = 1) -> Page:
        """Orders (any status but trash), least recently modified first. WooCommerce's modified_after has
        one-second resolution and is exclusive, so we ask from one second earlier: an order changed in
        the same second as the caller's mark comes again rather than never (the pipeline deduplicates)."""
        params = {"status": "any", "orderby": "modified", "order": "asc"}
        if modified_after is not None:
            moment = modified_after.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=1)
            params.update(modified_after=_gmt(moment), dates_are_gmt="true")
        try:
            return self._page("/orders", params, page)
        except ValidationError as error:
            if "orderby" not in str((error.details.get("data") or {}).get("params") or {}):
                raise
            # Older WooCommerce has no orderby=modified: the oldest orders first instead.
            return self._page("/orders", {**params, "orderby": "date"}, page)

    def get_order(self, order_id: str) -> dict:
        return self._json("GET", f"/orders/{int(order_id)}")

    def list_refunds(self, order_id: str) -> list[dict]:
        return self._all(f"/orders/{int(order_id)}/refunds")

    def find_order(self, number: str) -> dict | None:
        """The order whose number (what the customer sees) is `number`. The number is the id unless a
        sequential-numbers plugin renumbers orders, so `search` (which looks at the number and the billing
        address) finds it either way; only an exact number counts. Else the order with that id."""
        number = str(number).strip().lstrip("#")
        if not number:
            return None
        params = {"search": number, "status": "any", "per_page": PAGE_SIZE}
        found = self._json("GET", "/orders", params=params)
        exact = [order for order in found if str(order.get("number")) == number]
        if exact:
            return exact[0]
        if number.isdigit():
            with contextlib.suppress(NotFound):
                return self.get_order(number)
        return None

    # --- webhooks ---

    @staticmethod
    def _remote(document: dict) -> RemoteWebhook:
        return RemoteWebhook(
            id=str(document["id"]),
            topic=document.get("topic", ""),
            delivery_url=document.get("delivery_url", ""),
            status=document.get("status", ""),
            raw=document,
        )

    def list_payment_gateways(self) -> list[tuple[str, str, bool]]:
        """(id, title at checkout, enabled) of every gateway in the shop, in checkout order: the ids orders
        carry in `payment_method`. WooCommerce lets the key's user read them with manage_woocommerce."""
        return [
            (str(g["id"]), g.get("title") or g.get("method_title") or str(g["id"]), bool(g.get("enabled")))
            for g in self._json("GET", "/payment_gateways")
        ]

    def list_webhooks(self) -> list[RemoteWebhook]:
        return [self._remote(w) for w in self._all("/webhooks")]

    def has_subscriptions(self) -> bool:
        """Whether WooCommerce Subscriptions is active: its REST route answers (else WordPress' 404
        rest_no_route)."""
        try:
            self._request("GET", "/subscriptions", params={"per_page": 1})
        except NotFound:
            return False
        return True

    def register_webhooks(self, delivery_url: str, secret: str) -> list[RemoteWebhook]:
        """One active subscription per topic to `delivery_url`, carrying `secret` (the subscription topics
        too where the plugin is active). WooCommerce never shows a webhook's secret, so a kept subscription
        gets the secret (and `active`) written again; extra copies are deleted. Creating makes WooCommerce
        send its unsigned ping first."""
        if not secret:
            raise ConfigurationError("A webhook secret is required", system="WooCommerce")
        existing: dict[str, list[RemoteWebhook]] = {}
        for webhook in self.list_webhooks():
            if webhook.delivery_url == delivery_url:
                existing.setdefault(webhook.topic, []).append(webhook)
        result = []
        topics = SYSTEM.webhook_topics + (SUBSCRIPTION_TOPICS if self.has_subscriptions() else ())
        for topic in topics:
            found = sorted(existing.pop(topic, []), key=lambda w: int(w.id))
            for duplicate in found[1:]:
                self._delete_webhook(duplicate.id)
            body = {"secret": secret, "status": "active"}
            if found:
                document = self._json("PUT", f"/webhooks/{found[0].id}", body=body)
            else:
                body.update(name=WEBHOOK_NAME.format(topic=topic), topic=topic, delivery_url=delivery_url)
                document = self._json("POST", "/webhooks", body=body)
            result.append(self._remote(document))
        for others in existing.values():  # our URL on topics we no longer use
            for webhook in others:
                self._delete_webhook(webhook.id)
        return result

    def _delete_webhook(self, webhook_id: str) -> None:
        with contextlib.suppress(NotFound):  # gone already (e.g. our earlier attempt's answer was lost)
            self._request("DELETE", f"/webhooks/{int(webhook_id)}", params={"force": "true"})

    def delete_webhooks(self, delivery_url: str) -> None:
        for webhook in self.list_webhooks():
            if webhook.delivery_url == delivery_url:
                self._delete_webhook(webhook.id)

    # --- stock ---

    def find_sku(self, sku: str) -> dict | None:
        """The product or variation with this SKU (GET /products?sku= searches both). WooCommerce compares
        SKUs case-insensitively and keeps them unique that way, so an exact match wins, else the only
        case-insensitive one."""
        if not sku:
            return None
        found = self._json("GET", "/products", params={"sku": sku, "per_page": PAGE_SIZE})
        exact = [p for p in found if p.get("sku") == sku]
        if exact:
            return exact[0]
        folded = [p for p in found if str(p.get("sku", "")).casefold() == sku.casefold()]
        return folded[0] if len(folded) == 1 else None

    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        """Managed stock for a product or variation. WooCommerce counts whole units: a fraction is rounded
        down, so the shop never offers more than there is."""
        product = self.find_sku(sku)
        if product is None:
            return False
        units = whole_units(quantity)
        body = {"manage_stock": True, "stock_quantity": units}
        if product.get("type") == "variation" and product.get("parent_id"):
            self._json(
                "PUT", f"/products/{int(product['parent_id'])}/variations/{int(product['id'])}", body=body
            )
        else:
            self._json("PUT", f"/products/{int(product['id'])}", body=body)
        return True


CONNECTOR = WooCommerceConnector


# --- webhooks in -------------------------------------------------------------------------------------------


signature = hmac_base64  # X-WC-Webhook-Signature, with the webhook's secret


def verify_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery:
    """A verified delivery, or WebhookRejected. The signature is checked on the raw bytes, in constant
    time, before anything is parsed. The unsigned creation ping (`webhook_id=N`) is a ping: answer 200."""
    provided = header(headers, "X-WC-Webhook-Signature").strip()
    if not provided:
        ping = PING.fullmatch(raw_body.strip())
        if ping:
            return WebhookDelivery(
                delivery_id=f"ping-{ping.group(1).decode()}", topic="ping", resource_id=None, is_ping=True
            )
        raise WebhookRejected("no X-WC-Webhook-Signature header: not a WooCommerce webhook")
    if not secret:
        raise WebhookRejected("no webhook secret is stored for this shop")
    try:
        base64.b64decode(provided, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("X-WC-Webhook-Signature is not base64") from None
    if not hmac.compare_digest(signature(raw_body, secret).encode(), provided.encode()):
        raise WebhookRejected("X-WC-Webhook-Signature does not match the body")
    topic = header(headers, "X-WC-Webhook-Topic")
    delivery_id = header(headers, "X-WC-Webhook-Delivery-ID")
    if not topic or not delivery_id:
        raise WebhookRejected("X-WC-Webhook-Topic or X-WC-Webhook-Delivery-ID is missing")
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise WebhookRejected("the signed body is not JSON") from None
    resource_id = body.get("id") if isinstance(body, dict) else None
    return WebhookDelivery(
        # WooCommerce's delivery id is wp_hash(webhook id + the current second): two changes of an order
        # within one second share it. With the body's hash a replay still deduplicates, those do not.
        delivery_id=f"{delivery_id[:100]}:{hashlib.sha256(raw_body).hexdigest()[:32]}",
        topic=topic,
        resource_id=str(resource_id) if resource_id not in (None, "") else None,
    )


# --- connecting ---------------------------------------------------------------------------------------------


def start_connect(settings: dict, callback_url: str, state: str) -> str | None:
    """No redirect: the customer enters the shop's address and a REST API key in a form."""
    return None


def finish_connect(settings: dict, params: dict, callback_url: str, transport=None) -> dict:
    """The submitted address and key → {"url", "consumer_key", "consumer_secret"} (+ "auth": "query" when
    the shop's host drops the Authorization header), after one authenticated call."""
    sandbox_url = site_root(settings.get("api_url") or "") if settings.get("api_url") else ""
    url = site_root(str(params.get("url") or "")) or sandbox_url
    key = str(params.get("consumer_key") or "").strip()
    secret = str(params.get("consumer_secret") or "").strip()
    # parsed() first: urlsplit itself raises on some garbage ("https://[")
    if not url or addresses.parsed(url + API_PATH) is None or not urlsplit(url).netloc:
        raise ConfigurationError(MESSAGES["url"], system=KEY, details={"field": "url"})
    if urlsplit(url).scheme != "https" and url != sandbox_url:
        raise ConfigurationError(MESSAGES["https"], system=KEY, details={"field": "url"})
    if settings.get("public_addresses_only") and not addresses.is_public(url):
        raise ConfigurationError(MESSAGES["private"], system=KEY, details={"field": "url"})
    if not re.fullmatch(r"ck_\w+", key):
        raise ConfigurationError(MESSAGES["consumer_key"], system=KEY, details={"field": "consumer_key"})
    if not re.fullmatch(r"cs_\w+", secret):
        raise ConfigurationError(
            MESSAGES["consumer_secret"], system=KEY, details={"field": "consumer_secret"}
        )
    credentials = {"url": url, "consumer_key": key, "consumer_secret": secret}
    try:
        _verify(settings, credentials, transport)
    except AuthenticationError as first:
        if not wc_code(first).startswith("woocommerce_rest_cannot_"):
            raise _refused(first) from first
        # No user at all: a wrong key, or a host that strips the Authorization header. Try the query.
        credentials["auth"] = "query"
        try:
            _verify(settings, credentials, transport)
        except AuthenticationError as second:
            raise _refused(second) from second
    return credentials


def _verify(settings: dict, credentials: dict, transport) -> None:
    connector = WooCommerceConnector(
        ConnectorContext(
            base_url=credentials["url"],
            credentials=StaticCredentials(credentials),
            transport=transport,
            settings=settings,
            retries=1,
        )
    )
    try:
        connector.verify()
    except (NotFound, ValidationError) as error:  # NotFound's status is 404
        raise ConfigurationError(
            MESSAGES["not_woocommerce"],
            system=KEY,
            status=error.status,
            details={"woocommerce": error.message},
        ) from error
    except TransientError as error:
        raise ConfigurationError(
            MESSAGES["unreachable"], system=KEY, details={"woocommerce": error.message}
        ) from error
    finally:
        connector.close()


def _refused(error: AuthenticationError) -> ConfigurationError:
    return ConfigurationError(
        MESSAGES["refused"], system=KEY, status=error.status, details={"woocommerce": error.message}
    )
