"""Test clocks (/v1/test_helpers/test_clocks): advancing one renews every subscription on it whose period
ends on the way — a draft `subscription_cycle` invoice at the period's end, finalized an hour later (as
Stripe does) and charged to the default payment method — in time order."""

import time
from datetime import UTC, datetime

from portal.sandbox.stripe import payments
from portal.sandbox.stripe.api import Call, load, new_id, page, public, route
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import integer, invalid
from portal.sandbox.stripe.subscriptions import ACTIVE, add_interval, invoice_for, past_due, paused, render

# --- renewals -----------------------------------------------------------------------------------------


def renew(call: Call, subscription: dict) -> None:
    """The period ended: the next period, a draft `subscription_cycle` invoice (finalized an hour later,
    see advance), or the end of a subscription set to cancel at the period's end."""
    before = render(call, subscription)
    boundary = subscription["items"]["data"][0]["current_period_end"]
    if subscription["cancel_at_period_end"]:
        subscription.update(status="canceled", canceled_at=boundary, ended_at=boundary)
        subscription["cancellation_details"] = {
            **subscription["cancellation_details"],
            "reason": "cancellation_requested",
        }
        call.store.put("subscriptions", subscription["id"], subscription)
        emit(call, "customer.subscription.deleted", render(call, subscription), before)
        return
    anchor_day = datetime.fromtimestamp(subscription["billing_cycle_anchor"], UTC).day
    ended_start = subscription["items"]["data"][0]["current_period_start"]
    for item in subscription["items"]["data"]:
        recurring = item["price"]["recurring"]
        item["current_period_start"] = boundary
        item["current_period_end"] = add_interval(
            boundary, recurring["interval"], recurring["interval_count"], anchor_day
        )
    invoice = invoice_for(
        call, subscription, "subscription_cycle", boundary, with_items=True, period_start=ended_start
    )
    if paused(subscription, boundary) == "keep_as_draft":  # stays a draft: nothing finalizes it
        invoice.update(auto_advance=False, automatically_finalizes_at=None)
        call.store.put("invoices", invoice["id"], invoice)
    call.store.put("subscriptions", subscription["id"], subscription)
    emit(call, "customer.subscription.updated", render(call, subscription), before)


def _next_due(call: Call, customers: set[str]) -> tuple[int, str, dict] | None:
    """The earliest thing a clock must do next: a period end or a draft's finalization."""
    due = []
    for subscription in call.store.all("subscriptions"):
        if (
            subscription["customer"] in customers
            and subscription["status"] in ACTIVE
            and subscription["status"] != "incomplete"
        ):
            due.append((subscription["items"]["data"][0]["current_period_end"], "renew", subscription))
    for invoice in call.store.all("invoices"):
        if (
            invoice["customer"] in customers
            and invoice["status"] == "draft"
            and invoice["automatically_finalizes_at"]
        ):
            due.append((invoice["automatically_finalizes_at"], "finalize", invoice))
    return min(due, key=lambda entry: (entry[0], entry[1] == "renew")) if due else None


def _finalize_and_collect(call: Call, invoice: dict, at: int) -> None:
    """A draft's hour is up: finalize it, then charge it — or, while its subscription's collection is
    paused with void / mark_uncollectible, void it or write it off instead (docs.stripe.com/billing/
    subscriptions/pause-payment)."""
    payments.finalize(call, invoice, at)
    subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    pause = paused(call.store.get("subscriptions", subscription_id), at) if subscription_id else None
    if pause in ("void", "mark_uncollectible") and invoice["status"] == "open":
        payments.close(call, invoice, at, "void" if pause == "void" else "uncollectible")
    elif not payments.collect(call, invoice, at):
        past_due(call, invoice)


def advance(call: Call, clock: dict, target: int) -> None:
    """Move the clock to `target`, doing in time order what falls due on the way."""
    customers = {c["id"] for c in call.store.all("customers") if c["test_clock"] == clock["id"]}
    while (due := _next_due(call, customers)) is not None and due[0] <= target:
        at, kind, document = due
        call.store.put("test_clocks", clock["id"], {**clock, "frozen_time": at})
        if kind == "renew":
            renew(call, document)
        else:
            _finalize_and_collect(call, document, at)
    clock["frozen_time"] = target


# --- test clocks ----------------------------------------------------------------------------------------


@route("test_helpers/test_clocks", methods=("POST",), allowed=("frozen_time", "name"))
def create_clock(call: Call):
    frozen = integer(call.params, "frozen_time", required=True)
    created = int(time.time())
    clock = {
        "id": new_id("clock"),
        "object": "test_helpers.test_clock",
        "created": created,
        "deletes_after": created + 30 * 86400,
        "frozen_time": frozen,
        "livemode": False,
        "name": call.params.get("name") or None,
        "status": "ready",
        "status_details": {},
    }
    call.store.put("test_clocks", clock["id"], clock)
    emit(call, "test_helpers.test_clock.created", clock)
    return clock


@route("test_helpers/test_clocks/<clock_id>", methods=("GET",))
def get_clock(call: Call, clock_id):
    return public(load(call, clock_id, "test clock"))


@route("test_helpers/test_clocks", allowed=("limit", "starting_after", "ending_before"))
def list_clocks(call: Call):
    return page(call, call.store.all("test_clocks"), "/v1/test_helpers/test_clocks")


@route("test_helpers/test_clocks/<clock_id>", methods=("DELETE",))
def delete_clock(call: Call, clock_id):
    clock = load(call, clock_id, "test clock")
    for customer in call.store.all("customers"):
        if customer["test_clock"] == clock_id:  # Stripe deletes every object on the clock
            call.store.put("customers", customer["id"], {**customer, "_deleted": True})
    call.store.delete("test_clocks", clock_id)
    emit(call, "test_helpers.test_clock.deleted", clock)
    return {"id": clock_id, "object": "test_helpers.test_clock", "deleted": True}


@route("test_helpers/test_clocks/<clock_id>/advance", methods=("POST",), allowed=("frozen_time",))
def advance_clock(call: Call, clock_id):
    """Stripe advances in the background and reports `advancing`, then `ready`; the sandbox does the work
    in this request and answers `ready` (a client that polls until ready sees the same)."""
    clock = load(call, clock_id, "test clock")
    target = integer(call.params, "frozen_time", required=True)
    if target <= clock["frozen_time"]:
        raise invalid("frozen_time", "The frozen_time must be after the test clock's current frozen time.")
    limit = _advance_limit(call, clock)
    if target > limit:
        raise invalid(
            "frozen_time",
            "Cannot advance more than two intervals beyond the shortest subscription "
            f"on this test clock (at most {limit}).",
        )
    emit(call, "test_helpers.test_clock.advancing", {**clock, "status": "advancing"})
    advance(Call(call.account, {}), clock, target)  # what Stripe does by itself: events without a request
    call.store.put("test_clocks", clock_id, clock)
    emit(call, "test_helpers.test_clock.ready", clock)
    return public(clock)


def _advance_limit(call: Call, clock: dict) -> int:
    frozen = clock["frozen_time"]
    limits = [add_interval(frozen, "year", 2)]
    customers = {c["id"] for c in call.store.all("customers") if c["test_clock"] == clock["id"]}
    for subscription in call.store.all("subscriptions"):
        if subscription["customer"] in customers and subscription["status"] in ACTIVE:
            recurring = subscription["items"]["data"][0]["price"]["recurring"]
            limits.append(add_interval(frozen, recurring["interval"], 2 * recurring["interval_count"]))
    return min(limits)
