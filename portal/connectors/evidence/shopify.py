"""Shopify: every GraphQL document is validated against Shopify's Admin API schema 2026-04
(../shared/specs/shopify/graphql-admin, tests/contracts/test_shopify_graphql_contract.py); connecting and
webhooks follow shopify.dev and Shopify's own libraries. Details: docs/connectors/shopify.md."""

from portal.connectors.base import N_
from portal.connectors.evidence import Call

SCHEMA = "spec: shopify/graphql-admin/2026-04.schema.graphql"
README = "spec: shopify/graphql-admin/README.md"
GRAPHQL = "POST /admin/api/2026-04/graphql.json"
OAUTH = (
    "doc: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant"
    " · lib: Shopify/shopify-api-ruby lib/shopify_api/auth/oauth.rb"
)

EVIDENCE = (
    Call("start_connect", "GET https://{shop}/admin/oauth/authorize (browser)", OAUTH),
    Call("finish_connect", "POST https://{shop}/admin/oauth/access_token", OAUTH),
    Call("shop_document", f"{GRAPHQL} query Shop", SCHEMA),
    Call("verify", f"{GRAPHQL} query Shop", SCHEMA),
    Call(
        "list_orders",
        f"{GRAPHQL} query OrderIds (orders, updated_at filter, cursor) + query Order",
        f"{SCHEMA} · {README} · doc: https://shopify.dev/docs/api/usage/pagination-graphql",
    ),
    Call("get_order", f"{GRAPHQL} query Order + query OrderLines + query Refund", SCHEMA),
    Call("find_order", f"{GRAPHQL} query OrdersByName + query Order", SCHEMA),
    Call("list_refunds", f"{GRAPHQL} query RefundIds + query Refund", SCHEMA),
    Call("list_transactions", f"{GRAPHQL} query Transactions", SCHEMA),
    Call("list_webhooks", f"{GRAPHQL} query Webhooks", SCHEMA),
    Call("register_webhooks", f"{GRAPHQL} query Webhooks + mutation WebhookCreate", SCHEMA),
    Call("delete_webhooks", f"{GRAPHQL} query Webhooks + mutation WebhookDelete", SCHEMA),
    Call(
        "set_stock",
        f"{GRAPHQL} query VariantsBySku + query PrimaryLocation + mutation SetQuantities"
        ' (reason "correction", @idempotent)',
        SCHEMA,
        level="unverified",  # the reason's value is on a shopify.dev page the schema links to, not in a spec
        label=N_("Write stock levels to Shopify"),
        setting="stock_sync_guessed",
    ),
    Call(
        "verify_webhook",
        "(inbound) X-Shopify-Hmac-Sha256, X-Shopify-Event-Id, X-Shopify-Shop-Domain",
        f"{README} · lib: Shopify/shopify-app-js lib/utils/hmac-validator.ts"
        " · doc: https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates",
    ),
)
