"""Events (/v1/events), webhook endpoints (/v1/webhook_endpoints) and signed deliveries.

An event snapshots its object when it happens. Each enabled endpoint whose `enabled_events` match gets a
delivery: committed, then POSTed by an RQ job (workers.jobs.deliver_sandbox_webhook) with the header
`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body" with the endpoint's whsec_ secret>` — what
stripe-python's `Webhook.construct_event` checks. A failed delivery is retried (Stripe: for up to three
days, less in test mode); the delays here are SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from flask import current_app

from portal.extensions import db
from portal.queue import enqueue_after_commit, get_queue
from portal.sandbox.common import post_webhook
from portal.sandbox.store import SandboxStore
from portal.sandbox.stripe.api import API_VERSION, SYSTEM, Call, load, new_id, page, public, route
from portal.sandbox.stripe.params import StripeError, boolean, created_filter, invalid, metadata, required

RETRY_DELAYS = (60, 600, 3600)  # the sandbox's (shorter than Stripe's test-mode schedule)
DELIVERY_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
JOB = "workers.jobs.deliver_sandbox_webhook"


def emit(call: Call, event_type: str, document: dict, before: dict | None = None) -> dict:
    """Record an event about `document` (as it is now) and queue its deliveries after the commit.
    `before` gives `previous_attributes`: the top-level fields whose value changed."""
    data = {"object": public(document)}
    if before is not None:
        data["previous_attributes"] = {
            key: value for key, value in public(before).items() if data["object"].get(key) != value
        }
    endpoints = _matching(call, event_type)
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": call.request_id or None, "idempotency_key": call.idempotency_key},
        "type": event_type,
    }
    call.store.put("events", event["id"], event)
    for endpoint in endpoints:
        _queue(call, event, endpoint)
    return event


def _matching(call: Call, event_type: str) -> list[dict]:
    return [
        endpoint
        for endpoint in call.store.all("webhook_endpoints")
        if endpoint["status"] == "enabled"
        and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
    ]


def _queue(call: Call, event: dict, endpoint: dict) -> None:
    delivery_id = new_id("whdel")
    call.store.put(
        "deliveries",
        delivery_id,
        {"event": event["id"], "endpoint": endpoint["id"], "attempts": [], "status": "pending"},
    )
    enqueue_after_commit(JOB, SYSTEM, call.account, delivery_id)


def sign(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver(account: str, delivery_id: str) -> None:
    """One attempt of one delivery (the RQ job). A 2xx answer is success; anything else is retried with
    the same event id and body, a new timestamp and signature."""
    store = SandboxStore(SYSTEM, account)
    delivery = store.get("deliveries", delivery_id)
    if delivery is None or delivery["status"] != "pending":
        return
    event, endpoint = (
        store.get("events", delivery["event"]),
        store.get("webhook_endpoints", delivery["endpoint"]),
    )
    if event is None or endpoint is None:  # the endpoint was deleted meanwhile
        store.put("deliveries", delivery_id, {**delivery, "status": "dropped"})
        db.session.commit()
        return
    body = json.dumps(event, indent=2, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": sign(body, endpoint["_secret"], int(time.time())),
    }
    try:
        status = post_webhook(endpoint["url"], body, headers, DELIVERY_TIMEOUT).status_code
        outcome, ok = str(status), 200 <= status < 300
    except httpx.HTTPError as exc:
        outcome, ok = type(exc).__name__, False
    attempts = [*delivery["attempts"], {"at": int(time.time()), "outcome": outcome}]
    delays = current_app.config.get("SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS", RETRY_DELAYS)
    retry_in = None
    if ok:
        status_text = "delivered"
        store.put("events", event["id"], {**event, "pending_webhooks": max(event["pending_webhooks"] - 1, 0)})
    elif len(attempts) <= len(delays):
        status_text, retry_in = "pending", delays[len(attempts) - 1]
    else:
        status_text = "failed"
    store.put("deliveries", delivery_id, {**delivery, "attempts": attempts, "status": status_text})
    db.session.commit()
    if retry_in is not None:
        if retry_in > 0:
            get_queue().enqueue_in(timedelta(seconds=retry_in), JOB, SYSTEM, account, delivery_id)
        else:
            get_queue().enqueue(JOB, SYSTEM, account, delivery_id)


def resend(account: str, event_id: str) -> int:
    """The Dashboard's (and `stripe events resend`'s) "Resend": the event again, unchanged, to every enabled
    endpoint it matches, freshly signed. Not an API operation; for tests and the demo. The caller commits;
    returns how many deliveries were queued."""
    call = Call(account, {})
    event = load(call, event_id, "event")
    endpoints = _matching(call, event["type"])
    for endpoint in endpoints:
        _queue(call, event, endpoint)
    return len(endpoints)


def deliveries(account: str) -> list[dict]:
    """Every delivery the account has made or is making (for tests and the demo)."""
    return SandboxStore(SYSTEM, account).all("deliveries")


# --- /v1/events -----------------------------------------------------------------------------------------


@route("events/<event_id>", methods=("GET",))
def get_event(call: Call, event_id):
    return public(load(call, event_id, "event"))


@route(
    "events",
    allowed=("type", "types", "created", "delivery_success", "limit", "starting_after", "ending_before"),
)
def list_events(call: Call):
    events = call.store.all("events")
    kinds = call.params.get("types") or ([call.params["type"]] if call.params.get("type") else None)
    if kinds:
        events = [e for e in events if any(_matches(pattern, e["type"]) for pattern in kinds)]
    return page(call, [public(e) for e in created_filter(call.params, events)], "/v1/events")


def _matches(pattern: str, event_type: str) -> bool:
    """`type=invoice.*` matches every invoice event, as Stripe's filter does."""
    return event_type == pattern or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))


# --- /v1/webhook_endpoints ------------------------------------------------------------------------------

ENDPOINT_PARAMS = ("url", "enabled_events", "description", "metadata", "api_version")


def _events_param(params: dict) -> list[str]:
    events = params.get("enabled_events")
    if not isinstance(events, list) or not events or not all(events):
        raise StripeError(
            400,
            "Missing required param: enabled_events.",
            code="parameter_missing",
            param="enabled_events",
            saved=False,
        )
    return list(events)


def _url_param(params: dict) -> str:
    url = required(params, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("url", f"Invalid URL: {url}")
    return url


@route("webhook_endpoints", methods=("POST",), allowed=ENDPOINT_PARAMS)
def create_webhook_endpoint(call: Call):
    params = call.params
    version = params.get("api_version")
    if version and version != API_VERSION:
        raise invalid("api_version", f"The sandbox renders events in {API_VERSION} only.")
    secret = "whsec_" + new_id("x", 32)[2:]
    endpoint = {
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": version or None,
        "application": None,
        "created": int(time.time()),
        "description": params.get("description") or None,
        "enabled_events": _events_param(params),
        "livemode": False,
        "metadata": metadata(params),
        "status": "enabled",
        "url": _url_param(params),
        "_secret": secret,
    }
    call.store.put("webhook_endpoints", endpoint["id"], endpoint)
    return {**public(endpoint), "secret": secret}  # the secret is shown only when the endpoint is made


@route("webhook_endpoints/<endpoint_id>", methods=("GET",))
def get_webhook_endpoint(call: Call, endpoint_id):
    return public(load(call, endpoint_id, "webhook endpoint"))


@route(
    "webhook_endpoints/<endpoint_id>",
    methods=("POST",),
    allowed=("url", "enabled_events", "description", "metadata", "disabled"),
)
def update_webhook_endpoint(call: Call, endpoint_id):
    endpoint = load(call, endpoint_id, "webhook endpoint")
    params = call.params
    if "url" in params:
        endpoint["url"] = _url_param(params)
    if "enabled_events" in params:
        endpoint["enabled_events"] = _events_param(params)
    if "description" in params:
        endpoint["description"] = params["description"] or None
    disabled = boolean(params, "disabled")
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
    endpoint["metadata"] = metadata(params, endpoint["metadata"])
    call.store.put("webhook_endpoints", endpoint_id, endpoint)
    return public(endpoint)


@route("webhook_endpoints/<endpoint_id>", methods=("DELETE",))
def delete_webhook_endpoint(call: Call, endpoint_id):
    load(call, endpoint_id, "webhook endpoint")
    call.store.delete("webhook_endpoints", endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@route("webhook_endpoints", allowed=("limit", "starting_after", "ending_before"))
def list_webhook_endpoints(call: Call):
    return page(call, [public(e) for e in call.store.all("webhook_endpoints")], "/v1/webhook_endpoints")
