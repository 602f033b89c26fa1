"""WooCommerce Subscriptions in the WooCommerce sandbox: the plugin's REST routes below /wc/v3 on the same
shop, store and webhooks as portal/sandbox/woocommerce.py (which imports this module to register them).

Copied (sources in docs/connectors/woocommerce.md, "Subscriptions"): the subscription document of the
published examples (`../shared/specs/woocommerce/subscriptions-v3/`: an order's fields plus billing_period,
billing_interval and the *_date_gmt schedule), statuses pending|active|on-hold|cancelled|switched|expired|
pending-cancel; GET/POST /subscriptions, GET/PUT/DELETE /subscriptions/<id>, GET /subscriptions/<id>/orders
with `order_type` parent_order|renewal_order|switch_order; renewal orders are ordinary orders with
`created_via: "subscription"` and meta `_subscription_renewal` = the subscription id as a string
(wcs-order-functions.php); the webhook topics subscription.created|updated|deleted|switched, their payload the
subscription's REST document, and order.created for every order the plugin creates (class-wcs-webhooks.php).

Sandbox only (not WooCommerce): POST /sandbox/woocommerce/_subscriptions/<id>/renew {"paid": true|false}
processes the renewal now: the renewal order is created (pending), then paid (processing, date_paid; the
subscription's last/next payment dates move on) or failed (order failed, subscription on-hold), firing
order.created, order.updated and subscription.updated. POST …/_subscriptions/<id>/switch {"line_items": […]}
switches it to other products (a paid switch order with meta _subscription_switch; subscription.switched).
Guesses: see the doc.
"""

import calendar
import copy
import functools
from datetime import datetime, timedelta

from flask import Response, request

from portal.extensions import db
from portal.sandbox import woocommerce as wc
from portal.sandbox.woocommerce import (
    EDIT,
    NAMESPACE,
    WPError,
    answer,
    date_fields,
    fire,
    flag,
    fmt,
    invalid_param,
    now_utc,
    public,
    rest_url,
    route,
    site_url,
)

STATUSES = ("pending", "active", "on-hold", "cancelled", "switched", "expired", "pending-cancel")
PERIODS = ("day", "week", "month", "year")
SCHEDULE = (
    "start_date",
    "trial_end_date",
    "next_payment_date",
    "last_payment_date",
    "cancelled_date",
    "end_date",
)
RELATIONS = {"_subscription_renewal": "renewal_order", "_subscription_switch": "switch_order"}
ORDER_ONLY = ("transaction_id", "cart_hash", "refunds")
TOTALS = (
    "discount_total",
    "discount_tax",
    "shipping_total",
    "shipping_tax",
    "cart_tax",
    "total",
    "total_tax",
)
SUBSCRIPTION_ONLY = (
    "billing_period", "billing_interval", *(f"{name}_gmt" for name in SCHEDULE), "resubscribed_from",
    "resubscribed_subscription", "removed_line_items",
)  # fmt: skip

# WCS_Webhooks::add_topics (the woocommerce_webhook_topic_hooks filter): the plugin's topics become valid.
wc.TOPIC_HOOKS.update(
    {
        "subscription.created": [
            "wcs_api_subscription_created", "wcs_webhook_subscription_created",
            "woocommerce_process_shop_subscription_meta",
        ],
        "subscription.updated": [
            "wc_api_subscription_updated", "woocommerce_subscription_status_changed",
            "wcs_webhook_subscription_updated", "woocommerce_process_shop_subscription_meta",
        ],
        "subscription.deleted": [
            "woocommerce_subscription_trashed", "woocommerce_subscription_deleted",
            "woocommerce_api_delete_subscription",
        ],
        "subscription.switched": ["wcs_webhook_subscription_switched"],
    }
)  # fmt: skip


def render_subscription(site: str, subscription: dict) -> dict:
    links = {
        "self": [{"href": rest_url(site, f"{NAMESPACE}/subscriptions/{subscription['id']}")}],
        "collection": [{"href": rest_url(site, f"{NAMESPACE}/subscriptions")}],
    }
    if subscription["customer_id"]:
        links["customer"] = [{"href": rest_url(site, f"{NAMESPACE}/customers/{subscription['customer_id']}")}]
    if subscription["parent_id"]:
        links["up"] = [{"href": rest_url(site, f"{NAMESPACE}/orders/{subscription['parent_id']}")}]
    return {**public(subscription), "_links": links}


def subscription_payload(shop: wc.Shop, subscription_id: int, site: str) -> dict:
    """WCS_Webhooks::create_payload: the subscription's REST document as it is when delivered."""
    subscription = shop.get("subscriptions", subscription_id)
    if subscription is None:
        return {
            "code": "woocommerce_rest_shop_subscription_invalid_id",
            "message": "Invalid ID.",
            "data": {"status": 404},
        }
    return render_subscription(site, subscription)


wc.EXTRA_PAYLOADS["subscription"] = subscription_payload


def add_period(moment: datetime, period: str, interval: int) -> datetime:
    """wcs_add_time: months keep the day of the month where they can (else the month's last day)."""
    if period in ("day", "week"):
        return moment + timedelta(days=interval * (7 if period == "week" else 1))
    months = moment.month - 1 + interval * (12 if period == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def schedule_date(values: dict, name: str) -> str:
    """A schedule date from the request (`<name>` or `<name>_gmt`, GMT either way as the plugin reads
    them), stored as the examples show it: "YYYY-MM-DDTHH:MM:SS", or "" when not set."""
    given = values.get(f"{name}_gmt", values.get(name))
    if given in (None, ""):
        return ""
    return fmt(wc.parse_date(str(given).replace(" ", "T"), name))


def build_subscription(shop: wc.Shop, values: dict) -> dict:
    """An order's document (built by the shop's own order rules, prices incl. 25 % VAT) plus the schedule;
    kept as a shop_subscription, never as an order."""
    status = values.get("status") or "pending"
    if status not in STATUSES:
        raise invalid_param("status", f"status is not one of {', '.join(STATUSES[:-1])}, and {STATUSES[-1]}.")
    period = values.get("billing_period")
    if period not in PERIODS:
        raise invalid_param("billing_period", "billing_period is not one of day, week, month, and year.")
    interval = wc.int_param(values, "billing_interval", 1, 1, 6)
    if not wc.int_param(values, "customer_id", 0):
        raise WPError("woocommerce_rest_invalid_shop_subscription_customer", "Customer ID is invalid.", 400)
    body = {k: v for k, v in values.items() if k not in (*SUBSCRIPTION_ONLY, *SCHEDULE, "status", "set_paid")}
    document = wc.build_order(shop, {**body, "status": "pending"})
    shop.store.delete("orders", document["id"])  # the shared post id stays the subscription's
    for name in ORDER_ONLY:
        document.pop(name, None)
    start = schedule_date(values, "start_date") or fmt(now_utc())
    next_payment = schedule_date(values, "next_payment_date")
    if not next_payment and status == "active":
        next_payment = fmt(add_period(wc.parse_date(start, "start_date"), period, interval))
    document.update(
        status=status,
        created_via=values.get("created_via", "rest-api"),
        billing_period=period,
        billing_interval=str(interval),
        start_date_gmt=start,
        trial_end_date_gmt=schedule_date(values, "trial_end_date"),
        next_payment_date_gmt=next_payment,
        last_payment_date_gmt=schedule_date(values, "last_payment_date"),
        cancelled_date_gmt="",
        end_date_gmt=schedule_date(values, "end_date"),
        resubscribed_from="",
        resubscribed_subscription="",
        removed_line_items=[],
    )
    return shop.put("subscriptions", document)


def load_subscription(shop: wc.Shop, subscription_id) -> dict:
    subscription = shop.get("subscriptions", int(subscription_id))
    if subscription is None:
        raise WPError("woocommerce_rest_shop_subscription_invalid_id", "Invalid ID.", 404)
    return subscription


def related_orders(shop: wc.Shop, subscription: dict) -> list[tuple[str, dict]]:
    """wcs_get_subscription_orders: the parent order, then renewal and switch orders (by their meta)."""
    found = []
    parent = shop.get("orders", subscription["parent_id"]) if subscription["parent_id"] else None
    if parent is not None:
        found.append(("parent_order", parent))
    wanted = str(subscription["id"])
    for order in shop.all("orders"):
        for meta in order["meta_data"]:
            if meta["key"] in RELATIONS and str(meta["value"]) == wanted:
                found.append((RELATIONS[meta["key"]], order))
    return found


def renewal_order(shop: wc.Shop, subscription: dict) -> dict:
    """wcs_create_order_from_subscription($subscription, 'renewal_order'): the subscription's lines,
    addresses, payment method and meta copied onto a new pending order (new item and meta ids), created_via
    "subscription", meta _subscription_renewal, totals as the subscription's."""
    now = now_utc()
    order = copy.deepcopy(public(subscription))
    for name in SUBSCRIPTION_ONLY:
        order.pop(name)
    order_id = shop.next_id("post")
    for group in ("line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines"):
        for item in order[group]:
            item["id"] = shop.next_id("item")
            item["meta_data"] = shop.meta([{"key": m["key"], "value": m["value"]} for m in item["meta_data"]])
    meta = [{"key": m["key"], "value": m["value"]} for m in order["meta_data"] if m["key"] not in RELATIONS]
    order.update(
        id=order_id,
        parent_id=0,
        number=str(order_id),
        order_key=f"wc_order_{wc.random_key(13)}",
        created_via="subscription",
        status="pending",
        meta_data=shop.meta([*meta, {"key": "_subscription_renewal", "value": str(subscription["id"])}]),
        transaction_id="",
        cart_hash="",
        refunds=[],
        _sandbox={"stock_reduced": False},
        **date_fields("date_created", now),
        **date_fields("date_modified", now),
        **date_fields("date_paid", None),
        **date_fields("date_completed", None),
    )
    return shop.put("orders", order)


def seed_subscriptions(shop: wc.Shop) -> None:
    """Once per shop, on first use (the shop's own seed and its post ids stay as they were): Anna Jensen's
    monthly espresso subscription, active, next payment in a month."""
    if shop.store.get("_meta", "subscriptions_seeded") is not None:
        return
    shop.store.put("_meta", "subscriptions_seeded", {"seeded": True})
    anna = next(c for c in shop.all("customers") if c["email"] == "anna.jensen@example.dk")
    espresso = next(p for p in shop.all("products") if p["sku"] == "KAFFE/ESP-500g")
    build_subscription(
        shop,
        {
            "status": "active",
            "customer_id": anna["id"],
            "billing": anna["billing"],
            "shipping": anna["shipping"],
            "payment_method": "quickpay",
            "payment_method_title": "Betalingskort",
            "billing_period": "month",
            "billing_interval": 1,
            "line_items": [{"product_id": espresso["id"], "quantity": 1}],
            "shipping_lines": [
                {"method_id": "flat_rate", "method_title": "PostNord Pakkeshop", "total": "39.20"}
            ],
        },
    )


# --- routes ---------------------------------------------------------------------------------------------


def plugin_route(methods, pattern: str, kind: str):
    """The plugin's routes exist only while it is active: with the sandbox setting subscriptions_plugin off
    (PUT /_settings), WordPress answers them as any unknown route."""

    def register(handler):
        @functools.wraps(handler)
        def guarded(shop, *args, **kwargs):
            if not shop.settings().get("subscriptions_plugin", True):
                raise WPError("rest_no_route", "No route was found matching the URL and request method.", 404)
            return handler(shop, *args, **kwargs)

        return route(methods, pattern, kind)(guarded)

    return register


@plugin_route(("GET",), f"{NAMESPACE}/subscriptions", "list")
def list_subscriptions(shop, values, key):
    seed_subscriptions(shop)
    site = site_url()
    subscriptions = shop.all("subscriptions")
    statuses = values.get("status") or "any"
    statuses = statuses if isinstance(statuses, list) else str(statuses).split(",")
    if not set(statuses) <= {"any", *STATUSES}:
        raise invalid_param("status", f"status is not one of any, {', '.join(STATUSES)}.")
    if "any" not in statuses:
        subscriptions = [s for s in subscriptions if s["status"] in statuses]
    subscriptions = wc.date_filters(subscriptions, values)
    if values.get("customer") not in (None, ""):
        subscriptions = [s for s in subscriptions if s["customer_id"] == wc.int_param(values, "customer", 0)]
    if values.get("include"):
        subscriptions = [s for s in subscriptions if s["id"] in wc.id_list(values["include"])]
    subscriptions = wc.sort(subscriptions, values, "date", ("date", "id", "include", "modified"))
    return wc.paginated(
        site, f"{NAMESPACE}/subscriptions", subscriptions, values, lambda s: render_subscription(site, s)
    )


@plugin_route(("POST",), f"{NAMESPACE}/subscriptions", "create")
def create_subscription(shop, values, key):
    seed_subscriptions(shop)
    if values.get("id"):
        raise WPError(
            "woocommerce_rest_shop_subscription_exists", "Cannot create existing shop_subscription.", 400
        )
    subscription = build_subscription(shop, values)
    site = site_url()
    fire(shop, "subscription", "created", subscription["id"], site)
    headers = {"Location": rest_url(site, f"{NAMESPACE}/subscriptions/{subscription['id']}")}
    return answer(render_subscription(site, subscription), 201, headers)


@plugin_route(("GET",), rf"{NAMESPACE}/subscriptions/(?P<subscription_id>\d+)", "read")
def get_subscription(shop, values, key, subscription_id):
    seed_subscriptions(shop)
    return answer(render_subscription(site_url(), load_subscription(shop, subscription_id)))


@plugin_route(EDIT, rf"{NAMESPACE}/subscriptions/(?P<subscription_id>\d+)", "edit")
def update_subscription(shop, values, key, subscription_id):
    """Status and schedule changes (e.g. cancel); lines are not recalculated, as for orders."""
    subscription = load_subscription(shop, subscription_id)
    if any(values.get(k) for k in ("line_items", "shipping_lines", "fee_lines", "coupon_lines")):
        raise WPError(
            "woocommerce_rest_sandbox_not_emulated",
            "The sandbox does not recalculate edited subscription lines; create a new subscription instead.",
            400,
        )
    if values.get("status"):
        if values["status"] not in STATUSES:
            raise invalid_param("status", f"status is not one of {', '.join(STATUSES)}.")
        subscription["status"] = values["status"]
        if values["status"] in ("cancelled", "pending-cancel"):
            subscription["cancelled_date_gmt"] = fmt(now_utc())
            subscription["next_payment_date_gmt"] = ""
    for name in ("next_payment_date", "end_date"):
        if f"{name}_gmt" in values or name in values:
            subscription[f"{name}_gmt"] = schedule_date(values, name)
    wc.touch(subscription)
    shop.put("subscriptions", subscription)
    site = site_url()
    fire(shop, "subscription", "updated", subscription["id"], site)
    return answer(render_subscription(site, subscription))


@plugin_route(("DELETE",), rf"{NAMESPACE}/subscriptions/(?P<subscription_id>\d+)", "delete")
def delete_subscription(shop, values, key, subscription_id):
    subscription = load_subscription(shop, subscription_id)
    site = site_url()
    rendered = render_subscription(site, subscription)
    if flag(values.get("force")):
        shop.store.delete("subscriptions", subscription["id"])
    elif subscription["status"] == "trash":
        raise WPError(
            "woocommerce_rest_already_trashed", "The shop_subscription has already been deleted.", 410
        )
    else:
        subscription["status"] = "trash"
        wc.touch(subscription)
        shop.put("subscriptions", subscription)
    fire(shop, "subscription", "deleted", subscription["id"], site)
    return answer(rendered)


@plugin_route(("GET",), rf"{NAMESPACE}/subscriptions/(?P<subscription_id>\d+)/orders", "list")
def subscription_orders(shop, values, key, subscription_id):
    seed_subscriptions(shop)
    site = site_url()
    orders = related_orders(shop, load_subscription(shop, subscription_id))
    return answer([{**wc.render_order(site, order), "order_type": kind} for kind, order in orders])


# --- the sandbox's own control (not WooCommerce) ----------------------------------------------------------


def control(subscription_id: int, work) -> Response:
    """A sandbox control on an active subscription: `work(shop, subscription, given)` makes an order and
    returns it with the subscription topics to fire; order.created and order.updated fire for the order
    (WCS_Webhooks: order.created for every order the plugin creates). Answer: 201 with the order."""
    wc.seed(wc.TENANT)
    shop = wc.Shop(wc.TENANT)
    seed_subscriptions(shop)
    given = request.get_json(silent=True)
    given = given if isinstance(given, dict) else {}
    try:
        subscription = load_subscription(shop, subscription_id)
        if subscription["status"] != "active":
            raise WPError(
                "sandbox_subscription_not_active", "Only an active subscription renews or switches.", 400
            )
        order, events = work(shop, subscription, given)
        wc.touch(order)
        shop.put("orders", order)
        wc.touch(subscription)
        shop.put("subscriptions", subscription)
        site = site_url()
        fire(shop, "order", "created", order["id"], site)
        fire(shop, "order", "updated", order["id"], site)
        for event in events:
            fire(shop, "subscription", event, subscription["id"], site)
        db.session.commit()
    except WPError as error:
        db.session.rollback()
        return error.response()
    return Response(wc.php_json(wc.render_order(site, order)), 201, mimetype="application/json")


@wc.bp.post("/_subscriptions/<int:subscription_id>/renew")
def renew_now(subscription_id):
    """Process the subscription's renewal now, as the scheduled payment action would (see the docstring)."""

    def renew(shop, subscription, given):
        order = renewal_order(shop, subscription)
        if given.get("paid", True):
            wc.set_status(shop, order, "processing")
            now = now_utc()
            start = wc.gmt(subscription, "next_payment_date") or now
            period, interval = subscription["billing_period"], int(subscription["billing_interval"])
            subscription["last_payment_date_gmt"] = fmt(now)
            subscription["next_payment_date_gmt"] = fmt(add_period(start, period, interval))
        else:
            wc.set_status(shop, order, "failed")
            subscription["status"] = "on-hold"  # WCS puts the subscription on hold when its renewal fails
        return order, ["updated"]

    return control(subscription_id, renew)


@wc.bp.post("/_subscriptions/<int:subscription_id>/switch")
def switch_now(subscription_id):
    """Switch the subscription to other products now, as a customer's switch through the checkout does: a
    paid switch order (created_via checkout, meta _subscription_switch) for the new lines at full price,
    the subscription's lines and totals replaced; fires subscription.switched and subscription.updated."""

    def switch(shop, subscription, given):
        lines = given.get("line_items")
        if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
            raise invalid_param("line_items", "line_items must list the new products.")
        common = {k: subscription[k] for k in ("customer_id", "billing", "shipping", "currency")}
        common.update(payment_method=subscription["payment_method"], line_items=lines)
        common["payment_method_title"] = subscription["payment_method_title"]
        meta = [{"key": "_subscription_switch", "value": str(subscription["id"])}]
        order = wc.build_order(
            shop, {**common, "status": "processing", "created_via": "checkout", "meta_data": meta}
        )
        shipping = [
            {k: line[k] for k in ("method_id", "method_title", "total")}
            for line in subscription["shipping_lines"]
        ]
        draft = wc.build_order(shop, {**common, "status": "pending", "shipping_lines": shipping})
        shop.store.delete("orders", draft["id"])  # only its lines and totals are the subscription's
        for name in (*TOTALS, "line_items", "tax_lines", "shipping_lines", "fee_lines", "coupon_lines"):
            subscription[name] = draft[name]
        return order, ["switched", "updated"]

    return control(subscription_id, switch)
