"""What every Stripe sandbox endpoint shares: the key and version handshake, Stripe's error JSON,
idempotency keys, list pagination, `expand[]`, ids and the clock (parameters: params.py).

Stripe's wire rules (docs.stripe.com/api: authentication, errors, idempotent_requests, pagination,
expanding_objects, versioning) and stripe-python's requestor (`_api_requestor.py`) are the sources.
"""

import functools
import hashlib
import json
import secrets
import string
import time
from dataclasses import dataclass, field

from flask import Blueprint, Response, request

from portal.extensions import db
from portal.redis_client import get_redis
from portal.sandbox.store import SandboxStore
from portal.sandbox.stripe.params import StripeError, check_shapes, decode_form, integer, missing

SYSTEM = "stripe"
# The version the official library we test with (stripe-python 16.1.0) sends; docs/connectors/stripe.md
# says why this one and how the pre-basil shape differs.
API_VERSION = "2026-10-28.endive"
DEMO_ACCOUNT = "acct_1BogbroDemo0000"
# Secret and restricted test keys → the sandbox account they belong to. The second account exists so that
# another account's objects and signatures can be tried.
KEYS = {
    "sk_test_bogbro_demo": DEMO_ACCOUNT,
    "rk_test_bogbro_demo": DEMO_ACCOUNT,
    "sk_test_bogbro_other": "acct_1BogbroOther000",
}
# A restricted key's permissions (docs.stripe.com/keys: GET needs read, POST and DELETE write; write implies
# read). The demo one reads everything and writes only webhook endpoints: what Bogbro asks a customer for.
RESTRICTED = {"rk_test_bogbro_demo": {"*": "read", "webhook": "write"}}
# The first path segment → the resource a permission names (rak_<resource>_<read|write>)
RESOURCES = {"test_helpers": "test_clock", "webhook_endpoints": "webhook", "invoiceitems": "invoice_item"}
MAX_LIMIT = 100
IDEMPOTENCY_SECONDS = 24 * 3600

bp = Blueprint("sandbox_stripe", __name__)

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


# --- the request ----------------------------------------------------------------------------------------


@dataclass
class Call:
    """One authenticated request: the account's store, the decoded parameters and what to expand."""

    account: str
    params: dict
    expand: list[str] = field(default_factory=list)
    request_id: str = ""
    idempotency_key: str | None = None

    @property
    def store(self) -> SandboxStore:
        return SandboxStore(SYSTEM, self.account)


def _account() -> str:
    header = request.headers.get("Authorization", "")
    key = None
    if header.startswith("Bearer "):
        key = header[7:].strip()
    elif request.authorization and request.authorization.type == "basic":
        key = request.authorization.username  # curl -u sk_test_…:
    if not key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
            "#authentication for details, or we can help at https://support.stripe.com/.",
            saved=False,
        )
    masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
    if key not in KEYS:
        raise StripeError(401, f"Invalid API Key provided: {masked}", code="api_key_invalid", saved=False)
    if key in RESTRICTED:
        _check_permission(RESTRICTED[key], masked, KEYS[key])
    return KEYS[key]


def _check_permission(permissions: dict, masked: str, account: str) -> None:
    """403 as Stripe answers a restricted key without the permission an endpoint needs."""
    segment = request.path.split("/v1/", 1)[-1].split("/", 1)[0]
    resource = RESOURCES.get(segment, segment.removesuffix("s"))
    needed = "read" if request.method == "GET" else "write"
    granted = permissions.get(resource, permissions.get("*"))
    if granted == "write" or granted == needed:
        return
    raise StripeError(
        403,
        f"The provided key '{masked}' does not have the required permissions for this endpoint on account "
        f"'{account}'. Having the 'rak_{resource}_{needed}' permission would allow this request to continue.",
        saved=False,
    )


def _check_version() -> None:
    version = request.headers.get("Stripe-Version")
    if version and version != API_VERSION:
        raise StripeError(
            400,
            f"The Bogbro sandbox answers in Stripe API version {API_VERSION} only; this request asked for "
            f"{version}. Send Stripe-Version: {API_VERSION} (or none).",
            saved=False,
        )


def _params() -> dict:
    pairs = request.args.items(multi=True) if request.method == "GET" else request.form.items(multi=True)
    params = decode_form(list(pairs))
    if request.method != "GET" and request.args:
        params.update(decode_form(list(request.args.items(multi=True))))
    return params


def _response(status: int, body: str, call: Call | None, replayed=False) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Request-Id"] = call.request_id if call else new_id("req", 14)
    response.headers["Stripe-Version"] = API_VERSION
    if call and call.idempotency_key:
        response.headers["Idempotency-Key"] = call.idempotency_key
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _dump(document) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def route(rule: str, methods=("GET",), allowed=(), expandable=None):
    """An endpoint under /v1/: the handler gets a Call (and the URL's ids) and returns (document, status)
    or a document. `allowed` names the top-level parameters it takes, and `expand` unless `expandable` is
    false (Stripe's deletes answer a stub and take no expand[]); anything else is refused as Stripe does.
    POSTs honour Idempotency-Key."""
    takes = (
        (*allowed, "expand")
        if (expandable if expandable is not None else "DELETE" not in methods)
        else allowed
    )

    def decorate(handler):
        @functools.wraps(handler)
        def view(**ids):
            call = None
            try:
                _check_version()
                account = _account()
                params = _params()
                check_shapes(params)
                for name in params:
                    if name not in takes:
                        raise StripeError(
                            400,
                            f"Received unknown parameter: {name} (the Bogbro sandbox takes "
                            f"{', '.join(takes) or 'none'} here)",
                            code="parameter_unknown",
                            param=name,
                            saved=False,
                        )
                call = Call(account, params, params.pop("expand", []), new_id("req", 14))
                if request.method == "POST" and request.headers.get("Idempotency-Key"):
                    call.idempotency_key = request.headers["Idempotency-Key"]
                    return _idempotent(call, handler, ids)
                status, body = _run(call, handler, ids)
                return _response(status, body, call)
            except StripeError as error:
                db.session.rollback()
                return _response(error.status, _dump({"error": error.error}), call)

        view.stripe_params = takes  # for the contract test: each must be one of Stripe's
        bp.add_url_rule(
            f"/v1/{rule}",
            endpoint=f"{handler.__name__}_{'_'.join(methods)}",
            view_func=view,
            methods=list(methods),
        )
        return handler

    return decorate


def _run(call: Call, handler, ids) -> tuple[int, str]:
    result = handler(call, **ids)
    document, status = result if isinstance(result, tuple) else (result, 200)
    body = _dump(document)
    db.session.commit()
    return status, body


def _idempotent(call: Call, handler, ids) -> Response:
    """Stripe saves the status and body of the first request with a key once the endpoint starts, and
    answers a retry with it (header Idempotent-Replayed); the same key with other parameters is an
    idempotency_error, and a retry while the first is still running is a 409."""
    key = call.idempotency_key
    fingerprint = hashlib.sha256(
        json.dumps([request.method, request.path, call.params, call.expand], sort_keys=True).encode()
    ).hexdigest()
    store = call.store
    lock = f"bogbro:sandbox:stripe:idempotency:{call.account}:{key}"
    if not get_redis().set(lock, "1", nx=True, ex=60):
        error = StripeError(
            409,
            f"There is currently another in-progress request using this Idempotent Key (that probably means "
            f"you submitted twice, and the other request is still going through): {key}. Please try again "
            "later.",
            type_="idempotency_error",
            saved=False,
        )
        return _response(409, _dump({"error": error.error}), call)
    saved = store.get("idempotency", key)  # read under the lock: a first request that just ended is seen
    if saved is not None and saved["created"] > time.time() - IDEMPOTENCY_SECONDS:
        get_redis().delete(lock)
        if saved["fingerprint"] != fingerprint:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                type_="idempotency_error",
                saved=False,
            )
        return _response(saved["status"], saved["body"], call, replayed=True)
    try:
        try:
            status, body = _run(call, handler, ids)
        except StripeError as error:
            db.session.rollback()
            if not error.saved:
                raise
            status, body = error.status, _dump({"error": error.error})
        store.put(
            "idempotency",
            key,
            {"fingerprint": fingerprint, "status": status, "body": body, "created": int(time.time())},
        )
        db.session.commit()
        return _response(status, body, call)
    finally:
        get_redis().delete(lock)


@bp.route("/v1/<path:rest>", methods=["GET", "POST", "DELETE"])
def unrecognized(rest):
    try:
        _account()
    except StripeError as error:
        return _response(error.status, _dump({"error": error.error}), None)
    error = StripeError(
        404,
        f"Unrecognized request URL ({request.method}: /v1/{rest}). Please see https://stripe.com/docs or we "
        "can help at https://support.stripe.com/.",
    )
    return _response(404, _dump({"error": error.error}), None)


# --- lists and expansion ----------------------------------------------------------------------------------


def page(call: Call, documents: list[dict], url: str, render=lambda document: document) -> dict:
    """Newest first, `limit` (1–100, default 10), `starting_after` / `ending_before` an id in the list."""
    limit = integer(call.params, "limit", minimum=1)
    if limit is not None and limit > MAX_LIMIT:
        raise StripeError(
            400,
            "This value must be less than or equal to 100.",
            code="parameter_invalid_integer",
            param="limit",
            saved=False,
        )
    limit = limit or 10
    # newest first; of two made in the same second, the later one first
    ordered = sorted(reversed(documents), key=lambda document: document.get("created", 0), reverse=True)
    ids = [document["id"] for document in ordered]
    after, before = call.params.get("starting_after"), call.params.get("ending_before")
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor and cursor not in ids:
            raise missing("object", cursor, param=name)
    if after:
        chosen = ordered[ids.index(after) + 1 :]
        selected, has_more = chosen[:limit], len(chosen) > limit
    elif before:
        chosen = ordered[: ids.index(before)]
        selected, has_more = chosen[-limit:], len(chosen) > limit
    else:
        selected, has_more = ordered[:limit], len(ordered) > limit
    data = [expand(call, render(document), "data.") for document in selected]
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


# id prefix → (collection, the noun Stripe's "No such …" names)
COLLECTIONS = {
    "cus": ("customers", "customer"),
    "prod": ("products", "product"),
    "price": ("prices", "price"),
    "txr": ("tax_rates", "tax rate"),
    "pm": ("payment_methods", "PaymentMethod"),
    "sub": ("subscriptions", "subscription"),
    "si": ("subscription_items", "subscription item"),
    "ii": ("invoiceitems", "invoiceitem"),
    "in": ("invoices", "invoice"),
    "pi": ("payment_intents", "payment_intent"),
    "ch": ("charges", "charge"),
    "re": ("refunds", "refund"),
    "cn": ("credit_notes", "credit note"),
    "di": ("discounts", "discount"),
    "clock": ("test_clocks", "test clock"),
    "inpay": ("invoice_payments", "invoice payment"),
    "txi": ("tax_ids", "tax_id"),
    "we": ("webhook_endpoints", "webhook endpoint"),
    "evt": ("events", "event"),
}


def public(document: dict) -> dict:
    """The document without the sandbox's own bookkeeping (keys starting with "_")."""
    return {key: value for key, value in document.items() if not key.startswith("_")}


def load(call: Call, object_id: str, kind: str | None = None, param: str = "id") -> dict:
    """The object with this id (its prefix says where it lives); 404 "No such <kind>" when there is none
    of that kind — an id of another kind (a cus_… given as a price) is no such price either."""
    prefix = object_id.split("_", 1)[0] if isinstance(object_id, str) else ""
    collection, noun = COLLECTIONS.get(prefix, (None, "object"))
    if collection is None and kind == "product":  # a product may have an id of one's own choosing (`id`)
        collection, noun = COLLECTIONS["prod"]
    document = call.store.get(collection, object_id) if collection and kind in (None, noun) else None
    if document is None:
        raise missing(kind or noun, object_id, param)
    return document


def expand(call: Call, document: dict, scope: str = "") -> dict:
    """Replace ids by their objects for each `expand[]` path (dotted; lists expand every element)."""
    for path in call.expand:
        if scope and not path.startswith(scope):
            continue
        document = _expand_path(call, document, path[len(scope) :].split("."))
    return document


def _expandable(value) -> bool:
    return isinstance(value, str) and value.split("_", 1)[0] in COLLECTIONS and "_" in value


def _expand_path(call: Call, node, parts: list[str]):
    if isinstance(node, list):
        return [_expand_path(call, item, parts) for item in node]
    value = node.get(parts[0], ...) if isinstance(node, dict) else ...
    if isinstance(value, list) and all(_expandable(item) for item in value):
        value = [public(load(call, item)) for item in value]
    elif _expandable(value):
        value = public(load(call, value))
    elif value is ... or isinstance(value, (str, int, float, bool)):  # not a reference to an object
        raise StripeError(400, f"This property cannot be expanded ({parts[0]}).", param="expand", saved=False)
    if len(parts) > 1 and value is not None:
        value = _expand_path(call, value, parts[1:])
    return {**node, parts[0]: value}


# --- time -------------------------------------------------------------------------------------------------


def now(call: Call, clock_id: str | None = None) -> int:
    """Unix seconds: the test clock's frozen time for objects on a clock, else the real time."""
    if clock_id:
        clock = call.store.get("test_clocks", clock_id)
        if clock is not None:
            return clock["frozen_time"]
    return int(time.time())
