"""Frisbii (formerly Reepay): Frisbii's own WooCommerce plugin (github reepay/reepay-woocommerce-payment), its
API reference (docs.frisbii.com) and the client generated from Reepay's API description (github
oscar-team/reepay-php-api). What each source shows: docs/connectors/frisbii.md, "Sources"."""

from portal.connectors.evidence import Call

PLUGIN = "lib: reepay/reepay-woocommerce-payment"
PLUGIN_API = f"{PLUGIN} includes/Api.php @48f9d9d"
WEBHOOK = f"{PLUGIN} includes/OrderFlow/Webhook.php @48f9d9d"
GATEWAY = f"{PLUGIN} includes/Gateways/ReepayGateway.php @48f9d9d"
CLIENT = "code: oscar-team/reepay-php-api"
DOCS = "doc: https://docs.frisbii.com/reference"

EVIDENCE = (
    Call("start_connect", "none: the customer enters a private API key (priv_…)", f"{PLUGIN_API}"),
    Call(
        "finish_connect",
        "GET /v1/account/webhook_settings (Basic auth: the private key, no password)",
        f"{PLUGIN_API} · {WEBHOOK}",
    ),
    Call(
        "verify", "GET /v1/account/webhook_settings", f"{WEBHOOK} · {CLIENT} docs/Api/AccountApi.md @33b2a2a"
    ),
    Call(
        "get_order",
        "GET /v1/invoice/{id or handle} + GET /v1/customer/{handle}",
        f"{PLUGIN_API} · {CLIENT} docs/Api/InvoiceApi.md @33b2a2a"
        f" · {CLIENT} docs/Api/CustomerApi.md @33b2a2a",
    ),
    Call(
        "find_order",
        "GET /v1/invoice/{handle} (the number as given, then inv-<number>)",
        f"{PLUGIN_API} · code: reepay/reepay-checkout-python docs/Invoice.md",
    ),
    Call(
        "list_orders",
        "GET /v1/list/invoice?size=100&from=…&range=created, then range=settled [&next_page_token=…]"
        " + GET /v1/customer/{handle}",
        f"{DOCS}/getinvoicelist · {CLIENT} docs/Api/ListApi.md @33b2a2a",
    ),
    Call(
        "list_refunds",
        "GET /v1/invoice/{id or handle} (its credit_notes)",
        f"{PLUGIN_API} · {CLIENT} docs/Model/Invoice.md @33b2a2a"
        f" · {CLIENT} docs/Model/InvoiceCreditNote.md @33b2a2a",
    ),
    Call("webhook_settings", "GET /v1/account/webhook_settings", WEBHOOK),
    Call("account_webhook_secret", "GET /v1/account/webhook_settings (its secret)", WEBHOOK),
    Call("list_webhooks", "GET /v1/account/webhook_settings (its urls)", f"{WEBHOOK} · {GATEWAY}"),
    Call(
        "register_webhooks",
        "GET + PUT /v1/account/webhook_settings {urls: the account's urls + ours}",
        f"{GATEWAY} · {CLIENT} docs/Model/UpdateWebhookSettings.md @33b2a2a",
    ),
    Call(
        "delete_webhooks",
        "GET + PUT /v1/account/webhook_settings {urls: the account's urls without ours}",
        f"{GATEWAY} · {CLIENT} docs/Model/UpdateWebhookSettings.md @33b2a2a",
    ),
    Call(
        "verify_webhook",
        "none: body `signature` == hex(HMAC-SHA256(secret, timestamp + id))",
        f"{WEBHOOK} · {PLUGIN} tests/unit/orderFlow/WebhookTest.php @48f9d9d",
    ),
)
