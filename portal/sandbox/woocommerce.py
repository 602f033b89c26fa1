"""Emulator of one WooCommerce shop (WordPress + WooCommerce REST API v3) below /sandbox/woocommerce/.

/sandbox/woocommerce/ is the shop's site root: the API is at wp-json/wc/v3/… (or ?rest_route=/wc/v3/… as on
a site with plain permalinks). Keys: ck_demo / cs_demo (read/write) and ck_demo_read / cs_demo_read (read
only), by HTTP Basic auth or the consumer_key/consumer_secret query parameters; the sandbox counts as
HTTPS, so OAuth 1.0a is not emulated.

What WooCommerce does and we copy (sources in docs/connectors/woocommerce.md): the order, refund, product,
variation, customer and webhook documents of the published v3 examples; WordPress error bodies
{"code", "message", "data": {"status"}}; X-WP-Total / X-WP-TotalPages / Link pagination; the orders filters
(status, after/before, modified_after/before, dates_are_gmt, orderby incl. modified, include/exclude,
customer, product, search); /products?sku= over products and variations. Webhooks: deliveries are queued
until the request ends and coalesced per (webhook, resource) while one is pending, built from the current
state when delivered, signed base64(HMAC-SHA256(raw body, secret)), never retried, and the webhook is
disabled after more than 5 consecutive failures (class-wc-webhook.php). Creating a webhook sends an
unsigned `webhook_id=N` ping.

What is ours: POST /orders keeps a complete document as given and computes only what is left out (a Danish
shop, prices incl. 25 % VAT); see the guess list in the doc. State lives in SandboxStore.
"""

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import string
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from flask import Blueprint, Response, g, request
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.queue import enqueue_after_commit
from portal.sandbox.common import post_webhook, signature
from portal.sandbox.store import SandboxStore

log = logging.getLogger(__name__)

SYSTEM = "woocommerce"
PREFIX = "/sandbox/woocommerce"
NAMESPACE = "/wc/v3"
TENANT = "shop"  # one shop per sandbox site
DEMO_KEY, DEMO_SECRET = "ck_demo", "cs_demo"  # public demo keys
READ_KEY, READ_SECRET = "ck_demo_read", "cs_demo_read"
WC_VERSION, WP_VERSION = "9.8.5", "6.8.1"
USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
TIMEZONE = ZoneInfo("Europe/Copenhagen")
VAT = Decimal("25")
TAX_RATE = {"rate_id": 1, "rate_code": "MOMS-1", "label": "Moms", "compound": False, "rate_percent": 25}
CENT = Decimal("0.01")
MAX_FAILURES = 5  # the woocommerce_max_webhook_delivery_failures default
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed")
PAID_STATUSES = ("processing", "completed")  # wc_get_is_paid_statuses()
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
# Core gateways cannot refund through the API; payment plugins can (WC_Payment_Gateway::supports('refunds')).
GATEWAYS = {"bacs": False, "cheque": False, "cod": False, "quickpay": True, "stripe": True, "mobilepay": True}
TOPIC_HOOKS = {  # WC_Webhook::get_default_topic_hooks()
    "coupon.created": ["woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"],
    "coupon.updated": ["woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"],
    "coupon.deleted": ["wp_trash_post"],
    "coupon.restored": ["untrashed_post"],
    "customer.created": ["user_register", "woocommerce_created_customer", "woocommerce_new_customer"],
    "customer.updated": ["profile_update", "woocommerce_update_customer"],
    "customer.deleted": ["delete_user"],
    "order.created": ["woocommerce_new_order"],
    "order.updated": [
        "woocommerce_update_order",
        "woocommerce_order_refunded",
        "woocommerce_delete_order_refund",
    ],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
    "product.created": [
        "woocommerce_process_product_meta",
        "woocommerce_new_product",
        "woocommerce_new_product_variation",
    ],
    "product.updated": [
        "woocommerce_process_product_meta",
        "woocommerce_update_product",
        "woocommerce_update_product_variation",
    ],
    "product.deleted": ["wp_trash_post"],
    "product.restored": ["untrashed_post"],
}
WEBHOOK_STATUSES = ("active", "paused", "disabled")
# Webhook payloads for resources a plugin adds (the woocommerce_webhook_payload filter): resource ->
# builder(shop, resource id, site). WooCommerce Subscriptions adds "subscription".
EXTRA_PAYLOADS: dict = {}

bp = Blueprint("sandbox_woocommerce", __name__)


class WPError(Exception):
    """A WordPress REST error: {"code", "message", "data": {"status", …}}."""

    def __init__(self, code: str, message: str, status: int, **data):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.data = data

    def response(self) -> Response:
        headers = {}
        if self.data.pop("www_authenticate", False):
            headers["WWW-Authenticate"] = (
                'Basic realm="WooCommerce API. Use a consumer key in the username field and a consumer '
                'secret in the password field."'
            )
        body = {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}}
        return answer(body, self.status, headers)


def invalid_param(name: str, message: str) -> WPError:
    return WPError("rest_invalid_param", f"Invalid parameter(s): {name}", 400, params={name: message})


# --- encoding, money, dates ------------------------------------------------------------------------------


def php_json(value) -> str:
    """JSON as PHP's json_encode writes it (wp_json_encode without flags): \\uXXXX escapes and \\/."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def answer(data, status: int = 200, headers: dict | None = None) -> Response:
    if status < 400 and isinstance(data, dict | list) and request.args.get("_fields"):
        data = only_fields(data, request.args["_fields"].split(","))
    return Response(
        php_json(data), status=status, headers=headers or {}, content_type="application/json; charset=UTF-8"
    )


def only_fields(data, fields: list[str]):
    """WordPress' `_fields`: keep only the named top-level fields (of each item of a list)."""
    wanted = {f.strip().split(".")[0] for f in fields if f.strip()}
    if isinstance(data, list):
        return [only_fields(item, fields) for item in data]
    return {key: value for key, value in data.items() if key in wanted}


def dec(value, name: str = "amount") -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise invalid_param(name, f"{name} is not a number.") from None


def money(value: Decimal) -> str:
    """A decimal field as wc_format_decimal($x, 2) writes it: "79.96", "-9.00"."""
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return format(value if value else abs(value), "f")


def raw(value: Decimal) -> str:
    """A tax amount as WooCommerce stores it in taxes[]: no trailing zeros ("19.99", "0.9", "20")."""
    text = format(value if value else abs(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def vat_of_gross(gross: Decimal) -> Decimal:
    return (gross * VAT / (100 + VAT)).quantize(CENT, rounding=ROUND_HALF_UP)


def vat_of_net(net: Decimal) -> Decimal:
    return (net * VAT / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def date_fields(name: str, moment: datetime | None) -> dict:
    """`name` in the site's timezone and `name_gmt` in UTC, both without an offset (as WooCommerce)."""
    if moment is None:
        return {name: None, f"{name}_gmt": None}
    return {name: fmt(moment.astimezone(TIMEZONE)), f"{name}_gmt": fmt(moment.astimezone(UTC))}


def parse_date(text: str, name: str, assume_zone=UTC) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise invalid_param(name, "Invalid date.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=assume_zone)
    return moment.astimezone(UTC)


def given_date(body: dict, name: str) -> datetime | None:
    """A date the caller gave as `name_gmt` (UTC) or `name` (site time)."""
    if body.get(f"{name}_gmt"):
        return parse_date(body[f"{name}_gmt"], f"{name}_gmt")
    if body.get(name):
        return parse_date(body[name], name, TIMEZONE)
    return None


def gmt(document: dict, name: str) -> datetime | None:
    value = document.get(f"{name}_gmt")
    return None if not value else datetime.fromisoformat(value).replace(tzinfo=UTC)


def site_url() -> str:
    return request.host_url.rstrip("/") + request.script_root + PREFIX


def rest_url(site: str, route: str) -> str:
    return f"{site}/wp-json{route}"


def random_key(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- the shop's state -------------------------------------------------------------------------------------


class Shop:
    """One shop's documents in SandboxStore. Orders, refunds, products and variations share WordPress'
    post ids; order items, meta, users and webhooks have their own sequences."""

    def __init__(self, tenant: str = TENANT):
        self.tenant = str(tenant)
        self.store = SandboxStore(SYSTEM, self.tenant)

    def settings(self) -> dict:
        return self.store.get("_shop", "settings") or {}

    def next_id(self, counter: str) -> int:
        return self.store.next_number(counter, start={"post": 100, "user": 2}.get(counter, 1))

    def meta(self, entries) -> list[dict]:
        """meta_data entries with ids, as WooCommerce gives them."""
        return [
            {"id": m.get("id") or self.next_id("meta"), "key": str(m.get("key", "")), "value": m.get("value")}
            for m in entries or []
            if isinstance(m, dict)
        ]

    def get(self, collection: str, key) -> dict | None:
        return self.store.get(collection, key)

    def put(self, collection: str, document: dict) -> dict:
        return self.store.put(collection, document["id"], document)

    def all(self, collection: str) -> list[dict]:
        return self.store.all(collection)


def public(document: dict) -> dict:
    """The document without the sandbox's own bookkeeping."""
    return {key: value for key, value in document.items() if key != "_sandbox"}


# --- products ----------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    table = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "ae", "Ø": "oe", "Å": "aa"})
    return re.sub(r"[^a-z0-9]+", "-", text.translate(table).lower()).strip("-")


def _price_html(price: str) -> str:
    amount = f"{Decimal(price):,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return (
        '<span class="woocommerce-Price-amount amount"><bdi>'
        f'{amount}&nbsp;<span class="woocommerce-Price-currencySymbol">kr.</span></bdi></span>'
    )


def stock_fields(manage_stock: bool, quantity) -> dict:
    if not manage_stock:
        return {"manage_stock": False, "stock_quantity": None, "stock_status": "instock"}
    return {
        "manage_stock": True,
        "stock_quantity": int(quantity),
        "stock_status": "instock" if int(quantity) > 0 else "outofstock",
    }


def new_product(shop: Shop, site: str, name: str, sku: str, price: str, **extra) -> dict:
    """A product document with every field of the v3 example (products-retrieve-a-product-response)."""
    product_id = shop.next_id("post")
    slug = _slug(name)
    created = now_utc()
    document = {
        "id": product_id,
        "name": name,
        "slug": slug,
        "permalink": f"{site}/produkt/{slug}/",
        **date_fields("date_created", created),
        **date_fields("date_modified", created),
        "type": "simple",
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": f"<p>{name}</p>\n",
        "short_description": "",
        "sku": sku,
        "price": price,
        "regular_price": price,
        "sale_price": "",
        **date_fields("date_on_sale_from", None),
        **date_fields("date_on_sale_to", None),
        "price_html": _price_html(price) if price else "",
        "on_sale": False,
        "purchasable": bool(price),
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        **stock_fields(False, None),
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "sold_individually": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "related_ids": [],
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": [{"id": 15, "name": "Ukategoriseret", "slug": "ukategoriseret"}],
        "tags": [],
        "images": [],
        "attributes": [],
        "default_attributes": [],
        "variations": [],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
    }
    document.update(extra)
    return shop.put("products", document)


def new_variation(shop: Shop, site: str, parent: dict, option: str, sku: str, price: str, **extra) -> dict:
    """A variation document with every field of the v3 example (product-variations-retrieve-…)."""
    variation_id = shop.next_id("post")
    created = now_utc()
    attribute = parent["attributes"][0]
    document = {
        "id": variation_id,
        **date_fields("date_created", created),
        **date_fields("date_modified", created),
        "description": "",
        "permalink": f"{parent['permalink']}?attribute_pa_{_slug(attribute['name'])}={_slug(option)}",
        "sku": sku,
        "price": price,
        "regular_price": price,
        "sale_price": "",
        **date_fields("date_on_sale_from", None),
        **date_fields("date_on_sale_to", None),
        "on_sale": False,
        "status": "publish",
        "purchasable": True,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "tax_status": "taxable",
        "tax_class": "",
        **stock_fields(False, None),
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_class": "",
        "shipping_class_id": 0,
        "image": {
            "id": 0,
            **date_fields("date_created", created),
            **date_fields("date_modified", created),
            "src": f"{site}/wp-content/uploads/woocommerce-placeholder.png",
            "name": "",
            "alt": "",
        },
        "attributes": [{"id": attribute["id"], "name": attribute["name"], "option": option}],
        "menu_order": 0,
        "meta_data": [],
        "_sandbox": {"parent_id": parent["id"]},
    }
    document.update(extra)
    shop.put("variations", document)
    parent["variations"].append(variation_id)
    shop.put("products", parent)
    return document


def find_product(shop: Shop, product_id) -> tuple[dict | None, str]:
    """A product or a variation by post id: (document, "products" | "variations")."""
    for collection in ("products", "variations"):
        document = shop.get(collection, product_id)
        if document is not None:
            return document, collection
    return None, ""


def variation_as_product(shop: Shop, variation: dict) -> dict:
    """A variation the way the products controller shows it (GET /products/<id>, /products?sku=)."""
    parent = shop.get("products", variation["_sandbox"]["parent_id"])
    option = variation["attributes"][0]["option"] if variation["attributes"] else ""
    name = f"{parent['name']} - {option}" if option else parent["name"]
    document = {key: parent[key] for key in parent if key != "_sandbox"}
    document.update(
        {key: variation[key] for key in variation if key in document and key not in ("image", "attributes")}
    )
    document.update(
        {
            "name": name,
            "slug": _slug(name),
            "type": "variation",
            "parent_id": parent["id"],
            "price_html": _price_html(variation["price"]) if variation["price"] else "",
            "attributes": variation["attributes"],
            "default_attributes": [],
            "variations": [],
            "images": [],
            "related_ids": [],
        }
    )
    return document


def product_links(site: str, document: dict) -> dict:
    links = {
        "self": [{"href": rest_url(site, f"{NAMESPACE}/products/{document['id']}")}],
        "collection": [{"href": rest_url(site, f"{NAMESPACE}/products")}],
    }
    if document.get("parent_id"):
        links["up"] = [{"href": rest_url(site, f"{NAMESPACE}/products/{document['parent_id']}")}]
    return links


def render_product(shop: Shop, site: str, document: dict, collection: str = "products") -> dict:
    if collection == "variations":
        document = variation_as_product(shop, document)
    return {**public(document), "_links": product_links(site, document)}


def render_variation(site: str, variation: dict) -> dict:
    parent_id = variation["_sandbox"]["parent_id"]
    base = f"{NAMESPACE}/products/{parent_id}/variations"
    return {
        **public(variation),
        "_links": {
            "self": [{"href": rest_url(site, f"{base}/{variation['id']}")}],
            "collection": [{"href": rest_url(site, base)}],
            "up": [{"href": rest_url(site, f"{NAMESPACE}/products/{parent_id}")}],
        },
    }


def skus_wanted(raw_sku: str) -> set[str]:
    """The products controller's `sku` filter: comma separated, and the whole string too (so a SKU that
    contains a comma is still found). MySQL compares the meta value case-insensitively."""
    skus = raw_sku.split(",")
    if len(skus) > 1:
        skus.append(raw_sku)
    return {s.casefold() for s in skus}


def update_stock(shop: Shop, document: dict, collection: str, delta: int) -> None:
    if document.get("manage_stock") is True and document.get("stock_quantity") is not None:
        quantity = int(document["stock_quantity"]) + delta
        document.update(stock_fields(True, quantity))
        shop.put(collection, document)


# --- orders ------------------------------------------------------------------------------------------------

BILLING = ("first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode")
BILLING_FIELDS = (*BILLING, "country", "email", "phone")
SHIPPING_FIELDS = (*BILLING, "country")


def is_vat_exempt(meta: list[dict]) -> bool:
    return any(m["key"] == "is_vat_exempt" and m["value"] == "yes" for m in meta)


def tax_entry(total: Decimal, subtotal: Decimal) -> list[dict]:
    return [{"id": TAX_RATE["rate_id"], "total": raw(total), "subtotal": raw(subtotal)}] if total else []


def build_line_item(shop: Shop, item: dict, prices_include_tax: bool, exempt: bool) -> dict:
    product = None
    if item.get("sku"):
        product = next(
            (p for c in ("products", "variations") for p in shop.all(c) if p["sku"] == item["sku"]), None
        )
    elif item.get("variation_id"):
        product = shop.get("variations", item["variation_id"])
    elif item.get("product_id"):
        product = shop.get("products", item["product_id"])
    else:
        raise WPError("woocommerce_rest_required_product_reference", "Product ID or SKU is required.", 400)
    if product is None and "total" not in item:
        raise WPError("woocommerce_rest_invalid_product_id", "Invalid product ID.", 400)
    is_variation = product is not None and "_sandbox" in product
    quantity = int(item.get("quantity", 1))
    taxable = not exempt and (product or {}).get("tax_status", "taxable") == "taxable"
    if "total" in item:
        net = dec(item["total"], "total")
        tax = vat_of_net(net) if taxable else Decimal(0)
    else:
        price = dec(product["price"], "price") * quantity
        tax = (vat_of_gross(price) if prices_include_tax else vat_of_net(price)) if taxable else Decimal(0)
        net = price - tax if prices_include_tax else price
    subtotal = dec(item["subtotal"], "subtotal") if "subtotal" in item else net
    subtotal_tax = tax if subtotal == net else (vat_of_net(subtotal) if taxable else Decimal(0))
    if "total_tax" in item:
        tax = dec(item["total_tax"], "total_tax")
    name = item.get("name")
    if name is None and product is not None:
        if is_variation:
            parent = shop.get("products", product["_sandbox"]["parent_id"])
            name = f"{parent['name']} - {product['attributes'][0]['option']}"
        else:
            name = product["name"]
    line = {
        "id": item.get("id") or shop.next_id("item"),
        "name": name or "",
        "product_id": product["_sandbox"]["parent_id"] if is_variation else (product or {}).get("id", 0),
        "variation_id": product["id"] if is_variation else 0,
        "quantity": quantity,
        "tax_class": item.get("tax_class", ""),
        "subtotal": money(subtotal),
        "subtotal_tax": money(
            dec(item["subtotal_tax"], "subtotal_tax") if "subtotal_tax" in item else subtotal_tax
        ),
        "total": money(net),
        "total_tax": money(tax),
        "taxes": item["taxes"] if "taxes" in item else tax_entry(tax, subtotal_tax),
        "meta_data": shop.meta(item.get("meta_data")),
        "sku": item.get("sku", (product or {}).get("sku", "")),
        "price": float(net / quantity) if quantity else 0,
    }
    if "total" in item and "total_tax" not in item and "taxes" in item:
        line["total_tax"] = money(sum((dec(t.get("total")) for t in item["taxes"]), Decimal(0)))
    return line


def build_shipping_line(shop: Shop, item: dict, exempt: bool) -> dict:
    if not item.get("method_id") and not item.get("id"):
        raise WPError("woocommerce_rest_invalid_shipping_item", "Shipping method ID is required.", 400)
    net = dec(item.get("total"), "total")
    tax = (
        dec(item["total_tax"], "total_tax")
        if "total_tax" in item
        else (Decimal(0) if exempt else vat_of_net(net))
    )
    return {
        "id": item.get("id") or shop.next_id("item"),
        "method_title": item.get("method_title", ""),
        "method_id": item["method_id"],
        "total": money(net),
        "total_tax": money(tax),
        "taxes": item.get(
            "taxes", [{"id": TAX_RATE["rate_id"], "total": raw(tax), "subtotal": ""}] if tax else []
        ),
        "meta_data": shop.meta(item.get("meta_data")),
    }


def build_fee_line(shop: Shop, item: dict, exempt: bool) -> dict:
    if not item.get("name"):
        raise WPError("woocommerce_rest_invalid_fee_item", "Fee name is required.", 400)
    net = dec(item.get("total"), "total")
    status = item.get("tax_status", "taxable")
    taxable = status == "taxable" and not exempt
    tax = (
        dec(item["total_tax"], "total_tax")
        if "total_tax" in item
        else (vat_of_net(net) if taxable else Decimal(0))
    )
    return {
        "id": item.get("id") or shop.next_id("item"),
        "name": item["name"],
        "tax_class": item.get("tax_class", ""),
        "tax_status": status,
        "total": money(net),
        "total_tax": money(tax),
        "taxes": item.get("taxes", tax_entry(tax, tax)),
        "meta_data": shop.meta(item.get("meta_data")),
    }


def build_coupon_line(shop: Shop, item: dict) -> dict:
    return {
        "id": item.get("id") or shop.next_id("item"),
        "code": str(item.get("code", "")),
        "discount": money(dec(item.get("discount"), "discount")),
        "discount_tax": money(dec(item.get("discount_tax"), "discount_tax")),
        "meta_data": shop.meta(item.get("meta_data")),
    }


def address(given: dict | None, fields: tuple[str, ...]) -> dict:
    given = given or {}
    return {field: str(given.get(field, "")) for field in fields}


def check_status(status) -> str:
    if status not in ORDER_STATUSES:
        allowed = ", ".join(ORDER_STATUSES[:-1]) + f", and {ORDER_STATUSES[-1]}"
        raise invalid_param("status", f"status is not one of {allowed}.")
    return status


def build_order(shop: Shop, body: dict) -> dict:
    """A complete order: what the caller gave is kept; what is left out is computed the way a Danish
    WooCommerce shop (prices incl. 25 % VAT, one standard rate for every country) computes it."""
    settings = shop.settings()
    order_id = shop.next_id("post")
    now = now_utc()
    prices_include_tax = bool(body.get("prices_include_tax", settings.get("prices_include_tax", True)))
    meta = shop.meta(body.get("meta_data"))
    exempt = is_vat_exempt(meta)
    status = check_status(body.get("status") or ("processing" if body.get("set_paid") else "pending"))
    lines = [build_line_item(shop, i, prices_include_tax, exempt) for i in body.get("line_items") or []]
    shipping = [build_shipping_line(shop, i, exempt) for i in body.get("shipping_lines") or []]
    fees = [build_fee_line(shop, i, exempt) for i in body.get("fee_lines") or []]
    coupons = [build_coupon_line(shop, i) for i in body.get("coupon_lines") or []]

    def total(items, key):
        return sum((dec(item[key]) for item in items), Decimal(0))

    cart_tax = total(lines, "total_tax") + total(fees, "total_tax")
    shipping_tax = total(shipping, "total_tax")
    computed = {
        "discount_total": money(total(lines, "subtotal") - total(lines, "total")),
        "discount_tax": money(total(lines, "subtotal_tax") - total(lines, "total_tax")),
        "shipping_total": money(total(shipping, "total")),
        "shipping_tax": money(shipping_tax),
        "cart_tax": money(cart_tax),
        "total": money(
            total(lines, "total") + total(fees, "total") + total(shipping, "total") + cart_tax + shipping_tax
        ),
        "total_tax": money(cart_tax + shipping_tax),
    }
    tax_lines = body.get("tax_lines")
    if tax_lines is None:
        tax_lines = []
        if cart_tax or shipping_tax:
            tax_lines = [
                {
                    "id": shop.next_id("item"),
                    **{k: TAX_RATE[k] for k in ("rate_code", "rate_id", "label", "compound")},
                    "tax_total": money(cart_tax),
                    "shipping_tax_total": money(shipping_tax),
                    "rate_percent": TAX_RATE["rate_percent"],
                    "meta_data": [],
                }
            ]
    created = given_date(body, "date_created") or now
    paid = given_date(body, "date_paid") or (now if status in PAID_STATUSES else None)
    completed = given_date(body, "date_completed") or (now if status == "completed" else None)
    order = {
        "id": order_id,
        "parent_id": int(body.get("parent_id", 0)),
        "number": str(body.get("number") or order_id),
        "order_key": body.get("order_key") or f"wc_order_{random_key(13)}",
        "created_via": body.get("created_via", "rest-api"),
        "version": body.get("version", WC_VERSION),
        "status": status,
        "currency": body.get("currency", settings.get("currency", "DKK")),
        **date_fields("date_created", created),
        **date_fields("date_modified", given_date(body, "date_modified") or now),
        **{key: str(body[key]) if key in body else value for key, value in computed.items()},
        "prices_include_tax": prices_include_tax,
        "customer_id": int(body.get("customer_id", 0)),
        "customer_ip_address": body.get("customer_ip_address", ""),
        "customer_user_agent": body.get("customer_user_agent", ""),
        "customer_note": body.get("customer_note", ""),
        "billing": address(body.get("billing"), BILLING_FIELDS),
        "shipping": address(body.get("shipping"), SHIPPING_FIELDS),
        "payment_method": body.get("payment_method", ""),
        "payment_method_title": body.get("payment_method_title", ""),
        "transaction_id": body.get("transaction_id", ""),
        **date_fields("date_paid", paid),
        **date_fields("date_completed", completed),
        "cart_hash": body.get("cart_hash", ""),
        "meta_data": meta,
        "line_items": lines,
        "tax_lines": tax_lines,
        "shipping_lines": shipping,
        "fee_lines": fees,
        "coupon_lines": coupons,
        "refunds": [],
        "_sandbox": {"stock_reduced": False},
    }
    if order["customer_id"] and shop.get("customers", order["customer_id"]) is None:
        raise WPError("woocommerce_rest_invalid_customer_id", "Customer ID is invalid.", 400)
    apply_stock_rules(shop, order)
    return shop.put("orders", order)


def order_lines_stock(shop: Shop, order: dict, sign: int) -> None:
    for line in order["line_items"]:
        product_id = line["variation_id"] or line["product_id"]
        document, collection = find_product(shop, product_id)
        if document is not None:
            update_stock(shop, document, collection, sign * int(line["quantity"]))


def apply_stock_rules(shop: Shop, order: dict) -> None:
    """wc_maybe_reduce_stock_levels on processing/completed/on-hold; wc_maybe_increase_stock_levels on
    cancelled (and pending)."""
    reduced = order["_sandbox"].get("stock_reduced", False)
    if order["status"] in STOCK_REDUCING_STATUSES and not reduced:
        order_lines_stock(shop, order, -1)
        order["_sandbox"]["stock_reduced"] = True
    elif order["status"] in ("cancelled", "pending") and reduced:
        order_lines_stock(shop, order, +1)
        order["_sandbox"]["stock_reduced"] = False


def render_order(site: str, order: dict) -> dict:
    links = {
        "self": [{"href": rest_url(site, f"{NAMESPACE}/orders/{order['id']}")}],
        "collection": [{"href": rest_url(site, f"{NAMESPACE}/orders")}],
    }
    if order["customer_id"]:
        links["customer"] = [{"href": rest_url(site, f"{NAMESPACE}/customers/{order['customer_id']}")}]
    if order["parent_id"]:
        links["up"] = [{"href": rest_url(site, f"{NAMESPACE}/orders/{order['parent_id']}")}]
    return {**public(order), "_links": links}


def render_refund(site: str, refund: dict) -> dict:
    order_id = refund["_sandbox"]["order_id"]
    base = f"{NAMESPACE}/orders/{order_id}/refunds"
    return {
        **public(refund),
        "_links": {
            "self": [{"href": rest_url(site, f"{base}/{refund['id']}")}],
            "collection": [{"href": rest_url(site, base)}],
            "up": [{"href": rest_url(site, f"{NAMESPACE}/orders/{order_id}")}],
        },
    }


def touch(document: dict) -> None:
    document.update(date_fields("date_modified", now_utc()))


def set_status(shop: Shop, order: dict, status: str) -> None:
    order["status"] = check_status(status)
    now = now_utc()
    if status in PAID_STATUSES and not order["date_paid_gmt"]:
        order.update(date_fields("date_paid", now))
    if status == "completed":
        order.update(date_fields("date_completed", now))
    apply_stock_rules(shop, order)


def refunded_so_far(order: dict) -> Decimal:
    return -sum((dec(r["total"]) for r in order["refunds"]), Decimal(0))


def create_refund(shop: Shop, order: dict, body: dict, user_id: int) -> dict:
    """wc_create_refund through the v3 controller: negative line items with _refunded_item_id, the
    order's refunds[], status `refunded` once nothing is left, restock, and the gateway's refund."""
    items = {line["id"]: line for line in order["line_items"]}
    others = {line["id"] for key in ("shipping_lines", "fee_lines") for line in order[key]}
    refund_lines, lines_amount = [], Decimal(0)
    for wanted in body.get("line_items") or []:
        item_id = int(wanted.get("id", 0))
        refund_total = dec(wanted.get("refund_total"), "refund_total")
        refund_tax = sum((dec(t.get("refund_total")) for t in wanted.get("refund_tax") or []), Decimal(0))
        lines_amount += refund_total + refund_tax
        if item_id in others or item_id not in items:
            continue  # shipping and fees count in the amount; unknown ids are skipped, as WooCommerce does
        original = items[item_id]
        quantity = int(wanted.get("quantity", 0))
        refund_lines.append(
            {
                "id": shop.next_id("item"),
                "name": original["name"],
                "product_id": original["product_id"],
                "variation_id": original["variation_id"],
                "quantity": -abs(quantity),
                "tax_class": original["tax_class"],
                "subtotal": money(-refund_total),
                "subtotal_tax": money(-refund_tax),
                "total": money(-refund_total),
                "total_tax": money(-refund_tax),
                "taxes": tax_entry(-refund_tax, -refund_tax),
                "meta_data": [
                    {"id": shop.next_id("meta"), "key": "_refunded_item_id", "value": str(item_id)}
                ],
                "sku": original["sku"],
                "price": float(refund_total / abs(quantity)) if quantity else 0,  # total / quantity
            }
        )
    amount = dec(body["amount"], "amount") if body.get("amount") not in (None, "") else lines_amount
    if amount < 0:
        raise WPError(
            "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.", 400
        )
    remaining = dec(order["total"]) - refunded_so_far(order)
    if amount > remaining:
        raise WPError("woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.", 500)
    refunded_payment = False
    if body.get("api_refund", True) is not False:
        supports = GATEWAYS.get(order["payment_method"])
        if supports is None:
            message = "The payment gateway for this order does not exist."
            raise WPError("woocommerce_rest_cannot_create_order_refund", message, 500)
        if not supports:
            message = "The payment gateway for this order does not support automatic refunds."
            raise WPError("woocommerce_rest_cannot_create_order_refund", message, 500)
        refunded_payment = True
    refund = {
        "id": shop.next_id("post"),
        **date_fields("date_created", now_utc()),
        "amount": money(amount),
        "reason": str(body.get("reason") or ""),
        "refunded_by": int(body.get("refunded_by") or user_id),
        "refunded_payment": refunded_payment,
        "meta_data": shop.meta(body.get("meta_data")),
        "line_items": refund_lines,
        "_sandbox": {"order_id": order["id"]},
    }
    shop.put("refunds", refund)
    order["refunds"].insert(0, {"id": refund["id"], "reason": refund["reason"], "total": f"-{money(amount)}"})
    if body.get("api_restock", True) is not False and order["_sandbox"].get("stock_reduced"):
        for line in refund_lines:
            document, collection = find_product(shop, line["variation_id"] or line["product_id"])
            if document is not None:
                update_stock(shop, document, collection, -line["quantity"])
    if remaining - amount <= 0:
        order["status"] = "refunded"  # woocommerce_order_fully_refunded_status
    touch(order)
    shop.put("orders", order)
    return refund


# --- customers ---------------------------------------------------------------------------------------------


def new_customer(shop: Shop, email: str, first: str, last: str, billing: dict, **extra) -> dict:
    created = now_utc()
    document = {
        "id": shop.next_id("user"),
        **date_fields("date_created", created),
        **date_fields("date_modified", created),
        "email": email,
        "first_name": first,
        "last_name": last,
        "role": "customer",
        "username": email.split("@")[0],
        "billing": address(
            {"first_name": first, "last_name": last, "email": email, **billing}, BILLING_FIELDS
        ),
        "shipping": address({"first_name": first, "last_name": last, **billing}, SHIPPING_FIELDS),
        "is_paying_customer": True,
        "avatar_url": f"https://secure.gravatar.com/avatar/{hashlib.md5(email.encode()).hexdigest()}?s=96",  # noqa: S324
        "meta_data": [],
    }
    document.update(extra)
    return shop.put("customers", document)


def render_customer(site: str, customer: dict) -> dict:
    return {
        **public(customer),
        "_links": {
            "self": [{"href": rest_url(site, f"{NAMESPACE}/customers/{customer['id']}")}],
            "collection": [{"href": rest_url(site, f"{NAMESPACE}/customers")}],
        },
    }


# --- webhooks: subscriptions, events, deliveries -----------------------------------------------------------


def valid_topic(topic: str) -> bool:
    """wc_is_webhook_valid_topic: a default resource.event, or action.woocommerce_* / action.wc_*."""
    if topic.startswith(("action.woocommerce_", "action.wc_")):
        return True
    return topic in TOPIC_HOOKS


def render_webhook(site: str, webhook: dict) -> dict:
    return {
        **public(webhook),
        "_links": {
            "self": [{"href": rest_url(site, f"{NAMESPACE}/webhooks/{webhook['id']}")}],
            "collection": [{"href": rest_url(site, f"{NAMESPACE}/webhooks")}],
        },
    }


def valid_url(url) -> bool:
    return isinstance(url, str) and re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url) is not None


def fire(shop: Shop, resource: str, event: str, resource_id: int, site: str) -> None:
    """WC_Webhook::process for every active webhook on `resource.event`: once per request, and not again
    while a delivery for the same webhook and resource is still waiting (wc_webhook_execute_queue)."""
    processed = g.setdefault("woocommerce_processed", set())
    for webhook in shop.all("webhooks"):
        if webhook["status"] != "active" or webhook["topic"] != f"{resource}.{event}":
            continue
        if (webhook["id"], resource_id) in processed:
            continue
        processed.add((webhook["id"], resource_id))
        pending_key = f"{webhook['id']}:{resource_id}"
        if shop.store.get("pending", pending_key) is not None:
            continue
        queue_action(shop, {"kind": "event", "webhook_id": webhook["id"], "arg": resource_id, "site": site})
        shop.store.put("pending", pending_key, {"webhook": webhook["id"], "arg": resource_id})


def queue_action(shop: Shop, action: dict) -> None:
    action_id = shop.next_id("action")
    shop.store.put("actions", action_id, {**action, "id": action_id, "state": "pending"})
    # Delivered by an RQ job once this request's changes are committed (see workers.jobs).
    enqueue_after_commit("workers.jobs.deliver_sandbox_webhook", SYSTEM, shop.tenant, action_id)


def delivery_id(shop: Shop, webhook_id: int, action_id: int) -> str:
    """The shape of WooCommerce's wp_hash($webhook_id . time()): 32 hex characters. The action id is mixed
    in so that two deliveries in the same second differ (WooCommerce's can collide; see the doc)."""
    salt = shop.settings().get("salt", "").encode()
    return hmac.new(salt, f"{webhook_id}{int(time.time())}:{action_id}".encode(), hashlib.md5).hexdigest()


def payload(shop: Shop, webhook: dict, arg: int, site: str) -> dict:
    """WC_Webhook::build_payload: {"id": N} for deleted, else the REST document as it is now."""
    if webhook["event"] == "deleted":
        return {"id": arg}
    if webhook["resource"] in EXTRA_PAYLOADS:
        return EXTRA_PAYLOADS[webhook["resource"]](shop, arg, site)
    if webhook["resource"] == "order":
        order = shop.get("orders", arg)
        if order is not None:
            return render_order(site, order)
        return {
            "code": "woocommerce_rest_shop_order_invalid_id",
            "message": "Invalid ID.",
            "data": {"status": 404},
        }
    if webhook["resource"] == "product":
        document, collection = find_product(shop, arg)
        if document is not None:
            return render_product(shop, site, document, collection)
        return {
            "code": "woocommerce_rest_product_invalid_id",
            "message": "Invalid ID.",
            "data": {"status": 404},
        }
    if webhook["resource"] == "customer":
        customer = shop.get("customers", arg)
        if customer is not None:
            return render_customer(site, customer)
        return {
            "code": "woocommerce_rest_invalid_id",
            "message": "Invalid resource ID.",
            "data": {"status": 404},
        }
    if webhook["resource"] == "action":
        return {"action": TOPIC_HOOKS.get(webhook["topic"], [webhook["topic"][7:]])[0], "arg": arg}
    return {}


def post(url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    """wp_safe_remote_request: POST, no redirects followed, 60 s timeout. In-process URLs go through the
    app itself. Any failure to get an answer is a WP_Error (no status)."""
    try:
        response = post_webhook(url, body, headers, httpx.Timeout(60.0, connect=10.0))
    except Exception as exc:  # any failure is a failed delivery, as a WP_Error is
        return None, f"{type(exc).__name__}: {exc}"
    return response.status_code, response.reason_phrase


def deliver(tenant: str, action_id: int) -> None:
    """Run one queued delivery (the RQ job). Idempotent: a finished action is not sent again."""
    shop = Shop(tenant)
    action = shop.store.get("actions", action_id)
    if action is None or action["state"] != "pending":
        return
    if action["kind"] == "redeliver":
        _redeliver(shop, action)
        return
    webhook = shop.get("webhooks", action["webhook_id"])
    shop.store.delete("pending", f"{action['webhook_id']}:{action.get('arg')}")
    action["state"] = "done"
    shop.store.put("actions", action_id, action)
    # Committed before sending: no transaction may stay open while the receiver (maybe this very app,
    # on the same SQLite file) writes; and WooCommerce never sends an action twice.
    db.session.commit()
    if webhook is None:  # deleted meanwhile
        return
    secret = webhook["_sandbox"]["secret"]
    if action["kind"] == "ping":
        body = f"webhook_id={webhook['id']}".encode()
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        identifier = f"ping-{action_id}"
    else:
        body = php_json(payload(shop, webhook, action["arg"], action["site"])).strip().encode()
        identifier = delivery_id(shop, webhook["id"], action_id)
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-WC-Webhook-Source": action["site"] + "/",
            "X-WC-Webhook-Topic": webhook["topic"],
            "X-WC-Webhook-Resource": webhook["resource"],
            "X-WC-Webhook-Event": webhook["event"],
            "X-WC-Webhook-Signature": signature(body, secret),
            "X-WC-Webhook-ID": str(webhook["id"]),
            "X-WC-Webhook-Delivery-ID": identifier,
        }
    code, message = post(webhook["delivery_url"], body, headers)
    shop.store.put(
        "deliveries",
        identifier,
        {
            "delivery_id": identifier,
            "webhook_id": webhook["id"],
            "kind": action["kind"],
            "topic": webhook["topic"],
            "url": webhook["delivery_url"],
            "headers": headers,
            "body": body.decode(),
            "attempts": [{"at": fmt(now_utc()), "response_code": code, "response_message": message}],
        },
    )
    if action["kind"] == "event":
        track_failures(shop, webhook, code)
    db.session.commit()


def track_failures(shop: Shop, webhook: dict, code: int | None) -> None:
    """WC_Webhook::log_delivery + failed_delivery: 2xx, 301 and 302 reset the count; otherwise the count
    goes up, and a failure while it is already above 5 disables the webhook. Nothing is retried."""
    state = webhook["_sandbox"]
    if code is not None and 200 <= code < 303:
        state["failure_count"] = 0
    elif state["failure_count"] > MAX_FAILURES:
        webhook["status"] = "disabled"
    else:
        state["failure_count"] += 1
    shop.put("webhooks", webhook)


def _redeliver(shop: Shop, action: dict) -> None:
    """A replay: the stored delivery again, byte for byte, with its delivery id and signature."""
    action["state"] = "done"
    shop.store.put("actions", action["id"], action)
    record = shop.store.get("deliveries", action["delivery_id"])
    code, message = post(record["url"], record["body"].encode(), record["headers"])
    record["attempts"].append({"at": fmt(now_utc()), "response_code": code, "response_message": message})
    shop.store.put("deliveries", record["delivery_id"], record)
    db.session.commit()


# --- seeding ---------------------------------------------------------------------------------------------


def seed(tenant: str = TENANT) -> None:
    """Idempotent: a small Danish coffee shop with products (one variable), customers and two orders."""
    shop = Shop(tenant)
    if shop.store.is_seeded():
        return
    try:
        _seed(shop)
        db.session.commit()
    except IntegrityError:  # seeded concurrently by another request
        db.session.rollback()


def _seed(shop: Shop) -> None:
    site = f"https://{shop.tenant}.butik.example"  # replaced by the request's site URL in answers
    shop.store.put(
        "_shop",
        "settings",
        {
            "name": "Kaffekompagniet",
            "currency": "DKK",
            "prices_include_tax": True,
            "strips_authorization_header": False,
            "salt": secrets.token_hex(16),
            "keys": {
                DEMO_KEY: {"consumer_secret": DEMO_SECRET, "permissions": "read_write", "user_id": 1},
                READ_KEY: {"consumer_secret": READ_SECRET, "permissions": "read", "user_id": 1},
            },
        },
    )
    espresso = new_product(shop, site, "Kaffebønner – Espresso, 500 g", "KAFFE/ESP-500g", "129.95")
    espresso.update(stock_fields(True, 40))
    shop.put("products", espresso)
    mug = new_product(shop, site, "Kaffekrus “Hygge” (stentøj)", "KRUS_HYGGE 2,5 dl", "89.00")
    mug.update(stock_fields(True, 12))
    shop.put("products", mug)
    new_product(shop, site, "Kaffefiltre nr. 4 (100 stk.)", "", "24.95")
    new_product(
        shop,
        site,
        "Gavekort 250 kr.",
        "GAVEKORT#250",
        "250.00",
        virtual=True,
        tax_status="none",
        shipping_required=False,
    )
    tshirt = new_product(
        shop,
        site,
        "T-shirt Bønne",
        "TS-BØNNE",
        "",
        type="variable",
        attributes=[
            {
                "id": 1,
                "name": "Størrelse",
                "position": 0,
                "visible": True,
                "variation": True,
                "options": ["S", "M", "L"],
            }
        ],
    )
    for size in ("S", "M", "L"):
        variation = new_variation(shop, site, tshirt, size, f"TS-BØNNE.{size}", "199.00")
        variation.update(stock_fields(True, 5))
        shop.put("variations", variation)
    tshirt = shop.get("products", tshirt["id"])
    tshirt.update({"price": "199.00", "price_html": _price_html("199.00")})
    shop.put("products", tshirt)

    anna = new_customer(
        shop,
        "anna.jensen@example.dk",
        "Anna",
        "Jensen",
        {
            "address_1": "Vestergade 12, 2. th.",
            "city": "Aarhus C",
            "postcode": "8000",
            "country": "DK",
            "phone": "+45 20 30 40 50",
        },
    )
    holm = new_customer(
        shop,
        "indkob@holmogsoen.dk",
        "Mikkel",
        "Holm",
        {
            "company": "Holm & Søn ApS",
            "address_1": "Industrivej 7",
            "city": "Vejle",
            "postcode": "7100",
            "country": "DK",
            "phone": "+45 75 00 00 00",
        },
    )
    days_ago = now_utc() - timedelta(days=2)
    build_order(
        shop,
        {
            "status": "completed",
            "customer_id": anna["id"],
            "billing": anna["billing"],
            "shipping": anna["shipping"],
            "payment_method": "quickpay",
            "payment_method_title": "Betalingskort",
            "transaction_id": "QP-482913",
            "date_created_gmt": fmt(days_ago),
            "date_modified_gmt": fmt(days_ago + timedelta(hours=20)),
            "date_paid_gmt": fmt(days_ago),
            "date_completed_gmt": fmt(days_ago + timedelta(hours=20)),
            "line_items": [
                {"product_id": espresso["id"], "quantity": 2},
                {"product_id": mug["id"], "quantity": 1},
            ],
            "shipping_lines": [
                {"method_id": "flat_rate", "method_title": "PostNord Pakkeshop", "total": "39.20"}
            ],
        },
    )
    build_order(
        shop,
        {
            "status": "processing",
            "customer_id": holm["id"],
            "billing": holm["billing"],
            "shipping": holm["shipping"],
            "payment_method": "bacs",
            "payment_method_title": "Bankoverførsel",
            "date_created_gmt": fmt(days_ago + timedelta(days=1)),
            "date_modified_gmt": fmt(days_ago + timedelta(days=1)),
            "meta_data": [{"key": "_billing_vat_number", "value": "DK12345674"}],
            "line_items": [
                {"variation_id": shop.get("products", tshirt["id"])["variations"][1], "quantity": 10},
                {"product_id": espresso["id"], "quantity": 6},
            ],
            "shipping_lines": [{"method_id": "flat_rate", "method_title": "GLS Erhverv", "total": "79.20"}],
        },
    )
    shop.store.mark_seeded()


# --- the HTTP surface -------------------------------------------------------------------------------------


def params() -> dict:
    """Query parameters and the body (JSON or form), as WP_REST_Request merges them."""
    values: dict = {}
    for key in request.args:
        items = request.args.getlist(key)
        values[key.removesuffix("[]")] = items if key.endswith("[]") or len(items) > 1 else items[0]
    if request.mimetype == "application/json" and request.get_data():
        try:
            body = json.loads(request.get_data())
        except ValueError:
            raise WPError("rest_invalid_json", "Invalid JSON body passed.", 400) from None
        if isinstance(body, dict):
            values.update(body)
    elif request.form:
        values.update(request.form.to_dict())
    return values


def flag(value, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def int_param(values: dict, name: str, default, minimum=None, maximum=None):
    value = values.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise invalid_param(name, f"{name} is not of type integer.") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        if maximum is None:
            raise invalid_param(name, f"{name} must be greater than or equal to {minimum}")
        raise invalid_param(name, f"{name} must be between {minimum} (inclusive) and {maximum} (inclusive)")
    return number


def id_list(value) -> list[int]:
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [int(x) for x in items if str(x).strip().isdigit()]


def enum_param(values: dict, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = values.get(name) or default
    if value not in allowed:
        listed = ", ".join(allowed[:-1]) + f", and {allowed[-1]}"
        raise invalid_param(name, f"{name} is not one of {listed}.")
    return value


def paginated(site: str, route: str, items: list, values: dict, render) -> Response:
    """WC_REST_CRUD_Controller::get_items: per_page 1–100 (default 10), page ≥ 1, offset; headers
    X-WP-Total and X-WP-TotalPages, Link rel=prev/next with the request's own query."""
    per_page = int_param(values, "per_page", 10, 1, 100)
    page = int_param(values, "page", 1, 1)
    offset = int_param(values, "offset", None, 0)
    start = offset if offset is not None else (page - 1) * per_page
    total = len(items)
    pages = math.ceil(total / per_page)
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    base = rest_url(site, route)
    query = [(k, v) for k in request.args for v in request.args.getlist(k) if k != "page"]
    links = []
    if page > 1:
        links.append(f'<{base}?{urlencode([*query, ("page", min(page - 1, max(pages, 1)))])}>; rel="prev"')
    if pages > page:
        links.append(f'<{base}?{urlencode([*query, ("page", page + 1)])}>; rel="next"')
    if links:
        headers["Link"] = ", ".join(links)
    return answer([render(item) for item in items[start : start + per_page]], 200, headers)


def sort(
    items: list[dict], values: dict, default_orderby: str, allowed: tuple[str, ...], default_order="desc"
):
    orderby = enum_param(values, "orderby", default_orderby, allowed)
    descending = enum_param(values, "order", default_order, ("asc", "desc")) == "desc"
    if orderby == "include" and values.get("include"):
        wanted = id_list(values["include"])
        return sorted(items, key=lambda d: wanted.index(d["id"]) if d["id"] in wanted else len(wanted))
    keys = {
        "date": lambda d: (d.get("date_created_gmt") or "", d["id"]),
        "modified": lambda d: (d.get("date_modified_gmt") or "", d["id"]),
        "id": lambda d: d["id"],
        "include": lambda d: d["id"],
        "title": lambda d: (str(d.get("name") or d.get("number") or ""), d["id"]),
        "slug": lambda d: (str(d.get("slug") or d.get("id")), d["id"]),
        "name": lambda d: (f"{d.get('first_name', '')} {d.get('last_name', '')}".casefold(), d["id"]),
        "registered_date": lambda d: (d.get("date_created_gmt") or "", d["id"]),
    }
    return sorted(items, key=keys[orderby], reverse=descending)


def date_filters(items: list[dict], values: dict) -> list[dict]:
    """after/before (created) and modified_after/modified_before, exclusive as WP_Date_Query compares,
    on the *_gmt columns when dates_are_gmt, else in the site's time."""
    use_gmt = flag(values.get("dates_are_gmt"))
    zone = UTC if use_gmt else TIMEZONE
    for name, field, later in (
        ("after", "date_created", True),
        ("before", "date_created", False),
        ("modified_after", "date_modified", True),
        ("modified_before", "date_modified", False),
    ):
        if values.get(name):
            limit = parse_date(values[name], name, zone)
            items = [d for d in items if (gmt(d, field) > limit if later else gmt(d, field) < limit)]
    return items


# Route table: (methods, pattern, handler, permission kind). WordPress' EDITABLE is POST, PUT and PATCH.
ROUTES: list[tuple[tuple[str, ...], re.Pattern, object, str]] = []
EDIT = ("POST", "PUT", "PATCH")
DENIED = {
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "read": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "delete": ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."),
}


def route(methods, pattern: str, kind: str):
    def register(handler):
        ROUTES.append((tuple(methods), re.compile(f"^{pattern}$"), handler, kind))
        return handler

    return register


def authenticate(shop: Shop) -> dict | None:
    """WC_REST_Authentication over HTTPS: the query parameters first, then Basic auth. An unknown key is
    no user (the route's permission check refuses); a known key with a wrong secret is an error."""
    settings = shop.settings()
    key = secret = None
    if request.args.get("consumer_key") and request.args.get("consumer_secret"):
        key, secret = request.args["consumer_key"], request.args["consumer_secret"]
    elif request.authorization and not settings.get("strips_authorization_header"):
        key, secret = request.authorization.username, request.authorization.password
    if not key or not secret:
        return None
    record = settings["keys"].get(key)
    if record is None:
        return None
    if not hmac.compare_digest(record["consumer_secret"], secret):
        raise WPError(
            "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401, www_authenticate=True
        )
    permissions = record["permissions"]
    if request.method in ("GET", "HEAD") and permissions not in ("read", "read_write"):
        message = "The API key provided does not have read permissions."
        raise WPError("woocommerce_rest_authentication_error", message, 401)
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and permissions not in ("write", "read_write"):
        message = "The API key provided does not have write permissions."
        raise WPError("woocommerce_rest_authentication_error", message, 401)
    return record


@bp.route("/", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], strict_slashes=False)
def plain_permalinks():
    if "rest_route" not in request.args:
        return Response("<!doctype html><title>Kaffekompagniet</title><h1>Kaffekompagniet</h1>", 200)
    return dispatch(request.args["rest_route"])


@bp.route(
    "/wp-json", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], strict_slashes=False
)
@bp.route("/wp-json/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def wp_json(path):
    return dispatch("/" + path)


def dispatch(rest_route: str) -> Response:
    rest_route = "/" + rest_route.strip("/") if rest_route.strip("/") else "/"
    seed(TENANT)
    shop = Shop(TENANT)
    try:
        key = authenticate(shop)
        for methods, pattern, handler, kind in ROUTES:
            match = pattern.match(rest_route)
            if match is None or request.method not in methods:
                continue
            if kind != "public" and key is None:
                code, message = DENIED[kind]
                raise WPError(code, message, 401)
            response = handler(shop, params(), key or {}, **match.groupdict())
            db.session.commit()
            return response
        raise WPError("rest_no_route", "No route was found matching the URL and request method.", 404)
    except WPError as error:
        db.session.rollback()
        return error.response()


# --- index and system status ---


@route(("GET",), "/", "public")
def site_index(shop, values, key):
    site = site_url()
    settings = shop.settings()
    return answer(
        {
            "name": settings["name"],
            "description": "Kaffe, krus og tilbehør",
            "url": site,
            "home": site,
            "gmt_offset": int(datetime.now(TIMEZONE).utcoffset().total_seconds() // 3600),
            "timezone_string": "Europe/Copenhagen",
            "namespaces": ["oembed/1.0", "wc/v1", "wc/v2", "wc/v3", "wc/store/v1", "wp/v2"],
            "authentication": [],
            "routes": {},
        }
    )


@route(("GET",), NAMESPACE, "public")
def namespace_index(shop, values, key):
    routes = {}
    for methods, pattern, _handler, _kind in ROUTES:
        path = pattern.pattern.strip("^$")
        if path.startswith(NAMESPACE):
            entry = routes.setdefault(path, {"namespace": "wc/v3", "methods": []})
            entry["methods"] = sorted({*entry["methods"], *methods})
    return answer({"namespace": "wc/v3", "routes": routes})


# The demo shop's gateways as WooCommerce lists them (id, the title shown at checkout, on/off, order).
GATEWAY_LIST = [
    ("bacs", "Bankoverførsel", "Direct bank transfer", True),
    ("cheque", "Check", "Check payments", False),
    ("cod", "Betaling ved levering", "Cash on delivery", False),
    ("quickpay", "Betalingskort", "QuickPay", True),
    ("stripe", "Kreditkort (Stripe)", "Stripe", True),
    ("mobilepay", "MobilePay", "MobilePay", True),
]


def _title_setting(title: str) -> dict:
    tip = "This controls the title which the user sees during checkout."
    return {
        "id": "title",
        "label": "Title",
        "description": tip,
        "type": "text",
        "value": title,
        "default": title,
        "tip": tip,
        "placeholder": "",
    }


@route(("GET",), f"{NAMESPACE}/payment_gateways", "list")
def payment_gateways(shop, values, key):
    """Every installed gateway, enabled or not, in checkout order; not paginated (the controller returns
    WC()->payment_gateways->payment_gateways() whole)."""
    site = site_url()
    return answer(
        [
            {
                "id": gateway,
                "title": title,
                "description": "",
                "order": position,
                "enabled": enabled,
                "method_title": method_title,
                "method_description": "",
                "method_supports": ["products", "refunds"] if GATEWAYS[gateway] else ["products"],
                "settings": {"title": _title_setting(title)},
                "_links": {
                    "self": [{"href": f"{site}/wp-json{NAMESPACE}/payment_gateways/{gateway}"}],
                    "collection": [{"href": f"{site}/wp-json{NAMESPACE}/payment_gateways"}],
                },
            }
            for position, (gateway, title, method_title, enabled) in enumerate(GATEWAY_LIST)
        ]
    )


@route(("GET",), f"{NAMESPACE}/system_status", "read")
def system_status(shop, values, key):
    site = site_url()
    settings = shop.settings()
    return answer(
        {
            "environment": {
                "home_url": site,
                "site_url": site,
                "version": WC_VERSION,
                "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
                "log_directory_writable": True,
                "wp_version": WP_VERSION,
                "wp_multisite": False,
                "wp_memory_limit": 268435456,
                "wp_debug_mode": False,
                "wp_cron": True,
                "language": "da_DK",
                "server_info": "Apache/2.4",
                "php_version": "8.3.14",
                "php_post_max_size": 67108864,
                "php_max_execution_time": 30,
                "php_max_input_vars": 1000,
                "curl_version": "8.5.0, OpenSSL/3.0.13",
                "suhosin_installed": False,
                "max_upload_size": 67108864,
                "mysql_version": "8.0.36",
                "default_timezone": "UTC",
                "fsockopen_or_curl_enabled": True,
                "soapclient_enabled": True,
                "domdocument_enabled": True,
                "gzip_enabled": True,
                "mbstring_enabled": True,
                "remote_post_successful": True,
                "remote_post_response": "200",
                "remote_get_successful": True,
                "remote_get_response": "200",
            },
            "database": {"wc_database_version": WC_VERSION, "database_prefix": "wp_", "database_tables": {}},
            "active_plugins": [
                {
                    "plugin": "woocommerce/woocommerce.php",
                    "name": "WooCommerce",
                    "version": WC_VERSION,
                    "version_latest": WC_VERSION,
                    "url": "https://woocommerce.com/",
                    "author_name": "Automattic",
                    "author_url": "https://woocommerce.com",
                    "network_activated": False,
                }
            ],
            "theme": {"name": "Storefront", "version": "4.6.0", "is_child_theme": False},
            "settings": {
                "api_enabled": True,
                "force_ssl": False,
                "currency": settings["currency"],
                "currency_symbol": "&#107;&#114;&#46;",
                "currency_position": "right_space",
                "thousand_separator": ".",
                "decimal_separator": ",",
                "number_of_decimals": 2,
                "geolocation_enabled": False,
                "taxonomies": {
                    "external": "external",
                    "grouped": "grouped",
                    "simple": "simple",
                    "variable": "variable",
                },
            },
            "security": {"secure_connection": True, "hide_errors": True},
            "pages": [],
        }
    )


# --- orders ---


@route(("GET",), f"{NAMESPACE}/orders", "list")
def list_orders(shop, values, key):
    site = site_url()
    orders = shop.all("orders")
    statuses = values.get("status") or "any"
    statuses = statuses if isinstance(statuses, list) else str(statuses).split(",")
    for status in statuses:
        if status not in ("any", "trash", *ORDER_STATUSES):
            allowed = ", ".join(("any", "trash", *ORDER_STATUSES[:-1])) + f", and {ORDER_STATUSES[-1]}"
            raise invalid_param("status", f"status[0] is not one of {allowed}.")
    if "any" in statuses:
        orders = [o for o in orders if o["status"] != "trash"]
    else:
        orders = [o for o in orders if o["status"] in statuses]
    orders = date_filters(orders, values)
    if values.get("customer") not in (None, ""):
        orders = [o for o in orders if o["customer_id"] == int(values["customer"])]
    if values.get("product"):
        product = int(values["product"])
        orders = [o for o in orders if any(i["product_id"] == product for i in o["line_items"])]
    if values.get("include"):
        orders = [o for o in orders if o["id"] in id_list(values["include"])]
    if values.get("exclude"):
        orders = [o for o in orders if o["id"] not in id_list(values["exclude"])]
    if values.get("parent"):
        orders = [o for o in orders if o["parent_id"] in id_list(values["parent"])]
    if values.get("search"):
        needle = str(values["search"]).casefold()
        orders = [
            o
            for o in orders
            if needle in " ".join([o["number"], *map(str, o["billing"].values())]).casefold()
        ]
    allowed = ("date", "id", "include", "title", "slug", "modified")
    orders = sort(orders, values, "date", allowed)
    return paginated(site, f"{NAMESPACE}/orders", orders, values, lambda o: render_order(site, o))


@route(("POST",), f"{NAMESPACE}/orders", "create")
def create_order(shop, values, key):
    if values.get("id"):
        raise WPError("woocommerce_rest_shop_order_exists", "Cannot create existing shop_order.", 400)
    order = build_order(shop, values)
    site = site_url()
    fire(shop, "order", "created", order["id"], site)
    # The create saves the order again after calculating its totals: woocommerce_update_order fires too
    # (woocommerce/woocommerce#43019, #19764).
    fire(shop, "order", "updated", order["id"], site)
    headers = {"Location": rest_url(site, f"{NAMESPACE}/orders/{order['id']}")}
    return answer(render_order(site, order), 201, headers)


def load_order(shop: Shop, order_id) -> dict:
    order = shop.get("orders", int(order_id))
    if order is None:
        raise WPError("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
    return order


@route(("GET",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)", "read")
def get_order(shop, values, key, order_id):
    return answer(render_order(site_url(), load_order(shop, order_id)))


@route(EDIT, rf"{NAMESPACE}/orders/(?P<order_id>\d+)", "edit")
def update_order(shop, values, key, order_id):
    order = load_order(shop, order_id)
    if any(values.get(k) for k in ("line_items", "shipping_lines", "fee_lines", "coupon_lines")):
        raise WPError(
            "woocommerce_rest_sandbox_not_emulated",
            "The sandbox does not recalculate edited order lines; create a new order instead.",
            400,
        )
    for key_name in ("billing", "shipping"):
        if isinstance(values.get(key_name), dict):
            fields = BILLING_FIELDS if key_name == "billing" else SHIPPING_FIELDS
            order[key_name].update({k: str(v) for k, v in values[key_name].items() if k in fields})
    for field in ("currency", "customer_note", "payment_method", "payment_method_title", "transaction_id"):
        if field in values:
            order[field] = str(values[field])
    if "customer_id" in values:
        order["customer_id"] = int(values["customer_id"])
    for entry in values.get("meta_data") or []:
        existing = next(
            (m for m in order["meta_data"] if m["id"] == entry.get("id") or m["key"] == entry.get("key")),
            None,
        )
        if existing is not None:
            existing["value"] = entry.get("value")
        else:
            order["meta_data"].extend(shop.meta([entry]))
    if values.get("status"):
        set_status(shop, order, values["status"])
    if flag(values.get("set_paid")) and not order["date_paid_gmt"]:
        order.update(date_fields("date_paid", now_utc()))
        if order["status"] in ("pending", "failed", "on-hold"):
            set_status(shop, order, "processing")
    touch(order)
    shop.put("orders", order)
    site = site_url()
    fire(shop, "order", "updated", order["id"], site)
    return answer(render_order(site, order))


@route(("DELETE",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)", "delete")
def delete_order(shop, values, key, order_id):
    order = load_order(shop, order_id)
    site = site_url()
    rendered = render_order(site, order)
    if flag(values.get("force")):
        for refund in order["refunds"]:
            shop.store.delete("refunds", refund["id"])
        shop.store.delete("orders", order["id"])
        return answer(rendered)  # order.deleted hooks only the trash actions
    if order["status"] == "trash":
        raise WPError("woocommerce_rest_already_trashed", "The shop_order has already been deleted.", 410)
    order["_sandbox"]["status_before_trash"] = order["status"]
    order["status"] = "trash"
    touch(order)
    shop.put("orders", order)
    fire(shop, "order", "deleted", order["id"], site)
    return answer(rendered)


# --- refunds ---


def load_refund(shop: Shop, order: dict, refund_id) -> dict:
    refund = shop.get("refunds", int(refund_id))
    if refund is None or refund["_sandbox"]["order_id"] != order["id"]:
        raise WPError("woocommerce_rest_invalid_order_refund_id", "Invalid order refund ID.", 404)
    return refund


def order_for_refunds(shop: Shop, order_id) -> dict:
    order = shop.get("orders", int(order_id))
    if order is None:
        raise WPError("woocommerce_rest_invalid_order_id", "Invalid order ID.", 404)
    return order


@route(("GET",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)/refunds", "list")
def list_refunds(shop, values, key, order_id):
    order = order_for_refunds(shop, order_id)
    site = site_url()
    refunds = [r for r in shop.all("refunds") if r["_sandbox"]["order_id"] == order["id"]]
    refunds = sort(refunds, values, "date", ("date", "id", "include", "title", "slug", "modified"))
    route_path = f"{NAMESPACE}/orders/{order['id']}/refunds"
    return paginated(site, route_path, refunds, values, lambda r: render_refund(site, r))


@route(("POST",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)/refunds", "create")
def post_refund(shop, values, key, order_id):
    order = order_for_refunds(shop, order_id)
    refund = create_refund(shop, order, values, key.get("user_id", 1))
    site = site_url()
    fire(shop, "order", "updated", order["id"], site)  # woocommerce_order_refunded: core has no refund topic
    path = f"{NAMESPACE}/orders/{order['id']}/refunds/{refund['id']}"
    return answer(render_refund(site, refund), 201, {"Location": rest_url(site, path)})


@route(("GET",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)/refunds/(?P<refund_id>\d+)", "read")
def get_refund(shop, values, key, order_id, refund_id):
    order = order_for_refunds(shop, order_id)
    return answer(render_refund(site_url(), load_refund(shop, order, refund_id)))


@route(("DELETE",), rf"{NAMESPACE}/orders/(?P<order_id>\d+)/refunds/(?P<refund_id>\d+)", "delete")
def delete_refund(shop, values, key, order_id, refund_id):
    order = order_for_refunds(shop, order_id)
    refund = load_refund(shop, order, refund_id)
    site = site_url()
    rendered = render_refund(site, refund)
    shop.store.delete("refunds", refund["id"])
    order["refunds"] = [r for r in order["refunds"] if r["id"] != refund["id"]]
    touch(order)
    shop.put("orders", order)
    fire(shop, "order", "updated", order["id"], site)  # woocommerce_delete_order_refund
    return answer(rendered)


# --- products and variations ---


@route(("GET",), f"{NAMESPACE}/products", "list")
def list_products(shop, values, key):
    site = site_url()
    items = [(p, "products") for p in shop.all("products")]
    if values.get("sku"):
        wanted = skus_wanted(str(values["sku"]))
        items += [(v, "variations") for v in shop.all("variations")]
        items = [(d, c) for d, c in items if d["sku"] and d["sku"].casefold() in wanted]
    if values.get("type"):
        items = [(d, c) for d, c in items if (d.get("type") or "variation") == values["type"]]
    if values.get("search"):
        needle = str(values["search"]).casefold()
        items = [(d, c) for d, c in items if needle in str(d.get("name", "")).casefold()]
    if values.get("include"):
        items = [(d, c) for d, c in items if d["id"] in id_list(values["include"])]
    by_id = {d["id"]: c for d, c in items}
    documents = sort(
        [d for d, _ in items], values, "date", ("date", "id", "include", "title", "slug", "modified")
    )
    return paginated(
        site,
        f"{NAMESPACE}/products",
        documents,
        values,
        lambda d: render_product(shop, site, d, by_id[d["id"]]),
    )


def load_product(shop: Shop, product_id) -> tuple[dict, str]:
    document, collection = find_product(shop, int(product_id))
    if document is None:
        raise WPError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
    return document, collection


@route(("GET",), rf"{NAMESPACE}/products/(?P<product_id>\d+)", "read")
def get_product(shop, values, key, product_id):
    document, collection = load_product(shop, product_id)
    return answer(render_product(shop, site_url(), document, collection))


def apply_product_changes(shop: Shop, document: dict, values: dict, collection: str) -> None:
    """The stock part of WC_REST_Products_V2_Controller::prepare_object_for_database: stock_quantity
    counts only while manage_stock is on; stock_status follows the quantity."""
    if "sku" in values:
        sku = str(values["sku"])
        taken = [
            d
            for c in ("products", "variations")
            for d in shop.all(c)
            if sku and d["id"] != document["id"] and d["sku"].casefold() == sku.casefold()
        ]
        if taken:
            raise WPError(
                "product_invalid_sku", "Invalid or duplicated SKU.", 400, resource_id=taken[0]["id"]
            )
        document["sku"] = sku
    for field in ("name", "status", "description", "regular_price", "sale_price", "tax_status", "tax_class"):
        if field in values and (field != "name" or collection == "products"):
            document[field] = values[field]
    if "regular_price" in values or "sale_price" in values:
        document["price"] = document.get("sale_price") or document.get("regular_price", "")
    quantity = values.get("stock_quantity")
    if quantity is not None and (isinstance(quantity, bool) or not re.fullmatch(r"-?\d+", str(quantity))):
        raise invalid_param("stock_quantity", "stock_quantity is not of type integer.")
    manage = values.get("manage_stock", document.get("manage_stock"))
    manage = flag(manage) if manage != "parent" else False
    if manage:
        quantity = values.get("stock_quantity", document.get("stock_quantity"))
        document.update(stock_fields(True, int(quantity or 0)))
    else:
        document.update(stock_fields(False, None))
    if "stock_status" in values and not manage:
        document["stock_status"] = values["stock_status"]
    touch(document)
    shop.put(collection, document)


@route(EDIT, rf"{NAMESPACE}/products/(?P<product_id>\d+)", "edit")
def update_product(shop, values, key, product_id):
    document, collection = load_product(shop, product_id)
    apply_product_changes(shop, document, values, collection)
    site = site_url()
    fire(shop, "product", "updated", document["id"], site)
    return answer(render_product(shop, site, document, collection))


def load_variation(shop: Shop, product_id, variation_id) -> dict:
    variation = shop.get("variations", int(variation_id))
    if variation is None or variation["_sandbox"]["parent_id"] != int(product_id):
        raise WPError("woocommerce_rest_product_variation_invalid_id", "Invalid ID.", 404)
    return variation


@route(("GET",), rf"{NAMESPACE}/products/(?P<product_id>\d+)/variations", "list")
def list_variations(shop, values, key, product_id):
    parent = shop.get("products", int(product_id))
    if parent is None:
        raise WPError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
    site = site_url()
    variations = [shop.get("variations", v) for v in parent["variations"]]
    variations = sort(variations, values, "date", ("date", "id", "include", "title", "slug", "modified"))
    route_path = f"{NAMESPACE}/products/{parent['id']}/variations"
    return paginated(site, route_path, variations, values, lambda v: render_variation(site, v))


@route(("GET",), rf"{NAMESPACE}/products/(?P<product_id>\d+)/variations/(?P<variation_id>\d+)", "read")
def get_variation(shop, values, key, product_id, variation_id):
    return answer(render_variation(site_url(), load_variation(shop, product_id, variation_id)))


@route(EDIT, rf"{NAMESPACE}/products/(?P<product_id>\d+)/variations/(?P<variation_id>\d+)", "edit")
def update_variation(shop, values, key, product_id, variation_id):
    variation = load_variation(shop, product_id, variation_id)
    apply_product_changes(shop, variation, values, "variations")
    site = site_url()
    fire(shop, "product", "updated", variation["id"], site)
    return answer(render_variation(site, variation))


# --- customers ---


@route(("GET",), f"{NAMESPACE}/customers", "list")
def list_customers(shop, values, key):
    site = site_url()
    customers = shop.all("customers")
    if values.get("email"):
        customers = [c for c in customers if c["email"].casefold() == str(values["email"]).casefold()]
    customers = sort(customers, values, "name", ("id", "include", "name", "registered_date"), "asc")
    return paginated(site, f"{NAMESPACE}/customers", customers, values, lambda c: render_customer(site, c))


@route(("GET",), rf"{NAMESPACE}/customers/(?P<customer_id>\d+)", "read")
def get_customer(shop, values, key, customer_id):
    customer = shop.get("customers", int(customer_id))
    if customer is None:
        raise WPError("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
    return answer(render_customer(site_url(), customer))


# --- webhooks ---


@route(("GET",), f"{NAMESPACE}/webhooks", "list")
def list_webhooks(shop, values, key):
    site = site_url()
    status = enum_param(values, "status", "all", ("all", *WEBHOOK_STATUSES))
    webhooks = [w for w in shop.all("webhooks") if status == "all" or w["status"] == status]
    webhooks = sort(webhooks, values, "date", ("date", "id", "title"))
    return paginated(site, f"{NAMESPACE}/webhooks", webhooks, values, lambda w: render_webhook(site, w))


@route(("POST",), f"{NAMESPACE}/webhooks", "create")
def create_webhook(shop, values, key):
    if values.get("id"):
        raise WPError("woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook.", 400)
    topic = str(values.get("topic") or "").lower()
    if not valid_topic(topic):
        message = "Webhook topic is required and must be valid."
        raise WPError("woocommerce_rest_shop_webhook_invalid_topic", message, 400)
    if not valid_url(values.get("delivery_url")):
        message = "Webhook delivery URL must be a valid URL starting with http:// or https://."
        raise WPError("woocommerce_rest_shop_webhook_invalid_delivery_url", message, 400)
    status = str(values.get("status") or "active")
    if status not in WEBHOOK_STATUSES:
        raise invalid_param("status", "status is not one of active, paused, and disabled.")
    created = now_utc()
    resource, _, event = topic.partition(".")
    webhook = {
        "id": shop.next_id("webhook"),
        "name": str(
            values.get("name") or f"Webhook created on {created.astimezone(TIMEZONE):%b %d, %Y @ %I:%M %p}"
        ),
        "status": status,
        "topic": topic,
        "resource": resource,
        "event": event,
        "hooks": TOPIC_HOOKS.get(topic, [topic[7:]] if resource == "action" else []),
        "delivery_url": values["delivery_url"],
        **date_fields("date_created", created),
        **date_fields("date_modified", created),
        "_sandbox": {
            "secret": str(
                values.get("secret") or random_key(50, string.ascii_letters + string.digits + "!@#$%^&*()")
            ),
            "failure_count": 0,
            "user_id": key.get("user_id", 1),
            "api_version": 3,
        },
    }
    shop.put("webhooks", webhook)
    site = site_url()
    queue_action(shop, {"kind": "ping", "webhook_id": webhook["id"], "site": site})
    headers = {"Location": rest_url(site, f"{NAMESPACE}/webhooks/{webhook['id']}")}
    return answer(render_webhook(site, webhook), 201, headers)


@route(("GET",), rf"{NAMESPACE}/webhooks/(?P<webhook_id>\d+)", "read")
def get_webhook(shop, values, key, webhook_id):
    webhook = shop.get("webhooks", int(webhook_id))
    if webhook is None:
        raise WPError("woocommerce_rest_shop_webhook_invalid_id", "ID is invalid.", 400)
    return answer(render_webhook(site_url(), webhook))


@route(EDIT, rf"{NAMESPACE}/webhooks/(?P<webhook_id>\d+)", "edit")
def update_webhook(shop, values, key, webhook_id):
    webhook = shop.get("webhooks", int(webhook_id))
    if webhook is None:
        raise WPError("woocommerce_rest_shop_webhook_invalid_id", "ID is invalid.", 400)
    if values.get("topic"):
        topic = str(values["topic"]).lower()
        if not valid_topic(topic):
            raise WPError("woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid.", 400)
        resource, _, event = topic.partition(".")
        webhook.update(
            {"topic": topic, "resource": resource, "event": event, "hooks": TOPIC_HOOKS.get(topic, [])}
        )
    if values.get("delivery_url"):
        if not valid_url(values["delivery_url"]):
            message = "Webhook delivery URL must be a valid URL starting with http:// or https://."
            raise WPError("woocommerce_rest_shop_webhook_invalid_delivery_url", message, 400)
        webhook["delivery_url"] = values["delivery_url"]
    if values.get("secret"):
        webhook["_sandbox"]["secret"] = str(values["secret"])
    if values.get("status"):
        if str(values["status"]).lower() not in WEBHOOK_STATUSES:
            raise WPError(
                "woocommerce_rest_shop_webhook_invalid_status", "Webhook status must be valid.", 400
            )
        webhook["status"] = str(values["status"]).lower()  # the failure count is left as it is
    if values.get("name"):
        webhook["name"] = str(values["name"])
    touch(webhook)
    shop.put("webhooks", webhook)
    return answer(render_webhook(site_url(), webhook))


@route(("DELETE",), rf"{NAMESPACE}/webhooks/(?P<webhook_id>\d+)", "delete")
def delete_webhook(shop, values, key, webhook_id):
    if not flag(values.get("force")):
        raise WPError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
    webhook = shop.get("webhooks", int(webhook_id))
    if webhook is None:
        raise WPError("woocommerce_rest_shop_webhook_invalid_id", "Invalid ID.", 404)
    rendered = render_webhook(site_url(), webhook)
    shop.store.delete("webhooks", webhook["id"])
    return answer(rendered)


# --- the sandbox's own controls (not WooCommerce): the delivery log, replays, server quirks ---


@bp.get("/_deliveries")
def deliveries():
    seed(TENANT)
    records = Shop(TENANT).all("deliveries")
    return Response(json.dumps(list(reversed(records))), mimetype="application/json")


@bp.post("/_deliveries/<identifier>/redeliver")
def redeliver(identifier):
    """Send a stored delivery again, unchanged (same delivery id and signature): an at-least-once
    duplicate, as a proxy or a re-run delivery produces it."""
    shop = Shop(TENANT)
    if shop.store.get("deliveries", identifier) is None:
        return Response(json.dumps({"message": "no such delivery"}), 404, mimetype="application/json")
    queue_action(shop, {"kind": "redeliver", "delivery_id": identifier})
    db.session.commit()
    return Response(json.dumps({"queued": identifier}), 202, mimetype="application/json")


@bp.route("/_settings", methods=["GET", "PUT"])
def shop_settings():
    """strips_authorization_header: behave like a host that drops the Authorization header (then only the
    consumer_key/consumer_secret query parameters authenticate); prices_include_tax: the shop setting;
    subscriptions_plugin: whether WooCommerce Subscriptions is active (on unless switched off)."""
    seed(TENANT)
    shop = Shop(TENANT)
    settings = shop.settings()
    if request.method == "PUT":
        given = request.get_json(force=True, silent=True) or {}
        for name in ("strips_authorization_header", "prices_include_tax", "subscriptions_plugin"):
            if name in given:
                settings[name] = bool(given[name])
        shop.store.put("_shop", "settings", settings)
        db.session.commit()
    visible = {
        k: settings[k] for k in ("name", "currency", "prices_include_tax", "strips_authorization_header")
    }
    visible["subscriptions_plugin"] = settings.get("subscriptions_plugin", True)
    return Response(json.dumps(visible), mimetype="application/json")


# WooCommerce Subscriptions: its routes, webhook topics and payloads on this shop (a module of its own).
from portal.sandbox import woocommerce_subscriptions  # noqa: E402, F401
