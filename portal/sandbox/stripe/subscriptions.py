"""Subscriptions: create (the first invoice, `subscription_create`, finalized and charged at once), change
quantity or price with prorations, cancel; and what a renewal or a payment does to them (clocks.py renews).

Classic billing mode: periods anchored on the start's day of month, prorations to the second as a share of
the period (docs.stripe.com/billing/subscriptions/prorations), coupons as discounts (`discounts[][coupon]`).
"""

import calendar
from datetime import UTC, datetime

from portal.sandbox.stripe import billing, payments, prorations
from portal.sandbox.stripe.api import Call, expand, load, new_id, now, page, public, route
from portal.sandbox.stripe.catalog import coupon_of
from portal.sandbox.stripe.customers import customer_of
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import (
    StripeError,
    boolean,
    choice,
    integer,
    invalid,
    metadata,
    missing,
    parameter_missing,
    required,
)

ACTIVE = ("active", "past_due", "incomplete", "trialing", "unpaid")
SUBSCRIPTION_PARAMS = (
    "customer",
    "items",
    "default_tax_rates",
    "default_payment_method",
    "discounts",
    "collection_method",
    "days_until_due",
    "metadata",
    "description",
    "payment_behavior",
    "proration_behavior",
    "cancel_at_period_end",
)


def add_interval(start: int, interval: str, count: int, anchor_day: int | None = None) -> int:
    moment = datetime.fromtimestamp(start, UTC)
    if interval in ("day", "week"):
        return start + count * (7 if interval == "week" else 1) * 86400
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(anchor_day or moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def render(call: Call, subscription: dict) -> dict:
    document = public(subscription)
    document["items"] = {**subscription["items"], "data": [public(i) for i in subscription["items"]["data"]]}
    return document


def _out(call: Call, subscription: dict) -> dict:
    return expand(call, render(call, subscription))


def _subscription(call: Call, subscription_id: str) -> dict:
    return load(call, subscription_id, "subscription")


def _rates(call: Call, ids, param: str) -> list[dict]:
    if ids in (None, ""):
        return []
    if not isinstance(ids, list):
        raise invalid(param, "Invalid array")
    return [public(load(call, rate_id, "tax rate", param)) for rate_id in ids]


def _discounts(call: Call, given, customer: dict, subscription_id: str, start: int) -> list[str]:
    """`discounts[][coupon]`: a Discount per coupon, ended per the coupon's duration."""
    if not given:
        return []
    if not isinstance(given, list):
        raise invalid("discounts", "Invalid array")
    ids = []
    for index, entry in enumerate(given):
        coupon_id = (entry or {}).get("coupon")
        if not coupon_id:
            raise StripeError(
                400,
                "The sandbox takes discounts as coupons: discounts[][coupon].",
                param=f"discounts[{index}][coupon]",
                saved=False,
            )
        coupon = coupon_of(call, coupon_id, f"discounts[{index}][coupon]")
        end = (
            add_interval(start, "month", coupon["duration_in_months"])
            if coupon["duration"] == "repeating"
            else None
        )
        discount = {
            "id": new_id("di"),
            "object": "discount",
            "checkout_session": None,
            "customer": customer["id"],
            "end": end,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "source": {"coupon": coupon_id, "type": "coupon"},
            "start": start,
            "subscription": subscription_id,
            "subscription_item": None,
            "_duration": coupon["duration"],
        }
        call.store.put("discounts", discount["id"], discount)
        coupon["times_redeemed"] += 1
        call.store.put("coupons", coupon_id, coupon)
        ids.append(discount["id"])
    return ids


def _items(call: Call, given, subscription_id: str, start: int, anchor: int) -> list[dict]:
    if not isinstance(given, list) or not given:
        raise StripeError(
            400, "Missing required param: items.", code="parameter_missing", param="items", saved=False
        )
    items = []
    for index, entry in enumerate(given):
        entry = entry or {}
        if not entry.get("price"):
            raise parameter_missing(f"items[{index}][price]")
        price = public(load(call, entry["price"], "price", f"items[{index}][price]"))
        if price["recurring"] is None:
            raise invalid(
                f"items[{index}][price]",
                f"The price specified ({price['id']}) is a one-time price. "
                "Subscriptions require recurring prices.",
            )
        recurring = price["recurring"]
        items.append(
            {
                "id": new_id("si", 14),
                "object": "subscription_item",
                "billing_thresholds": None,
                "created": start,
                "current_period_end": add_interval(
                    start,
                    recurring["interval"],
                    recurring["interval_count"],
                    datetime.fromtimestamp(anchor, UTC).day,
                ),
                "current_period_start": start,
                "discounts": [],
                "metadata": metadata(entry),
                "price": price,
                "quantity": integer(entry, "quantity", minimum=1) or 1,
                "subscription": subscription_id,
                "tax_rates": _rates(call, entry.get("tax_rates"), f"items[{index}][tax_rates]"),
            }
        )
    first = items[0]["price"]
    for item in items[1:]:
        if (
            item["price"]["currency"] != first["currency"]
            or item["price"]["recurring"]["interval"] != first["recurring"]["interval"]
        ):
            raise invalid("items", "All prices on a subscription must have the same currency and interval.")
    return items


def invoice_for(
    call: Call, subscription: dict, reason: str, at: int, with_items: bool, period_start: int | None = None
) -> dict:
    """An invoice of the subscription at `at`: its pending invoice items, and (`with_items`) a line per item
    for the period. `period_start`…`at` is the period whose invoice items it collects (the one that ended,
    for a renewal)."""
    customer = customer_of(call, subscription["customer"], "customer")
    live_discounts = [d for d in subscription["discounts"] if _discount_applies(call, d, at)]
    invoice = billing.new_invoice(
        call,
        customer,
        billing_reason=reason,
        subscription=subscription,
        created=at,
        collection_method=subscription["collection_method"],
        days_until_due=subscription["days_until_due"],
        default_tax_rates=[r["id"] for r in subscription["default_tax_rates"]],
        discounts=live_discounts,
    )
    billing.take_pending_items(call, invoice, customer["id"], subscription["id"])
    if with_items:
        for item in subscription["items"]["data"]:
            invoice["lines"]["data"].append(
                billing.item_line(
                    invoice["id"], item, subscription, prorations.product_name(call, item["price"])
                )
            )
    invoice["period_start"] = period_start or at
    billing.save(call, invoice)
    _use_once_discounts(call, subscription, live_discounts)
    subscription["latest_invoice"] = invoice["id"]
    emit(call, "invoice.created", billing.render(call, invoice))
    return invoice


def _discount_applies(call: Call, discount_id: str, at: int) -> bool:
    discount = call.store.get("discounts", discount_id)
    return discount is not None and (discount["end"] is None or at < discount["end"])


def _use_once_discounts(call: Call, subscription: dict, used: list[str]) -> None:
    """A coupon with duration "once" applies to one invoice; then the discount ends and leaves."""
    for discount_id in used:
        discount = call.store.get("discounts", discount_id)
        if discount["_duration"] == "once":
            call.store.put("discounts", discount_id, {**discount, "end": discount["start"]})
            subscription["discounts"] = [d for d in subscription["discounts"] if d != discount_id]


@route("subscriptions", methods=("POST",), allowed=SUBSCRIPTION_PARAMS)
def create_subscription(call: Call):
    params = call.params
    customer = customer_of(call, required(params, "customer"), "customer")
    start = now(call, customer["test_clock"])
    subscription_id = new_id("sub")
    items = _items(call, params.get("items"), subscription_id, start, start)
    method_id = params.get("default_payment_method") or None
    if (
        method_id
        and load(call, method_id, "PaymentMethod", "default_payment_method")["customer"] != customer["id"]
    ):
        raise invalid("default_payment_method", "The payment method must be attached to the customer.")
    collection = choice(
        params, "collection_method", ("charge_automatically", "send_invoice"), "charge_automatically"
    )
    days = integer(params, "days_until_due", minimum=0)
    if collection == "send_invoice" and days is None:
        raise StripeError(
            400,
            "Missing required param: days_until_due.",
            code="parameter_missing",
            param="days_until_due",
            saved=False,
        )
    behavior = choice(
        params,
        "payment_behavior",
        ("allow_incomplete", "error_if_incomplete", "default_incomplete"),
        "allow_incomplete",
    )
    subscription = {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": start,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic"},
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": boolean(params, "cancel_at_period_end", False),
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection,
        "created": start,
        "currency": items[0]["price"]["currency"],
        "customer": customer["id"],
        "days_until_due": days,
        "default_payment_method": method_id,
        "default_source": None,
        "default_tax_rates": _rates(call, params.get("default_tax_rates"), "default_tax_rates"),
        "description": params.get("description") or None,
        "discounts": _discounts(call, params.get("discounts"), customer, subscription_id, start),
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata(params),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": "incomplete",
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": None,
        "trial_start": None,
    }
    call.store.put("subscriptions", subscription_id, subscription)
    emit(call, "customer.subscription.created", render(call, subscription))
    invoice = invoice_for(call, subscription, "subscription_create", start, with_items=True)
    before = dict(subscription)
    payments.finalize(call, invoice, start)
    if behavior != "default_incomplete":
        payments.collect(call, invoice, start)
    if collection == "send_invoice" or invoice["status"] == "paid":
        subscription["status"] = "active"
    elif behavior == "error_if_incomplete":
        raise StripeError(
            402,
            "Your card was declined.",
            type_="card_error",
            code="card_declined",
            decline_code="generic_decline",
        )
    call.store.put("subscriptions", subscription_id, subscription)
    if subscription["status"] != before["status"]:
        emit(call, "customer.subscription.updated", render(call, subscription), before)
    return _out(call, subscription)


@route("subscriptions/<subscription_id>", methods=("GET",))
def get_subscription(call: Call, subscription_id):
    return _out(call, _subscription(call, subscription_id))


@route(
    "subscriptions",
    allowed=("customer", "status", "price", "test_clock", "limit", "starting_after", "ending_before"),
)
def list_subscriptions(call: Call):
    subscriptions = call.store.all("subscriptions")
    status = call.params.get("status")
    if status != "all":
        subscriptions = [
            s for s in subscriptions if s["status"] == status or (not status and s["status"] != "canceled")
        ]
    for name in ("customer", "test_clock"):
        if call.params.get(name):
            subscriptions = [s for s in subscriptions if s[name] == call.params[name]]
    if call.params.get("price"):
        subscriptions = [
            s
            for s in subscriptions
            if any(i["price"]["id"] == call.params["price"] for i in s["items"]["data"])
        ]
    return page(call, subscriptions, "/v1/subscriptions", render=lambda s: render(call, s))


@route(
    "subscriptions/<subscription_id>",
    methods=("POST",),
    allowed=(
        "items",
        "default_tax_rates",
        "default_payment_method",
        "discounts",
        "metadata",
        "description",
        "proration_behavior",
        "proration_date",
        "cancel_at_period_end",
        "pause_collection",
    ),
)
def update_subscription(call: Call, subscription_id):
    subscription = _subscription(call, subscription_id)
    if subscription["status"] == "canceled":
        raise StripeError(
            400, "A canceled subscription can only update its cancellation_details and metadata."
        )
    params = call.params
    before = snapshot(subscription)
    customer = customer_of(call, subscription["customer"], "customer")
    at = integer(params, "proration_date") or now(call, customer["test_clock"])
    behavior = choice(
        params, "proration_behavior", ("create_prorations", "none", "always_invoice"), "create_prorations"
    )
    if "items" in params:
        prorations.change_items(call, subscription, params["items"], at, behavior)
    if "default_tax_rates" in params:
        subscription["default_tax_rates"] = _rates(call, params["default_tax_rates"], "default_tax_rates")
    if "default_payment_method" in params:
        method_id = params["default_payment_method"] or None
        if (
            method_id
            and load(call, method_id, "PaymentMethod", "default_payment_method")["customer"]
            != (customer["id"])
        ):
            raise invalid("default_payment_method", "The payment method must be attached to the customer.")
        subscription["default_payment_method"] = method_id
    if "discounts" in params:
        subscription["discounts"] = _discounts(call, params["discounts"], customer, subscription_id, at)
    if "cancel_at_period_end" in params:
        subscription["cancel_at_period_end"] = boolean(params, "cancel_at_period_end", False)
        subscription["cancel_at"] = (
            subscription["items"]["data"][0]["current_period_end"]
            if subscription["cancel_at_period_end"]
            else None
        )
    if "description" in params:
        subscription["description"] = params["description"] or None
    if "pause_collection" in params:
        subscription["pause_collection"] = _pause(params["pause_collection"])
    subscription["metadata"] = metadata(params, subscription["metadata"])
    changed(call, subscription, before, at, behavior == "always_invoice" and "items" in params)
    return _out(call, subscription)


def _pause(given) -> dict | None:
    """`pause_collection[behavior]` (keep_as_draft, mark_uncollectible, void), `[resumes_at]`; "" resumes."""
    if given == "":
        return None
    behavior = choice(given, "behavior", ("keep_as_draft", "mark_uncollectible", "void"), required=True)
    return {"behavior": behavior, "resumes_at": integer(given, "resumes_at")}


def paused(subscription: dict, at: int) -> str | None:
    """The pause behaviour in force at `at`, if collection is paused then."""
    pause = subscription["pause_collection"]
    if pause is None or (pause["resumes_at"] is not None and at >= pause["resumes_at"]):
        return None
    return pause["behavior"]


def snapshot(subscription: dict) -> dict:
    """The subscription as it is, items copied: the `before` of an update's event."""
    return {
        **subscription,
        "items": {**subscription["items"], "data": [dict(i) for i in subscription["items"]["data"]]},
    }


def changed(call: Call, subscription: dict, before: dict, at: int, invoice_now: bool) -> None:
    """Save a changed subscription; with `invoice_now` (always_invoice) its prorations are invoiced as
    `subscription_update` and charged at once; then customer.subscription.updated."""
    call.store.put("subscriptions", subscription["id"], subscription)
    if invoice_now:
        invoice = invoice_for(call, subscription, "subscription_update", at, with_items=False)
        payments.finalize(call, invoice, at)
        if (
            not payments.collect(call, invoice, at)
            and subscription["status"] == "active"
            and invoice["status"] == "open"
            and invoice["collection_method"] == "charge_automatically"
        ):
            subscription["status"] = "past_due"
        call.store.put("subscriptions", subscription["id"], subscription)
    emit(call, "customer.subscription.updated", render(call, subscription), render(call, before))


@route(
    "subscriptions/<subscription_id>",
    methods=("DELETE",),
    allowed=("cancellation_details",),
    expandable=True,
)
def cancel_subscription(call: Call, subscription_id):
    subscription = _subscription(call, subscription_id)
    if subscription["status"] == "canceled":
        raise StripeError(400, f"No such subscription: '{subscription_id}'", code="resource_missing")
    before = dict(subscription)
    at = now(call, subscription["test_clock"])
    subscription.update(status="canceled", canceled_at=at, ended_at=at)
    given = call.params.get("cancellation_details")
    given = given if isinstance(given, dict) else {}
    subscription["cancellation_details"] = {
        "comment": given.get("comment") or None,
        "feedback": given.get("feedback") or None,
        "reason": "cancellation_requested",
    }
    call.store.put("subscriptions", subscription_id, subscription)
    emit(call, "customer.subscription.deleted", render(call, subscription), before)
    return _out(call, subscription)


@route("subscription_items", allowed=("subscription", "limit", "starting_after", "ending_before"))
def list_subscription_items(call: Call):
    subscription = _subscription(call, required(call.params, "subscription"))
    return page(
        call,
        [public(i) for i in subscription["items"]["data"]],
        f"/v1/subscription_items?subscription={subscription['id']}",
    )


def _item(call: Call, item_id: str) -> tuple[dict, dict]:
    """A subscription item and its subscription (items live inside their subscription)."""
    for subscription in call.store.all("subscriptions"):
        for item in subscription["items"]["data"]:
            if item["id"] == item_id:
                return subscription, item
    raise missing("subscription item", item_id)


@route("subscription_items/<item_id>", methods=("GET",))
def get_subscription_item(call: Call, item_id):
    return expand(call, public(_item(call, item_id)[1]))


@route(
    "subscription_items/<item_id>",
    methods=("POST",),
    allowed=("quantity", "price", "proration_behavior", "proration_date", "metadata"),
)
def update_subscription_item(call: Call, item_id):
    """The same change as `POST /v1/subscriptions/{id}` with `items[][id]`, addressed to the item."""
    subscription, item = _item(call, item_id)
    if subscription["status"] == "canceled":
        raise StripeError(400, "A canceled subscription's items cannot be changed.")
    before = snapshot(subscription)
    at = integer(call.params, "proration_date") or now(call, subscription["test_clock"])
    behavior = choice(
        call.params,
        "proration_behavior",
        ("create_prorations", "none", "always_invoice"),
        "create_prorations",
    )
    prorations.change_item(call, subscription, item, call.params, at, behavior, "")
    item["metadata"] = metadata(call.params, item["metadata"])
    changed(call, subscription, before, at, behavior == "always_invoice")
    return expand(call, public(item))


def past_due(call: Call, invoice: dict) -> None:
    subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if (
        not subscription_id
        or invoice["status"] != "open"
        or invoice["collection_method"] != "charge_automatically"
    ):
        return
    subscription = call.store.get("subscriptions", subscription_id)
    if subscription["status"] == "active":
        before = render(call, subscription)
        subscription["status"] = "past_due"
        call.store.put("subscriptions", subscription_id, subscription)
        emit(call, "customer.subscription.updated", render(call, subscription), before)


def mark_active(call: Call, invoice: dict) -> None:
    """An invoice of a past-due or incomplete subscription got paid: the subscription is active again."""
    subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    subscription = call.store.get("subscriptions", subscription_id) if subscription_id else None
    if subscription and subscription["status"] in ("past_due", "incomplete", "unpaid"):
        before = render(call, subscription)
        subscription["status"] = "active"
        call.store.put("subscriptions", subscription_id, subscription)
        emit(call, "customer.subscription.updated", render(call, subscription), before)
