"""WooCommerce: the published REST v3 examples (../shared/specs/woocommerce/rest-v3), the REST API docs'
source (github woocommerce/woocommerce-rest-api-docs) and WooCommerce core's own code (github
woocommerce/woocommerce, plugins/woocommerce/includes)."""

from portal.connectors.evidence import Call


def example(*names: str) -> str:
    return " · ".join(f"spec: woocommerce/rest-v3/{name}-response.json" for name in names)


DOCS = "doc: https://github.com/woocommerce/woocommerce-rest-api-docs source/includes/wp-api-v3"
CORE = "lib: woocommerce/woocommerce plugins/woocommerce/includes"
V3 = f"{CORE}/rest-api/Controllers/Version3"

EVIDENCE = (
    Call(
        "start_connect",
        "none: the wizard asks for the shop's address and a REST API key pair (ck_…, cs_…)",
        f"{DOCS}/_authentication.md",
    ),
    Call(
        "finish_connect",
        "GET /wp-json/wc/v3/system_status?_fields=environment,settings (Basic auth, else query keys)",
        f"{DOCS}/_authentication.md · {DOCS}/_system-status.md · {CORE}/class-wc-rest-authentication.php",
    ),
    Call("verify", "GET /wp-json/wc/v3/system_status", f"{DOCS}/_system-status.md"),
    Call(
        "list_orders",
        "GET /wp-json/wc/v3/orders?status=any&orderby=modified&modified_after=…&page=N",
        f"{example('orders-list-all-orders')} · {V3}/class-wc-rest-crud-controller.php",
    ),
    Call("get_order", "GET /wp-json/wc/v3/orders/{id}", example("orders-retrieve-an-order")),
    Call(
        "find_order",
        "GET /wp-json/wc/v3/orders?search=…",
        f"{example('orders-list-all-orders')} · {DOCS}/_orders.md",
    ),
    Call("list_refunds", "GET /wp-json/wc/v3/orders/{id}/refunds", example("order-refunds-list-all-refunds")),
    Call(
        "list_payment_gateways",
        "GET /wp-json/wc/v3/payment_gateways",
        f"{example('payment-gateways-list-all-payment-gateways')} · {DOCS}/_payment-gateways.md",
    ),
    Call(
        "has_subscriptions",
        "GET /wp-json/wc/v3/subscriptions?per_page=1 (200: the plugin is active; 404 rest_no_route)",
        "spec: woocommerce/subscriptions-v3/wcs_subscriptions-list-all-subscriptions-response.json"
        " · doc: https://github.com/woocommerce/subscriptions-rest-api-docs",
    ),
    Call("list_webhooks", "GET /wp-json/wc/v3/webhooks", example("webhooks-list-all-webhooks")),
    Call(
        "register_webhooks",
        "GET + PUT + POST + DELETE /wp-json/wc/v3/webhooks[/{id}]",
        example(
            "webhooks-list-all-webhooks",
            "webhooks-update-a-webhook",
            "webhooks-create-a-webhook",
            "webhooks-delete-a-webhook",
        ),
    ),
    Call(
        "delete_webhooks",
        "GET + DELETE /wp-json/wc/v3/webhooks/{id}?force=true",
        example("webhooks-list-all-webhooks", "webhooks-delete-a-webhook"),
    ),
    Call(
        "find_sku",
        "GET /wp-json/wc/v3/products?sku=…",
        f"{example('products-list-all-products')} · {V3}/class-wc-rest-products-controller.php",
    ),
    Call(
        "set_stock",
        "PUT /wp-json/wc/v3/products/{id} · /products/{parent}/variations/{id}",
        example("products-update-a-product", "product-variations-update-a-product-variation"),
    ),
    Call(
        "verify_webhook",
        "(inbound) X-WC-Webhook-Signature = base64 HMAC-SHA256 of the body",
        f"{CORE}/class-wc-webhook.php",
    ),
)
