"""The Shopify sandbox's GraphQL objects: the store's REST-shaped documents (portal.sandbox.shopify) as the
Admin API's GraphQL types. Fields that take arguments are functions (graphql-core's default resolver calls
them with the arguments); the root's fields are methods of Root."""

import json
import re
from decimal import Decimal

from graphql import GraphQLError
from graphql.execution.values import get_directive_values

from portal.extensions import db
from portal.sandbox import shopify as rest
from portal.sandbox.shopify_graphql import SCHEMA, connection, timestamp

TOPICS = {"orders/create", "orders/updated", "orders/cancelled", "refunds/create", "app/uninstalled"}
SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "PROCESSED_AT": "processed_at"}
# Shopify's search syntax (shopify.dev/docs/api/usage/search-syntax): field:value, field:>value, quoted.
TERM = re.compile(r"""(\w+):(>=|<=|>|<)?("[^"]*"|'[^']*'|\S+)""")
SET_REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}


def gid(kind: str, ident) -> str:
    return f"gid://shopify/{kind}/{ident}"


def legacy_id(value, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    return int(match.group(1)) if match else None


def search_terms(query: str | None) -> list[tuple[str, str, str]]:
    return [(f, op or ":", v.strip("'\"")) for f, op, v in TERM.findall(query or "")]


def denied(scope: str, field: str):
    return GraphQLError(
        f"Access denied for {field} field. Required access: `{scope}` access scope.",
        extensions={"code": "ACCESS_DENIED", "requiredAccess": f"`{scope}` access scope."},
    )


def money(rest_set: dict | None, amount=None) -> dict:
    if rest_set is None:
        rest_set = rest._money_set(amount or 0)

    def one(m):
        return {"amount": m["amount"], "currencyCode": m.get("currency_code") or m.get("currency")}

    return {"shopMoney": one(rest_set["shop_money"]), "presentmentMoney": one(rest_set["presentment_money"])}


def address(doc: dict | None) -> dict | None:
    if not doc:
        return None
    return {
        "id": gid("MailingAddress", abs(hash(repr(sorted(doc.items())))) % 10**12),
        "address1": doc.get("address1"),
        "address2": doc.get("address2"),
        "city": doc.get("city"),
        "company": doc.get("company"),
        "countryCodeV2": doc.get("country_code"),
        "firstName": doc.get("first_name"),
        "lastName": doc.get("last_name"),
        "name": doc.get("name"),
        "phone": doc.get("phone"),
        "provinceCode": doc.get("province_code"),
        "zip": doc.get("zip"),
    }


def tax_line(doc: dict) -> dict:
    rate = doc.get("rate")
    return {
        "title": doc["title"],
        "rate": rate,
        "ratePercentage": float(Decimal(str(rate)) * 100) if rate is not None else None,
        "priceSet": money(doc.get("price_set"), doc.get("price")),
    }


def allocations(docs: list) -> list[dict]:
    return [{"allocatedAmountSet": money(a.get("amount_set"), a.get("amount"))} for a in docs or []]


def by_position(items):
    return lambda item: [items.index(item)]


def variant(store, variant_id) -> dict | None:
    doc = store.get("variants", variant_id) if variant_id else None
    if doc is None:
        return None
    product = store.get("products", doc["product_id"]) or {}
    item = store.get("inventory_items", doc["inventory_item_id"]) or {}
    return {
        "id": gid("ProductVariant", doc["id"]),
        "legacyResourceId": str(doc["id"]),
        "sku": doc.get("sku"),
        "product": {"id": gid("Product", doc["product_id"]), "title": product.get("title", "")},
        "inventoryItem": inventory_item(store, item),
    }


def inventory_item(store, item: dict) -> dict:
    def levels(info, **args):
        if not rest._has_scope(info.context["token"]["scope"], "read_inventory"):
            raise denied("read_inventory", "inventoryLevels")
        docs = [level for level in store.all("inventory_levels") if level["inventory_item_id"] == item["id"]]
        return connection([inventory_level(store, d) for d in docs], lambda n: [n["_location"]], **args)

    return {
        "id": gid("InventoryItem", item["id"]),
        "sku": item.get("sku"),
        "tracked": item.get("tracked"),
        "inventoryLevels": levels,
    }


def location(store, location_id) -> dict | None:
    doc = store.get("locations", location_id)
    if doc is None:
        return None
    primary = (store.get("_meta", "shop") or {}).get("primary_location_id")
    return {
        "id": gid("Location", doc["id"]),
        "legacyResourceId": str(doc["id"]),
        "name": doc["name"],
        "isPrimary": doc["id"] == primary,
    }


def inventory_level(store, doc: dict) -> dict:
    def quantities(info, names):
        known = {"available": doc["available"], "on_hand": doc["available"]}
        return [
            {
                "id": gid("InventoryQuantity", f"{doc['inventory_item_id']}-{n}"),
                "name": n,
                "quantity": known[n],
            }
            for n in names
            if n in known
        ]

    return {
        "id": doc["admin_graphql_api_id"],
        "_location": doc["location_id"],
        "location": location(store, doc["location_id"]),
        "quantities": quantities,
    }


def line_item(store, doc: dict) -> dict:
    return {
        "id": gid("LineItem", doc["id"]),
        "sku": doc.get("sku"),
        "name": doc.get("name") or doc.get("title") or "",
        "title": doc.get("title") or "",
        "quantity": doc["quantity"],
        "currentQuantity": doc.get("current_quantity", doc["quantity"]),
        "taxable": bool(doc.get("taxable", True)),
        "isGiftCard": bool(doc.get("gift_card")),
        "originalUnitPriceSet": money(doc.get("price_set"), doc.get("price")),
        "taxLines": lambda info, first=None: [tax_line(t) for t in doc.get("tax_lines") or []][:first],
        "discountAllocations": allocations(doc.get("discount_allocations")),
        "variant": lambda info: variant(store, doc.get("variant_id")),
    }


def shipping_line(doc: dict) -> dict:
    return {
        "id": gid("ShippingLine", doc["id"]),
        "title": doc.get("title") or "",
        "code": doc.get("code"),
        "isRemoved": bool(doc.get("is_removed")),
        "originalPriceSet": money(doc.get("price_set"), doc.get("price")),
        "discountedPriceSet": money(doc.get("discounted_price_set"), doc.get("discounted_price")),
        "taxLines": [tax_line(t) for t in doc.get("tax_lines") or []],
        "discountAllocations": allocations(doc.get("discount_allocations")),
    }


def transaction(doc: dict) -> dict:
    amount = {"amount": doc["amount"], "currency_code": doc.get("currency") or rest.CURRENCY}
    return {
        "id": gid("OrderTransaction", doc["id"]),
        "kind": doc["kind"].upper(),
        "status": doc["status"].upper(),
        "gateway": doc.get("gateway"),
        "test": bool(doc.get("test")),
        "processedAt": doc.get("processed_at"),
        "amountSet": money({"shop_money": amount, "presentment_money": amount}),
        "parentTransaction": {"id": gid("OrderTransaction", doc["parent_id"])}
        if doc.get("parent_id")
        else None,
    }


def refund(store, doc: dict) -> dict:
    shipping_adjustments = [a for a in doc["order_adjustments"] if a.get("kind") == "shipping_refund"]
    shipping_tax = sum((-Decimal(a["tax_amount"]) for a in shipping_adjustments), Decimal("0"))
    refunded = sum(
        (
            Decimal(t["amount"])
            for t in doc["transactions"]
            if t["kind"] == "refund" and t["status"] == "success"
        ),
        Decimal("0"),
    )
    line_items = [
        {
            "id": gid("RefundLineItem", i["id"]),
            "quantity": i["quantity"],
            "restockType": i["restock_type"].upper(),
            "lineItem": line_item(store, i["line_item"]),
            "priceSet": money(i["line_item"].get("price_set")),
            "subtotalSet": money(i.get("subtotal_set"), i.get("subtotal")),
            "totalTaxSet": money(i.get("total_tax_set"), i.get("total_tax")),
        }
        for i in doc["refund_line_items"]
    ]
    shipping = [
        {
            "id": gid("RefundShippingLine", s["id"]),
            "subtotalAmountSet": money(s.get("subtotal_amount_set")),
            "taxAmountSet": money(None, shipping_tax if index == 0 else 0),
        }
        for index, s in enumerate(doc.get("refund_shipping_lines") or [])
    ]
    adjustments = [
        {
            "id": gid("OrderAdjustment", a["id"]),
            "reason": "REFUND_DISCREPANCY",
            "amountSet": money(a.get("amount_set"), a.get("amount")),
            "taxAmountSet": money(a.get("tax_amount_set"), a.get("tax_amount")),
        }
        for a in doc["order_adjustments"]
        if a.get("kind") != "shipping_refund"
    ]
    txs = [transaction(t) for t in doc["transactions"]]
    return {
        "id": gid("Refund", doc["id"]),
        "legacyResourceId": str(doc["id"]),
        "createdAt": doc.get("created_at"),
        "note": doc.get("note"),
        "totalRefundedSet": money(None, refunded),
        "refundLineItems": lambda info, **a: connection(line_items, by_position(line_items), **a),
        "refundShippingLines": lambda info, **a: connection(shipping, by_position(shipping), **a),
        "orderAdjustments": lambda info, **a: connection(adjustments, by_position(adjustments), **a),
        "transactions": lambda info, **a: connection(txs, by_position(txs), **a),
    }


def order(store, doc: dict) -> dict:
    customer = doc.get("customer")

    def lines(info, **args):
        items = [line_item(store, li) for li in doc["line_items"]]
        return connection(items, by_position(items), **args)

    def shipping(info, includeRemovals=False, **args):
        items = [
            shipping_line(s) for s in doc["shipping_lines"] if includeRemovals or not s.get("is_removed")
        ]
        return connection(items, by_position(items), **args)

    def transactions(info, first=None, **_):
        docs = [t for t in store.all("transactions") if t["order_id"] == doc["id"]]
        return [transaction(t) for t in sorted(docs, key=lambda t: t["id"])][:first]

    def refunds(info, first=None):
        docs = [r for r in store.all("refunds") if r["order_id"] == doc["id"]]
        return [refund(store, r) for r in sorted(docs, key=lambda r: r["id"])][:first]

    return {
        "id": gid("Order", doc["id"]),
        "legacyResourceId": str(doc["id"]),
        "name": doc["name"],
        "number": doc["order_number"],
        "note": doc.get("note"),
        "poNumber": doc.get("po_number"),
        "createdAt": doc["created_at"],
        "processedAt": doc.get("processed_at") or doc["created_at"],
        "updatedAt": doc["updated_at"],
        "cancelledAt": doc.get("cancelled_at"),
        "closedAt": doc.get("closed_at"),
        "email": doc.get("email"),
        "phone": doc.get("phone"),
        "test": bool(doc.get("test")),
        "currencyCode": doc.get("currency") or rest.CURRENCY,
        "taxesIncluded": bool(doc.get("taxes_included")),
        "displayFinancialStatus": (doc.get("financial_status") or "").upper() or None,
        "paymentGatewayNames": list(doc.get("payment_gateway_names") or []),
        "discountCodes": [c["code"] for c in doc.get("discount_codes") or []],
        "customAttributes": [
            {"key": a["name"], "value": a.get("value")} for a in doc.get("note_attributes") or []
        ],
        "customer": customer
        and {
            "id": gid("Customer", customer["id"]),
            "legacyResourceId": str(customer["id"]),
            "email": customer.get("email"),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
        },
        "billingAddress": address(doc.get("billing_address")),
        "shippingAddress": address(doc.get("shipping_address")),
        "totalPriceSet": money(doc.get("total_price_set"), doc.get("total_price")),
        "currentTotalPriceSet": money(doc.get("current_total_price_set"), doc.get("total_price")),
        "subtotalPriceSet": money(doc.get("subtotal_price_set"), doc.get("subtotal_price")),
        "totalTaxSet": money(doc.get("total_tax_set"), doc.get("total_tax")),
        "totalDiscountsSet": money(doc.get("total_discounts_set"), doc.get("total_discounts")),
        "totalShippingPriceSet": money(doc.get("total_shipping_price_set")),
        "lineItems": lines,
        "shippingLines": shipping,
        "transactions": transactions,
        "refunds": refunds,
    }


def webhook(doc: dict) -> dict:
    return {
        "id": gid("WebhookSubscription", doc["id"]),
        "topic": doc["topic"].replace("/", "_").upper(),
        "uri": doc["address"],
        "format": doc["format"].upper(),
        "createdAt": doc["created_at"],
        "apiVersion": {"handle": doc["api_version"]},
    }


def _time_filter(items, field, op, value):
    try:
        moment = rest._parse_time(value).timestamp()
    except ValueError:
        raise GraphQLError(f"Invalid search value for {field}: {value}") from None
    compare = {
        ">": float.__gt__,
        ">=": float.__ge__,
        "<": float.__lt__,
        "<=": float.__le__,
        ":": float.__eq__,
    }
    return [d for d in items if d.get(field) and compare[op](timestamp(d[field]), moment)]


class Root:
    """The QueryRoot and Mutation fields; the token (shop, app, scopes) travels on `info.context`."""

    def __init__(self, token: dict, store):
        self.token, self.store = token, store

    def _need(self, scope: str, field: str) -> None:
        if not rest._has_scope(self.token["scope"], scope):
            raise denied(scope, field)

    # --- queries ---

    def shop(self, info):
        doc = rest.shop_document(self.token["shop"])
        return {
            "id": gid("Shop", doc["id"]),
            "name": doc["name"],
            "email": doc["email"],
            "myshopifyDomain": doc["myshopify_domain"],
            "currencyCode": doc["currency"],
            "taxesIncluded": doc["taxes_included"],
            "ianaTimezone": doc["iana_timezone"],
            "billingAddress": {"countryCodeV2": doc["country_code"]},
        }

    def location(self, info, id=None):
        self._need("read_locations", "location")
        primary = (self.store.get("_meta", "shop") or {}).get("primary_location_id")
        return location(self.store, legacy_id(id, "Location") if id else primary)

    def locations(self, info, **args):
        self._need("read_locations", "locations")
        docs = [location(self.store, d["id"]) for d in self.store.all("locations")]
        return connection(docs, lambda n: [int(n["legacyResourceId"])], **args)

    def _orders(self) -> list[dict]:
        return [o for o in self.store.all("orders") if rest._visible(self.token, o)]

    def order(self, info, id):
        self._need("read_orders", "order")
        doc = self.store.get("orders", legacy_id(id, "Order") or 0)
        return order(self.store, doc) if doc and rest._visible(self.token, doc) else None

    def refund(self, info, id):
        self._need("read_orders", "refund")
        doc = self.store.get("refunds", legacy_id(id, "Refund") or 0)
        owner = doc and self.store.get("orders", doc["order_id"])
        return refund(self.store, doc) if owner and rest._visible(self.token, owner) else None

    def orders(self, info, query=None, sortKey="PROCESSED_AT", **args):
        self._need("read_orders", "orders")
        docs = self._orders()
        for field, op, value in search_terms(query):
            if field in ("updated_at", "created_at", "processed_at"):
                docs = _time_filter(docs, field, op, value)
            elif field == "name":
                docs = [d for d in docs if d["name"].lstrip("#") == value.lstrip("#")]
            elif field == "id":
                docs = [d for d in docs if str(d["id"]) == value]
        sort = SORT_FIELDS.get(sortKey)
        nodes = [order(self.store, d) for d in docs]

        def key(node):
            ident = int(node["legacyResourceId"])
            return [timestamp(node[_camel(sort)]), ident] if sort else [ident]

        return connection(nodes, key, **args)

    def productVariants(self, info, query=None, sortKey="ID", **args):
        self._need("read_products", "productVariants")
        docs = self.store.all("variants")
        for field, _, value in search_terms(query):
            if field == "sku":
                docs = [d for d in docs if (d.get("sku") or "") == value]
            elif field == "product_id":
                docs = [d for d in docs if str(d["product_id"]) == value]
        nodes = [variant(self.store, d["id"]) for d in docs]
        if sortKey == "SKU":
            return connection(nodes, lambda n: [n["sku"] or "", int(n["legacyResourceId"])], **args)
        return connection(nodes, lambda n: [int(n["legacyResourceId"])], **args)

    def webhookSubscriptions(self, info, topics=None, uri=None, **args):
        args.pop("sortKey", None), args.pop("format", None), args.pop("query", None)
        hooks = [webhook(h) for h in self.store.all("webhooks") if h["_client_id"] == self.token["client_id"]]
        hooks = [
            h for h in hooks if (not topics or h["topic"] in topics) and (uri is None or h["uri"] == uri)
        ]
        return connection(hooks, lambda n: [legacy_id(n["id"], "WebhookSubscription")], **args)

    # --- mutations ---

    def webhookSubscriptionCreate(self, info, topic, webhookSubscription):
        rest_topic = topic.lower().replace("_", "/", 1)
        uri = webhookSubscription.get("uri") or ""
        data = {
            "topic": rest_topic,
            "address": uri,
            "format": (webhookSubscription.get("format") or "JSON").lower(),
        }
        try:
            created = rest.create_subscription(self.token, self.store, data, info.context["version"])
        except rest.ApiError as error:
            messages = error.errors if isinstance(error.errors, dict) else {"base": [str(error.errors)]}
            user_errors = [
                {
                    "field": ["webhookSubscription", "callbackUrl" if name == "address" else name],
                    "message": f"{'Address' if name == 'address' else name.capitalize()} {text}",
                }
                for name, texts in messages.items()
                for text in texts
            ]
            return {"webhookSubscription": None, "userErrors": user_errors}
        return {"webhookSubscription": webhook(created), "userErrors": []}

    def webhookSubscriptionDelete(self, info, id):
        hook = self.store.get("webhooks", legacy_id(id, "WebhookSubscription") or 0)
        if hook is None or hook["_client_id"] != self.token["client_id"]:
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        self.store.delete("webhooks", hook["id"])
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}

    def inventorySetQuantities(self, info, input):
        """From 2026-04 with a required idempotency key (@idempotent): the same key and input answer the
        first result again without applying it twice; the same key with another input is refused."""
        self._need("write_inventory", "inventorySetQuantities")
        idempotent = SCHEMA.get_directive("idempotent")
        key = (get_directive_values(idempotent, info.field_nodes[0], info.variable_values) or {}).get("key")
        if not (key or "").strip():
            raise GraphQLError(
                "An idempotency key is required for inventorySetQuantities: use the @idempotent directive.",
                extensions={"code": "BAD_REQUEST"},
            )
        seen = self.store.get("idempotency", key)
        params = json.dumps(input, sort_keys=True)
        if seen is not None and seen["params"] != params:
            message = "The same idempotency key cannot be used with different operation parameters."
            error = {"field": None, "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "message": message}
            return {"inventoryAdjustmentGroup": None, "userErrors": [error]}
        if seen is not None:
            return seen["result"]
        result = self._set_quantities(input)
        if not result["userErrors"]:
            self.store.put("idempotency", key, {"params": params, "result": result})
        return result

    def _set_quantities(self, input):

        def fail(field, code, message):
            db.session.rollback()  # all quantities or none, as Shopify applies them
            return {
                "inventoryAdjustmentGroup": None,
                "userErrors": [{"field": ["input", *field], "code": code, "message": message}],
            }

        if input["name"] not in ("available", "on_hand"):
            return fail(
                ["name"], "INVALID_NAME", "The quantity name must be either 'available' or 'on_hand'."
            )
        if input["reason"] not in SET_REASONS:
            return fail(["reason"], "INVALID_REASON", "The specified reason is invalid.")
        changes, now = [], rest._iso(rest._now())
        for index, quantity in enumerate(input["quantities"]):
            path = ["quantities", str(index)]
            if "changeFromQuantity" not in quantity:
                return fail(
                    [*path, "changeFromQuantity"],
                    "COMPARE_QUANTITY_REQUIRED",
                    "changeFromQuantity is required: pass null to skip the compare check.",
                )
            item = self.store.get(
                "inventory_items", legacy_id(quantity["inventoryItemId"], "InventoryItem") or 0
            )
            if item is None:
                return fail(
                    [*path, "inventoryItemId"],
                    "INVALID_INVENTORY_ITEM",
                    "The specified inventory item could not be found.",
                )
            location_id = legacy_id(quantity["locationId"], "Location")
            if location_id is None or self.store.get("locations", location_id) is None:
                return fail(
                    [*path, "locationId"], "INVALID_LOCATION", "The specified location could not be found."
                )
            if not item["tracked"]:
                return fail(
                    [*path, "inventoryItemId"],
                    "NON_MUTABLE_INVENTORY_ITEM",
                    "The inventory item is not tracked.",
                )
            level = self.store.get("inventory_levels", rest._level_key(item["id"], location_id))
            before = level["available"] if level else 0
            if quantity["changeFromQuantity"] is not None and quantity["changeFromQuantity"] != before:
                return fail(
                    [*path, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                    "The changeFromQuantity argument no longer matches the persisted quantity.",
                )
            rest._put_level(self.store, item["id"], location_id, quantity["quantity"], now)
            rest._sync_variant_stock(self.store, item["id"], now)
            changes.append(
                {
                    "name": input["name"],
                    "delta": quantity["quantity"] - before,
                    "quantityAfterChange": quantity["quantity"],
                }
            )
        group = rest._new_id(self.store)
        db.session.flush()
        return {
            "inventoryAdjustmentGroup": {
                "id": gid("InventoryAdjustmentGroup", group),
                "reason": input["reason"],
                "changes": changes,
            },
            "userErrors": [],
        }


def _camel(name: str) -> str:
    head, *rest_parts = name.split("_")
    return head + "".join(p.capitalize() for p in rest_parts)
