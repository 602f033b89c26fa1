"""Stripe: its API reference (docs.stripe.com/api), its webhook signature scheme (docs.stripe.com/webhooks)
and the official client stripe-python 16.1.0 (generated from Stripe's OpenAPI specification, pinned in
uv.lock), whose service modules name each operation's method and path."""

from portal.connectors.evidence import Call

LIB = "lib: stripe/stripe-python stripe"
VERSION = "@v16.1.0"
API = "doc: https://docs.stripe.com/api"


def lib(module: str) -> str:
    return f"{LIB}/{module} {VERSION}"


EVIDENCE = (
    Call(
        "verify_webhook",
        "none: Stripe-Signature t=…,v1=HMAC-SHA256(t.body), 300 s tolerance",
        f"doc: https://docs.stripe.com/webhooks#verify-manually · {lib('_webhook.py')}",
    ),
    Call("verify", "GET /v1/invoices?limit=1", f"{API}/invoices/list · {lib('_invoice_service.py')}"),
    Call(
        "get_order",
        "GET /v1/invoices/{id}?expand[]=payments; by a PaymentIntent: GET /v1/invoice_payments?"
        "payment[type]=payment_intent&payment[payment_intent]=pi_…&limit=1 first",
        f"{API}/invoices/retrieve · {API}/expanding_objects · {API}/invoice-payment/list · "
        f"{lib('_invoice_service.py')} · {lib('_invoice_payment_service.py')} · "
        f"{lib('params/_invoice_payment_list_params.py')} · doc: https://docs.stripe.com/changelog/basil",
    ),
    Call(
        "list_orders",
        "GET /v1/invoices?created[gte]=…&limit=100&starting_after=…&expand[]=data.payments",
        f"{API}/invoices/list · {API}/pagination · {lib('_invoice_service.py')}",
    ),
    Call(
        "find_order",
        "GET /v1/invoices?limit=100&starting_after=… (matched on number), GET /v1/invoices/{id}",
        f"{API}/invoices/list · {lib('_invoice_service.py')}",
    ),
    Call(
        "list_refunds",
        "GET /v1/credit_notes?invoice=…&expand[]=data.lines, GET /v1/invoice_payments?invoice=…, "
        "GET /v1/refunds?payment_intent=… (paged with starting_after)",
        f"{API}/credit_notes/list · {API}/credit_notes/object · {API}/invoice-payment/list · "
        f"{API}/refunds/list · {lib('_credit_note_service.py')} · {lib('_invoice_payment_service.py')} · "
        f"{lib('_refund_service.py')}",
    ),
    Call(
        "list_webhooks",
        "GET /v1/webhook_endpoints",
        f"{API}/webhook_endpoints/list · {lib('_webhook_endpoint_service.py')}",
    ),
    Call(
        "register_webhooks",
        "GET + DELETE /v1/webhook_endpoints[/{id}], POST /v1/webhook_endpoints (Idempotency-Key)",
        f"{API}/webhook_endpoints/create · {API}/idempotent_requests · {lib('_webhook_endpoint_service.py')}",
    ),
    Call(
        "delete_webhooks",
        "GET + DELETE /v1/webhook_endpoints/{id}",
        f"{API}/webhook_endpoints/delete · {lib('_webhook_endpoint_service.py')}",
    ),
)
