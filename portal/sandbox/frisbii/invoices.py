"""The Frisbii sandbox's invoice, list, charge and refund routes (on api.bp; see that module's docstring
for what is copied from public sources and what is a guess)."""

import base64
from datetime import datetime, timedelta

from flask import request

from portal.sandbox.frisbii import billing
from portal.sandbox.frisbii.api import answer, body, bp, create_customer, done, load, public
from portal.sandbox.frisbii.billing import FrisbiiError, emit, handle_ok, iso, load_invoice, minor, now, store

# --- invoices --------------------------------------------------------------------------------------------


@bp.get("/v1/invoice/<key>")
def get_invoice(key):
    return answer(load_invoice(key))


@bp.post("/v1/invoice/<key>/cancel")
def cancel_invoice(key):
    invoice = load_invoice(key)
    if invoice["state"] == "cancelled":
        raise FrisbiiError(400, "Invoice already cancelled")
    if invoice["state"] in ("settled", "authorized"):
        raise FrisbiiError(400, "Invoice wrong state", f"Invoice is {invoice['state']}")
    invoice.update(state="cancelled", cancelled=iso(now()))
    billing.save_invoice(invoice)
    emit("invoice_cancelled", invoice=invoice)
    return done(invoice)


@bp.post("/v1/invoice/<key>/settle")
def settle_invoice(key):
    return done(settle_authorized(load_invoice(key), body().get("amount")))


def settle_authorized(invoice: dict, amount) -> dict:
    """Settle an authorized invoice or charge, at most the authorized amount."""
    if invoice["state"] == "settled":
        raise FrisbiiError(400, "Invoice already settled")
    if invoice["state"] != "authorized":
        raise FrisbiiError(400, "Invoice wrong state", f"Invoice is {invoice['state']}")
    amount = invoice["authorized_amount"] if amount is None else minor(amount, "amount")
    if not 0 < amount <= invoice["authorized_amount"]:
        raise FrisbiiError(400, "Invalid request", "amount must be between 1 and the authorized amount")
    event_type, entry = billing.settle(invoice, amount, invoice["recurring_payment_method"])
    billing.save_invoice(invoice)
    emit(event_type, invoice=invoice, transaction=entry["id"])
    return invoice


LIST_STATES = set(billing.INVOICE_STATES)


@bp.get("/v1/list/invoice")
def list_invoices():
    """ListApi getInvoiceList: size 10–100 (default 20), next_page_token; from/to on `created` (or
    `settled`), by default the month before `to` unless limited to a customer or subscription."""
    args = request.args
    size = args.get("size", "20")
    if not size.isdigit() or not 10 <= int(size) <= 100:
        raise FrisbiiError(400, "Invalid request", "size must be between 10 and 100")
    size = int(size)
    range_field = args.get("range", "created")
    if range_field not in ("created", "settled"):
        raise FrisbiiError(400, "Invalid request", "range must be created or settled")
    states = args.getlist("state")
    if not set(states) <= LIST_STATES:
        raise FrisbiiError(400, "Invalid request", f"state must be among {sorted(LIST_STATES)}")
    to = list_time(args.get("to"), now())
    related = args.get("customer") or args.get("subscription")
    start = list_time(
        args.get("from"), datetime(1970, 1, 1, tzinfo=to.tzinfo) if related else to - timedelta(days=31)
    )
    found = []
    for invoice in store().all("invoices"):
        moment = invoice.get(range_field)
        if moment is None or not start <= datetime.fromisoformat(moment) < to:
            continue
        if states and invoice["state"] not in states:
            continue
        if any(
            args.get(f) and invoice.get(f) != args[f]
            for f in ("customer", "subscription", "plan", "currency")
        ):
            continue
        if args.get("handle") and not invoice["handle"].startswith(args["handle"]):
            continue
        found.append(invoice)
    found.sort(key=lambda i: (i[range_field], i["id"]), reverse=True)
    offset = page_offset(args.get("next_page_token"))
    page = found[offset : offset + size]
    result = {
        "size": size,
        "count": len(page),
        "to": iso(to),
        "from": iso(start),
        "range": range_field,
        "content": page,
    }
    if offset + size < len(found):
        result["next_page_token"] = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode()
    return answer(result)


def list_time(text, default: datetime) -> datetime:
    if not text:
        return default
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FrisbiiError(
            400, "Invalid request", "from/to must be yyyy-MM-dd or yyyy-MM-ddTHH:mm[:ss]"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=default.tzinfo)


def page_offset(token) -> int:
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except ValueError:
        pass
    raise FrisbiiError(400, "Invalid request", "Invalid next_page_token")


# --- charges and refunds ---------------------------------------------------------------------------------


def render_charge(invoice: dict) -> dict:
    """A charge is the invoice behind it (type "ch") seen through the Charge object's fields."""
    last = invoice["transactions"][-1] if invoice["transactions"] else {}
    fields = (
        "handle", "state", "customer", "amount", "currency", "authorized", "settled", "cancelled", "created",
        "order_lines", "refunded_amount", "authorized_amount", "recurring_payment_method",
    )  # fmt: skip
    source = {"type": "card", "card": invoice["recurring_payment_method"], "card_type": "visa"}
    return {**{f: invoice[f] for f in fields}, "transaction": last.get("id"), "source": source}


@bp.post("/v1/charge")
def post_charge():
    given = body()
    handle = given.get("handle")
    if not handle_ok(handle):
        raise FrisbiiError(400, "Invalid request", "handle is required")
    existing = billing.find_invoice(handle)
    if existing is not None:  # one succeeded charge per handle; a repeat gives it back
        if existing["state"] in ("settled", "authorized"):
            return answer(render_charge(existing))
        raise FrisbiiError(400, "Invoice wrong state", f"Charge {handle} is {existing['state']}")
    if isinstance(given.get("customer"), dict):
        customer = create_customer(given["customer"])["handle"]
    elif given.get("customer_handle"):
        customer = load("customers", given["customer_handle"], "Customer not found")["handle"]
    else:
        raise FrisbiiError(400, "Missing customer", "customer or customer_handle is required")
    source = given.get("source")
    if not (isinstance(source, str) and source.startswith(("ca_", "ct_"))):
        raise FrisbiiError(
            400, "Unknown or missing source", "source must be a card (ca_…) or card token (ct_…)"
        )
    if given.get("order_lines"):
        lines = billing.given_lines(given["order_lines"])
    elif given.get("amount") is not None:
        text = given.get("ordertext") or handle
        lines = [billing.order_line(text, minor(given["amount"], "amount"), 1, None, True, "ondemand")]
    else:
        raise FrisbiiError(400, "Missing amount", "amount or order_lines is required")
    invoice = billing.new_invoice(
        handle, customer, lines, given.get("currency", "DKK"), "ch", recurring_payment_method=source
    )
    event_type, entry = billing.pay(invoice, "settled" if given.get("settle", True) else "authorized", source)
    billing.save_invoice(invoice)
    emit(event_type, invoice=invoice, transaction=entry["id"])
    return done(render_charge(invoice))


@bp.get("/v1/charge/<handle>")
def get_charge(handle):
    return answer(render_charge(load_invoice(handle)))


@bp.post("/v1/charge/<handle>/settle")
def settle_charge(handle):
    return done(render_charge(settle_authorized(load_invoice(handle), body().get("amount"))))


@bp.post("/v1/charge/<handle>/cancel")
def cancel_charge(handle):
    invoice = load_invoice(handle)
    if invoice["state"] != "authorized":
        raise FrisbiiError(400, "Invoice wrong state", f"Charge is {invoice['state']}")
    invoice.update(state="cancelled", cancelled=iso(now()))
    billing.save_invoice(invoice)
    emit("invoice_cancelled", invoice=invoice)
    return done(render_charge(invoice))


@bp.post("/v1/refund")
def post_refund():
    given = body()
    if given.get("note_lines"):
        raise FrisbiiError(
            400, "Invalid request", "The sandbox refunds by amount only (note_lines not emulated)"
        )
    invoice = load_invoice(str(given.get("invoice") or ""))
    record = billing.refund(invoice, given.get("amount"), given.get("text"), given.get("key"))
    return done(public(record))


@bp.get("/v1/refund/<refund_id>")
def get_refund(refund_id):
    return answer(public(load("refunds", refund_id, "Refund not found")))


@bp.route("/v1/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
def unknown(rest):
    raise FrisbiiError(404, "Not found", f"No such endpoint in the sandbox: /v1/{rest}")
