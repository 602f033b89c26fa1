"""Shopify: a shop's GraphQL Admin API (POST https://{shop}.myshopify.com/admin/api/2026-04/graphql.json)
with an offline access token from Shopify's OAuth install. No REST path is called (REST is legacy; new
public apps must use GraphQL since 2025-04-01).

- Connecting: `start_connect` sends the merchant's browser to the shop's install page
  (admin/oauth/authorize, comma-separated scopes); `finish_connect` checks the callback's `hmac` (hex
  HMAC-SHA256 of the other query parameters with the app's client secret), the shop domain and the
  `state`, then exchanges the code at admin/oauth/access_token (through ApiClient, without retries) for
  {"shop", "access_token", "scope"}. Offline tokens do not expire; an uninstall revokes them (401).
- Every call sends X-Shopify-Access-Token and has a timeout. Shopify limits GraphQL by query cost: a
  THROTTLED answer (HTTP 200, `errors[].extensions.code`) is sent again after the time the bucket needs to
  refill to the query's cost (extensions.cost.throttleStatus). The documents and the conversion of their
  answers into the REST-shaped documents the engine and webhooks use are in shopify_graphql.py.
- Lists page by cursor (`pageInfo.endCursor` as `after`); `Page.next_page` carries the search and cursor.
- Money stays exactly as Shopify sends it (decimal strings) in the raw documents; the engine
  (portal.engine.sources.shopify) parses it with Decimal.
- Webhooks are signed by Shopify with the app's client secret (not a per-subscription secret):
  `verify_webhook` checks X-Shopify-Hmac-Sha256 on the raw body before anything is parsed; X-Shopify-Event-Id
  is the duplicate key.
"""

import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import httpx

from portal.connectors import ConnectorContext
from portal.connectors import shopify_graphql as queries
from portal.connectors.base import N_
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFound,
    TransientError,
    ValidationError,
)
from portal.connectors.http import ApiClient, client_for
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
API_VERSION = "2026-04"  # the GraphQL Admin API version whose schema the contract tests check against
SCOPES = "read_orders,read_products,read_inventory,write_inventory,read_locations"
TIMEOUT_SECONDS = 20.0
PAGE_SIZE = 50  # orders per page of ids (each order is then read on its own)
THROTTLE_RETRIES = 5
MAX_THROTTLE_WAIT = 60.0
CALLBACK_MAX_AGE_SECONDS = 24 * 3600
TOPICS = ("orders/create", "orders/updated", "refunds/create", "app/uninstalled")
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9\-]*\.myshopify\.com$")

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
    # X-Shopify-Event-Id is Shopify's documented duplicate key (the same event sent again, or once per
    # subscription); X-Shopify-Webhook-Id, one per delivery, stands in where it is missing.
    delivery_id = _header(headers, "shopify-event-id") or _header(headers, "shopify-webhook-id")
    shop = (_header(headers, "shopify-shop-domain") or "").strip().lower()
    if not topic or not delivery_id or not shop:
        raise WebhookRejected(
            "a signed Shopify request without X-Shopify-Topic, X-Shopify-Shop-Domain or X-Shopify-Event-Id"
        )
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
        shop=shop,
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


def _throttle_wait(cost: dict) -> float:
    """Seconds until the bucket holds the query's requested cost again (extensions.cost.throttleStatus)."""
    status = cost.get("throttleStatus") or {}
    rate = float(status.get("restoreRate") or 50.0)
    missing = float(cost.get("requestedQueryCost") or rate) - float(status.get("currentlyAvailable") or 0)
    return max(1.0, round(missing / rate + 0.5, 1))


def _graphql_error(errors: list[dict]) -> Exception:
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    text = "; ".join(str(e.get("message")) for e in errors)
    details = {"errors": errors}
    if "ACCESS_DENIED" in codes:
        return ConfigurationError(MESSAGES["scopes"], system=NAME, details=details)
    if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "THROTTLED"}:
        return TransientError(f"Shopify: {text}", system=NAME, details=details)
    return ConfigurationError(f"Shopify refused the request: {text}", system=NAME, details=details)


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("modified_after must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the connector ------------------------------------------------------------------------------------------


class ShopifyConnector(SourceConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings
        credentials = context.credentials.get()
        self.shop = normalise_shop(credentials.get("shop") or context.external_id)
        # Pinned: every document is validated against this version's schema (a new version: validate again).
        base_url = context.base_url.format(shop=self.shop).rstrip("/") + f"/admin/api/{API_VERSION}"
        # No request-count limiter: GraphQL is limited by query cost, which Shopify reports on every answer.
        self.api = client_for(
            context,
            system=NAME,
            base_url=base_url,
            timeout=httpx.Timeout(float(self.settings.get("timeout", TIMEOUT_SECONDS)), connect=5.0),
            error_message=error_message,
        )
        self.page_size = int(self.settings.get("page_size", PAGE_SIZE))
        self._variants: dict[str, list[dict]] = {}  # SKU -> variants, read once per connector
        self._shop: dict | None = None
        self._bucket: tuple[float, float, float] | None = None  # currentlyAvailable, restoreRate, when
        self._costs: dict[str, float] = {}  # document -> its last requested cost

    # --- plumbing -----------------------------------------------------------------------------------------

    def graphql(self, document: str, variables: dict | None = None, *, write: bool = False) -> dict:
        """POST graphql.json; the answer's `data`. A THROTTLED answer (HTTP 200) is sent again once the
        bucket has refilled to the query's cost (restoreRate from extensions.cost.throttleStatus). Reads are
        safe to repeat after a dropped connection; a write (`write=True`) is not."""
        headers = {
            "X-Shopify-Access-Token": self.context.credentials.get()["access_token"],
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        body = json.dumps({"query": document, "variables": variables or {}}).encode()
        for attempt in range(THROTTLE_RETRIES + 1):
            self._pace(document)
            response = self.api.request(
                "POST", "graphql.json", headers=headers, content=body, idempotent=not write
            )
            try:
                answer = response.json()
            except ValueError as exc:
                raise TransientError("Shopify answered with something that is not JSON", system=NAME) from exc
            errors = answer.get("errors") or []
            cost = (answer.get("extensions") or {}).get("cost") or {}
            self._note_cost(document, cost)
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                wait = _throttle_wait(cost)
                if attempt == THROTTLE_RETRIES or wait > MAX_THROTTLE_WAIT:
                    raise TransientError("Shopify: Throttled", system=NAME, retry_after=wait)
                self.context.sleep(wait)
                continue
            if errors:
                raise _graphql_error(errors)
            return answer.get("data") or {}
        raise AssertionError("unreachable")

    def _note_cost(self, document: str, cost: dict) -> None:
        status = cost.get("throttleStatus") or {}
        if status.get("currentlyAvailable") is not None and status.get("restoreRate"):
            self._bucket = (
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                time.monotonic(),
            )
        if cost.get("requestedQueryCost") is not None:
            self._costs[document] = float(cost["requestedQueryCost"])

    def _pace(self, document: str) -> None:
        """Wait before a query the bucket (as Shopify last reported it, refilled since) cannot pay for: the
        THROTTLED answer is then not needed. Other workers spend from the same bucket, so THROTTLED still
        happens and is handled."""
        if self._bucket is None or document not in self._costs:
            return
        available, rate, at = self._bucket
        missing = self._costs[document] - (available + (time.monotonic() - at) * rate)
        if missing > 0:
            self.context.sleep(min(MAX_THROTTLE_WAIT, missing / rate))

    def close(self):
        self.api.close()

    # --- the shop -----------------------------------------------------------------------------------------

    def shop_document(self) -> dict:
        if self._shop is None:
            self._shop = self.graphql(queries.SHOP)["shop"]
        return self._shop

    def verify(self) -> dict:
        """The shop's basics (a 401 here means the app was uninstalled)."""
        self._shop = None
        shop = self.shop_document()
        return {
            "id": str(queries.legacy_id(shop["id"])),
            "name": shop.get("name"),
            "domain": shop.get("myshopifyDomain") or self.shop,
            "email": shop.get("email"),
            "country": (shop.get("billingAddress") or {}).get("countryCodeV2"),
            "currency": shop.get("currencyCode"),
            "prices_include_tax": bool(shop.get("taxesIncluded")),
            "timezone": shop.get("ianaTimezone"),
        }

    # --- orders, refunds, transactions --------------------------------------------------------------------

    def list_orders(self, modified_after: datetime | None = None, page: int | str = 1) -> Page:
        """One page of orders of any status, least recently changed first; `page` is 1 or the previous
        Page's next_page (an `after` cursor with the filter). Each order is then read whole."""
        if isinstance(page, str):
            search, _, after = page.partition("|")
        elif page == 1:
            search = f"updated_at:>='{_utc_iso(modified_after)}'" if modified_after is not None else ""
            after = ""
        else:
            raise ValueError("Shopify pages by cursor: pass the next_page of the previous Page")
        found = self.graphql(
            queries.ORDER_IDS, {"query": search or None, "after": after or None, "first": self.page_size}
        )["orders"]
        items = [self._order(node["id"]) for node in found["nodes"]]
        info = found["pageInfo"]
        next_page = f"{search}|{info['endCursor']}" if info["hasNextPage"] else None
        return Page(items=[item for item in items if item is not None], total=None, next_page=next_page)

    def _order(self, order_gid: str) -> dict | None:
        data = self.graphql(queries.ORDER, {"id": order_gid})["order"]
        if data is None:
            return None
        connection = data["lineItems"]
        lines = list(connection["nodes"])
        while connection["pageInfo"]["hasNextPage"]:
            after = connection["pageInfo"]["endCursor"]
            connection = self.graphql(queries.ORDER_LINES, {"id": order_gid, "lines": after})["order"][
                "lineItems"
            ]
            lines += connection["nodes"]
        return queries.order(data, lines, self._refunds(data["refunds"], queries.legacy_id(order_gid)))

    def _refunds(self, refs: list[dict], order_id: int) -> list[dict]:
        refunds = []
        for ref in refs:
            node = self.graphql(queries.REFUND, {"id": ref["id"]})["refund"]
            if node is not None:
                refunds.append(queries.refund(node, order_id))
        return refunds

    def get_order(self, order_id: str) -> dict:
        order = self._order(queries.gid("Order", order_id))
        if order is None:
            raise NotFound(f"Shopify has no order {order_id}", system=NAME, status=404)
        return order

    def find_order(self, number: str) -> dict | None:
        """The order whose number (1001, shown as the name "#1001") is `number`, searched by name and
        checked here (a shop may prefix names), else the order with that id."""
        number = str(number).strip().lstrip("#")
        if not number:
            return None
        found = self.graphql(queries.ORDERS_BY_NAME, {"query": f"name:{queries.search_value(number)}"})
        for node in found["orders"]["nodes"]:
            if number in (str(node.get("number")), str(node.get("name") or "").lstrip("#")):
                return self._order(node["id"])
        if number.isdigit():
            with contextlib.suppress(NotFound):
                return self.get_order(number)
        return None

    def list_refunds(self, order_id: str) -> list[dict]:
        order_gid = queries.gid("Order", order_id)
        order = self.graphql(queries.REFUND_IDS, {"id": order_gid})["order"]
        if order is None:
            raise NotFound(f"Shopify has no order {order_id}", system=NAME, status=404)
        return self._refunds(order["refunds"], queries.legacy_id(order_gid))

    def list_transactions(self, order_id: str) -> list[dict]:
        """The order's payments (sale/authorization/capture/refund), e.g. for payout matching."""
        order_gid = queries.gid("Order", order_id)
        order = self.graphql(queries.TRANSACTIONS, {"id": order_gid})["order"]
        if order is None:
            raise NotFound(f"Shopify has no order {order_id}", system=NAME, status=404)
        return [queries.transaction(t, queries.legacy_id(order_gid)) for t in order["transactions"]]

    # --- webhooks -----------------------------------------------------------------------------------------

    @staticmethod
    def _remote(node: dict) -> RemoteWebhook:
        return RemoteWebhook(
            id=node["id"], topic=queries.topic_name(node["topic"]), delivery_url=node["uri"], raw=node
        )

    def list_webhooks(self) -> list[RemoteWebhook]:
        hooks, after = [], None
        while True:
            found = self.graphql(queries.WEBHOOKS, {"after": after})["webhookSubscriptions"]
            hooks += [self._remote(node) for node in found["nodes"]]
            if not found["pageInfo"]["hasNextPage"]:
                return hooks
            after = found["pageInfo"]["endCursor"]

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
            variables = {
                "topic": queries.topic_enum(topic),
                "subscription": {"uri": delivery_url, "format": "JSON"},
            }
            try:
                created = self.graphql(queries.WEBHOOK_CREATE, variables, write=True)[
                    "webhookSubscriptionCreate"
                ]
                problems = created["userErrors"]
                if not problems:
                    result.append(self._remote(created["webhookSubscription"]))
                    continue
                text = "; ".join(p["message"] for p in problems)
                if "already been taken" not in text:
                    raise ValidationError(text, system=NAME, details={"userErrors": problems})
            except AmbiguousWriteError:
                pass
            # Taken meanwhile (another worker) or maybe created: look again before giving up.
            again = [w for w in self.list_webhooks() if w.topic == topic and w.delivery_url == delivery_url]
            if not again:
                raise TransientError(f"Shopify: the {topic} subscription could not be confirmed", system=NAME)
            result.append(again[0])
        return result

    def delete_webhooks(self, delivery_url: str) -> None:
        for webhook in self.list_webhooks():
            if webhook.delivery_url == delivery_url:
                # A subscription gone already answers with a userError: nothing to do.
                self.graphql(queries.WEBHOOK_DELETE, {"id": webhook.id}, write=True)

    # --- stock --------------------------------------------------------------------------------------------

    def _variants_by_sku(self, sku: str) -> list[dict]:
        """Every variant with exactly this SKU (Shopify does not enforce unique SKUs), page by page."""
        if sku not in self._variants:
            variants, after = [], None
            while True:
                found = self.graphql(
                    queries.VARIANTS_BY_SKU, {"query": f"sku:{queries.search_value(sku)}", "after": after}
                )["productVariants"]
                variants += [v for v in found["nodes"] if v.get("sku") == sku]
                if not found["pageInfo"]["hasNextPage"]:
                    break
                after = found["pageInfo"]["endCursor"]
            self._variants[sku] = variants
        return self._variants[sku]

    def _location_for(self, item: dict) -> str:
        if self.settings.get("location_id"):
            return queries.gid("Location", self.settings["location_id"])
        locations = {level["location"]["id"] for level in item["inventoryLevels"]["nodes"]}
        if len(locations) == 1:
            return locations.pop()
        primary = (self.graphql(queries.PRIMARY_LOCATION)["location"] or {}).get("id")
        if not locations or primary in locations:
            return primary
        ids = sorted(queries.legacy_id(location) for location in locations)
        raise ConfigurationError(MESSAGES["location"], system=NAME, details={"locations": ids})

    def set_stock(self, sku: str, quantity: Decimal) -> bool:
        """inventorySetQuantities ("available", absolute, so safe to repeat) for every variant with this
        SKU, at the configured location, else the one the item is stocked at, else the primary location."""
        variants = self._variants_by_sku(sku)
        if not variants:
            return False
        available = whole_units(quantity)
        for variant in variants:
            item = variant["inventoryItem"]
            if not item.get("tracked"):
                raise ConfigurationError(MESSAGES["untracked"], system=NAME, details={"sku": sku})
            change = {
                "inventoryItemId": item["id"],
                "locationId": self._location_for(item),
                "quantity": available,
                "changeFromQuantity": None,  # Bogbro's count is the truth; Shopify wants the null said
            }
            # A fresh key per write; a retry of the same request (dropped connection, THROTTLED) keeps it.
            variables = {
                "input": {"name": "available", "reason": "correction", "quantities": [change]},
                "key": str(uuid.uuid4()),
            }
            result = self.graphql(queries.SET_QUANTITIES, variables)["inventorySetQuantities"]
            if result["userErrors"]:
                text = "; ".join(e["message"] for e in result["userErrors"])
                raise ValidationError(
                    text, system=NAME, details={"userErrors": result["userErrors"], "sku": sku}
                )
        return True


CONNECTOR = ShopifyConnector
