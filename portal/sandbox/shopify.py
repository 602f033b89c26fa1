"""An emulator of a Shopify shop: the Admin REST API (https://{shop}.myshopify.com/admin/api/2026-07/…),
the GraphQL Admin API (graphql.json, in shopify_graphql.py and shopify_resolvers.py over the same store),
the OAuth install (admin/oauth/authorize with a consent page, admin/oauth/access_token) and signed webhook
deliveries. Every request is logged (request_log) so tests can show a flow used GraphQL only.

Mounted under /sandbox/shopify/. One mount serves every shop: the shop is known from the access token (the
real host name is redundant with it), and the consent page takes it from a `shop` query parameter. Paths,
field names, status codes, error bodies (`{"errors": …}`), the `Link` header with `page_info` cursors, the
`X-Shopify-Shop-Api-Call-Limit` header and the leaky bucket (40 requests, 2 a second) follow Shopify's
documentation and the official samples in shared/specs/shopify; every guess is listed in
docs/connectors/shopify.md.

State lives in SandboxRecord rows through SandboxStore: tenant "_oauth" holds codes and access tokens, each
shop domain is a tenant with its products, locations, inventory, customers, orders, refunds, transactions,
webhook subscriptions and deliveries. Creating, changing and refunding orders fires webhooks: a delivery
record is committed, then an RQ job (workers.jobs.deliver_sandbox_webhook) POSTs it, signed with the
app's client secret, and retries on failure; a subscription whose delivery fails every retry is removed, as
Shopify does.

This module emulates the vendor; it never imports Bogbro's connectors.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx
from flask import Blueprint, Response, current_app, render_template, request

from portal.extensions import db
from portal.queue import enqueue_after_commit, get_queue
from portal.redis_client import get_redis
from portal.sandbox.common import consent_page, post_webhook, redirect_allowed, redirect_back, signature
from portal.sandbox.store import SandboxStore

SYSTEM = "shopify"
AUTH_TENANT = "_oauth"
bp = Blueprint("sandbox_shopify", __name__, template_folder="templates")

# The apps registered with the emulated Shopify (client id -> client secret). Bogbro's sandbox settings use
# this pair; Shopify signs the install callback and every webhook with the secret.
CLIENTS = {"5f3a9c1e7b2d4a6c8e0f1a3b5c7d9e2f": "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"}
DEMO_SHOP = "bogbro-demo.myshopify.com"
SCOPES = (
    "read_orders", "write_orders", "read_all_orders", "read_products", "write_products", "read_inventory",
    "write_inventory", "read_locations", "read_customers", "write_customers",
)  # fmt: skip
TOPICS = ("orders/create", "orders/updated", "orders/cancelled", "refunds/create", "app/uninstalled")
TOPIC_SCOPES = {"orders/": "read_orders", "refunds/": "read_orders", "app/": None}
SHOP_TZ = ZoneInfo("Europe/Copenhagen")
CURRENCY = "DKK"
VAT_RATE = Decimal("0.25")
VAT_TITLE = "DK Moms"
CENT = Decimal("0.01")
MAX_LIMIT = 250
CODE_SECONDS = 600
ORDERS_WITHOUT_READ_ALL = timedelta(days=60)
API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
SHOP_DOMAIN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-]*\.myshopify\.com$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
RATE_LIMITED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
)
# Shopify retries a failed delivery 8 times over 4 hours, then removes the subscription; the sandbox keeps
# the count and shrinks the waits (seconds). App config SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS overrides them.
RETRY_DELAYS = (1, 2, 4, 8, 16, 32, 64, 128)
DELIVERY_TIMEOUT = httpx.Timeout(5.0, connect=1.0)


class ApiError(Exception):
    def __init__(self, status: int, errors, headers: dict | None = None):
        super().__init__(str(errors))
        self.status = status
        self.errors = errors
        self.headers = headers or {}


# --- small helpers ------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(SHOP_TZ).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(SHOP_TZ).replace(microsecond=0).isoformat()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=SHOP_TZ)


def _q(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _s(value) -> str:
    """Shopify's money: a decimal string with two places."""
    return str(_q(value))


def _money_set(amount) -> dict:
    money = {"amount": _s(amount), "currency_code": CURRENCY}
    return {"shop_money": dict(money), "presentment_money": dict(money)}


def _json(payload, status=200, headers=None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _errors(status: int, errors) -> ApiError:
    return ApiError(status, errors)


def _not_found() -> ApiError:
    return ApiError(404, "Not Found")


def _body(wrapper: str) -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get(wrapper), dict):
        # Shopify's answer to a body without the resource's root key.
        raise _errors(400, {wrapper: "Required parameter missing or invalid"})
    return payload[wrapper]


def _gid(kind: str, ident) -> str:
    return f"gid://shopify/{kind}/{ident}"


def _strip(document: dict) -> dict:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _select(document: dict, fields: str | None) -> dict:
    if not fields:
        return document
    wanted = [name.strip() for name in fields.split(",") if name.strip()]
    return {name: document[name] for name in wanted if name in document}


def _store(shop: str) -> SandboxStore:
    return SandboxStore(SYSTEM, shop)


def _auth_store() -> SandboxStore:
    return SandboxStore(SYSTEM, AUTH_TENANT)


def _new_id(store: SandboxStore, counter: str = "ids") -> int:
    starts = {"ids": 7_000_000_001, "orders": 5_800_000_001, "order_number": 1001}
    return store.next_number(counter, start=starts.get(counter, 1))


def _shop_id(shop: str) -> int:
    return 60_000_000_000 + int(hashlib.sha256(shop.encode()).hexdigest()[:8], 16) % 1_000_000_000


# --- the demo shop ------------------------------------------------------------------------------------------

LOCATIONS = [
    ("Lager Aarhus", "Vestergade 12", "8000", "Aarhus C"),
    ("Butik København", "Nørregade 2", "1165", "København K"),
]
# (title, product type, vendor, [(variant title or None, sku, price, grams, stock)])
PRODUCTS = [
    ("Kaffekrus 'Hygge' 30 cl", "Køkken", "Bogbro Demo", [(None, "KRUS-30CL/HYGGE", "89.00", 350, 40)]),
    (
        "T-shirt Økologisk",
        "Tøj",
        "Nordisk Bomuld",
        [
            ("S", "TS-ØKO_S", "199.00", 180, 12),
            ("M", "TS-ØKO_M", "199.00", 190, 20),
            ("L", "TS-ØKO_L", "199.00", 200, 0),
        ],
    ),
    ("Kaffebønner 1 kg – Espresso", "Kaffe", "Risteriet", [(None, "BØNNER 1KG.ESP", "249.95", 1000, 25)]),
]
CUSTOMERS = [
    {
        "first_name": "Jens",
        "last_name": "Hansen",
        "email": "jens.hansen@example.dk",
        "phone": "+4520304050",
        "address": ("Jens Hansen", None, "Strandvejen 7", "2900", "Hellerup"),
    },
    {
        "first_name": "Karen",
        "last_name": "Nielsen",
        "email": "indkob@nordiskkaffe.dk",
        "phone": "+4570112233",
        "address": ("Karen Nielsen", "Nordisk Kaffe ApS", "Industrivej 3, 2. sal", "7100", "Vejle"),
        "tags": "B2B",
        "note": "CVR 12345674",
    },
]


def _address(name, company, address1, zip_code, city, *, phone=None) -> dict:
    first, _, last = name.partition(" ")
    return {
        "first_name": first,
        "address1": address1,
        "phone": phone,
        "city": city,
        "zip": zip_code,
        "province": None,
        "country": "Denmark",
        "last_name": last,
        "address2": "",
        "company": company,
        "latitude": None,
        "longitude": None,
        "name": name,
        "country_code": "DK",
        "province_code": None,
    }


def shop_document(shop: str) -> dict:
    """GET shop.json (no official sample: fields from Shopify's Shop resource documentation)."""
    store = _store(shop)
    meta = store.get("_meta", "shop") or {}
    created = meta.get("created_at") or _iso(_now())
    return {
        "id": _shop_id(shop),
        "name": "Bogbro Demo Butik" if shop == DEMO_SHOP else shop.split(".")[0],
        "email": "butik@bogbro-demo.dk",
        "domain": shop,
        "province": None,
        "country": "DK",
        "address1": "Vestergade 12",
        "zip": "8000",
        "city": "Aarhus C",
        "source": None,
        "phone": "+4570203040",
        "latitude": 56.1572,
        "longitude": 10.2107,
        "primary_locale": "da",
        "address2": "",
        "created_at": created,
        "updated_at": created,
        "country_code": "DK",
        "country_name": "Denmark",
        "currency": CURRENCY,
        "customer_email": "butik@bogbro-demo.dk",
        "timezone": "(GMT+01:00) Europe/Copenhagen",
        "iana_timezone": "Europe/Copenhagen",
        "shop_owner": "Dorthe Demo",
        "money_format": "{{amount_with_comma_separator}} kr",
        "money_with_currency_format": "{{amount_with_comma_separator}} DKK",
        "weight_unit": "kg",
        "province_code": None,
        "taxes_included": True,
        "auto_configure_tax_inclusivity": None,
        "tax_shipping": None,
        "county_taxes": True,
        "plan_display_name": "Basic",
        "plan_name": "basic",
        "has_discounts": True,
        "has_gift_cards": False,
        "myshopify_domain": shop,
        "google_apps_domain": None,
        "google_apps_login_enabled": None,
        "money_in_emails_format": "{{amount_with_comma_separator}} kr",
        "money_with_currency_in_emails_format": "{{amount_with_comma_separator}} DKK",
        "eligible_for_payments": True,
        "requires_extra_payments_agreement": False,
        "password_enabled": False,
        "has_storefront": True,
        "finances": True,
        "primary_location_id": meta.get("primary_location_id"),
        "checkout_api_supported": True,
        "multi_location_enabled": True,
        "setup_required": False,
        "pre_launch_enabled": False,
        "enabled_presentment_currencies": [CURRENCY],
        "transactional_sms_disabled": False,
        "marketing_sms_consent_enabled_at_checkout": False,
    }


def seed(tenant) -> None:
    """The demo shop (idempotent): two locations, three products (one with three variants; SKUs with "/",
    "_", "Ø", spaces and dots), stock, two customers (one a company) and three orders (one B2B with a VAT
    number in its note attributes, one partly refunded)."""
    shop = str(tenant)
    store = _store(shop)
    if store.is_seeded():
        return
    store.mark_seeded()
    now = _now()
    created = _iso(now - timedelta(days=30))
    location_ids = []
    for name, address1, zip_code, city in LOCATIONS:
        location_id = _new_id(store)
        location_ids.append(location_id)
        store.put(
            "locations",
            location_id,
            {
                "id": location_id,
                "name": name,
                "address1": address1,
                "address2": None,
                "city": city,
                "zip": zip_code,
                "province": None,
                "country": "DK",
                "phone": None,
                "created_at": created,
                "updated_at": created,
                "country_code": "DK",
                "country_name": "Denmark",
                "province_code": None,
                "legacy": False,
                "active": True,
                "admin_graphql_api_id": _gid("Location", location_id),
            },
        )
    store.put("_meta", "shop", {"created_at": created, "primary_location_id": location_ids[0]})
    for title, product_type, vendor, variants in PRODUCTS:
        _seed_product(store, title, product_type, vendor, variants, location_ids[0], created)
    customer_ids = [_seed_customer(store, data, created) for data in CUSTOMERS]
    db.session.flush()
    variants = {v["sku"]: v for v in store.all("variants")}
    private, company = (store.get("customers", cid) for cid in customer_ids)
    _create_order(
        store,
        shop,
        {
            "customer": {"id": private["id"]},
            "line_items": [
                {"variant_id": variants["KRUS-30CL/HYGGE"]["id"], "quantity": 2},
                {"variant_id": variants["TS-ØKO_M"]["id"], "quantity": 1},
            ],
            "shipping_lines": [{"title": "GLS Pakkeshop", "code": "GLS", "price": "49.00"}],
            "transactions": [{"kind": "sale", "status": "success", "gateway": "shopify_payments"}],
            "processed_at": _iso(now - timedelta(days=3)),
        },
        fire=False,
    )
    _create_order(
        store,
        shop,
        {
            "customer": {"id": company["id"]},
            "line_items": [{"variant_id": variants["BØNNER 1KG.ESP"]["id"], "quantity": 4}],
            "shipping_lines": [{"title": "PostNord Erhverv", "code": "PN-B2B", "price": "79.00"}],
            "note_attributes": [{"name": "vat_number", "value": "DK12345674"}],
            "po_number": "INDKØB-2211",
            "transactions": [{"kind": "sale", "status": "success", "gateway": "Bankoverførsel"}],
            "processed_at": _iso(now - timedelta(days=2)),
        },
        fire=False,
    )
    refunded = _create_order(
        store,
        shop,
        {
            "customer": {"id": private["id"]},
            "line_items": [
                {"variant_id": variants["TS-ØKO_S"]["id"], "quantity": 2},
                {"variant_id": variants["KRUS-30CL/HYGGE"]["id"], "quantity": 1},
            ],
            "discount_codes": [{"code": "VELKOMMEN10", "amount": "10.0", "type": "percentage"}],
            "shipping_lines": [{"title": "GLS Pakkeshop", "code": "GLS", "price": "49.00"}],
            "transactions": [{"kind": "sale", "status": "success", "gateway": "shopify_payments"}],
            "processed_at": _iso(now - timedelta(days=1)),
        },
        fire=False,
    )
    line = refunded["line_items"][0]
    _create_refund(
        store,
        shop,
        refunded["id"],
        {
            "note": "Forkert størrelse",
            "refund_line_items": [{"line_item_id": line["id"], "quantity": 1, "restock_type": "return"}],
        },
        suggested_transaction=True,
        fire=False,
    )
    db.session.commit()


def _seed_product(store, title, product_type, vendor, variants, location_id, created) -> None:
    product_id = _new_id(store)
    handle = re.sub(r"[^a-z0-9æøå]+", "-", title.lower()).strip("-")
    options = [v[0] for v in variants if v[0]]
    variant_docs = []
    for position, (variant_title, sku, price, grams, stock) in enumerate(variants, start=1):
        variant_id = _new_id(store)
        item_id = _new_id(store)
        variant = {
            "id": variant_id,
            "product_id": product_id,
            "title": variant_title or "Default Title",
            "price": price,
            "position": position,
            "inventory_policy": "deny",
            "compare_at_price": None,
            "option1": variant_title or "Default Title",
            "option2": None,
            "option3": None,
            "created_at": created,
            "updated_at": created,
            "taxable": True,
            "barcode": None,
            "fulfillment_service": "manual",
            "grams": grams,
            "inventory_management": "shopify",
            "requires_shipping": True,
            "sku": sku,
            "weight": grams / 1000,
            "weight_unit": "kg",
            "inventory_item_id": item_id,
            "inventory_quantity": stock,
            "old_inventory_quantity": stock,
            "presentment_prices": [
                {"price": {"amount": price, "currency_code": CURRENCY}, "compare_at_price": None}
            ],
            "admin_graphql_api_id": _gid("ProductVariant", variant_id),
            "image_id": None,
        }
        store.put("variants", variant_id, variant)
        variant_docs.append(variant_id)
        store.put(
            "inventory_items",
            item_id,
            {
                "id": item_id,
                "sku": sku,
                "created_at": created,
                "updated_at": created,
                "requires_shipping": True,
                "cost": None,
                "country_code_of_origin": None,
                "province_code_of_origin": None,
                "harmonized_system_code": None,
                "tracked": True,
                "country_harmonized_system_codes": [],
                "admin_graphql_api_id": _gid("InventoryItem", item_id),
            },
        )
        _put_level(store, item_id, location_id, stock, created)
    store.put(
        "products",
        product_id,
        {
            "id": product_id,
            "title": title,
            "body_html": f"<p>{title}</p>",
            "vendor": vendor,
            "product_type": product_type,
            "created_at": created,
            "handle": handle,
            "updated_at": created,
            "published_at": created,
            "template_suffix": None,
            "published_scope": "global",
            "tags": "",
            "status": "active",
            "admin_graphql_api_id": _gid("Product", product_id),
            "_variant_ids": variant_docs,
            "options": [
                {
                    "id": product_id + 1_000_000,
                    "product_id": product_id,
                    "name": "Størrelse" if options else "Title",
                    "position": 1,
                    "values": options or ["Default Title"],
                }
            ],
            "images": [],
            "image": None,
        },
    )


def _seed_customer(store, data, created) -> int:
    customer_id = _new_id(store)
    name, company, address1, zip_code, city = data["address"]
    address = {
        "id": customer_id + 1,
        "customer_id": customer_id,
        "first_name": data["first_name"],
        "last_name": data["last_name"],
        "company": company,
        "address1": address1,
        "address2": "",
        "city": city,
        "province": None,
        "country": "Denmark",
        "zip": zip_code,
        "phone": data["phone"],
        "name": name,
        "province_code": None,
        "country_code": "DK",
        "country_name": "Denmark",
        "default": True,
    }
    store.put(
        "customers",
        customer_id,
        {
            "id": customer_id,
            "email": data["email"],
            "created_at": created,
            "updated_at": created,
            "first_name": data["first_name"],
            "last_name": data["last_name"],
            "state": "enabled",
            "note": data.get("note"),
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": data["phone"],
            "email_marketing_consent": {
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
            },
            "sms_marketing_consent": {
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
                "consent_collected_from": "OTHER",
            },
            "tags": data.get("tags", ""),
            "currency": CURRENCY,
            "tax_exemptions": [],
            "admin_graphql_api_id": _gid("Customer", customer_id),
            "default_address": address,
        },
    )
    return customer_id


def _level_key(item_id, location_id) -> str:
    return f"{item_id}:{location_id}"


def _put_level(store, item_id, location_id, available, updated_at) -> dict:
    level = {
        "inventory_item_id": int(item_id),
        "location_id": int(location_id),
        "available": int(available),
        "updated_at": updated_at,
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}",
    }
    store.put("inventory_levels", _level_key(item_id, location_id), level)
    return level


def _sync_variant_stock(store, item_id, updated_at) -> None:
    """A variant's inventory_quantity is the sum of its item's levels."""
    total = sum(
        level["available"] for level in store.all("inventory_levels") if level["inventory_item_id"] == item_id
    )
    for variant in store.all("variants"):
        if variant["inventory_item_id"] == item_id:
            previous = variant["inventory_quantity"]
            changes = {
                "old_inventory_quantity": previous,
                "inventory_quantity": total,
                "updated_at": updated_at,
            }
            store.put("variants", variant["id"], {**variant, **changes})


# --- auth, rate limit, the API decorator -------------------------------------------------------------------

_LEAK = """
local capacity = tonumber(ARGV[1])
local leak_per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or 0
local at = tonumber(state[2]) or now
level = math.max(0, level - (now - at) * leak_per_ms)
local admitted = 0
if level + 1 <= capacity then
  level = level + 1
  admitted = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / leak_per_ms) + 1000)
return {admitted, tostring(level)}
"""


def _bucket() -> tuple[int, float]:
    return current_app.config.get("SANDBOX_SHOPIFY_BUCKET", (40, 2.0))


def _leak(shop: str, client_id: str) -> tuple[bool, int, int]:
    """Shopify's leaky bucket per app and shop: each request adds one, the bucket leaks `rate` a second."""
    capacity, rate = _bucket()
    redis = get_redis()
    script = redis.register_script(_LEAK)
    admitted, level = script(
        keys=[f"bogbro:sandbox:shopify:bucket:{shop}:{client_id}"], args=[capacity, rate / 1000]
    )
    return bool(int(admitted)), int(float(level) + 0.999), capacity


def _token() -> dict:
    value = request.headers.get("X-Shopify-Access-Token", "")
    token = _auth_store().get("tokens", value) if value else None
    if token is None or token.get("revoked"):
        raise ApiError(401, INVALID_TOKEN)
    return token


def _has_scope(granted: list[str], scope: str | None) -> bool:
    if scope is None:
        return True
    if scope in granted:
        return True
    return scope.startswith("read_") and scope.replace("read_", "write_", 1) in granted


def api(scope: str | None = None):
    """Every Admin API view: a known API version, the access token, its scope, the leaky bucket."""

    def decorate(view):
        @wraps(view)
        def wrapper(version, *args, **kwargs):
            headers = {"X-Shopify-API-Version": version}
            try:
                if not API_VERSION.match(version):
                    raise _not_found()
                token = _token()
                admitted, level, capacity = _leak(token["shop"], token["client_id"])
                headers["X-Shopify-Shop-Api-Call-Limit"] = f"{level}/{capacity}"
                if not admitted:
                    raise ApiError(429, RATE_LIMITED, {"Retry-After": "2.0"})
                if not _has_scope(token["scope"], scope):
                    raise ApiError(403, f"[API] This action requires merchant approval for {scope} scope.")
                seed(token["shop"])
                response = view(token, _store(token["shop"]), *args, **kwargs)
            except ApiError as error:
                db.session.rollback()
                headers.update(error.headers)
                return _json({"errors": error.errors}, error.status, headers)
            for name, value in headers.items():
                response.headers[name] = value
            return response

        return wrapper

    return decorate


REQUEST_LOG = "bogbro:sandbox:shopify:requests"
REQUEST_LOG_SIZE = 5000


@bp.before_request
def _log_request():
    """Every request to the emulated Shopify, newest first, so tests can show which paths a flow used."""
    redis = get_redis()
    redis.lpush(REQUEST_LOG, f"{request.method} {request.path}")
    redis.ltrim(REQUEST_LOG, 0, REQUEST_LOG_SIZE - 1)


def request_log() -> list[str]:
    """The requests made since clear_request_log, oldest first ("POST /sandbox/shopify/admin/…")."""
    return [entry.decode() for entry in reversed(get_redis().lrange(REQUEST_LOG, 0, -1))]


def clear_request_log() -> None:
    get_redis().delete(REQUEST_LOG)


def _route(rule: str, **options):
    return bp.route(f"/admin/api/<version>/{rule}", **options)


# --- OAuth: install with a consent page ---------------------------------------------------------------------


def sign_query(params: dict, secret: str) -> str:
    """Shopify's `hmac` on the install callback: hex HMAC-SHA256 of the other parameters, sorted, joined as
    key=value with "&"."""
    message = "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _install_problem(args) -> str | None:
    if args.get("client_id") not in CLIENTS:
        return "unknown_client"
    if not SHOP_DOMAIN.match(args.get("shop", DEMO_SHOP) or DEMO_SHOP):
        return "invalid_shop"
    if not redirect_allowed(args.get("redirect_uri")):
        return "invalid_redirect_uri"
    scopes = [s.strip() for s in (args.get("scope") or "").split(",") if s.strip()]
    if not scopes or not set(scopes) <= set(SCOPES):
        return "invalid_scope"
    return None


@bp.get("/admin/oauth/authorize")
def authorize():
    args = request.args
    return consent_page(
        "sandbox/shopify_install.html",
        _install_problem(args),
        params={k: args.get(k, "") for k in ("client_id", "redirect_uri", "scope", "state")},
        shop=args.get("shop") or DEMO_SHOP,
        scopes=[s.strip() for s in (args.get("scope") or "").split(",") if s.strip()],
        declined=False,
    )


@bp.post("/admin/oauth/authorize")
def authorize_answer():
    form = request.form
    if _install_problem(form):
        return authorize()
    shop = form.get("shop") or DEMO_SHOP
    if form.get("answer") != "install":
        # Shopify does not call the app back when the merchant cancels; the page says so.
        return render_template(
            "sandbox/shopify_install.html",
            problem=None,
            params={},
            shop=shop,
            scopes=[],
            declined=True,
        )
    code = secrets.token_hex(16)
    _auth_store().put(
        "codes",
        code,
        {
            "shop": shop,
            "client_id": form["client_id"],
            "scope": form["scope"],
            "expires_at": time.time() + CODE_SECONDS,
            "used": False,
        },
    )
    seed(shop)
    db.session.commit()
    params = {
        "code": code,
        "host": base64.urlsafe_b64encode(f"{shop}/admin".encode()).decode().rstrip("="),
        "shop": shop,
        "state": form.get("state", ""),
        "timestamp": str(int(time.time())),
    }
    params["hmac"] = sign_query(params, CLIENTS[form["client_id"]])
    return redirect_back(form["redirect_uri"], params)


@bp.post("/admin/oauth/access_token")
def access_token():
    payload = request.get_json(silent=True) if request.is_json else request.form
    payload = payload or {}
    client_id, secret = payload.get("client_id"), payload.get("client_secret")
    if client_id not in CLIENTS or not secrets.compare_digest(CLIENTS[client_id], secret or ""):
        return _json({"error": "invalid_client", "error_description": "Client credentials are invalid"}, 400)
    store = _auth_store()
    code = store.get("codes", payload.get("code") or "")
    if code is None or code["used"] or code["expires_at"] < time.time() or code["client_id"] != client_id:
        return _json(
            {
                "error": "invalid_request",
                "error_description": "The authorization code was not found or was already used",
            },
            400,
        )
    store.put("codes", payload["code"], {**code, "used": True})
    answer = issue_token(code["shop"], client_id, code["scope"], commit=False)
    db.session.commit()
    return _json(answer)


def issue_token(
    shop: str = DEMO_SHOP,
    client_id: str = next(iter(CLIENTS)),
    scope: str = "read_orders,read_products,read_inventory,write_inventory,read_locations",
    *,
    commit: bool = True,
) -> dict:
    """An offline access token for an installed app, as the code exchange gives it (also for tests)."""
    value = "shpua_" + secrets.token_hex(16)
    scopes = sorted({s.strip() for s in scope.split(",") if s.strip()})
    _auth_store().put(
        "tokens", value, {"shop": shop, "client_id": client_id, "scope": scopes, "revoked": False}
    )
    seed(shop)
    if commit:
        db.session.commit()
    return {"access_token": value, "scope": ",".join(scopes)}


def uninstall(shop: str, client_id: str = next(iter(CLIENTS))) -> None:
    """The merchant removes the app: its tokens stop working, its subscriptions go, app/uninstalled fires."""
    auth = _auth_store()
    for key, token in auth.items("tokens", shop=shop, client_id=client_id):
        auth.put("tokens", key, {**token, "revoked": True})
    store = _store(shop)
    _fire(store, shop, "app/uninstalled", shop_document(shop), client_id=client_id)
    for hook in store.all("webhooks"):
        if hook["_client_id"] == client_id:
            store.delete("webhooks", hook["id"])
    db.session.commit()


@bp.delete("/admin/api_permissions/current.json")
def revoke_access():
    """An app uninstalling itself (the REST endpoint Shopify offers for that)."""
    try:
        token = _token()
    except ApiError as error:
        return _json({"errors": error.errors}, error.status)
    uninstall(token["shop"], token["client_id"])
    return _json({})


# --- webhooks: subscriptions and deliveries -----------------------------------------------------------------


def _webhook_out(hook: dict) -> dict:
    return _strip(hook)


@_route("webhooks.json", methods=["GET"])
@api()
def list_webhooks(token, store):
    hooks = [h for h in store.all("webhooks") if h["_client_id"] == token["client_id"]]
    if request.args.get("topic"):
        hooks = [h for h in hooks if h["topic"] == request.args["topic"]]
    if request.args.get("address"):
        hooks = [h for h in hooks if h["address"] == request.args["address"]]
    return _paged(store, "webhooks", [_webhook_out(h) for h in hooks], default_order="id asc")


@_route("webhooks/<int:webhook_id>.json", methods=["GET"])
@api()
def get_webhook(token, store, webhook_id):
    hook = store.get("webhooks", webhook_id)
    if hook is None or hook["_client_id"] != token["client_id"]:
        raise _not_found()
    return _json({"webhook": _webhook_out(hook)})


@_route("webhooks.json", methods=["POST"])
@api()
def create_webhook(token, store):
    hook = create_subscription(token, store, _body("webhook"), request.view_args["version"])
    db.session.commit()
    return _json({"webhook": _webhook_out(hook)}, 201)


def create_subscription(token: dict, store: SandboxStore, data: dict, version: str) -> dict:
    """A new subscription (REST webhooks.json and GraphQL webhookSubscriptionCreate); ApiError 422 with
    REST's field errors when Shopify would refuse it."""
    topic, address = data.get("topic"), data.get("address")
    fmt = data.get("format", "json")
    errors = {}
    if topic not in TOPICS:
        errors["topic"] = [f"Invalid topic specified: {topic}"]
    else:
        needed = next((scope for prefix, scope in TOPIC_SCOPES.items() if topic.startswith(prefix)), None)
        if not _has_scope(token["scope"], needed):
            errors["topic"] = [f"Invalid topic specified: {topic}. Topic requires the {needed} scope."]
    parts = urlsplit(address or "")
    if not address or parts.scheme not in ("http", "https") or not parts.netloc:
        errors["address"] = ["is invalid"]
    if fmt not in ("json", "xml"):
        errors["format"] = ["is not included in the list"]
    if not errors and any(
        h["topic"] == topic and h["address"] == address and h["_client_id"] == token["client_id"]
        for h in store.all("webhooks")
    ):
        errors["address"] = ["for this topic has already been taken"]
    if errors:
        raise _errors(422, errors)
    webhook_id = _new_id(store)
    now = _iso(_now())
    hook = {
        "id": webhook_id,
        "address": address,
        "topic": topic,
        "created_at": now,
        "updated_at": now,
        "format": fmt,
        "fields": list(data.get("fields") or []),
        "metafield_namespaces": list(data.get("metafield_namespaces") or []),
        "api_version": version,
        "private_metafield_namespaces": [],
        "_client_id": token["client_id"],
    }
    store.put("webhooks", webhook_id, hook)
    return hook


@_route("webhooks/<int:webhook_id>.json", methods=["DELETE"])
@api()
def delete_webhook(token, store, webhook_id):
    hook = store.get("webhooks", webhook_id)
    if hook is None or hook["_client_id"] != token["client_id"]:
        raise _not_found()
    store.delete("webhooks", webhook_id)
    db.session.commit()
    return _json({})


def _fire(store: SandboxStore, shop: str, topic: str, payload: dict, client_id: str | None = None) -> None:
    """One event: a delivery (own X-Shopify-Webhook-Id) per matching subscription, all with the same
    X-Shopify-Event-Id, sent by an RQ job after the commit."""
    hooks = [
        h
        for h in store.all("webhooks")
        if h["topic"] == topic and (client_id is None or h["_client_id"] == client_id)
    ]
    if not hooks:
        return
    event_id = str(uuid.uuid4())
    triggered_at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for hook in hooks:
        delivery_id = str(uuid.uuid4())
        store.put(
            "deliveries",
            delivery_id,
            {
                "webhook_id": delivery_id,
                "event_id": event_id,
                "subscription_id": hook["id"],
                "client_id": hook["_client_id"],
                "topic": topic,
                "address": hook["address"],
                "api_version": hook["api_version"],
                "triggered_at": triggered_at,
                "body": body,
                "attempts": [],
                "status": "pending",
            },
        )
        enqueue_after_commit("workers.jobs.deliver_sandbox_webhook", SYSTEM, shop, delivery_id)


def delivery_headers(shop: str, delivery: dict) -> dict:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": delivery["topic"],
        "X-Shopify-Hmac-Sha256": signature(delivery["body"].encode(), CLIENTS[delivery["client_id"]]),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": delivery["api_version"],
        "X-Shopify-Webhook-Id": delivery["webhook_id"],
        "X-Shopify-Event-Id": delivery["event_id"],
        "X-Shopify-Triggered-At": delivery["triggered_at"],
    }


def deliver(shop: str, delivery_id: str) -> None:
    """One attempt of one delivery (the RQ job's work). 2xx is success; anything else (or no answer within
    5 s) is retried with the same X-Shopify-Webhook-Id and body; after the last retry fails, the
    subscription is removed."""
    store = _store(shop)
    delivery = store.get("deliveries", delivery_id)
    if delivery is None or delivery["status"] != "pending":
        return
    try:
        body, headers = delivery["body"].encode(), delivery_headers(shop, delivery)
        status = post_webhook(delivery["address"], body, headers, DELIVERY_TIMEOUT).status_code
        outcome = str(status)
        ok = 200 <= status < 300
    except httpx.HTTPError as exc:
        outcome, ok = type(exc).__name__, False
    attempts = [*delivery["attempts"], {"at": _iso(_now()), "outcome": outcome}]
    delays = current_app.config.get("SANDBOX_SHOPIFY_WEBHOOK_RETRY_DELAYS", RETRY_DELAYS)
    retry_in = None
    if ok:
        status_text = "delivered"
    elif len(attempts) <= len(delays):
        status_text, retry_in = "pending", delays[len(attempts) - 1]
    else:
        status_text = "failed"
        store.delete("webhooks", delivery["subscription_id"])
    store.put("deliveries", delivery_id, {**delivery, "attempts": attempts, "status": status_text})
    db.session.commit()
    if retry_in is not None:
        job = "workers.jobs.deliver_sandbox_webhook"
        if retry_in > 0:
            get_queue().enqueue_in(timedelta(seconds=retry_in), job, SYSTEM, shop, delivery_id)
        else:
            get_queue().enqueue(job, SYSTEM, shop, delivery_id)


def deliveries(shop: str = DEMO_SHOP) -> list[dict]:
    """Every delivery the shop has made or is making (for tests and the demo)."""
    return _store(shop).all("deliveries")


# --- listing: filters, cursors, Link headers ----------------------------------------------------------------

PAGING_ONLY = {"page_info", "limit", "fields"}


def _limit() -> int:
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or int(raw) < 1:
        raise _errors(400, {"limit": "Invalid value."})
    return min(int(raw), MAX_LIMIT)


def _encode_cursor(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(value: str) -> dict:
    try:
        padded = value + "=" * (-len(value) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict) or state.get("dir") not in ("next", "previous"):
            raise ValueError
        return state
    except (ValueError, UnicodeDecodeError):
        raise _errors(400, {"page_info": "Invalid value."}) from None


def _sort_key(document: dict, field: str):
    value = document.get(field)
    if field.endswith("_at") and value:
        return _parse_time(value).timestamp()
    return value


def _paged(store, resource: str, items: list[dict], *, default_order: str, query: dict | None = None):
    """A page of `items` (already filtered) with Shopify's cursor rules: `page_info` comes from a Link
    header and may be combined only with `limit` and `fields`; the cursor carries the query itself."""
    page_info = request.args.get("page_info")
    if page_info:
        extra = sorted(set(request.args) - PAGING_ONLY)
        if extra:
            raise _errors(400, {name: f"{name} cannot be passed when page_info is present" for name in extra})
        state = _decode_cursor(page_info)
        items = _apply_filters(items, state["query"])
        order = state["order"]
    else:
        order = (query or {}).get("order") or default_order
        state = {"query": query or {}, "order": order}
    field, _, direction = order.partition(" ")
    descending = direction.lower() == "desc"
    items = sorted(items, key=lambda d: (_sort_key(d, field), d["id"]), reverse=descending)
    limit = _limit()
    keys = [(_sort_key(d, field), d["id"]) for d in items]
    if page_info:
        anchor = tuple(state["anchor"])
        if state["dir"] == "next":
            start = next(
                (i for i, k in enumerate(keys) if (k < anchor if descending else k > anchor)), len(items)
            )
        else:
            before = [i for i, k in enumerate(keys) if (k > anchor if descending else k < anchor)]
            start = max(0, (before[-1] + 1 if before else 0) - limit)
    else:
        start = 0
    page = items[start : start + limit]
    links = []
    base = f"{request.host_url.rstrip('/')}{request.path}"
    fields = request.args.get("fields")
    common = {"limit": str(limit), **({"fields": fields} if fields else {})}
    if start > 0 and page:
        cursor = _encode_cursor({**state, "dir": "previous", "anchor": list(keys[start])})
        links.append(f'<{base}?{urlencode({**common, "page_info": cursor})}>; rel="previous"')
    if start + limit < len(items) and page:
        cursor = _encode_cursor({**state, "dir": "next", "anchor": list(keys[start + len(page) - 1])})
        links.append(f'<{base}?{urlencode({**common, "page_info": cursor})}>; rel="next"')
    response = _json({resource: [_select(d, fields) for d in page]})
    if links:
        response.headers["Link"] = ", ".join(links)
    return response


def _apply_filters(items: list[dict], query: dict) -> list[dict]:
    def time_filter(name, compare):
        if name not in query:
            return
        moment = query[name]
        nonlocal items
        items = [
            d for d in items if d.get(name[:-4]) and compare(_parse_time(d[name[:-4]]).timestamp(), moment)
        ]

    if "ids" in query:
        wanted = set(query["ids"])
        items = [d for d in items if d["id"] in wanted]
    if "since_id" in query:
        items = [d for d in items if d["id"] > query["since_id"]]
    for name in ("created_at", "updated_at", "processed_at"):
        time_filter(f"{name}_min", lambda value, moment: value >= moment)
        time_filter(f"{name}_max", lambda value, moment: value <= moment)
    status = query.get("status")
    if status == "open":
        items = [d for d in items if d.get("closed_at") is None and d.get("cancelled_at") is None]
    elif status == "closed":
        items = [d for d in items if d.get("closed_at") is not None]
    elif status == "cancelled":
        items = [d for d in items if d.get("cancelled_at") is not None]
    for name in ("financial_status", "fulfillment_status"):
        if query.get(name) not in (None, "any"):
            value = query[name]
            if name == "fulfillment_status" and value == "unshipped":
                value = None
            items = [d for d in items if d.get(name) == value]
    if "visible_after" in query:
        items = [d for d in items if _parse_time(d["created_at"]).timestamp() >= query["visible_after"]]
    return items


def _list_query(allowed_status=("open", "closed", "cancelled", "any")) -> dict:
    """The filters of a first-page request, validated, as plain data (they travel inside the cursor)."""
    args = request.args
    query = {}
    if args.get("ids"):
        try:
            query["ids"] = [int(part) for part in args["ids"].split(",") if part.strip()]
        except ValueError:
            raise _errors(400, {"ids": "Invalid value."}) from None
    if args.get("since_id"):
        if not args["since_id"].isdigit():
            raise _errors(400, {"since_id": "Invalid value."})
        query["since_id"] = int(args["since_id"])
    for name in (
        "created_at_min", "created_at_max", "updated_at_min", "updated_at_max", "processed_at_min",
        "processed_at_max",
    ):  # fmt: skip
        if args.get(name):
            try:
                query[name] = _parse_time(args[name]).timestamp()
            except ValueError:
                raise _errors(400, {name: "Invalid value."}) from None
    status = args.get("status", "open")
    if status not in allowed_status:
        raise _errors(400, {"status": "Invalid value."})
    query["status"] = status
    for name in ("financial_status", "fulfillment_status"):
        if args.get(name):
            query[name] = args[name]
    if args.get("order"):
        field, _, direction = args["order"].partition(" ")
        if field not in ("id", "created_at", "updated_at", "processed_at") or direction.lower() not in (
            "",
            "asc",
            "desc",
        ):
            raise _errors(400, {"order": "Invalid value."})
        query["order"] = f"{field} {direction.lower() or 'asc'}"
    return query


# --- shop, locations, products, inventory -------------------------------------------------------------------


@_route("shop.json")
@api()
def get_shop(token, store):
    return _json({"shop": _select(shop_document(token["shop"]), request.args.get("fields"))})


@_route("locations.json")
@api("read_locations")
def list_locations(token, store):
    return _json({"locations": store.all("locations")})


def _product_out(store, product: dict) -> dict:
    variants = [store.get("variants", vid) for vid in product["_variant_ids"]]
    out = _strip(product)
    ordered = {k: out[k] for k in out if k not in ("options", "images", "image")}
    return {**ordered, "variants": variants, "options": out["options"], "images": out["images"],
            "image": out["image"]}  # fmt: skip


@_route("products.json")
@api("read_products")
def list_products(token, store):
    query = {}
    if request.args.get("ids") and not request.args.get("page_info"):
        query = {"ids": [int(x) for x in request.args["ids"].split(",") if x.strip().isdigit()]}
    products = [_product_out(store, p) for p in store.all("products")]
    if not request.args.get("page_info"):
        products = _apply_filters(products, query)
    return _paged(store, "products", products, default_order="id asc", query=query)


@_route("products/<int:product_id>.json")
@api("read_products")
def get_product(token, store, product_id):
    product = store.get("products", product_id)
    if product is None:
        raise _not_found()
    return _json({"product": _select(_product_out(store, product), request.args.get("fields"))})


@_route("variants/<int:variant_id>.json")
@api("read_products")
def get_variant(token, store, variant_id):
    variant = store.get("variants", variant_id)
    if variant is None:
        raise _not_found()
    return _json({"variant": variant})


@_route("inventory_levels.json")
@api("read_inventory")
def list_inventory_levels(token, store):
    def ids(name):
        raw = request.args.get(name, "")
        return {int(x) for x in raw.split(",") if x.strip().isdigit()}

    items, locations = ids("inventory_item_ids"), ids("location_ids")
    if not items and not locations:
        raise _errors(422, "Must include inventory_item_ids or location_ids.")
    levels = [
        level
        for level in store.all("inventory_levels")
        if (not items or level["inventory_item_id"] in items)
        and (not locations or level["location_id"] in locations)
    ]
    return _json({"inventory_levels": levels})


@_route("inventory_levels/set.json", methods=["POST"])
@api("write_inventory")
def set_inventory_level(token, store):
    payload = request.get_json(silent=True) or {}
    item_id, location_id, available = (
        payload.get(k) for k in ("inventory_item_id", "location_id", "available")
    )
    errors = {}
    for name, value in (
        ("inventory_item_id", item_id),
        ("location_id", location_id),
        ("available", available),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            errors[name] = [
                "expected Integer to be a Integer" if value is not None else "Required parameter missing"
            ]
    if errors:
        raise _errors(422, errors)
    item = store.get("inventory_items", item_id)
    if item is None or store.get("locations", location_id) is None:
        raise _not_found()
    if not item["tracked"]:
        raise _errors(422, ["Inventory item does not have inventory tracking enabled"])
    now = _iso(_now())
    # A location the item is not stocked at is connected first (disconnect_if_necessary is not emulated).
    level = _put_level(store, item_id, location_id, available, now)
    _sync_variant_stock(store, item_id, now)
    db.session.commit()
    return _json({"inventory_level": level})


# --- orders -------------------------------------------------------------------------------------------------


def _tax_of(amount: Decimal, taxes_included: bool) -> Decimal:
    if taxes_included:
        return _q(amount * VAT_RATE / (1 + VAT_RATE))
    return _q(amount * VAT_RATE)


def _tax_lines(tax: Decimal) -> list[dict]:
    return [
        {
            "channel_liable": False,
            "price": _s(tax),
            "price_set": _money_set(tax),
            "rate": float(VAT_RATE),
            "title": VAT_TITLE,
        }
    ]


def _allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` over `weights` in proportion, in øre, the last share taking the rest."""
    whole = sum(weights)
    if not whole or not total:
        return [Decimal("0.00")] * len(weights)
    shares = [_q(total * w / whole) for w in weights[:-1]]
    return [*shares, _q(total - sum(shares))]


def _order_line(store, item: dict, errors: dict, index: int) -> dict:
    quantity = item.get("quantity")
    if not isinstance(quantity, int) or quantity < 1:
        errors.setdefault("line_items", []).append(f"quantity must be a positive integer (line {index + 1})")
        quantity = 1
    variant = store.get("variants", item["variant_id"]) if item.get("variant_id") else None
    if item.get("variant_id") and variant is None:
        errors.setdefault("line_items", []).append("is invalid")
        variant = None
    product = store.get("products", variant["product_id"]) if variant else None
    title = item.get("title") or (product["title"] if product else None)
    if not title:
        errors.setdefault("line_items", []).append("title can't be blank")
        title = ""
    price = item.get("price") if item.get("price") is not None else (variant["price"] if variant else "0.00")
    try:
        price = _q(price)
    except ArithmeticError:
        errors.setdefault("line_items", []).append("price is invalid")
        price = Decimal("0.00")
    variant_title = None if not variant or variant["title"] == "Default Title" else variant["title"]
    line_id = _new_id(store)
    return {
        "id": line_id,
        "admin_graphql_api_id": _gid("LineItem", line_id),
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": bool(item.get("gift_card", False)),
        "grams": int(item.get("grams", variant["grams"] if variant else 0)),
        "name": f"{title} - {variant_title}" if variant_title else title,
        "price": _s(price),
        "price_set": _money_set(price),
        "product_exists": product is not None,
        "product_id": product["id"] if product else None,
        "properties": list(item.get("properties") or []),
        "quantity": quantity,
        "requires_shipping": bool(item.get("requires_shipping", True)),
        "sku": item.get("sku") if item.get("sku") is not None else (variant["sku"] if variant else None),
        "taxable": bool(item.get("taxable", True)),
        "title": title,
        "total_discount": "0.00",
        "total_discount_set": _money_set(0),
        "variant_id": variant["id"] if variant else None,
        "variant_inventory_management": variant["inventory_management"] if variant else None,
        "variant_title": variant_title,
        "vendor": product["vendor"] if product else None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def _customer_for(store, payload: dict) -> dict | None:
    given = payload.get("customer")
    if isinstance(given, dict) and given.get("id"):
        customer = store.get("customers", given["id"])
        if customer is None:
            raise _errors(422, {"customer": ["is invalid"]})
        return customer
    return None


def _create_order(store: SandboxStore, shop: str, payload: dict, *, fire: bool = True) -> dict:
    """POST orders.json: the order as given, completed the way a Danish shop computes it (prices incl. 25 %
    VAT, tax lines per line and shipping line, totals, current_* fields, financial status)."""
    errors: dict = {}
    items = payload.get("line_items")
    if not isinstance(items, list) or not items:
        raise _errors(422, {"line_items": ["must have at least one line item"]})
    lines = [_order_line(store, item, errors, i) for i, item in enumerate(items) if isinstance(item, dict)]
    if errors:
        raise _errors(422, errors)
    taxes_included = bool(payload.get("taxes_included", True))
    customer = _customer_for(store, payload)
    now = _now()
    # Discounts: one discount application per code, allocated over the lines by their price.
    applications, codes = [], []
    for code in payload.get("discount_codes") or []:
        kind = code.get("type", "fixed_amount")
        gross = [_q(line["price"]) * line["quantity"] for line in lines]
        if kind == "percentage":
            value = Decimal(str(code.get("amount", "0")))
            shares = [_q(g * value / 100) for g in gross]
        else:
            value = _q(code.get("amount", "0"))
            shares = _allocate(value, gross)
        index = len(applications)
        applications.append(
            {
                "target_type": "line_item",
                "type": "discount_code",
                "value": str(value),
                "value_type": "percentage" if kind == "percentage" else "fixed_amount",
                "allocation_method": "across",
                "target_selection": "all",
                "code": code.get("code", ""),
            }
        )
        codes.append({"code": code.get("code", ""), "amount": _s(sum(shares)), "type": kind})
        for line, share in zip(lines, shares, strict=True):
            if share:
                line["discount_allocations"].append(
                    {
                        "amount": _s(share),
                        "amount_set": _money_set(share),
                        "discount_application_index": index,
                    }
                )
    for line in lines:
        discount = sum((_q(a["amount"]) for a in line["discount_allocations"]), Decimal("0"))
        if line["taxable"]:
            line["tax_lines"] = _tax_lines(
                _tax_of(_q(line["price"]) * line["quantity"] - discount, taxes_included)
            )
    shipping_lines = []
    for given in payload.get("shipping_lines") or []:
        price = _q(given.get("price", "0"))
        line_id = _new_id(store)
        shipping_lines.append(
            {
                "id": line_id,
                "carrier_identifier": None,
                "code": given.get("code") or given.get("title"),
                "discounted_price": _s(price),
                "discounted_price_set": _money_set(price),
                "is_removed": False,
                "phone": None,
                "price": _s(price),
                "price_set": _money_set(price),
                "requested_fulfillment_service_id": None,
                "source": given.get("source", "shopify"),
                "title": given.get("title") or "Shipping",
                "tax_lines": _tax_lines(_tax_of(price, taxes_included)) if price else [],
                "discount_allocations": [],
            }
        )
    order_id = _new_id(store, "orders")
    number = _new_id(store, "order_number")
    processed_at = payload.get("processed_at") or _iso(now)
    try:
        processed_at = _iso(_parse_time(processed_at))
    except ValueError:
        raise _errors(422, {"processed_at": ["is invalid"]}) from None
    billing = _given_address(payload.get("billing_address")) or (
        _customer_address(customer) if customer else None
    )
    shipping = _given_address(payload.get("shipping_address")) or billing
    email = payload.get("email") or (customer["email"] if customer else None)
    transactions_in = payload.get("transactions") or []
    gateways = sorted({t.get("gateway", "manual") for t in transactions_in}) or ["manual"]
    order = {
        "id": order_id,
        "admin_graphql_api_id": _gid("Order", order_id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": bool(payload.get("buyer_accepts_marketing", False)),
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": None,
        "client_details": {
            "accept_language": None,
            "browser_height": None,
            "browser_ip": None,
            "browser_width": None,
            "session_hash": None,
            "user_agent": None,
        },
        "closed_at": None,
        "confirmation_number": secrets.token_hex(5).upper()[:9],
        "confirmed": True,
        "contact_email": email,
        "created_at": processed_at,
        "currency": CURRENCY,
        "customer_locale": "da",
        "device_id": None,
        "discount_codes": codes,
        "duties_included": False,
        "email": email or "",
        "estimated_taxes": False,
        "financial_status": "pending",
        "fulfillment_status": None,
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": base64.b64encode(str(_shop_id(shop)).encode()).decode().rstrip("="),
        "merchant_of_record_app_id": None,
        "name": f"#{number}",
        "note": payload.get("note"),
        "note_attributes": list(payload.get("note_attributes") or []),
        "number": number - 1000,
        "order_number": number,
        "order_status_url": f"https://{shop}/{_shop_id(shop)}/orders/{secrets.token_hex(16)}/authenticate",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": gateways,
        "phone": payload.get("phone"),
        "po_number": payload.get("po_number"),
        "presentment_currency": CURRENCY,
        "processed_at": processed_at,
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": payload.get("source_name", "web"),
        "source_url": None,
        "tags": payload.get("tags", ""),
        "tax_exempt": False,
        "taxes_included": taxes_included,
        "test": bool(payload.get("test", False)),
        "token": secrets.token_hex(16),
        "total_cash_rounding_payment_adjustment_set": _money_set(0),
        "total_cash_rounding_refund_adjustment_set": _money_set(0),
        "total_tip_received": "0.00",
        "total_weight": sum(line["grams"] * line["quantity"] for line in lines),
        "updated_at": processed_at,
        "user_id": None,
        "billing_address": billing,
        "customer": _order_customer(customer) if customer else None,
        "discount_applications": applications,
        "fulfillments": [],
        "line_items": lines,
        "payment_terms": None,
        "refunds": [],
        "shipping_address": shipping,
        "shipping_lines": shipping_lines,
    }
    _compute_totals(order)
    store.put("orders", order_id, order)
    _initial_transactions(store, order, transactions_in, payload.get("financial_status"))
    order = store.get("orders", order_id)
    if fire:
        _fire(store, shop, "orders/create", _order_out(order))
    return order


def _given_address(given) -> dict | None:
    """An address from a request, completed to Shopify's full set of fields."""
    if not isinstance(given, dict):
        return None
    name = given.get("name") or " ".join(p for p in (given.get("first_name"), given.get("last_name")) if p)
    address = _address(
        name,
        given.get("company"),
        given.get("address1"),
        given.get("zip"),
        given.get("city"),
        phone=given.get("phone"),
    )
    code = (given.get("country_code") or "DK").upper()
    address.update(
        first_name=given.get("first_name", address["first_name"]),
        last_name=given.get("last_name", address["last_name"]),
        address2=given.get("address2", ""),
        country_code=code,
        country=given.get("country") or COUNTRY_NAMES.get(code, code),
    )
    return address


COUNTRY_NAMES = {"DK": "Denmark", "SE": "Sweden", "NO": "Norway", "DE": "Germany", "GB": "United Kingdom"}


def _customer_address(customer: dict) -> dict:
    address = customer["default_address"]
    result = _address(
        address["name"], address["company"], address["address1"], address["zip"], address["city"]
    )
    result["phone"] = address["phone"]
    return result


def _order_customer(customer: dict) -> dict:
    keys = (
        "id", "email", "created_at", "updated_at", "first_name", "last_name", "state", "note",
        "verified_email", "multipass_identifier", "tax_exempt", "phone", "email_marketing_consent",
        "sms_marketing_consent", "tags", "currency", "tax_exemptions", "admin_graphql_api_id",
        "default_address",
    )  # fmt: skip
    return {key: customer[key] for key in keys}


def _compute_totals(order: dict) -> None:
    """The order's totals from its lines, and the current_* ones after its refunds (Shopify's arithmetic:
    prices incl. tax when taxes_included, else tax on top)."""
    included = order["taxes_included"]
    line_price = sum((_q(li["price"]) * li["quantity"] for li in order["line_items"]), Decimal("0"))
    discounts = sum(
        (_q(a["amount"]) for li in order["line_items"] for a in li["discount_allocations"]), Decimal("0")
    )
    line_tax = sum((_q(t["price"]) for li in order["line_items"] for t in li["tax_lines"]), Decimal("0"))
    shipping = sum((_q(s["discounted_price"]) for s in order["shipping_lines"]), Decimal("0"))
    shipping_tax = sum(
        (_q(t["price"]) for s in order["shipping_lines"] for t in s["tax_lines"]), Decimal("0")
    )
    subtotal = line_price - discounts
    tax = line_tax + shipping_tax
    total = subtotal + shipping + (Decimal("0") if included else tax)
    # What the refunds took back: line items (subtotal, plus their tax when it was added on top) and
    # shipping (order adjustments carry it as negative net amount and tax).
    refunded_subtotal = refunded_line_tax = refunded_discount = Decimal("0")
    refunded_ship_net = refunded_ship_tax = Decimal("0")
    by_id = {li["id"]: li for li in order["line_items"]}
    for refund in order["refunds"]:
        for item in refund["refund_line_items"]:
            line = by_id[item["line_item_id"]]
            refunded_subtotal += _q(item["subtotal_set"]["shop_money"]["amount"])
            refunded_line_tax += _q(item["total_tax_set"]["shop_money"]["amount"])
            line_discount = sum((_q(a["amount"]) for a in line["discount_allocations"]), Decimal("0"))
            refunded_discount += _q(line_discount * item["quantity"] / line["quantity"])
        for adjustment in refund["order_adjustments"]:
            if adjustment["kind"] == "shipping_refund":
                refunded_ship_net -= _q(adjustment["amount"])
                refunded_ship_tax -= _q(adjustment["tax_amount"])
    refunded_lines = refunded_subtotal + (Decimal("0") if included else refunded_line_tax)
    current_subtotal = subtotal - refunded_subtotal
    current_tax = tax - refunded_line_tax - refunded_ship_tax
    current_total = total - refunded_lines - refunded_ship_net - refunded_ship_tax
    values = {
        "total_line_items_price": line_price,
        "total_discounts": discounts,
        "subtotal_price": subtotal,
        "total_tax": tax,
        "total_price": total,
        "current_subtotal_price": current_subtotal,
        "current_total_discounts": discounts - refunded_discount,
        "current_total_tax": current_tax,
        "current_total_price": current_total,
    }
    for name, value in values.items():
        order[name] = _s(value)
        order[f"{name}_set"] = _money_set(value)
    order["total_shipping_price_set"] = _money_set(shipping)
    order["current_total_additional_fees_set"] = None
    order["current_total_duties_set"] = None
    order["tax_lines"] = _tax_lines(tax) if tax else []
    paid = _paid(order)
    order["total_outstanding"] = _s(max(Decimal("0"), total - paid))
    for line in order["line_items"]:
        line["total_discount"] = "0.00"  # Shopify reports discount codes in discount_allocations only
    ordered = {key: order[key] for key in ORDER_KEYS if key in order}
    private = {key: value for key, value in order.items() if key.startswith("_")}
    order.clear()
    order.update({**ordered, **private})


ORDER_KEYS = (
    "id", "admin_graphql_api_id", "app_id", "browser_ip", "buyer_accepts_marketing", "cancel_reason",
    "cancelled_at", "cart_token", "checkout_id", "checkout_token", "client_details", "closed_at",
    "confirmation_number", "confirmed", "contact_email", "created_at", "currency", "current_subtotal_price",
    "current_subtotal_price_set", "current_total_additional_fees_set", "current_total_discounts",
    "current_total_discounts_set", "current_total_duties_set", "current_total_price",
    "current_total_price_set", "current_total_tax", "current_total_tax_set", "customer_locale", "device_id",
    "discount_codes", "duties_included", "email", "estimated_taxes", "financial_status",
    "fulfillment_status", "landing_site", "landing_site_ref", "location_id", "merchant_business_entity_id",
    "merchant_of_record_app_id", "name", "note", "note_attributes", "number", "order_number",
    "order_status_url", "original_total_additional_fees_set", "original_total_duties_set",
    "payment_gateway_names", "phone", "po_number", "presentment_currency", "processed_at", "reference",
    "referring_site", "source_identifier", "source_name", "source_url", "subtotal_price",
    "subtotal_price_set", "tags", "tax_exempt", "tax_lines", "taxes_included", "test", "token",
    "total_cash_rounding_payment_adjustment_set", "total_cash_rounding_refund_adjustment_set",
    "total_discounts", "total_discounts_set", "total_line_items_price", "total_line_items_price_set",
    "total_outstanding", "total_price", "total_price_set", "total_shipping_price_set", "total_tax",
    "total_tax_set", "total_tip_received", "total_weight", "updated_at", "user_id", "billing_address",
    "customer", "discount_applications", "fulfillments", "line_items", "payment_terms", "refunds",
    "shipping_address", "shipping_lines",
)  # fmt: skip


def _paid(order: dict) -> Decimal:
    """Money captured (sale, capture) minus nothing: refunds are counted separately."""
    return _q(order.get("_paid", "0"))


def _transaction(store, order: dict, kind: str, amount: Decimal, gateway: str, *, status="success",
                 parent_id=None) -> dict:  # fmt: skip
    tx_id = _new_id(store)
    now = _iso(_now())
    count = sum(1 for t in store.all("transactions") if t["order_id"] == order["id"]) + 1
    document = {
        "id": tx_id,
        "order_id": order["id"],
        "kind": kind,
        "gateway": gateway,
        "status": status,
        "message": None,
        "created_at": now,
        "test": order["test"],
        "authorization": f"ch_{secrets.token_hex(12)}" if kind in ("authorization", "sale") else None,
        "location_id": None,
        "user_id": None,
        "parent_id": parent_id,
        "processed_at": now,
        "device_id": None,
        "error_code": None,
        "source_name": "web",
        "receipt": {},
        "currency_exchange_adjustment": None,
        "amount": _s(amount),
        "currency": CURRENCY,
        "payment_id": f"{order['name']}.{count}",
        "total_unsettled_set": {
            "presentment_money": {"amount": "0.0", "currency": CURRENCY},
            "shop_money": {"amount": "0.0", "currency": CURRENCY},
        },
        "manual_payment_gateway": gateway in ("manual", "Bankoverførsel"),
        "amount_rounding": None,
        "admin_graphql_api_id": _gid("OrderTransaction", tx_id),
    }
    if kind in ("authorization", "sale"):
        document["payment_details"] = {
            "credit_card_bin": None,
            "avs_result_code": None,
            "cvv_result_code": None,
            "credit_card_number": "•••• •••• •••• 4242" if gateway == "shopify_payments" else None,
            "credit_card_company": "Visa" if gateway == "shopify_payments" else None,
            "buyer_action_info": None,
            "credit_card_name": None,
            "credit_card_wallet": None,
            "credit_card_expiration_month": None,
            "credit_card_expiration_year": None,
            "payment_method_name": "visa" if gateway == "shopify_payments" else gateway,
        }
    store.put("transactions", tx_id, document)
    return document


def _initial_transactions(store, order: dict, given: list, financial_status: str | None) -> None:
    """The payment an order is created with: transactions as given (amount defaults to the total), or the
    `financial_status` asked for; neither means paid (a guess, see the docs)."""
    total = _q(order["total_price"])
    if not given and financial_status in (None, "paid"):
        given = [{"kind": "sale", "status": "success", "gateway": order["payment_gateway_names"][0]}]
    elif not given and financial_status == "authorized":
        given = [{"kind": "authorization", "status": "success", "gateway": order["payment_gateway_names"][0]}]
    paid = Decimal("0")
    authorized = False
    for item in given:
        kind = item.get("kind", "sale")
        amount = _q(item.get("amount", total))
        status = item.get("status", "success")
        _transaction(store, order, kind, amount, item.get("gateway", "manual"), status=status)
        if status == "success" and kind in ("sale", "capture"):
            paid += amount
        authorized = authorized or (status == "success" and kind == "authorization")
    order["_paid"] = _s(paid)
    if paid >= total and paid > 0:
        order["financial_status"] = "paid"
    elif paid > 0:
        order["financial_status"] = "partially_paid"
    elif authorized:
        order["financial_status"] = "authorized"
    else:
        order["financial_status"] = "pending"
    order["total_outstanding"] = _s(max(Decimal("0"), total - paid))
    store.put("orders", order["id"], order)


def _order_out(order: dict) -> dict:
    return _strip(order)


def _visible(token: dict, order: dict) -> bool:
    if "read_all_orders" in token["scope"]:
        return True
    return _parse_time(order["created_at"]) >= _now() - ORDERS_WITHOUT_READ_ALL


def _order_or_404(token, store, order_id) -> dict:
    order = store.get("orders", order_id)
    if order is None or not _visible(token, order):
        raise _not_found()
    return order


@_route("orders.json", methods=["GET"])
@api("read_orders")
def list_orders(token, store):
    query = _list_query() if not request.args.get("page_info") else {}
    if "read_all_orders" not in token["scope"]:
        query["visible_after"] = (_now() - ORDERS_WITHOUT_READ_ALL).timestamp()
    orders = [_order_out(o) for o in store.all("orders")]
    if not request.args.get("page_info"):
        orders = _apply_filters(orders, query)
    # Newest first unless `order` says otherwise (see the docs for this guess).
    return _paged(store, "orders", orders, default_order="created_at desc", query=query)


@_route("orders/count.json")
@api("read_orders")
def count_orders(token, store):
    query = _list_query()
    if "read_all_orders" not in token["scope"]:
        query["visible_after"] = (_now() - ORDERS_WITHOUT_READ_ALL).timestamp()
    return _json({"count": len(_apply_filters(store.all("orders"), query))})


@_route("orders/<int:order_id>.json", methods=["GET"])
@api("read_orders")
def get_order(token, store, order_id):
    return _json(
        {"order": _select(_order_out(_order_or_404(token, store, order_id)), request.args.get("fields"))}
    )


@_route("orders.json", methods=["POST"])
@api("write_orders")
def create_order(token, store):
    order = _create_order(store, token["shop"], _body("order"))
    db.session.commit()
    return _json({"order": _order_out(order)}, 201)


UPDATABLE = (
    "note", "note_attributes", "email", "phone", "buyer_accepts_marketing", "tags", "shipping_address",
    "po_number",
)  # fmt: skip


def _touch(store, shop, order: dict, *topics: str) -> dict:
    order["updated_at"] = _iso(max(_now(), _parse_time(order["updated_at"]) + timedelta(seconds=1)))
    _compute_totals(order)
    store.put("orders", order["id"], order)
    for topic in topics:
        _fire(store, shop, topic, _order_out(order))
    _fire(store, shop, "orders/updated", _order_out(order))
    return order


@_route("orders/<int:order_id>.json", methods=["PUT"])
@api("write_orders")
def update_order(token, store, order_id):
    order = _order_or_404(token, store, order_id)
    data = _body("order")
    for key in UPDATABLE:
        if key in data:
            order[key] = data[key]
    order = _touch(store, token["shop"], order)
    db.session.commit()
    return _json({"order": _order_out(order)})


@_route("orders/<int:order_id>/close.json", methods=["POST"])
@api("write_orders")
def close_order(token, store, order_id):
    order = _order_or_404(token, store, order_id)
    order["closed_at"] = _iso(_now())
    order = _touch(store, token["shop"], order)
    db.session.commit()
    return _json({"order": _order_out(order)})


@_route("orders/<int:order_id>/open.json", methods=["POST"])
@api("write_orders")
def open_order(token, store, order_id):
    order = _order_or_404(token, store, order_id)
    order["closed_at"] = None
    order = _touch(store, token["shop"], order)
    db.session.commit()
    return _json({"order": _order_out(order)})


@_route("orders/<int:order_id>/cancel.json", methods=["POST"])
@api("write_orders")
def cancel_order(token, store, order_id):
    order = _order_or_404(token, store, order_id)
    if order["cancelled_at"]:
        raise _errors(422, {"error": "Order has already been cancelled"})
    data = request.get_json(silent=True) or {}
    reason = data.get("reason", "other")
    if reason not in ("customer", "inventory", "fraud", "declined", "other", "staff"):
        raise _errors(422, {"reason": ["is not included in the list"]})
    now = _iso(_now())
    order["cancelled_at"], order["cancel_reason"], order["closed_at"] = now, reason, now
    if order["financial_status"] in ("authorized", "pending"):
        order["financial_status"] = "voided"
    order = _touch(store, token["shop"], order, "orders/cancelled")
    db.session.commit()
    return _json({"order": _order_out(order)})


# --- transactions -------------------------------------------------------------------------------------------

TX_REFUND_DROP = ("currency_exchange_adjustment", "payment_details")
TX_EMBEDDED_DROP = (*TX_REFUND_DROP, "total_unsettled_set", "manual_payment_gateway", "amount_rounding")


def _tx_out(tx: dict, drop=()) -> dict:
    return {k: v for k, v in tx.items() if k not in drop}


@_route("orders/<int:order_id>/transactions.json", methods=["GET"])
@api("read_orders")
def list_transactions(token, store, order_id):
    _order_or_404(token, store, order_id)
    transactions = [t for t in store.all("transactions") if t["order_id"] == order_id]
    return _json({"transactions": transactions})


@_route("orders/<int:order_id>/transactions.json", methods=["POST"])
@api("write_orders")
def create_transaction(token, store, order_id):
    """Capturing an authorization (kind "capture"), the status change that makes an order paid."""
    order = _order_or_404(token, store, order_id)
    data = _body("transaction")
    if data.get("kind") != "capture":
        raise _errors(422, {"kind": ["is not supported by the sandbox (only capture)"]})
    parent = next(
        (
            t
            for t in store.all("transactions")
            if t["order_id"] == order_id and t["kind"] == "authorization" and t["status"] == "success"
            and (data.get("parent_id") in (None, t["id"]))
        ),
        None,
    )  # fmt: skip
    if parent is None:
        raise _errors(422, {"base": ["No capturable transaction was found"]})
    outstanding = _q(order["total_price"]) - _paid(order)
    amount = _q(data.get("amount", outstanding))
    if amount <= 0 or amount > outstanding:
        raise _errors(422, {"amount": ["must be greater than zero and not more than the outstanding amount"]})
    tx = _transaction(store, order, "capture", amount, parent["gateway"], parent_id=parent["id"])
    order["_paid"] = _s(_paid(order) + amount)
    order["financial_status"] = "paid" if _paid(order) >= _q(order["total_price"]) else "partially_paid"
    _touch(store, token["shop"], order)
    db.session.commit()
    single = {**tx, "authorization_expires_at": None, "extended_authorization_attributes": {}}
    return _json({"transaction": single}, 201)


# --- refunds ------------------------------------------------------------------------------------------------

LINE_ITEM_IN_REFUND_DROP = ("attributed_staffs", "current_quantity")
REFUND_EMBEDDED_DROP = ("return", "refund_shipping_lines")


def _refund_out(refund: dict) -> dict:
    """refunds.json and the refunds/create webhook: the refunded line items without their current state."""
    items = [
        {
            **item,
            "line_item": {k: v for k, v in item["line_item"].items() if k not in LINE_ITEM_IN_REFUND_DROP},
        }
        for item in refund["refund_line_items"]
    ]
    return {
        **{k: v for k, v in refund.items() if k not in ("transactions", "refund_line_items")},
        "refund_line_items": items,
        "transactions": [_tx_out(t, TX_REFUND_DROP) for t in refund["transactions"]],
    }


def _refund_embedded(refund: dict) -> dict:
    """A refund inside its order (orders.json): fewer keys, per Shopify's samples."""
    out = {k: v for k, v in refund.items() if k not in REFUND_EMBEDDED_DROP}
    out["transactions"] = [_tx_out(t, TX_EMBEDDED_DROP) for t in refund["transactions"]]
    order = (
        "id", "admin_graphql_api_id", "created_at", "note", "order_id", "processed_at", "restock",
        "total_additional_fees_set", "total_duties_set", "user_id", "order_adjustments", "transactions",
        "refund_line_items", "duties", "additional_fees",
    )  # fmt: skip
    return {key: out[key] for key in order}


def _create_refund(store, shop, order_id, data: dict, *, suggested_transaction=False, fire=True) -> dict:
    order = store.get("orders", order_id)
    included = order["taxes_included"]
    by_id = {li["id"]: li for li in order["line_items"]}
    refunded_qty = {}
    for refund in order["refunds"]:
        for item in refund["refund_line_items"]:
            refunded_qty[item["line_item_id"]] = refunded_qty.get(item["line_item_id"], 0) + item["quantity"]
    now = _iso(_now())
    refund_id = _new_id(store)
    primary = (store.get("_meta", "shop") or {}).get("primary_location_id")
    items, errors = [], {}
    for given in data.get("refund_line_items") or []:
        line = by_id.get(given.get("line_item_id"))
        quantity = given.get("quantity")
        if line is None:
            errors.setdefault("refund_line_items", []).append("line_item_id is invalid")
            continue
        if not isinstance(quantity, int) or quantity < 1:
            errors.setdefault("refund_line_items", []).append("quantity must be greater than 0")
            continue
        if quantity > line["quantity"] - refunded_qty.get(line["id"], 0):
            errors.setdefault("refund_line_items", []).append(
                "Quantity cannot refund more items than were purchased"
            )
            continue
        refunded_qty[line["id"]] = refunded_qty.get(line["id"], 0) + quantity
        discount = sum((_q(a["amount"]) for a in line["discount_allocations"]), Decimal("0"))
        tax = sum((_q(t["price"]) for t in line["tax_lines"]), Decimal("0"))
        subtotal = _q((_q(line["price"]) * line["quantity"] - discount) * quantity / line["quantity"])
        total_tax = _q(tax * quantity / line["quantity"])
        restock_type = given.get("restock_type", "no_restock")
        location_id = given.get("location_id") or (primary if restock_type in ("return", "cancel") else None)
        item_id = _new_id(store)
        items.append(
            {
                "id": item_id,
                "line_item_id": line["id"],
                "location_id": location_id,
                "quantity": quantity,
                "restock_type": restock_type,
                "subtotal": float(subtotal),
                "subtotal_set": _money_set(subtotal),
                "total_tax": float(total_tax),
                "total_tax_set": _money_set(total_tax),
                "line_item": dict(line),
            }
        )
    # `shipping.amount` is in the order's price mode (incl. VAT when taxes_included), like discounted_price.
    shipping_refund = Decimal("0")
    shipping = data.get("shipping") or {}
    shipping_total = sum((_q(s["discounted_price"]) for s in order["shipping_lines"]), Decimal("0"))
    already = Decimal("0")
    for earlier in order["refunds"]:
        for adjustment in earlier["order_adjustments"]:
            if adjustment["kind"] == "shipping_refund":
                already -= _q(adjustment["amount"]) + (_q(adjustment["tax_amount"]) if included else 0)
    if shipping.get("full_refund"):
        shipping_refund = shipping_total - already
    elif shipping.get("amount") is not None:
        shipping_refund = _q(shipping["amount"])
        if shipping_refund < 0 or shipping_refund > shipping_total - already:
            errors.setdefault("shipping", []).append("amount cannot be more than the refundable shipping")
    if not items and not shipping_refund and not data.get("transactions") and not errors:
        errors["base"] = ["Refund must include line items, shipping or transactions"]
    if errors:
        raise _errors(422, errors)
    adjustments, shipping_lines = [], []
    if shipping_refund:
        shipping_tax = _tax_of(shipping_refund, included)
        net = shipping_refund - shipping_tax if included else shipping_refund
        adjustment_id = _new_id(store)
        adjustments.append(
            {
                "id": adjustment_id,
                "order_id": order_id,
                "refund_id": refund_id,
                "amount": _s(-net),
                "tax_amount": _s(-shipping_tax),
                "kind": "shipping_refund",
                "reason": "Shipping refund",
                "amount_set": _money_set(-net),
                "tax_amount_set": _money_set(-shipping_tax),
            }
        )
        ship = order["shipping_lines"][0]
        shipping_lines.append(
            {
                "id": _new_id(store),
                "shipping_line_id": ship["id"],
                "subtotal_amount_set": _money_set(net),
                "shipping_line": ship,
            }
        )
    # Money back: as given, or (seed only) the amount the lines and shipping explain.
    given_transactions = data.get("transactions") or []
    if suggested_transaction and not given_transactions:
        amount = sum(
            (_q(i["subtotal"]) + (0 if included else _q(i["total_tax"])) for i in items), Decimal("0")
        )
        shipping_gross = shipping_refund + (0 if included else _tax_of(shipping_refund, included))
        given_transactions = [{"kind": "refund", "amount": str(amount + shipping_gross)}]
    refundable = _paid(order) - _refunded(store, order_id)
    parent = next(
        (t for t in store.all("transactions")
         if t["order_id"] == order_id and t["kind"] in ("sale", "capture") and t["status"] == "success"),
        None,
    )  # fmt: skip
    transactions = []
    for given in given_transactions:
        if given.get("kind", "refund") != "refund":
            raise _errors(422, {"transactions": ["kind must be refund"]})
        amount = _q(given.get("amount", "0"))
        if amount <= 0 or amount > refundable:
            raise _errors(422, {"transactions": [f"amount must be between 0.01 and {_s(refundable)}"]})
        refundable -= amount
        gateway = given.get("gateway") or (parent["gateway"] if parent else "manual")
        transactions.append(
            _transaction(
                store,
                order,
                "refund",
                amount,
                gateway,
                parent_id=given.get("parent_id") or (parent["id"] if parent else None),
            )
        )
    refund = {
        "id": refund_id,
        "order_id": order_id,
        "created_at": now,
        "note": data.get("note"),
        "user_id": None,
        "processed_at": data.get("processed_at") or now,
        "duties": [],
        "total_duties_set": _money_set(0),
        "return": None,
        "restock": any(i["restock_type"] != "no_restock" for i in items),
        "additional_fees": [],
        "total_additional_fees_set": _money_set(0),
        "refund_shipping_lines": shipping_lines,
        "admin_graphql_api_id": _gid("Refund", refund_id),
        "order_adjustments": adjustments,
        "refund_line_items": items,
        "transactions": transactions,
    }
    store.put("refunds", refund_id, refund)
    for item in items:
        line = by_id[item["line_item_id"]]
        line["current_quantity"] -= item["quantity"]
        line["fulfillable_quantity"] = max(0, line["fulfillable_quantity"] - item["quantity"])
        if item["restock_type"] in ("return", "cancel") and line["variant_id"] and item["location_id"]:
            variant = store.get("variants", line["variant_id"])
            level = store.get(
                "inventory_levels", _level_key(variant["inventory_item_id"], item["location_id"])
            )
            if level is not None:
                _put_level(
                    store,
                    level["inventory_item_id"],
                    level["location_id"],
                    level["available"] + item["quantity"],
                    now,
                )
                _sync_variant_stock(store, level["inventory_item_id"], now)
    order["refunds"].append(_refund_embedded(refund))
    refunded = _refunded(store, order_id)
    if refunded and refunded >= _paid(order):
        order["financial_status"] = "refunded"
    elif refunded:
        order["financial_status"] = "partially_refunded"
    if fire:
        _fire(store, shop, "refunds/create", _refund_out(refund))
        _touch(store, shop, order)
    else:
        order["updated_at"] = _iso(max(_now(), _parse_time(order["updated_at"])))
        _compute_totals(order)
        store.put("orders", order_id, order)
    return refund


def _refunded(store, order_id) -> Decimal:
    return sum(
        (_q(t["amount"]) for t in store.all("transactions")
         if t["order_id"] == order_id and t["kind"] == "refund" and t["status"] == "success"),
        Decimal("0"),
    )  # fmt: skip


@_route("orders/<int:order_id>/refunds.json", methods=["GET"])
@api("read_orders")
def list_refunds(token, store, order_id):
    _order_or_404(token, store, order_id)
    refunds = [_refund_out(r) for r in store.all("refunds") if r["order_id"] == order_id]
    return _json({"refunds": refunds})


@_route("orders/<int:order_id>/refunds/<int:refund_id>.json", methods=["GET"])
@api("read_orders")
def get_refund(token, store, order_id, refund_id):
    _order_or_404(token, store, order_id)
    refund = store.get("refunds", refund_id)
    if refund is None or refund["order_id"] != order_id:
        raise _not_found()
    return _json({"refund": _refund_out(refund)})


@_route("orders/<int:order_id>/refunds.json", methods=["POST"])
@api("write_orders")
def create_refund(token, store, order_id):
    _order_or_404(token, store, order_id)
    refund = _create_refund(store, token["shop"], order_id, _body("refund"))
    db.session.commit()
    return _json({"refund": _refund_out(refund)}, 201)


from portal.sandbox import shopify_graphql  # noqa: E402 - registers graphql.json on bp; it imports this module

__all__ = ["bp", "seed", "shopify_graphql"]
