"""Emulator of one Frisbii (formerly Reepay) account below /sandbox/frisbii/: the API at /v1/… as at
https://api.reepay.com/v1/…, amounts in minor units, and webhooks signed in the body.

Auth: HTTP Basic with the private API key as the username and an empty password (reepay-woocommerce-payment
includes/Api.php sends exactly that); the demo key is `priv_bogbro_demo`. Anything else is 401.

Copied from public sources (docs/connectors/frisbii.md lists each): paths and object fields of the
Reepay API (the generated reepay-php-api docs: Invoice, OrderLine, Charge, Refund, InvoiceCreditNote,
Subscription, Plan, Customer, WebhookSettings, ErrorResponse; ListApi for /v1/list/… with size 10–100 and
next_page_token), error codes (Api::ERROR_CODES in the plugin), invoices fetched by id or handle, the
webhook body and its signature hex(HMAC-SHA256(secret, timestamp + id)) (plugin OrderFlow/Webhook.php),
event type names (Billwerk SDK enums).

Guesses (no public source shows them; each is in the doc): the 401 body; the shape of the list answer
beyond `content`/`next_page_token`/`size`/`count`; the token's format and the list order (newest first);
rounding of VAT per line (half up); webhooks carry only the references that apply; a failed renewal goes
straight to `failed` (the account's dunning plan is not emulated); discount arithmetic (percentages
rounded half up per line, fixed amounts used up line by line); the sandbox never retries a webhook
(Frisbii does; POST /v1/webhook/resend resends). Refused because the sandbox does not emulate them (400,
message says so): plan schedules other than month_startdate and daily, signup methods other than source
and email, refunds by note_lines, trials and setup fees.

Sandbox-only controls (not Frisbii): POST /_subscriptions/<handle>/renew {"outcome": settled|authorized|
failed} renews now; POST /_invoices/<id or handle>/credit {"amount", "text"} credits without a refund (what
Frisbii's admin does); GET /_webhooks is the delivery log.
"""

import hmac
import json
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, request
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.queue import enqueue_after_commit
from portal.sandbox.frisbii import billing
from portal.sandbox.frisbii.billing import (
    CURRENCIES,
    DEMO_KEY,
    SCHEDULES,
    SYSTEM,
    TENANT,
    FrisbiiError,
    emit,
    handle_ok,
    iso,
    load_invoice,
    minor,
    new_id,
    now,
    store,
    vat_rate,
)

bp = Blueprint("sandbox_frisbii", __name__)
CUSTOMER_FIELDS = (
    "email", "address", "address2", "city", "country", "phone", "company", "vat", "first_name", "last_name",
    "postal_code",
)  # fmt: skip
HTTP_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def answer(data, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


@bp.errorhandler(FrisbiiError)
def error_response(error: FrisbiiError) -> Response:
    db.session.rollback()
    body = {
        "code": error.code,
        "error": error.error,
        "message": error.message,
        "path": request.path.removeprefix("/sandbox/frisbii"),
        "timestamp": iso(now()),
        "http_status": error.status,
        "http_reason": HTTP_REASONS.get(error.status, "Error"),
        "request_id": new_id(),
    }
    return answer({key: value for key, value in body.items() if value is not None}, error.status)


@bp.before_request
def authenticate():
    if not request.path.startswith("/sandbox/frisbii/v1/"):
        return None
    seed()
    keys = billing.settings().get("private_keys", [])
    auth = request.authorization
    valid = (
        auth is not None
        and auth.type == "basic"
        and not auth.password
        and any(hmac.compare_digest(auth.username or "", key) for key in keys)
    )
    if not valid:
        raise FrisbiiError(401, "Not authenticated", "Invalid or missing private API key")
    return None


def body() -> dict:
    if not request.get_data():
        return {}
    try:
        data = json.loads(request.get_data())
    except ValueError:
        raise FrisbiiError(400, "Invalid request", "The body is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrisbiiError(400, "Invalid request", "The body must be a JSON object")
    return data


def done(data, status: int = 200) -> Response:
    db.session.commit()
    return answer(data, status)


def public(document: dict) -> dict:
    return {key: value for key, value in document.items() if not key.startswith("_")}


# --- account and webhooks --------------------------------------------------------------------------------


@bp.get("/v1/account/webhook_settings")
def get_webhook_settings():
    return answer(billing.settings()["webhook"])


@bp.put("/v1/account/webhook_settings")
def put_webhook_settings():
    given, account = body(), billing.settings()
    config = account["webhook"]
    if "urls" in given:
        urls = given["urls"]
        if not isinstance(urls, list) or not all(valid_url(u) for u in urls):
            raise FrisbiiError(400, "Invalid request", "urls must be a list of http(s) URLs")
        config["urls"] = list(dict.fromkeys(urls))
    for name in ("username", "password"):
        if name in given:
            config[name] = str(given[name]) if given[name] else None
    if "disabled" in given:
        config["disabled"] = bool(given["disabled"])
    if "alert_emails" in given:
        if not isinstance(given["alert_emails"] or [], list):
            raise FrisbiiError(400, "Invalid request", "alert_emails must be a list of e-mail addresses")
        config["alert_emails"] = [str(e) for e in given["alert_emails"] or []]
    store().put("_account", "settings", account)
    return done(config)


@bp.post("/v1/account/webhook_settings/secret")
def new_webhook_secret():
    account = billing.settings()
    account["webhook"]["secret"] = f"webhook_secret_{secrets.token_hex(16)}"
    store().put("_account", "settings", account)
    return done(account["webhook"])


def valid_url(url) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


@bp.get("/v1/webhook/<key>")
def get_webhooks(key):
    """The webhooks of an event (by event id) or one webhook (by its id)."""
    found = [w for w in store().all("webhooks") if key in (w["id"], w["event"])]
    return answer([public(w) for w in found])


@bp.post("/v1/webhook/resend")
def resend_webhooks():
    ids = body().get("webhooks")
    if not isinstance(ids, list) or not 0 < len(ids) <= 100:
        raise FrisbiiError(400, "Invalid request", "webhooks must list 1 to 100 webhook or event ids")
    resent = []
    for webhook in store().all("webhooks"):
        if webhook["id"] in ids or webhook["event"] in ids:
            webhook["state"] = "pending"
            store().put("webhooks", webhook["id"], webhook)
            enqueue_after_commit("workers.jobs.deliver_sandbox_webhook", SYSTEM, TENANT, webhook["id"])
            resent.append(public(webhook))
    return done(resent)


# --- customers and plans ---------------------------------------------------------------------------------


def create_customer(given) -> dict:
    if not isinstance(given, dict):
        raise FrisbiiError(400, "Invalid request", "The customer must be a JSON object")
    if given.get("generate_handle"):
        handle = billing.next_handle("cust", "customer")
    else:
        handle = given.get("handle")
        if not handle_ok(handle):
            raise FrisbiiError(400, "Invalid request", "handle is required: [a-zA-Z0-9_.-@], max 255")
    if store().get("customers", handle) is not None:
        raise FrisbiiError(400, "Duplicate handle", f"Customer handle already in use: {handle}")
    customer = {
        "handle": handle,
        **{name: given.get(name) for name in CUSTOMER_FIELDS},
        "test": True,
        "created": iso(now()),
    }
    store().put("customers", handle, customer)
    emit("customer_created", customer=handle)
    return customer


def load(collection: str, handle: str, error: str) -> dict:
    found = store().get(collection, handle)
    if found is None:
        raise FrisbiiError(404, error, f"{error}: {handle}")
    return found


@bp.post("/v1/customer")
def post_customer():
    return done(create_customer(body()))


@bp.get("/v1/customer/<handle>")
def get_customer(handle):
    return answer(load("customers", handle, "Customer not found"))


@bp.post("/v1/plan")
def post_plan():
    given = body()
    handle = given.get("handle")
    if not handle_ok(handle) or not given.get("name"):
        raise FrisbiiError(400, "Invalid request", "handle and name are required")
    if store().get("plans", handle) is not None:
        raise FrisbiiError(400, "Duplicate handle", f"Plan handle already in use: {handle}")
    schedule = given.get("schedule_type")
    if schedule not in SCHEDULES:
        raise FrisbiiError(400, "Invalid request", f"The sandbox renews only schedule_type {SCHEDULES}")
    length = given.get("interval_length")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise FrisbiiError(400, "Invalid request", "interval_length must be a positive integer")
    unsupported = [name for name in ("trial_interval_length", "setup_fee") if given.get(name)]
    if unsupported:
        raise FrisbiiError(400, "Invalid request", f"The sandbox does not emulate {', '.join(unsupported)}")
    currency = given.get("currency", "DKK")
    if currency not in CURRENCIES:
        raise FrisbiiError(400, "Invalid request", f"currency must be one of {', '.join(CURRENCIES)}")
    plan = {
        "handle": handle,
        "name": str(given["name"]),
        "description": given.get("description"),
        "vat": float(vat_rate(given.get("vat"))),
        "amount": minor(given.get("amount"), "amount"),
        "quantity": given.get("quantity", 1),
        "version": 1,
        "state": "active",
        "currency": currency,
        "created": iso(now()),
        "amount_incl_vat": bool(given.get("amount_incl_vat", True)),
        "interval_length": length,
        "schedule_type": schedule,
    }
    store().put("plans", handle, plan)
    return done(plan)


@bp.get("/v1/plan/<handle>/current")
def get_plan(handle):
    return answer(load("plans", handle, "Subscription plan not found"))


# --- subscriptions ---------------------------------------------------------------------------------------


def new_subscription(given: dict) -> dict:
    """POST /v1/subscription: the customer (a handle, or create_customer), a plan, a handle (or
    generate_handle) and a signup method. With signup_method "source" the first period is billed and
    charged at once; with "email" the subscription waits for a payment method and bills nothing."""
    plan = load("plans", given.get("plan") or "", "Subscription plan not found")
    customer = None  # with create_customer: created below, once the rest of the request is valid
    if given.get("customer") and not given.get("create_customer"):
        customer = load("customers", given["customer"], "Customer not found")["handle"]
    elif not given.get("create_customer"):
        raise FrisbiiError(400, "Missing customer", "customer or create_customer is required")
    handle = (
        billing.next_handle("sub", "subscription") if given.get("generate_handle") else given.get("handle")
    )
    if not handle_ok(handle):
        raise FrisbiiError(400, "Invalid request", "handle (or generate_handle) is required")
    if store().get("subscriptions", handle) is not None:
        raise FrisbiiError(400, "Duplicate handle", f"Subscription handle already in use: {handle}")
    method = given.get("signup_method")
    if method not in ("source", "email"):
        raise FrisbiiError(400, "Invalid request", "The sandbox emulates signup_method source and email")
    source = given.get("source")
    if method == "source" and not (isinstance(source, str) and source.startswith(("ca_", "ct_"))):
        raise FrisbiiError(
            400, "Unknown or missing source", "source must be a card (ca_…) or card token (ct_…)"
        )
    quantity = given.get("quantity", plan["quantity"])
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise FrisbiiError(400, "Invalid request", "quantity must be a positive integer")
    start = parse_start(given.get("start_date"))
    amount = minor(given["amount"], "amount") if given.get("amount") is not None else None
    if customer is None:
        customer = create_customer(given["create_customer"])["handle"]
    counters = {
        f"{s}_{k}": 0
        for s in ("settled", "failed", "pending", "dunning", "cancelled")
        for k in ("invoices", "amount")
    }
    subscription = {
        "handle": handle,
        "customer": customer,
        "plan": plan["handle"],
        "state": "active",
        "test": True,
        "amount": amount,
        "amount_incl_vat": bool(given.get("amount_incl_vat", True)),
        "quantity": quantity,
        "timezone": "Europe/Copenhagen",
        "created": iso(now()),
        "renewing": True,
        "plan_version": plan["version"],
        "start_date": iso(start),
        "first_period_start": iso(start),
        "current_period_start": None,
        "next_period_start": iso(start),
        "last_period_start": None,
        "is_cancelled": False,
        "in_trial": False,
        "has_started": True,
        "renewal_count": 0,
        "cancelled_date": None,
        "expires": None,
        "payment_method_added": method == "source",
        "refunded_amount": 0,
        **counters,
        "_payment_method": source if method == "source" else None,
    }
    store().put("subscriptions", handle, subscription)
    emit("subscription_created", customer=customer, subscription=handle)
    if method == "source":
        billing.bill_period(subscription, plan, "settled")
    return subscription


def parse_start(text) -> datetime:
    if text in (None, ""):
        return now()
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise FrisbiiError(
            400, "Invalid request", "start_date must be yyyy-MM-dd or yyyy-MM-ddTHH:mm"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now().tzinfo)


@bp.post("/v1/subscription")
def post_subscription():
    return done(public(new_subscription(body())))


@bp.get("/v1/subscription/<handle>")
def get_subscription(handle):
    return answer(public(load("subscriptions", handle, "Subscription not found")))


@bp.post("/v1/subscription/<handle>/cancel")
def cancel_subscription(handle):
    """Cancelled subscriptions expire at the end of the current period (Subscription.is_cancelled)."""
    subscription = load("subscriptions", handle, "Subscription not found")
    if subscription["is_cancelled"]:
        raise FrisbiiError(400, "Subscription cancelled", f"Subscription already cancelled: {handle}")
    subscription.update(
        is_cancelled=True,
        renewing=False,
        cancelled_date=iso(now()),
        expires=subscription["next_period_start"],
    )
    store().put("subscriptions", handle, subscription)
    emit("subscription_cancelled", customer=subscription["customer"], subscription=handle)
    return done(public(subscription))


# --- sandbox-only controls (not Frisbii) -----------------------------------------------------------------


@bp.post("/_subscriptions/<handle>/renew")
def renew_now(handle):
    """Test helper: renew the subscription now — the next period's invoice, charged with the outcome asked
    for (settled, authorized or failed), and its webhooks (invoice_created, subscription_renewal, then
    invoice_settled / invoice_authorized / invoice_failed)."""
    seed()
    outcome = body().get("outcome", "settled")
    if outcome not in ("settled", "authorized", "failed"):
        raise FrisbiiError(400, "Invalid request", "outcome must be settled, authorized or failed")
    subscription = load("subscriptions", handle, "Subscription not found")
    if subscription["is_cancelled"]:
        raise FrisbiiError(400, "Subscription cancelled", f"Subscription is cancelled: {handle}")
    if not subscription["_payment_method"]:
        raise FrisbiiError(400, "Unknown or missing source", "The subscription has no payment method")
    plan = load("plans", subscription["plan"], "Subscription plan not found")
    return done(billing.bill_period(subscription, plan, outcome))


@bp.post("/_invoices/<key>/credit")
def credit_now(key):
    """Test helper: credit a settled invoice without refunding (a credit note; event invoice_credited)."""
    seed()
    given, invoice = body(), load_invoice(key)
    if invoice["state"] != "settled":
        raise FrisbiiError(400, "Invoice not settled")
    left = invoice["settled_amount"] - invoice["credited_amount"]
    amount = minor(given.get("amount", left), "amount")
    if not 0 < amount <= left:
        raise FrisbiiError(400, "Invalid request", f"amount must be between 1 and {left}")
    note = billing.credit_note(invoice, amount, given.get("text"), None)
    billing.save_invoice(invoice)
    emit("invoice_credited", invoice=invoice, credit_note=note["id"])
    return done(invoice)


@bp.get("/_webhooks")
def webhook_log():
    seed()
    return answer([{**public(w), "attempts": w["_attempts"]} for w in reversed(store().all("webhooks"))])


# --- seeding ---------------------------------------------------------------------------------------------


def seed(tenant: str = TENANT) -> None:
    """Idempotent: the demo key, webhook settings without urls, a monthly coffee plan (149,00 kr. incl.
    25 % VAT), a customer and her subscription with its first invoice settled."""
    records = store()
    if records.is_seeded():
        return
    try:
        records.put(
            "_account",
            "settings",
            {
                "private_keys": [DEMO_KEY],
                "webhook": {
                    "urls": [],
                    "username": None,
                    "password": None,
                    "disabled": False,
                    "secret": f"webhook_secret_{secrets.token_hex(16)}",
                    "alert_emails": [],
                    "alert_count": 4,
                },
            },
        )
        records.mark_seeded()
        plan = {
            "handle": "kaffeabonnement",
            "name": "Kaffeabonnement",
            "description": None,
            "vat": 0.25,
            "amount": 14900,
            "quantity": 1,
            "version": 1,
            "state": "active",
            "currency": "DKK",
            "created": iso(now()),
            "amount_incl_vat": True,
            "interval_length": 1,
            "schedule_type": "month_startdate",
        }
        store().put("plans", plan["handle"], plan)
        new_subscription(
            {
                "handle": "sub-demo-0001",
                "plan": "kaffeabonnement",
                "create_customer": {
                    "handle": "cust-demo-0001",
                    "first_name": "Anna",
                    "last_name": "Jensen",
                    "email": "anna@example.dk",
                    "country": "DK",
                },
                "signup_method": "source",
                "source": "ca_demo_visa",
            }
        )
        db.session.commit()
    except IntegrityError:  # seeded concurrently by another request
        db.session.rollback()
