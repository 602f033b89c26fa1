"""Invoices (create, update, finalize, pay, void, delete, lines), invoice items, invoice payments, and the
PaymentIntents and Charges a payment leaves behind."""

from portal.extensions import db
from portal.sandbox.stripe import billing, payments
from portal.sandbox.stripe.api import Call, expand, load, new_id, page, public, route
from portal.sandbox.stripe.customers import customer_of
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import (
    StripeError,
    boolean,
    choice,
    created_filter,
    integer,
    invalid,
    metadata,
    parameter_missing,
)
from portal.sandbox.stripe.subscriptions import mark_active


def _invoice(call: Call, invoice_id: str, param="id") -> dict:
    return load(call, invoice_id, "invoice", param)


def _out(call: Call, invoice: dict) -> dict:
    return expand(call, billing.render(call, invoice, payments=_asks(call, "payments")))


def _asks(call: Call, path: str) -> bool:
    """Whether expand[] names the includable field `path` or something inside it."""
    return any(e == path or e.startswith(f"{path}.") for e in call.expand)


def _draft(invoice: dict) -> None:
    if invoice["status"] != "draft":
        raise StripeError(
            400,
            f"You can only modify draft invoices; this invoice ({invoice['id']}) is {invoice['status']}.",
            code="invoice_not_editable",
        )


@route(
    "invoices",
    methods=("POST",),
    allowed=(
        "customer",
        "auto_advance",
        "collection_method",
        "days_until_due",
        "due_date",
        "default_tax_rates",
        "default_payment_method",
        "description",
        "discounts",
        "metadata",
        "currency",
        "footer",
        "pending_invoice_items_behavior",
        "subscription",
    ),
)
def create_invoice(call: Call):
    params = call.params
    customer = customer_of(call, params.get("customer") or "", "customer") if params.get("customer") else None
    if customer is None:
        raise StripeError(
            400, "Missing required param: customer.", code="parameter_missing", param="customer", saved=False
        )
    collection = choice(
        params, "collection_method", ("charge_automatically", "send_invoice"), "charge_automatically"
    )
    days = integer(params, "days_until_due", minimum=0)
    if collection == "send_invoice" and days is None and not params.get("due_date"):
        raise StripeError(
            400,
            "Invoices with `send_invoice` as collection method require a `due_date` or `days_until_due`.",
            param="days_until_due",
            saved=False,
        )
    rates = params.get("default_tax_rates") or []
    for index, rate_id in enumerate(rates):
        load(call, rate_id, "tax rate", f"default_tax_rates[{index}]")
    subscription = (
        load(call, params["subscription"], "subscription", "subscription")
        if params.get("subscription")
        else None
    )
    invoice = billing.new_invoice(
        call,
        customer,
        billing_reason="manual",
        subscription=subscription,
        created=payments.clock_now(call, customer["id"]),
        collection_method=collection,
        days_until_due=days,
        auto_advance=boolean(params, "auto_advance", False),
        default_tax_rates=rates,
        description=params.get("description") or None,
        metadata=metadata(params),
        currency=(params.get("currency") or "").lower() or _pending_currency(call, customer["id"], params),
    )
    if params.get("due_date"):
        invoice["due_date"] = integer(params, "due_date")
    if params.get("default_payment_method"):
        invoice["default_payment_method"] = load(
            call, params["default_payment_method"], "PaymentMethod", "default_payment_method"
        )["id"]
    behavior = choice(params, "pending_invoice_items_behavior", ("exclude", "include"), "exclude")
    if behavior == "include":
        billing.take_pending_items(
            call, invoice, customer["id"], subscription["id"] if subscription else None
        )
    billing.save(call, invoice)
    emit(call, "invoice.created", billing.render(call, invoice))
    return _out(call, invoice)


def _pending_currency(call: Call, customer_id: str, params: dict) -> str | None:
    """A new invoice that takes pending items is in their currency, unless told otherwise."""
    if params.get("pending_invoice_items_behavior") != "include":
        return None
    pending = [i for _, i in call.store.items("invoiceitems", customer=customer_id) if i["invoice"] is None]
    return pending[0]["currency"] if pending else None


@route("invoices/<invoice_id>", methods=("GET",))
def get_invoice(call: Call, invoice_id):
    return _out(call, _invoice(call, invoice_id))


@route(
    "invoices",
    allowed=(
        "customer",
        "subscription",
        "status",
        "collection_method",
        "created",
        "limit",
        "starting_after",
        "ending_before",
    ),
)
def list_invoices(call: Call):
    invoices = call.store.all("invoices")
    for name in ("customer", "status", "collection_method"):
        if call.params.get(name):
            invoices = [i for i in invoices if i[name] == call.params[name]]
    if call.params.get("subscription"):
        invoices = [
            i
            for i in invoices
            if ((i["parent"] or {}).get("subscription_details") or {}).get("subscription")
            == call.params["subscription"]
        ]
    return page(
        call,
        created_filter(call.params, invoices),
        "/v1/invoices",
        render=lambda i: billing.render(call, i, payments=_asks(call, "data.payments")),
    )


@route(
    "invoices/<invoice_id>",
    methods=("POST",),
    allowed=(
        "description",
        "metadata",
        "default_tax_rates",
        "auto_advance",
        "days_until_due",
        "footer",
        "default_payment_method",
    ),
)
def update_invoice(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    params = call.params
    before = billing.render(call, invoice)
    if set(params) - {"metadata", "auto_advance"}:
        _draft(invoice)
    if "description" in params:
        invoice["description"] = params["description"] or None
    if "footer" in params:
        invoice["footer"] = params["footer"] or None
    if "default_tax_rates" in params:
        rates = params["default_tax_rates"] or []
        invoice["default_tax_rates"] = [load(call, r, "tax rate", "default_tax_rates")["id"] for r in rates]
    if "days_until_due" in params and invoice["collection_method"] == "send_invoice":
        invoice["due_date"] = invoice["created"] + integer(params, "days_until_due", minimum=0) * 86400
    if "default_payment_method" in params:
        invoice["default_payment_method"] = params["default_payment_method"] or None
    invoice["auto_advance"] = boolean(params, "auto_advance", invoice["auto_advance"])
    invoice["metadata"] = metadata(params, invoice["metadata"])
    if invoice["status"] == "draft":
        billing.save(call, invoice)
    else:
        call.store.put("invoices", invoice_id, invoice)
    emit(call, "invoice.updated", billing.render(call, invoice), before)
    return _out(call, invoice)


@route("invoices/<invoice_id>", methods=("DELETE",))
def delete_invoice(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    if invoice["status"] != "draft":
        raise StripeError(400, "You can only delete draft invoices. Void the invoice instead.")
    for item in invoice["lines"]["data"]:
        item_id = (
            item["parent"].get("invoice_item_details")
            or item["parent"].get("subscription_item_details")
            or {}
        ).get("invoice_item")
        if item_id:  # its invoice items are pending again
            pending = call.store.get("invoiceitems", item_id)
            call.store.put("invoiceitems", item_id, {**pending, "invoice": None})
    call.store.delete("invoices", invoice_id)
    emit(call, "invoice.deleted", billing.render(call, invoice))
    return {"id": invoice_id, "object": "invoice", "deleted": True}


@route("invoices/<invoice_id>/finalize", methods=("POST",), allowed=("auto_advance",))
def finalize_invoice(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    invoice["auto_advance"] = boolean(call.params, "auto_advance", invoice["auto_advance"])
    payments.finalize(call, invoice, payments.clock_now(call, invoice["customer"]))
    if invoice["status"] == "paid":
        mark_active(call, invoice)
    return _out(call, invoice)


@route(
    "invoices/<invoice_id>/pay",
    methods=("POST",),
    allowed=("payment_method", "paid_out_of_band", "off_session", "forgive"),
)
def pay_invoice(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    at = payments.clock_now(call, invoice["customer"])
    if invoice["status"] == "paid":
        raise StripeError(400, "Invoice is already paid")
    if invoice["status"] == "void":
        raise StripeError(400, "You cannot pay a voided invoice.", code="invoice_not_editable")
    if invoice["status"] == "draft":
        payments.finalize(call, invoice, at)
    if invoice["status"] == "open":
        if boolean(call.params, "paid_out_of_band", False):
            payments.mark_paid(call, invoice, at, None, out_of_band=True)
        else:
            method_id = call.params.get("payment_method")
            if method_id:
                method = load(call, method_id, "PaymentMethod", "payment_method")
                if method["customer"] != invoice["customer"]:
                    raise invalid("payment_method", "The payment method must be attached to the customer.")
            else:
                method = payments.payment_method_for(call, invoice)
                if method is None:
                    raise StripeError(
                        400,
                        "This customer has no attached payment source or default payment "
                        "method. Please consider adding a default payment method.",
                    )
            if not payments.charge(call, invoice, at, method):
                db.session.commit()  # the failed attempt and its events stay, as at Stripe
                raise StripeError(
                    402,
                    "Your card was declined.",
                    type_="card_error",
                    code="card_declined",
                    decline_code="generic_decline",
                )
    mark_active(call, invoice)
    return _out(call, invoice)


@route("invoices/<invoice_id>/void", methods=("POST",))
def void_invoice(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    if invoice["status"] != "open":
        raise StripeError(400, f"You can only void open invoices; this invoice is {invoice['status']}.")
    payments.close(call, invoice, payments.clock_now(call, invoice["customer"]), "void")
    return _out(call, invoice)


@route("invoices/<invoice_id>/mark_uncollectible", methods=("POST",))
def mark_uncollectible(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    if invoice["status"] != "open":
        raise StripeError(
            400, f"You can only mark open invoices uncollectible; this one is {invoice['status']}."
        )
    payments.close(call, invoice, payments.clock_now(call, invoice["customer"]), "uncollectible")
    return _out(call, invoice)


@route("invoices/<invoice_id>/lines", allowed=("limit", "starting_after", "ending_before"))
def list_invoice_lines(call: Call, invoice_id):
    invoice = _invoice(call, invoice_id)
    lines = [public(item) for item in invoice["lines"]["data"]]
    listing = page(
        call,
        [{**item, "created": -index} for index, item in enumerate(lines)],
        f"/v1/invoices/{invoice_id}/lines",
    )  # in the invoice's own order
    listing["data"] = [{k: v for k, v in item.items() if k != "created"} for item in listing["data"]]
    return listing


# --- invoice items ------------------------------------------------------------------------------------

ITEM_PARAMS = (
    "customer",
    "amount",
    "currency",
    "description",
    "discountable",
    "invoice",
    "metadata",
    "period",
    "price_data",
    "pricing",
    "quantity",
    "subscription",
    "tax_rates",
    "unit_amount_decimal",
)


@route("invoiceitems", methods=("POST",), allowed=ITEM_PARAMS)
def create_invoice_item(call: Call):
    params = call.params
    invoice = _invoice(call, params["invoice"], "invoice") if params.get("invoice") else None
    if invoice is not None:
        _draft(invoice)
    customer = customer_of(call, params.get("customer") or (invoice or {}).get("customer") or "", "customer")
    quantity = integer(params, "quantity", minimum=1) or 1
    price = None
    if isinstance(params.get("pricing"), dict) and params["pricing"].get("price"):
        price = public(load(call, params["pricing"]["price"], "price", "pricing[price]"))
        amount, currency = price["unit_amount"] * quantity, price["currency"]
    elif params.get("amount") not in (None, ""):
        amount = integer(params, "amount")
        currency = (params.get("currency") or "").lower()
        if not currency:
            raise StripeError(
                400,
                "Missing required param: currency.",
                code="parameter_missing",
                param="currency",
                saved=False,
            )
    else:
        raise StripeError(
            400,
            "You must specify either `amount` or `pricing[price]` (the sandbox does not take `price_data`).",
            param="pricing",
            saved=False,
        )
    at = payments.clock_now(call, customer["id"])
    period = params.get("period") if isinstance(params.get("period"), dict) else {}
    subscription_id = params.get("subscription") or None
    item = {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "date": at,
        "description": params.get("description") or (load(call, price["product"])["name"] if price else None),
        "discountable": boolean(params, "discountable", amount > 0),
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": metadata(params),
        "net_amount": amount,
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription_id}}
        if subscription_id
        else None,
        "period": {"start": int(period.get("start") or at), "end": int(period.get("end") or at)},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"] if price else str(amount),
        },
        "proration": False,
        "quantity": quantity,
        "tax_rates": [public(load(call, r, "tax rate", "tax_rates")) for r in params.get("tax_rates") or []],
        "test_clock": customer["test_clock"],
        "_price": price,
    }
    if invoice is not None and currency != invoice["currency"]:
        raise invalid("currency", f"The invoice is in {invoice['currency']}; this item is in {currency}.")
    call.store.put("invoiceitems", item["id"], item)
    if invoice is not None:
        item["invoice"] = invoice["id"]
        call.store.put("invoiceitems", item["id"], item)
        rates = [load(call, r, "tax rate") for r in invoice["default_tax_rates"]]
        invoice["lines"]["data"].append(billing.invoice_item_line(invoice["id"], item, rates))
        billing.save(call, invoice)
    emit(call, "invoiceitem.created", item)
    return expand(call, public(item))


@route("invoiceitems/<item_id>", methods=("GET",))
def get_invoice_item(call: Call, item_id):
    return expand(call, public(load(call, item_id, "invoiceitem")))


@route("invoiceitems", allowed=("customer", "invoice", "pending", "limit", "starting_after", "ending_before"))
def list_invoice_items(call: Call):
    items = call.store.all("invoiceitems")
    for name in ("customer", "invoice"):
        if call.params.get(name):
            items = [i for i in items if i[name] == call.params[name]]
    if boolean(call.params, "pending"):
        items = [i for i in items if i["invoice"] is None]
    return page(call, [public(i) for i in items], "/v1/invoiceitems")


@route("invoiceitems/<item_id>", methods=("DELETE",))
def delete_invoice_item(call: Call, item_id):
    item = load(call, item_id, "invoiceitem")
    if item["invoice"] is not None:
        raise StripeError(400, "You can only delete pending invoice items (this one is on an invoice).")
    call.store.delete("invoiceitems", item_id)
    emit(call, "invoiceitem.deleted", item)
    return {"id": item_id, "object": "invoiceitem", "deleted": True}


# --- payments -----------------------------------------------------------------------------------------


@route(
    "invoice_payments", allowed=("invoice", "payment", "status", "limit", "starting_after", "ending_before")
)
def list_invoice_payments(call: Call):
    """By invoice, status, or by payment: `payment[type]` (required there) and `payment[payment_intent]`,
    how a PaymentIntent — a refund's — is traced to its invoice since basil (DOCS /api/invoice-payment/list;
    OAS params/_invoice_payment_list_params.py)."""
    payments = call.store.all("invoice_payments")
    by = call.params.get("payment")
    if isinstance(by, dict):
        unknown = sorted(set(by) - {"type", "payment_intent", "payment_record"})
        if unknown:
            raise StripeError(
                400,
                f"Received unknown parameter: payment[{unknown[0]}]",
                code="parameter_unknown",
                param=f"payment[{unknown[0]}]",
                saved=False,
            )
        if not by.get("type"):
            raise parameter_missing("payment[type]")
        kind = choice(by, "type", ("payment_intent", "payment_record"))
        payments = [p for p in payments if p["payment"]["type"] == kind]
        for name in ("payment_intent", "payment_record"):
            if by.get(name):
                payments = [p for p in payments if p["payment"].get(name) == by[name]]
    if call.params.get("invoice"):
        payments = [p for p in payments if p["invoice"] == call.params["invoice"]]
    if call.params.get("status"):
        payments = [p for p in payments if p["status"] == call.params["status"]]
    return page(call, [public(p) for p in payments], "/v1/invoice_payments")


@route("invoice_payments/<payment_id>", methods=("GET",))
def get_invoice_payment(call: Call, payment_id):
    return expand(call, public(load(call, payment_id, "invoice payment")))


@route("payment_intents/<intent_id>", methods=("GET",))
def get_payment_intent(call: Call, intent_id):
    return expand(call, public(load(call, intent_id, "payment_intent")))


@route("charges/<charge_id>", methods=("GET",))
def get_charge(call: Call, charge_id):
    return expand(call, public(load(call, charge_id, "charge")))


@route("charges", allowed=("customer", "payment_intent", "limit", "starting_after", "ending_before"))
def list_charges(call: Call):
    charges = call.store.all("charges")
    for name in ("customer", "payment_intent"):
        if call.params.get(name):
            charges = [c for c in charges if c[name] == call.params[name]]
    return page(call, [public(c) for c in charges], "/v1/charges")
