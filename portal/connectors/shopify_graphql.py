"""The GraphQL documents the Shopify connector sends (Admin API 2026-04) and the one place that turns their
answers into the REST-shaped documents the engine and the webhooks use (portal.engine.sources.shopify reads
order["line_items"][…]["price_set"]["shop_money"]["amount"] and so on, as in Shopify's webhook payloads).

Every document here is validated against Shopify's published 2026-04 schema by
tests/contracts/test_shopify_graphql_contract.py. Each query is shaped to stay well under Shopify's single
query limit of 1000 cost points: a page of orders is read as ids, then each order on its own.
Money stays Shopify's decimal string (checked to be a decimal here); the engine parses it with Decimal.
"""

import re
from decimal import Decimal, InvalidOperation

MONEY = "shopMoney { amount currencyCode }"
LINE_PAGE = 50  # line items per request: 2 + 50 × 10 points
TAX_LINE = f"title rate priceSet {{ {MONEY} }}"

ORDER_FIELDS = f"""
fragment OrderFields on Order {{
  id legacyResourceId name number note poNumber createdAt processedAt updatedAt cancelledAt closedAt
  email phone test
  currencyCode taxesIncluded displayFinancialStatus paymentGatewayNames discountCodes
  customAttributes {{ key value }}
  refunds(first: 20) {{ id }}
  customer {{ id email firstName lastName }}
  billingAddress {{ ...AddressFields }}
  shippingAddress {{ ...AddressFields }}
  totalPriceSet {{ {MONEY} }}
  currentTotalPriceSet {{ {MONEY} }}
  subtotalPriceSet {{ {MONEY} }}
  totalTaxSet {{ {MONEY} }}
  totalDiscountsSet {{ {MONEY} }}
  totalShippingPriceSet {{ {MONEY} }}
  shippingLines(first: 5, includeRemovals: true) {{ nodes {{
    id title code isRemoved originalPriceSet {{ {MONEY} }} discountedPriceSet {{ {MONEY} }}
    taxLines {{ {TAX_LINE} }} discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }}
  }} }}
}}
"""

ADDRESS_FIELDS = """
fragment AddressFields on MailingAddress {
  firstName lastName name company address1 address2 zip city provinceCode countryCodeV2 phone
}
"""

LINE_FIELDS = f"""
fragment LineFields on LineItem {{
  id sku name title quantity taxable isGiftCard
  originalUnitPriceSet {{ {MONEY} }}
  taxLines {{ {TAX_LINE} }}
  discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }}
  variant {{ id }}
}}
"""

SHOP = """
query Shop {
  shop {
    id name email myshopifyDomain currencyCode taxesIncluded ianaTimezone billingAddress { countryCodeV2 }
  }
}
"""

PRIMARY_LOCATION = "query PrimaryLocation { location { id } }"

ORDER_IDS = """
query OrderIds($query: String, $after: String, $first: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id }
  }
}
"""

ORDER = (
    f"""
query Order($id: ID!, $lines: String) {{
  order(id: $id) {{
    ...OrderFields
    lineItems(first: {LINE_PAGE}, after: $lines) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ ...LineFields }}
    }}
  }}
}}
"""
    + ORDER_FIELDS
    + ADDRESS_FIELDS
    + LINE_FIELDS
)

ORDER_LINES = (
    f"""
query OrderLines($id: ID!, $lines: String) {{
  order(id: $id) {{
    lineItems(first: {LINE_PAGE}, after: $lines) {{
      pageInfo {{ hasNextPage endCursor }} nodes {{ ...LineFields }}
    }}
  }}
}}
"""
    + LINE_FIELDS
)

ORDERS_BY_NAME = """
query OrdersByName($query: String!) { orders(first: 10, query: $query) { nodes { id name number } } }
"""

TRANSACTION_FIELDS = (
    f"id kind status gateway test processedAt amountSet {{ {MONEY} }} parentTransaction {{ id }}"
)

TRANSACTIONS = f"""
query Transactions($id: ID!) {{ order(id: $id) {{ transactions(first: 100) {{ {TRANSACTION_FIELDS} }} }} }}
"""

REFUND_IDS = "query RefundIds($id: ID!) { order(id: $id) { refunds(first: 50) { id } } }"

REFUND = f"""
query Refund($id: ID!) {{
  refund(id: $id) {{
    id legacyResourceId createdAt note totalRefundedSet {{ {MONEY} }}
    refundLineItems(first: {LINE_PAGE}) {{ nodes {{
      id quantity restockType lineItem {{ id sku name title }}
      subtotalSet {{ {MONEY} }} totalTaxSet {{ {MONEY} }}
    }} }}
    refundShippingLines(first: 5) {{ nodes {{
      id subtotalAmountSet {{ {MONEY} }} taxAmountSet {{ {MONEY} }}
    }} }}
    orderAdjustments(first: 10) {{ nodes {{ id reason amountSet {{ {MONEY} }} taxAmountSet {{ {MONEY} }} }} }}
    transactions(first: 20) {{ nodes {{ {TRANSACTION_FIELDS} }} }}
  }}
}}
"""

WEBHOOKS = """
query Webhooks($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { id topic uri format }
  }
}
"""

WEBHOOK_CREATE = """
mutation WebhookCreate($topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id topic uri format }
    userErrors { field message }
  }
}
"""

WEBHOOK_DELETE = """
mutation WebhookDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } }
}
"""

VARIANTS_BY_SKU = """
query VariantsBySku($query: String!, $after: String) {
  productVariants(first: 20, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id sku inventoryItem { id tracked inventoryLevels(first: 10) { nodes { location { id } } } } }
  }
}
"""

# From 2026-04 the idempotency key is required (the mutation's description in the schema).
SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id } userErrors { field message code }
  }
}
"""

# Every document the connector sends, by name (the contract test validates each).
DOCUMENTS = {
    "Shop": SHOP,
    "PrimaryLocation": PRIMARY_LOCATION,
    "OrderIds": ORDER_IDS,
    "Order": ORDER,
    "OrderLines": ORDER_LINES,
    "OrdersByName": ORDERS_BY_NAME,
    "Transactions": TRANSACTIONS,
    "RefundIds": REFUND_IDS,
    "Refund": REFUND,
    "Webhooks": WEBHOOKS,
    "WebhookCreate": WEBHOOK_CREATE,
    "WebhookDelete": WEBHOOK_DELETE,
    "VariantsBySku": VARIANTS_BY_SKU,
    "SetQuantities": SET_QUANTITIES,
}


# --- ids and topics ---------------------------------------------------------------------------------------


def gid(kind: str, ident) -> str:
    """A numeric (REST) id as a GraphQL global id; a global id stays as it is."""
    text = str(ident)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{int(text)}"


def legacy_id(value) -> int | None:
    """gid://shopify/Order/123 -> 123 (the REST id, which webhook payloads carry)."""
    match = re.match(r"^gid://shopify/\w+/(\d+)", str(value or ""))
    return int(match.group(1)) if match else None


def topic_enum(topic: str) -> str:
    """orders/create -> ORDERS_CREATE."""
    return topic.replace("/", "_").upper()


def topic_name(value: str) -> str:
    """ORDERS_CREATE -> orders/create (the X-Shopify-Topic spelling)."""
    return value.lower().replace("_", "/", 1)


def search_value(text: str) -> str:
    """A value for Shopify's search syntax, quoted so spaces, slashes and colons stay part of it."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- GraphQL answers as REST-shaped documents ---------------------------------------------------------------


def amount(money_bag: dict | None) -> str | None:
    """`{shopMoney: {amount}}` -> the amount as Shopify's decimal string (checked to be a decimal)."""
    if not money_bag or not money_bag.get("shopMoney"):
        return None
    text = str(money_bag["shopMoney"]["amount"])
    try:
        Decimal(text)
    except InvalidOperation:
        raise ValueError(f"Shopify sent {text!r} as an amount") from None
    return text


def money_set(money_bag: dict | None) -> dict | None:
    value = amount(money_bag)
    if value is None:
        return None
    shop_money = {"amount": value, "currency_code": money_bag["shopMoney"].get("currencyCode")}
    return {"shop_money": shop_money}


def _money(out: dict, key: str, money_bag: dict | None) -> None:
    out[key] = amount(money_bag)
    out[f"{key}_set"] = money_set(money_bag)


def _tax_lines(lines: list | None) -> list[dict]:
    out = []
    for line in lines or []:
        tax = {"title": line.get("title"), "rate": line.get("rate")}
        _money(tax, "price", line.get("priceSet"))
        out.append(tax)
    return out


def _allocations(items: list | None) -> list[dict]:
    out = []
    for item in items or []:
        allocation = {}
        _money(allocation, "amount", item.get("allocatedAmountSet"))
        out.append(allocation)
    return out


def _address(node: dict | None) -> dict | None:
    if not node:
        return None
    return {
        "first_name": node.get("firstName"),
        "last_name": node.get("lastName"),
        "name": node.get("name"),
        "company": node.get("company"),
        "address1": node.get("address1"),
        "address2": node.get("address2"),
        "zip": node.get("zip"),
        "city": node.get("city"),
        "province_code": node.get("provinceCode"),
        "country_code": node.get("countryCodeV2"),
        "phone": node.get("phone"),
    }


def line_item(node: dict) -> dict:
    line = {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "sku": node.get("sku"),
        "name": node.get("name"),
        "title": node.get("title"),
        "quantity": node.get("quantity"),
        "taxable": node.get("taxable"),
        "gift_card": bool(node.get("isGiftCard")),
        "variant_id": legacy_id((node.get("variant") or {}).get("id")),
        "tax_lines": _tax_lines(node.get("taxLines")),
        "discount_allocations": _allocations(node.get("discountAllocations")),
    }
    if "originalUnitPriceSet" in node:
        _money(line, "price", node["originalUnitPriceSet"])
    return line


def _shipping_line(node: dict) -> dict:
    line = {
        "id": legacy_id(node.get("id")),
        "title": node.get("title"),
        "code": node.get("code"),
        "is_removed": bool(node.get("isRemoved")),
        "tax_lines": _tax_lines(node.get("taxLines")),
        "discount_allocations": _allocations(node.get("discountAllocations")),
    }
    _money(line, "price", node.get("originalPriceSet"))
    _money(line, "discounted_price", node.get("discountedPriceSet"))
    return line


def order(node: dict, lines: list[dict], refunds: list[dict]) -> dict:
    """An Order (with all its line items and its refunds, read by the caller) as Shopify's REST/webhook
    order, which embeds its refunds whole (the pipeline finds new refunds there)."""
    customer = node.get("customer")
    out = {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "name": node.get("name"),
        "order_number": node.get("number"),
        "note": node.get("note"),
        "po_number": node.get("poNumber"),
        "created_at": node.get("createdAt"),
        "processed_at": node.get("processedAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "closed_at": node.get("closedAt"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "test": node.get("test"),
        "currency": node.get("currencyCode"),
        "taxes_included": node.get("taxesIncluded"),
        "financial_status": (node.get("displayFinancialStatus") or "").lower() or None,
        "payment_gateway_names": list(node.get("paymentGatewayNames") or []),
        "discount_codes": [{"code": code} for code in node.get("discountCodes") or []],
        "note_attributes": [
            {"name": a["key"], "value": a.get("value")} for a in node.get("customAttributes") or []
        ],
        "customer": customer
        and {
            "id": legacy_id(customer["id"]),
            "email": customer.get("email"),
            "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
        },
        "billing_address": _address(node.get("billingAddress")),
        "shipping_address": _address(node.get("shippingAddress")),
        "line_items": [line_item(line) for line in lines],
        "shipping_lines": [_shipping_line(s) for s in (node.get("shippingLines") or {}).get("nodes") or []],
        "refunds": refunds,
    }
    for key, field in (
        ("total_price", "totalPriceSet"),
        ("current_total_price", "currentTotalPriceSet"),
        ("subtotal_price", "subtotalPriceSet"),
        ("total_tax", "totalTaxSet"),
        ("total_discounts", "totalDiscountsSet"),
    ):
        _money(out, key, node.get(field))
    out["total_shipping_price_set"] = money_set(node.get("totalShippingPriceSet"))
    return out


def transaction(node: dict, order_id: int | None = None) -> dict:
    out = {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "order_id": order_id,
        "kind": str(node.get("kind") or "").lower(),
        "status": str(node.get("status") or "").lower(),
        "gateway": node.get("gateway"),
        "test": node.get("test"),
        "processed_at": node.get("processedAt"),
        "parent_id": legacy_id((node.get("parentTransaction") or {}).get("id")),
    }
    _money(out, "amount", node.get("amountSet"))
    out["currency"] = (out["amount_set"] or {}).get("shop_money", {}).get("currency_code")
    return out


def refund(node: dict, order_id: int) -> dict:
    """A Refund as the REST refund (the refunds/create webhook's shape); shipping refunds come as
    refund_shipping_lines with their tax, other adjustments as order_adjustments of kind
    refund_discrepancy."""
    items = []
    for item in (node.get("refundLineItems") or {}).get("nodes") or []:
        line = line_item(item["lineItem"])
        out = {
            "id": legacy_id(item.get("id")),
            "line_item_id": line["id"],
            "quantity": item.get("quantity"),
            "restock_type": str(item.get("restockType") or "").lower(),
            "line_item": line,
        }
        _money(out, "subtotal", item.get("subtotalSet"))
        _money(out, "total_tax", item.get("totalTaxSet"))
        items.append(out)
    shipping = []
    for item in (node.get("refundShippingLines") or {}).get("nodes") or []:
        shipping.append(
            {
                "id": legacy_id(item.get("id")),
                "subtotal_amount_set": money_set(item.get("subtotalAmountSet")),
                "tax_amount_set": money_set(item.get("taxAmountSet")),
            }
        )
    adjustments = []
    for item in (node.get("orderAdjustments") or {}).get("nodes") or []:
        adjustment = {"id": legacy_id(item.get("id")), "kind": str(item.get("reason") or "").lower()}
        _money(adjustment, "amount", item.get("amountSet"))
        _money(adjustment, "tax_amount", item.get("taxAmountSet"))
        adjustments.append(adjustment)
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "order_id": order_id,
        "created_at": node.get("createdAt"),
        "processed_at": node.get("createdAt"),
        "note": node.get("note"),
        "refund_line_items": items,
        "refund_shipping_lines": shipping,
        "order_adjustments": adjustments,
        "transactions": [
            transaction(t, order_id) for t in (node.get("transactions") or {}).get("nodes") or []
        ],
    }
