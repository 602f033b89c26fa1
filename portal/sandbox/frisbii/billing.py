"""The Frisbii sandbox's state and rules: one account's customers, plans, subscriptions, invoices (charges are
invoices of type "ch"), refunds with their credit notes, and the events it sends as signed webhooks.

The HTTP surface is in api.py, invoices.py and discounts.py; what each rule copies, and every guess, is
listed in api.py's docstring and in docs/connectors/frisbii.md. Amounts are integers in minor units (øre)
everywhere, as in the real API.
"""

import base64
import calendar
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx

from portal.extensions import db
from portal.queue import enqueue_after_commit
from portal.sandbox.common import post_webhook
from portal.sandbox.store import SandboxStore

SYSTEM = "frisbii"
TENANT = "account"  # one Frisbii account per sandbox
DEMO_KEY = "priv_bogbro_demo"  # the demo private API key (Frisbii's keys start with priv_)
CURRENCIES = ("DKK", "EUR", "SEK", "NOK")
DEFAULT_VAT = Decimal("0.25")  # the account's default VAT, a fraction as the API gives it
INVOICE_STATES = ("created", "pending", "dunning", "settled", "cancelled", "authorized", "failed")
SCHEDULES = ("month_startdate", "daily")  # the plan schedules the sandbox can renew
# Billwerk SDK enums (InvoiceEventEnum, SubscriptionEventEnum, CustomerEventEnum); the ones the sandbox sends:
EVENT_TYPES = (
    "invoice_created", "invoice_authorized", "invoice_settled", "invoice_failed", "invoice_cancelled",
    "invoice_refund", "invoice_credited", "subscription_created", "subscription_renewal",
    "subscription_cancelled", "customer_created",
)  # fmt: skip
DELIVERY_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Api::ERROR_CODES in reepay/reepay-woocommerce-payment includes/Api.php (the codes the sandbox answers with)
CODES = {
    "Invalid request": 1,
    "Not authenticated": 6,
    "Not found": 8,
    "Customer not found": 9,
    "Subscription plan not found": 10,
    "Duplicate handle": 11,
    "Subscription not found": 12,
    "Subscription expired": 13,
    "Missing customer": 18,
    "Subscription cancelled": 22,
    "Missing amount": 24,
    "Additional cost not pending": 25,
    "Additional cost not found": 26,
    "Invoice already cancelled": 29,
    "Invoice not found": 31,
    "No order lines for invoice": 54,
    "Invoice not settled": 64,
    "Refund amount too high": 65,
    "Invoice already settled": 79,
    "Invoice wrong state": 82,
    "Discount not found": 83,
    "Refund not found": 107,
    "Unknown or missing source": 110,
}


class FrisbiiError(Exception):
    """An API error: HTTP status and Frisbii's numbered error (ErrorResponse: code, error, message …)."""

    def __init__(self, status: int, error: str, message: str | None = None, code: int | None = None):
        super().__init__(message or error)
        self.status, self.error, self.message = status, error, message
        self.code = code if code is not None else CODES.get(error)


def store() -> SandboxStore:
    return SandboxStore(SYSTEM, TENANT)


def new_id() -> str:
    """Frisbii's ids (invoices, transactions, events, webhooks, refunds) are 32 hex characters."""
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 extended offset date-time with milliseconds."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def handle_ok(handle) -> bool:
    """Handles: max 255 characters of [a-zA-Z0-9_.-@] (CreateCustomer/CreateSubscription.handle)."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-@")
    return isinstance(handle, str) and 0 < len(handle) <= 255 and set(handle) <= allowed


def settings() -> dict:
    return store().get("_account", "settings") or {}


def next_handle(prefix: str, counter: str) -> str:
    return f"{prefix}-{store().next_number(counter):04d}"


# --- amounts and order lines ----------------------------------------------------------------------------


def minor(value, name: str) -> int:
    """An amount in minor units: an integer (never a float or a decimal string)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrisbiiError(400, "Invalid request", f"{name} must be an integer amount in minor units")
    return value


def vat_rate(value) -> Decimal:
    """A VAT fraction (0.25 for 25 %); the account default when absent."""
    if value in (None, ""):
        return DEFAULT_VAT
    try:
        rate = Decimal(str(value))
    except ArithmeticError:
        rate = Decimal(-1)
    if not 0 <= rate < 1:
        raise FrisbiiError(400, "Invalid request", "vat must be a fraction between 0 and 1, e.g. 0.25")
    return rate


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def order_line(text: str, unit: int, quantity: int, vat, incl_vat: bool, origin: str, **extra) -> dict:
    """An invoice order line from a per-unit amount defined incl. or excl. VAT (CreateOrderLine)."""
    rate = vat_rate(vat)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise FrisbiiError(400, "Invalid request", "quantity must be a positive integer")
    if incl_vat:
        unit_incl = unit
        unit_ex = _round(Decimal(unit) / (1 + rate))
    else:
        unit_ex = unit
        unit_incl = _round(Decimal(unit) * (1 + rate))
    total_incl = unit_incl * quantity if incl_vat else _round(Decimal(unit * quantity) * (1 + rate))
    total_ex = _round(Decimal(total_incl) / (1 + rate)) if incl_vat else unit * quantity
    return {
        "id": new_id(),
        "ordertext": str(text),
        "amount": total_incl,
        "vat": float(rate),
        "quantity": quantity,
        "origin": origin,
        "timestamp": iso(now()),
        "amount_vat": total_incl - total_ex,
        "amount_ex_vat": total_ex,
        "unit_amount": unit_incl,
        "unit_amount_vat": unit_incl - unit_ex,
        "unit_amount_ex_vat": unit_ex,
        "amount_defined_incl_vat": bool(incl_vat),
        **extra,
    }


def given_lines(lines) -> list[dict]:
    """CreateOrderLine[] from a request: ordertext, amount (per unit), quantity, vat, amount_incl_vat."""
    if not isinstance(lines, list) or not lines:
        raise FrisbiiError(400, "No order lines for invoice", "order_lines must be a non-empty list")
    built = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or not line.get("ordertext"):
            raise FrisbiiError(400, "Invalid request", f"order_lines[{index}] needs ordertext and amount")
        amount = minor(line.get("amount"), f"order_lines[{index}].amount")
        built.append(
            order_line(
                line["ordertext"],
                amount,
                line.get("quantity", 1),
                line.get("vat"),
                line.get("amount_incl_vat", True),
                "ondemand",
            )
        )
    return built


# --- invoices -------------------------------------------------------------------------------------------


def find_invoice(key: str) -> dict | None:
    """By id or by handle (GET /v1/invoice/{id}: "Invoice id or handle")."""
    found = store().get("invoices", key)
    if found is None:
        handles = store().items("invoices", handle=key)
        found = handles[0][1] if handles else None
    return found


def load_invoice(key: str) -> dict:
    invoice = find_invoice(key)
    if invoice is None:
        raise FrisbiiError(404, "Invoice not found", f"Invoice not found: {key}")
    return invoice


def new_invoice(
    handle: str | None, customer: str, lines: list[dict], currency: str, kind: str, **extra
) -> dict:
    """A new invoice in state created; without a handle it gets inv-<number> (subscription invoices)."""
    if currency not in CURRENCIES:
        raise FrisbiiError(400, "Invalid request", f"currency must be one of {', '.join(CURRENCIES)}")
    number = store().next_number("invoice_number")
    amount = sum(line["amount"] for line in lines)
    vat = sum(line["amount_vat"] for line in lines)
    invoice = {
        "id": new_id(),
        "handle": handle or f"inv-{number}",
        "customer": customer,
        "subscription": None,
        "plan": None,
        "state": "created",
        "processing": False,
        "type": kind,
        "amount": amount,
        "number": None if kind == "ch" else number,  # "only present for subscription and customer invoices"
        "currency": currency,
        "due": iso(now()),
        "failed": None,
        "settled": None,
        "cancelled": None,
        "authorized": None,
        "credits": [],
        "created": iso(now()),
        "discount_amount": 0,
        "org_amount": amount,
        "amount_vat": vat,
        "amount_ex_vat": amount - vat,
        "settled_amount": 0,
        "refunded_amount": 0,
        "authorized_amount": 0,
        "credited_amount": 0,
        "order_lines": lines,
        "additional_costs": [],
        "transactions": [],
        "credit_notes": [],
        "recurring_payment_method": None,
        **extra,
    }
    save_invoice(invoice)
    return invoice


def save_invoice(invoice: dict) -> None:
    store().put("invoices", invoice["id"], invoice)


def transaction(invoice: dict, kind: str, state: str, amount: int, method: str | None) -> dict:
    """A Transaction on the invoice; card details as a card payment method gives them."""
    moment = iso(now())
    entry = {
        "id": new_id(),
        "state": state,
        "invoice": invoice["handle"],
        "type": kind,
        "amount": amount,
        "currency": invoice["currency"],
        "created": moment,
        "payment_type": "card",
        "payment_method": method,
        "card_transaction": {"card_type": "visa", "masked_card": "411111XXXXXX1111", "exp_date": "12-30"},
    }
    entry[{"settle": "settled", "authorization": "authorized", "refund": "refunded"}[kind]] = moment
    if state == "failed":
        entry["failed"] = moment
    invoice["transactions"].append(entry)
    return entry


def pay(invoice: dict, outcome: str, method: str | None) -> tuple[str, dict]:
    """Charge the invoice's payment method: settled, authorized or failed. Returns the event type and the
    transaction."""
    moment = iso(now())
    if outcome == "failed":
        entry = transaction(invoice, "settle", "failed", invoice["amount"], method)
        invoice.update(state="failed", failed=moment)
        return "invoice_failed", entry
    if outcome == "authorized":
        entry = transaction(invoice, "authorization", "authorized", invoice["amount"], method)
        invoice.update(state="authorized", authorized=moment, authorized_amount=invoice["amount"])
        return "invoice_authorized", entry
    return settle(invoice, invoice["amount"], method)


def settle(invoice: dict, amount: int, method: str | None) -> tuple[str, dict]:
    entry = transaction(invoice, "settle", "settled", amount, method)
    invoice.update(state="settled", settled=iso(now()), settled_amount=amount)
    return "invoice_settled", entry


def credit_note(invoice: dict, amount: int, text: str | None, refund_transaction: str | None) -> dict:
    """An InvoiceCreditNote: one line for the amount (note_lines are not emulated)."""
    note = {
        "id": new_id(),
        "transaction": refund_transaction,
        "amount": amount,
        "created": iso(now()),
        "credit_note_lines": [{"amount": amount, "text": text or "Refund", "quantity": 1}],
    }
    invoice["credit_notes"].append(note)
    invoice["credited_amount"] += amount
    return note


def refund(invoice: dict, amount: int | None, text: str | None, key: str | None) -> dict:
    """POST /v1/refund: only a settled invoice, never more than what is left of the settled amount; an
    idempotency key already used for this invoice gives the same refund back."""
    if key:
        for _, earlier in store().items("refunds", invoice=invoice["handle"]):
            if earlier.get("_key") == key:
                return earlier
    if invoice["state"] != "settled":
        raise FrisbiiError(400, "Invoice not settled", f"Invoice {invoice['handle']} is {invoice['state']}")
    left = invoice["settled_amount"] - invoice["refunded_amount"]
    amount = left if amount is None else minor(amount, "amount")
    if amount <= 0 or amount > left:
        raise FrisbiiError(400, "Refund amount too high", f"At most {left} can be refunded")
    entry = transaction(invoice, "refund", "refunded", amount, None)
    note = credit_note(invoice, amount, text, entry["id"])
    invoice["refunded_amount"] += amount
    save_invoice(invoice)
    record = {
        "id": new_id(),
        "state": "refunded",
        "invoice": invoice["handle"],
        "amount": amount,
        "currency": invoice["currency"],
        "transaction": entry["id"],
        "error": None,
        "type": "card",
        "created": entry["created"],
        "credit_note_id": note["id"],
        "ref_transaction": next(
            (t["id"] for t in invoice["transactions"] if t["type"] == "settle" and t["state"] == "settled"),
            None,
        ),
        "error_state": None,
        "acquirer_message": None,
        "_key": key,
    }
    store().put("refunds", record["id"], record)
    emit("invoice_refund", invoice=invoice, transaction=entry["id"], credit_note=note["id"])
    return record


# --- subscriptions and renewals -------------------------------------------------------------------------


def add_period(start: datetime, plan: dict) -> datetime:
    length = plan["interval_length"]
    if plan["schedule_type"] == "daily":
        return start + timedelta(days=length)
    month = start.month - 1 + length
    year, month = start.year + month // 12, month % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def plan_lines(subscription: dict, plan: dict) -> list[dict]:
    custom = subscription.get("amount") is not None  # a custom price, with its own incl./excl. VAT flag
    unit = subscription["amount"] if custom else plan["amount"]
    incl = subscription["amount_incl_vat"] if custom else plan["amount_incl_vat"]
    return [
        order_line(
            plan["name"],
            unit,
            subscription["quantity"],
            plan["vat"],
            incl,
            "plan",
            origin_handle=plan["handle"],
        )
    ]


def bill_period(subscription: dict, plan: dict, outcome: str) -> dict:
    """The invoice for the subscription's next period (handle inv-<number>, type "s"), charged to its
    payment method: the first invoice at sign-up, then one per renewal."""
    start = parse_iso(subscription["next_period_start"])
    end = add_period(start, plan)
    lines = plan_lines(subscription, plan)
    for line in lines:
        line.update(period_from=iso(start), period_to=iso(end))
    costs = [
        cost
        for _, cost in store().items("additional_costs", subscription=subscription["handle"], state="pending")
    ]
    lines += [cost_line(cost) for cost in costs]
    discounts, cuts = discount_lines(subscription, lines)
    invoice = new_invoice(
        None,
        subscription["customer"],
        lines,
        plan["currency"],
        "s",
        subscription=subscription["handle"],
        plan=plan["handle"],
        plan_version=plan["version"],
        period_number=subscription["renewal_count"] + 1,
        period_from=iso(start),
        period_to=iso(end),
        recurring_payment_method=subscription["_payment_method"],
        discount_amount=-sum(line["amount"] for line in cuts),
    )
    for cost in costs:
        store().put(
            "additional_costs", cost["handle"], {**cost, "state": "transferred", "invoice": invoice["id"]}
        )
    for discount in discounts:
        discount["count"] += 1
        discount["invoices"].append(invoice["id"])
        discount["fixed_usage_reached"] = (
            bool(discount["fixed_count"]) and discount["count"] >= discount["fixed_count"]
        )
        store().put("subscription_discounts", f"{subscription['handle']}/{discount['handle']}", discount)
    renewal = subscription["renewal_count"] > 0
    emit("invoice_created", invoice=invoice)
    if renewal:
        emit("subscription_renewal", invoice=invoice)
    event_type, entry = pay(invoice, outcome, subscription["_payment_method"])
    save_invoice(invoice)
    emit(event_type, invoice=invoice, transaction=entry["id"])
    subscription.update(
        renewal_count=subscription["renewal_count"] + 1,
        last_period_start=subscription.get("current_period_start"),
        current_period_start=iso(start),
        next_period_start=iso(end),
    )
    count_invoice(subscription, invoice)
    store().put("subscriptions", subscription["handle"], subscription)
    return invoice


def cost_line(cost: dict) -> dict:
    """A pending additional cost as an order line of the period's invoice (origin additional_cost)."""
    return order_line(
        cost["ordertext"], cost["_unit"], cost["quantity"], cost["vat"], cost["amount_incl_vat"],
        "additional_cost", origin_handle=cost["handle"],
    )  # fmt: skip


def discount_lines(subscription: dict, lines: list[dict]) -> tuple[list[dict], list[dict]]:
    """The subscription's active discounts on the lines they apply to (apply_to: all or the line's origin):
    per discounted line a negative line (origin discount, same VAT, discounted_order_line); a percentage
    of each line, or a fixed amount incl. VAT used up line by line. Appends the lines; returns the
    discounts applied and the discount lines."""
    applied, cuts = [], []
    records = store().items("subscription_discounts", _subscription=subscription["handle"], state="active")
    for _, discount in records:
        if discount["fixed_usage_reached"]:
            continue
        left = discount["amount"] or 0
        for line in [x for x in lines if x["origin"] != "discount"]:
            if "all" not in discount["apply_to"] and line["origin"] not in discount["apply_to"]:
                continue
            if discount["percentage"]:
                cut = _round(Decimal(line["amount"] * discount["percentage"]) / 100)
            else:
                cut, left = min(left, line["amount"]), left - min(left, line["amount"])
            if cut <= 0:
                continue
            extra = {"discount_percentage": discount["percentage"]} if discount["percentage"] else {}
            cuts.append(
                order_line(
                    discount["name"],
                    -cut,
                    1,
                    line["vat"],
                    True,
                    "discount",
                    origin_handle=discount["handle"],
                    discounted_order_line=line["id"],
                    **extra,
                )
            )
            line["discounted_amount"] = line.get("discounted_amount", line["amount"]) - cut
        applied.append(discount)
    lines.extend(cuts)
    return applied, cuts


def count_invoice(subscription: dict, invoice: dict) -> None:
    """The subscription's per-state invoice counters (settled_invoices, settled_amount, failed_invoices …)."""
    state = invoice["state"]
    if state in ("settled", "failed", "pending", "dunning", "cancelled"):
        subscription[f"{state}_invoices"] += 1
        subscription[f"{state}_amount"] += invoice["amount"]


# --- events and webhooks --------------------------------------------------------------------------------


def emit(event_type: str, invoice: dict | None = None, **refs) -> dict:
    """Record an event and queue one webhook per configured url (none while webhooks are disabled). The
    webhook body names objects by handle; receivers fetch them (GET /v1/invoice/{handle})."""
    if invoice is not None:
        refs = {"invoice": invoice["handle"], "customer": invoice["customer"], **refs}
        if invoice.get("subscription"):
            refs.setdefault("subscription", invoice["subscription"])
    event = {
        "id": new_id(),
        "event_type": event_type,
        "created": iso(now()),
        **{key: value for key, value in refs.items() if value is not None},
    }
    store().put("events", event["id"], event)
    config = settings().get("webhook", {})
    if config.get("disabled"):
        return event
    for url in config.get("urls", []):
        webhook_id, moment = new_id(), now()
        timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        body = {
            "id": webhook_id,
            "event_id": event["id"],
            "event_type": event_type,
            "timestamp": timestamp,
            "signature": sign(config["secret"], timestamp, webhook_id),
            **{key: value for key, value in refs.items() if value is not None},
        }
        record = {
            "id": webhook_id,
            "event": event["id"],
            "state": "pending",
            "url": url,
            "content": json.dumps(body),
            "created": iso(now()),
            "count": 0,
            "_attempts": [],
        }
        store().put("webhooks", webhook_id, record)
        enqueue_after_commit("workers.jobs.deliver_sandbox_webhook", SYSTEM, TENANT, webhook_id)
    return event


def sign(secret: str, timestamp: str, webhook_id: str) -> str:
    """hex(HMAC-SHA256(secret, timestamp + id)), as the Frisbii plugin checks it (OrderFlow/Webhook.php)."""
    return hmac.new(secret.encode(), (timestamp + webhook_id).encode(), hashlib.sha256).hexdigest()


def deliver(tenant: str, webhook_id: str) -> None:
    """One POST of one webhook (the RQ job's work); 2xx is success. Basic auth when the settings have a
    username. Not retried by the sandbox (Frisbii retries; see the doc): POST /v1/webhook/resend does."""
    records = SandboxStore(SYSTEM, tenant)
    record = records.get("webhooks", webhook_id)
    if record is None or record["state"] != "pending":
        return
    config = settings().get("webhook", {})
    headers = {"Content-Type": "application/json"}
    if config.get("username"):
        pair = f"{config['username']}:{config.get('password') or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    try:
        status = post_webhook(
            record["url"], record["content"].encode(), headers, DELIVERY_TIMEOUT
        ).status_code
        outcome, ok = str(status), 200 <= status < 300
    except httpx.HTTPError as exc:
        outcome, ok = type(exc).__name__, False
    moment = iso(now())
    record["_attempts"].append({"at": moment, "outcome": outcome})
    record.update(state="completed" if ok else "failed", count=record["count"] + 1)
    record["success" if ok else "last_fail"] = moment
    record.setdefault("first_fail", None if ok else moment)
    records.put("webhooks", webhook_id, record)
    db.session.commit()
