"""Customers (address, e-mail, tax exemption), their tax ids, and payment methods — with Stripe's test
tokens (docs.stripe.com/testing) turned into attached cards."""

from stdnum.eu import vat as eu_vat

from portal.sandbox.stripe.api import Call, expand, load, new_id, now, page, public, route
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import StripeError, choice, invalid, metadata, missing, required

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
TAX_ID_TYPES = ("eu_vat", "gb_vat", "no_vat", "ch_vat", "is_vat")  # what the sandbox checks; see the doc

# Stripe's test tokens (docs.stripe.com/testing): brand, last4, country, funding, and how charges go.
# "attach" declines at attaching (Stripe checks the card then); "charge" attaches and declines every charge.
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", "US", "credit", None),
    "pm_card_visa_debit": ("visa", "5556", "US", "debit", None),
    "pm_card_mastercard": ("mastercard", "4444", "US", "credit", None),
    "pm_card_amex": ("amex", "8431", "US", "credit", None),
    "pm_card_chargeDeclined": ("visa", "0002", "US", "credit", "attach"),
    "pm_card_visa_chargeDeclined": ("visa", "0002", "US", "credit", "attach"),
    "pm_card_chargeCustomerFail": ("visa", "0341", "US", "credit", "charge"),
}


def _address(given, current=None) -> dict | None:
    if given is None:
        return current
    if given == "":
        return None
    if not isinstance(given, dict):
        raise invalid("address", "Invalid object")
    return {name: given.get(name) or None for name in ADDRESS_FIELDS}


# --- customers ----------------------------------------------------------------------------------------

CUSTOMER_PARAMS = (
    "address",
    "description",
    "email",
    "name",
    "phone",
    "metadata",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
    "invoice_settings",
    "preferred_locales",
    "payment_method",
    "shipping",
)


def _render(call: Call, customer: dict, tax_ids: bool) -> dict:
    """`tax_ids` is an includable field: there only when asked for (expand[]=tax_ids)."""
    document = public(customer)
    if tax_ids:
        document["tax_ids"] = {
            "object": "list",
            "data": tax_ids_of(call, customer["id"]),
            "has_more": False,
            "url": f"/v1/customers/{customer['id']}/tax_ids",
        }
    return document


def render_customer(call: Call, customer: dict) -> dict:
    return expand(call, _render(call, customer, any(e.split(".")[0] == "tax_ids" for e in call.expand)))


@route("customers", methods=("POST",), allowed=CUSTOMER_PARAMS)
def create_customer(call: Call):
    params = call.params
    clock = params.get("test_clock")
    if clock and call.store.get("test_clocks", clock) is None:
        raise missing("test clock", clock, "test_clock")
    created = now(call, clock)
    customer = {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": _address(params.get("address")),
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description") or None,
        "discount": None,
        "email": params.get("email") or None,
        "invoice_prefix": new_id("x", 8)[2:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata(params),
        "name": params.get("name") or None,
        "next_invoice_sequence": 1,
        "phone": params.get("phone") or None,
        "preferred_locales": list(params.get("preferred_locales") or []),
        "shipping": None,
        "tax_exempt": choice(params, "tax_exempt", ("none", "exempt", "reverse"), "none"),
        "test_clock": clock or None,
    }
    call.store.put("customers", customer["id"], customer)
    for index, data in enumerate(params.get("tax_id_data") or []):
        _create_tax_id(call, customer, data or {}, f"tax_id_data[{index}]")
    if params.get("payment_method"):
        attach(call, params["payment_method"], customer)
    _update_settings(call, customer, params)
    emit(call, "customer.created", customer)
    return render_customer(call, customer)


def _update_settings(call: Call, customer: dict, params: dict) -> None:
    settings = params.get("invoice_settings")
    if not isinstance(settings, dict):
        return
    if "default_payment_method" in settings:
        method_id = settings["default_payment_method"] or None
        if method_id:
            method = load(call, method_id, "PaymentMethod", "invoice_settings[default_payment_method]")
            if method["customer"] != customer["id"]:
                raise invalid(
                    "invoice_settings[default_payment_method]",
                    f"The customer does not have a payment method with the ID {method_id}. "
                    "The payment method must be attached to the customer.",
                )
        customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": method_id}
    if "footer" in settings:
        customer["invoice_settings"] = {**customer["invoice_settings"], "footer": settings["footer"] or None}
    call.store.put("customers", customer["id"], customer)


@route("customers/<customer_id>", methods=("GET",))
def get_customer(call: Call, customer_id):
    return render_customer(call, _customer(call, customer_id))


@route(
    "customers/<customer_id>",
    methods=("POST",),
    allowed=tuple(c for c in CUSTOMER_PARAMS if c not in ("tax_id_data", "test_clock", "payment_method")),
)
def update_customer(call: Call, customer_id):
    customer = _customer(call, customer_id)
    before = dict(customer)
    params = call.params
    for name in ("description", "email", "name", "phone"):
        if name in params:
            customer[name] = params[name] or None
    customer["address"] = _address(params.get("address"), customer["address"])
    customer["metadata"] = metadata(params, customer["metadata"])
    customer["tax_exempt"] = choice(
        params, "tax_exempt", ("none", "exempt", "reverse"), customer["tax_exempt"]
    )
    call.store.put("customers", customer_id, customer)
    _update_settings(call, customer, params)
    emit(call, "customer.updated", customer, before)
    return render_customer(call, customer)


@route("customers/<customer_id>", methods=("DELETE",))
def delete_customer(call: Call, customer_id):
    customer = _customer(call, customer_id)
    call.store.put("customers", customer_id, {**customer, "_deleted": True})
    emit(call, "customer.deleted", customer)
    return {"id": customer_id, "object": "customer", "deleted": True}


@route("customers", allowed=("email", "limit", "starting_after", "ending_before", "test_clock"))
def list_customers(call: Call):
    customers = [c for c in call.store.all("customers") if not c.get("_deleted")]
    for name in ("email", "test_clock"):
        if call.params.get(name):
            customers = [c for c in customers if c[name] == call.params[name]]
    tax_ids = any(e.startswith("data.tax_ids") for e in call.expand)
    return page(call, customers, "/v1/customers", render=lambda c: _render(call, c, tax_ids))


def _customer(call: Call, customer_id: str, param="id") -> dict:
    customer = call.store.get("customers", customer_id)
    if customer is None or customer.get("_deleted"):
        raise missing("customer", customer_id, param)
    return customer


customer_of = _customer


# --- tax ids --------------------------------------------------------------------------------------------


def _create_tax_id(call: Call, customer: dict, data: dict, param: str) -> dict:
    kind, value = data.get("type"), (data.get("value") or "").replace(" ", "")
    if not kind:
        raise StripeError(
            400,
            f"Missing required param: {param}[type].",
            code="parameter_missing",
            param=f"{param}[type]",
            saved=False,
        )
    if kind not in TAX_ID_TYPES:
        raise invalid(f"{param}[type]", f"Invalid {param}[type]: the sandbox knows {', '.join(TAX_ID_TYPES)}")
    if kind == "eu_vat" and not eu_vat.is_valid(value):
        raise StripeError(400, f"Invalid value for {kind}.", code="tax_id_invalid", param=f"{param}[value]")
    country = value[:2].upper() if kind == "eu_vat" else kind[:2].upper()
    tax_id = {
        "id": new_id("txi"),
        "object": "tax_id",
        "country": "GR" if country == "EL" else country,
        "created": now(call, customer["test_clock"]),
        "customer": customer["id"],
        "livemode": False,
        "owner": {"type": "customer", "customer": customer["id"]},
        "type": kind,
        "value": value,
        # Stripe checks EU numbers with VIES asynchronously; the sandbox's answer is at once.
        "verification": {"status": "verified", "verified_address": None, "verified_name": None},
    }
    call.store.put("tax_ids", tax_id["id"], tax_id)
    emit(call, "customer.tax_id.created", tax_id)
    return tax_id


def tax_ids_of(call: Call, customer_id: str) -> list[dict]:
    return [public(document) for _, document in call.store.items("tax_ids", customer=customer_id)]


@route("customers/<customer_id>/tax_ids", methods=("POST",), allowed=("type", "value"))
def create_tax_id(call: Call, customer_id):
    return public(_create_tax_id(call, _customer(call, customer_id), call.params, "value"))


@route("customers/<customer_id>/tax_ids", allowed=("limit", "starting_after", "ending_before"))
def list_tax_ids(call: Call, customer_id):
    _customer(call, customer_id)
    return page(call, tax_ids_of(call, customer_id), f"/v1/customers/{customer_id}/tax_ids")


@route("customers/<customer_id>/tax_ids/<tax_id>", methods=("GET",))
def get_tax_id(call: Call, customer_id, tax_id):
    document = call.store.get("tax_ids", tax_id)
    if document is None or document["customer"] != customer_id:
        raise missing("tax_id", tax_id)
    return public(document)


@route("customers/<customer_id>/tax_ids/<tax_id>", methods=("DELETE",))
def delete_tax_id(call: Call, customer_id, tax_id):
    document = get_tax_id(call, customer_id, tax_id)
    call.store.delete("tax_ids", tax_id)
    emit(call, "customer.tax_id.deleted", document)
    return {"id": tax_id, "object": "tax_id", "deleted": True}


# --- payment methods ------------------------------------------------------------------------------------


@route("payment_methods/<method_id>/attach", methods=("POST",), allowed=("customer",))
def attach_payment_method(call: Call, method_id):
    customer = _customer(call, required(call.params, "customer"), "customer")
    return public(attach(call, method_id, customer))


def attach(call: Call, method_id: str, customer: dict) -> dict:
    """Attach a payment method; a test token (pm_card_visa …) becomes a new pm_… as at Stripe."""
    if method_id in TEST_CARDS:
        brand, last4, country, funding, declines = TEST_CARDS[method_id]
        if declines == "attach":
            raise StripeError(
                402,
                "Your card was declined.",
                type_="card_error",
                code="card_declined",
                decline_code="generic_decline",
            )
        method = {
            "id": new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    name: None for name in ("city", "country", "line1", "line2", "postal_code", "state")
                },
                "email": None,
                "name": None,
                "phone": None,
                "tax_id": None,
            },
            "card": {
                "brand": brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": country,
                "display_brand": brand,
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": new_id("x", 16)[2:],
                "funding": funding,
                "generated_from": None,
                "last4": last4,
                "networks": {"available": [brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": now(call, customer["test_clock"]),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
            "_declines": declines,
        }
    else:
        method = load(call, method_id, "PaymentMethod", "payment_method")
        if method["customer"] and method["customer"] != customer["id"]:
            raise invalid(
                "payment_method", "The payment method you provided has already been attached to a customer."
            )
    method["customer"] = customer["id"]
    call.store.put("payment_methods", method["id"], method)
    emit(call, "payment_method.attached", method)
    return method


@route("payment_methods/<method_id>", methods=("GET",))
def get_payment_method(call: Call, method_id):
    return expand(call, public(load(call, method_id, "PaymentMethod")))


@route("payment_methods", allowed=("customer", "type", "limit", "starting_after", "ending_before"))
def list_payment_methods(call: Call):
    methods = call.store.all("payment_methods")
    if call.params.get("customer"):
        methods = [m for m in methods if m["customer"] == call.params["customer"]]
    return page(call, [public(m) for m in methods], "/v1/payment_methods")
