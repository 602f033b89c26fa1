"""Products, prices (recurring, tax behaviour), tax rates and coupons: what a subscription is priced with.
Shapes as in Stripe's OpenAPI fixtures (specs/stripe/fixtures)."""

from portal.sandbox.stripe.api import Call, expand, load, new_id, now, page, public, route
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import (
    StripeError,
    boolean,
    choice,
    integer,
    invalid,
    metadata,
    missing,
    required,
)

# --- products and prices ------------------------------------------------------------------------------


@route(
    "products",
    methods=("POST",),
    allowed=(
        "name",
        "description",
        "metadata",
        "active",
        "id",
        "tax_code",
        "default_price_data",
        "unit_label",
    ),
)
def create_product(call: Call):
    params = call.params
    product_id = params.get("id") or new_id("prod", 14)
    if call.store.get("products", product_id):
        raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
    product = {
        "id": product_id,
        "object": "product",
        "active": boolean(params, "active", True),
        "created": now(call),
        "default_price": None,
        "description": params.get("description") or None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata(params),
        "name": required(params, "name"),
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": params.get("tax_code") or None,
        "unit_label": params.get("unit_label") or None,
        "updated": now(call),
        "url": None,
    }
    call.store.put("products", product_id, product)
    emit(call, "product.created", product)
    if isinstance(params.get("default_price_data"), dict):
        price = _create_price(call, {**params["default_price_data"], "product": product_id})
        product["default_price"] = price["id"]
        call.store.put("products", product_id, product)
    return expand(call, public(product))


@route("products/<product_id>", methods=("GET",))
def get_product(call: Call, product_id):
    return expand(call, public(load(call, product_id, "product")))


@route("products", allowed=("active", "limit", "starting_after", "ending_before"))
def list_products(call: Call):
    products = call.store.all("products")
    active = boolean(call.params, "active")
    if active is not None:
        products = [p for p in products if p["active"] == active]
    return page(call, [public(p) for p in products], "/v1/products")


PRICE_PARAMS = (
    "currency",
    "product",
    "product_data",
    "unit_amount",
    "unit_amount_decimal",
    "recurring",
    "tax_behavior",
    "nickname",
    "lookup_key",
    "metadata",
    "active",
    "billing_scheme",
)


def _create_price(call: Call, params: dict) -> dict:
    product_id = params.get("product")
    if isinstance(params.get("product_data"), dict):
        product_id = _inline_product(call, params["product_data"])
    if not product_id:
        raise StripeError(
            400,
            "You must specify either `product` or `product_data` when creating a price.",
            param="product",
            saved=False,
        )
    load(call, product_id, "product", "product")
    amount = integer(params, "unit_amount", required="unit_amount_decimal" not in params, minimum=0)
    if amount is None:
        amount = int(str(params["unit_amount_decimal"]).split(".")[0])
    recurring = params.get("recurring")
    if recurring is not None:
        if not isinstance(recurring, dict):
            raise invalid("recurring", "Invalid object")
        recurring = {
            "interval": choice(recurring, "interval", ("day", "week", "month", "year"), required=True),
            "interval_count": integer(recurring, "interval_count", minimum=1) or 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
    currency = required(params, "currency").lower()
    price = {
        "id": new_id("price"),
        "object": "price",
        "active": boolean(params, "active", True),
        "billing_scheme": "per_unit",
        "created": now(call),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": params.get("lookup_key") or None,
        "metadata": metadata(params),
        "nickname": params.get("nickname") or None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": choice(
            params, "tax_behavior", ("exclusive", "inclusive", "unspecified"), "unspecified"
        ),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
    call.store.put("prices", price["id"], price)
    emit(call, "price.created", price)
    return price


def _inline_product(call: Call, data: dict) -> str:
    product = {
        "id": new_id("prod", 14),
        "object": "product",
        "active": True,
        "created": now(call),
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata(data),
        "name": required(data, "name"),
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "unit_label": None,
        "updated": now(call),
        "url": None,
    }
    call.store.put("products", product["id"], product)
    emit(call, "product.created", product)
    return product["id"]


@route("prices", methods=("POST",), allowed=PRICE_PARAMS)
def create_price(call: Call):
    return expand(call, public(_create_price(call, call.params)))


@route("prices/<price_id>", methods=("GET",))
def get_price(call: Call, price_id):
    return expand(call, public(load(call, price_id, "price")))


@route(
    "prices", allowed=("active", "product", "type", "currency", "limit", "starting_after", "ending_before")
)
def list_prices(call: Call):
    prices = call.store.all("prices")
    for name in ("product", "type", "currency"):
        if call.params.get(name):
            prices = [p for p in prices if p[name] == call.params[name]]
    return page(call, [public(p) for p in prices], "/v1/prices")


# --- tax rates and coupons ------------------------------------------------------------------------------


@route(
    "tax_rates",
    methods=("POST",),
    allowed=(
        "display_name",
        "percentage",
        "inclusive",
        "country",
        "jurisdiction",
        "description",
        "tax_type",
        "active",
        "metadata",
        "state",
    ),
)
def create_tax_rate(call: Call):
    params = call.params
    percentage = required(params, "percentage")
    try:
        float_free = str(percentage)
        if not float_free.replace(".", "", 1).isdigit():
            raise ValueError
    except ValueError:
        raise StripeError(
            400, f"Invalid decimal: {percentage}", code="parameter_invalid", param="percentage", saved=False
        ) from None
    inclusive = boolean(params, "inclusive")
    if inclusive is None:
        raise StripeError(
            400,
            "Missing required param: inclusive.",
            code="parameter_missing",
            param="inclusive",
            saved=False,
        )
    rate = {
        "id": new_id("txr"),
        "object": "tax_rate",
        "active": boolean(params, "active", True),
        "country": params.get("country") or None,
        "created": now(call),
        "description": params.get("description") or None,
        "display_name": required(params, "display_name"),
        "effective_percentage": None,
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": params.get("jurisdiction") or None,
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": metadata(params),
        # Stripe's OpenAPI types percentage as a number; the sandbox keeps the decimal the caller sent.
        "percentage": float(float_free) if "." in float_free else int(float_free),
        "rate_type": "percentage",
        "state": params.get("state") or None,
        "tax_type": params.get("tax_type") or None,
        "_percentage": float_free,
    }
    call.store.put("tax_rates", rate["id"], rate)
    emit(call, "tax_rate.created", rate)
    return public(rate)


@route("tax_rates/<rate_id>", methods=("GET",))
def get_tax_rate(call: Call, rate_id):
    return public(load(call, rate_id, "tax rate"))


@route("tax_rates", allowed=("active", "inclusive", "limit", "starting_after", "ending_before"))
def list_tax_rates(call: Call):
    return page(call, [public(r) for r in call.store.all("tax_rates")], "/v1/tax_rates")


@route(
    "coupons",
    methods=("POST",),
    allowed=(
        "id",
        "name",
        "percent_off",
        "amount_off",
        "currency",
        "duration",
        "duration_in_months",
        "max_redemptions",
        "metadata",
    ),
)
def create_coupon(call: Call):
    params = call.params
    coupon_id = params.get("id") or new_id("x", 8)[2:]
    if call.store.get("coupons", coupon_id):
        raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    percent, amount = params.get("percent_off"), integer(params, "amount_off", minimum=1)
    if (percent is None) == (amount is None):
        raise StripeError(400, "You must pass exactly one of percent_off or amount_off.", saved=False)
    if percent is not None and not (str(percent).replace(".", "", 1).isdigit() and 0 < float(percent) <= 100):
        raise invalid("percent_off", "percent_off must be greater than 0 and at most 100.")
    if amount is not None and not params.get("currency"):
        raise StripeError(
            400, "You must pass currency when passing amount_off.", param="currency", saved=False
        )
    duration = choice(params, "duration", ("once", "repeating", "forever"), "once")
    months = integer(params, "duration_in_months", required=duration == "repeating", minimum=1)
    coupon = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount,
        "created": now(call),
        "currency": (params.get("currency") or "").lower() or None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": integer(params, "max_redemptions"),
        "metadata": metadata(params),
        "name": params.get("name") or None,
        "percent_off": None if percent is None else float(percent),
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
        "_percent_off": None if percent is None else str(percent),
    }
    call.store.put("coupons", coupon_id, coupon)
    emit(call, "coupon.created", coupon)
    return public(coupon)


@route("coupons/<coupon_id>", methods=("GET",))
def get_coupon(call: Call, coupon_id):
    return public(coupon_of(call, coupon_id))


def coupon_of(call: Call, coupon_id: str, param="id") -> dict:
    coupon = call.store.get("coupons", coupon_id)
    if coupon is None:
        raise missing("coupon", coupon_id, param)
    return coupon
