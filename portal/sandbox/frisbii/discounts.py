"""The Frisbii sandbox's discounts, subscription discounts and additional costs (on api.bp): what puts
discount lines (negative, origin "discount") and extra lines (origin "additional_cost") on a subscription's
next invoice. Fields and paths: the generated reepay-php-api docs (Discount, CreateDiscount,
SubscriptionDiscount, CreateSubscriptionDiscount, AdditionalCost, CreateAdditionalCost; DiscountApi,
SubscriptionApi, AdditionalCostApi); see docs/connectors/frisbii.md."""

from portal.sandbox.frisbii import billing
from portal.sandbox.frisbii.api import answer, body, bp, done, load, public
from portal.sandbox.frisbii.billing import FrisbiiError, handle_ok, iso, minor, now, store

APPLY_TO = ("all", "setup_fee", "plan", "additional_cost", "add_on", "ondemand")


def discount_terms(given: dict, base: dict | None = None) -> dict:
    """name, amount or percentage (one of them), apply_to and fixed_count; a subscription discount may
    override its discount's."""
    base = base or {}
    terms = {
        name: given.get(name, base.get(name)) for name in ("name", "description", "apply_to", "fixed_count")
    }
    amount, percentage = given.get("amount"), given.get("percentage")
    if amount is None and percentage is None:
        amount, percentage = base.get("amount"), base.get("percentage")
    if (amount is None) == (percentage is None):
        raise FrisbiiError(400, "Invalid request", "Give either amount or percentage")
    if amount is not None and minor(amount, "amount") <= 0:
        raise FrisbiiError(400, "Invalid request", "amount must be positive")
    whole = isinstance(percentage, int) and not isinstance(percentage, bool)
    if percentage is not None and not (whole and 1 <= percentage <= 100):
        raise FrisbiiError(400, "Invalid request", "percentage must be a whole number from 1 to 100")
    apply_to = terms["apply_to"]
    if not isinstance(apply_to, list) or not apply_to or not set(apply_to) <= set(APPLY_TO):
        raise FrisbiiError(400, "Invalid request", f"apply_to must list some of {', '.join(APPLY_TO)}")
    count = terms["fixed_count"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FrisbiiError(400, "Invalid request", "fixed_count must be a positive integer")
    if not terms["name"]:
        raise FrisbiiError(400, "Invalid request", "name is required")
    return {**terms, "name": str(terms["name"]), "amount": amount, "percentage": percentage}


@bp.post("/v1/discount")
def post_discount():
    given = body()
    if not handle_ok(given.get("handle")):
        raise FrisbiiError(400, "Invalid request", "handle is required")
    if store().get("discounts", given["handle"]) is not None:
        raise FrisbiiError(400, "Duplicate handle", f"Discount handle already in use: {given['handle']}")
    discount = {"handle": given["handle"], "state": "active", "created": iso(now()), **discount_terms(given)}
    store().put("discounts", discount["handle"], discount)
    return done(discount)


@bp.get("/v1/discount/<handle>")
def get_discount(handle):
    return answer(load("discounts", handle, "Discount not found"))


@bp.post("/v1/subscription/<handle>/discount")
def post_subscription_discount(handle):
    """Attach a discount to a subscription; it applies from the next invoice on (fixed_count invoices)."""
    subscription = load("subscriptions", handle, "Subscription not found")
    given = body()
    discount = load("discounts", str(given.get("discount") or ""), "Discount not found")
    if not handle_ok(given.get("handle")):
        raise FrisbiiError(400, "Invalid request", "handle is required")
    key = f"{handle}/{given['handle']}"
    if store().get("subscription_discounts", key) is not None:
        raise FrisbiiError(
            400, "Duplicate handle", f"Subscription discount already exists: {given['handle']}"
        )
    attached = {
        "handle": given["handle"],
        "discount": discount["handle"],
        "state": "active",
        "created": iso(now()),
        **discount_terms(given, discount),
        "count": 0,
        "invoices": [],
        "fixed_usage_reached": False,
        "fixed_period_passed": False,
        "_subscription": subscription["handle"],
    }
    store().put("subscription_discounts", key, attached)
    return done(public(attached))


@bp.get("/v1/subscription/<handle>/discount")
def get_subscription_discounts(handle):
    load("subscriptions", handle, "Subscription not found")
    found = store().items("subscription_discounts", _subscription=handle)
    return answer([public(discount) for _, discount in found])


@bp.post("/v1/additional_cost")
def post_additional_cost():
    """A one-off cost on the subscription's next invoice (state pending, then transferred)."""
    given = body()
    if not handle_ok(given.get("handle")) or not given.get("ordertext"):
        raise FrisbiiError(400, "Invalid request", "handle and ordertext are required")
    if store().get("additional_costs", given["handle"]) is not None:
        raise FrisbiiError(
            400, "Duplicate handle", f"Additional cost handle already in use: {given['handle']}"
        )
    subscription = load("subscriptions", str(given.get("subscription") or ""), "Subscription not found")
    unit, incl = minor(given.get("amount"), "amount"), bool(given.get("amount_incl_vat", True))
    line = billing.order_line(
        given["ordertext"], unit, given.get("quantity", 1), given.get("vat"), incl, "additional_cost"
    )
    cost = {
        "handle": given["handle"],
        "invoice": None,
        "state": "pending",
        "subscription": subscription["handle"],
        "ordertext": str(given["ordertext"]),
        "quantity": line["quantity"],
        "amount": line["amount"],
        "vat": line["vat"],
        "created": iso(now()),
        "amount_incl_vat": incl,
        "amount_vat": line["amount_vat"],
        "amount_ex_vat": line["amount_ex_vat"],
        "_unit": unit,
    }
    store().put("additional_costs", cost["handle"], cost)
    return done(public(cost))


@bp.get("/v1/additional_cost/<handle>")
def get_additional_cost(handle):
    return answer(public(load("additional_costs", handle, "Additional cost not found")))


@bp.post("/v1/additional_cost/<handle>/cancel")
def cancel_additional_cost(handle):
    cost = load("additional_costs", handle, "Additional cost not found")
    if cost["state"] != "pending":
        raise FrisbiiError(400, "Additional cost not pending", f"Additional cost is {cost['state']}")
    cost["state"] = "cancelled"
    store().put("additional_costs", handle, cost)
    return done(public(cost))
