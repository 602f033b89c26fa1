"""The Shopify sandbox's GraphQL Admin API as an app sees it over HTTP: data, cursor pagination, query cost
with extensions.cost, THROTTLED and MAX_COST_EXCEEDED errors (HTTP 200), ACCESS_DENIED, and 401 for a bad
token. Sources: shared/specs/shopify/graphql-admin/README.md (cost, throttling, pagination)."""

import uuid

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from portal.connectors.shopify import PAGE_SIZE, SCOPES, sandbox_settings
from portal.connectors.shopify_graphql import DOCUMENTS
from portal.extensions import db as _db
from portal.sandbox import shopify as sandbox
from portal.sandbox.shopify_graphql import MAX_COST, query_cost
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
URL = f"{SETTINGS['api_url']}/admin/api/2026-04/graphql.json"


@pytest.fixture
def gql(app, db, redis):
    token = sandbox.issue_token(scope=f"{SCOPES},read_all_orders")["access_token"]
    http = httpx.Client(transport=SandboxTransport(app), headers={"X-Shopify-Access-Token": token})

    def post(query, variables=None):
        response = http.post(URL, json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    yield post
    http.close()


def test_orders_page_by_cursor_with_page_info(gql):
    seen, after = [], None
    while True:
        body = gql(
            "query($after: String) { orders(first: 1, after: $after, sortKey: UPDATED_AT) {"
            " pageInfo { hasNextPage endCursor }"
            " nodes { id name updatedAt totalPriceSet { shopMoney { amount currencyCode } } } } }",
            {"after": after},
        )
        assert "errors" not in body, body
        page = body["data"]["orders"]
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 3 and len({o["id"] for o in seen}) == 3
    assert [o["updatedAt"] for o in seen] == sorted(o["updatedAt"] for o in seen)
    assert all(o["totalPriceSet"]["shopMoney"]["currencyCode"] == "DKK" for o in seen)
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 1 * (1 + 2)  # the connection, one order, its money bag
    assert cost["throttleStatus"]["maximumAvailable"] == 1000.0


def test_throttled_and_max_cost(app, gql):
    app.config["SANDBOX_SHOPIFY_GRAPHQL_BUCKET"] = (10, 0.001)
    try:
        first = gql("{ orders(first: 2) { nodes { id totalPriceSet { shopMoney { amount } } } } }")
        assert "errors" not in first and first["extensions"]["cost"]["requestedQueryCost"] == 2 + 2 * 3
        again = gql("{ orders(first: 2) { nodes { id totalPriceSet { shopMoney { amount } } } } }")
        assert again["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert again["extensions"]["cost"]["actualQueryCost"] is None
        assert "data" not in again
    finally:
        app.config.pop("SANDBOX_SHOPIFY_GRAPHQL_BUCKET")
    huge = gql("{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }")
    assert huge["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_errors_as_shopify_returns_them(app, db, gql):
    unsized = gql("{ orders { nodes { id } } }")
    assert unsized["errors"][0]["message"] == "you must provide one of first or last"
    assert "errors" in gql("{ orders(first: 1) { nodes { nope } } }")
    limited = sandbox.issue_token(scope="read_orders")["access_token"]
    with httpx.Client(transport=SandboxTransport(app)) as http:
        denied = http.post(
            URL,
            json={"query": "{ productVariants(first: 1) { nodes { id } } }"},
            headers={"X-Shopify-Access-Token": limited},
        ).json()
        assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        bad = http.post(URL, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": "nope"})
        assert bad.status_code == 401 and "Invalid API key" in bad.json()["errors"]


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_connector_document_stays_under_the_single_query_limit(name):
    document = parse(DOCUMENTS[name])
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    assert 0 < query_cost(document, operation, {"first": PAGE_SIZE}) <= MAX_COST


def test_inventory_set_quantities_is_all_or_nothing_and_wants_change_from_quantity_said(gql):
    store = sandbox._store(sandbox.DEMO_SHOP)
    items = {v["sku"]: v["inventory_item_id"] for v in store.all("variants")}
    location = sandbox._store(sandbox.DEMO_SHOP).get("_meta", "shop")["primary_location_id"]
    mutation = (
        "mutation($input: InventorySetQuantitiesInput!, $key: String!) {"
        " inventorySetQuantities(input: $input) @idempotent(key: $key) {"
        " inventoryAdjustmentGroup { changes { name delta quantityAfterChange } }"
        " userErrors { field code } } }"
    )

    def change(sku, quantity, **extra):
        return {
            "inventoryItemId": f"gid://shopify/InventoryItem/{items[sku]}",
            "locationId": f"gid://shopify/Location/{location}",
            "quantity": quantity,
            **extra,
        }

    def run(*quantities, reason="correction", key=None):
        variables = {
            "input": {"name": "available", "reason": reason, "quantities": list(quantities)},
            "key": key or str(uuid.uuid4()),
        }
        return gql(mutation, variables)["data"]["inventorySetQuantities"]

    def stock(sku):
        _db.session.expire_all()
        return next(v for v in store.all("variants") if v["sku"] == sku)["inventory_quantity"]

    before = stock("TS-ØKO_S")
    refused = run(change("TS-ØKO_S", 3, changeFromQuantity=None), change("TS-ØKO_M", 4))
    assert refused["userErrors"] == [
        {"field": ["input", "quantities", "1", "changeFromQuantity"], "code": "COMPARE_QUANTITY_REQUIRED"}
    ]
    assert stock("TS-ØKO_S") == before  # the first quantity was not applied either
    stale = run(change("TS-ØKO_S", 3, changeFromQuantity=before + 1))
    assert stale["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert run(change("TS-ØKO_S", 3, changeFromQuantity=None), reason="because")["userErrors"][0]["code"] == (
        "INVALID_REASON"
    )
    done = run(change("TS-ØKO_S", 3, changeFromQuantity=before), key="set-1")
    assert done["userErrors"] == [] and stock("TS-ØKO_S") == 3
    assert done["inventoryAdjustmentGroup"]["changes"][0]["quantityAfterChange"] == 3
    # The same key again (a retry): the first answer, not applied twice; with other input: refused.
    assert run(change("TS-ØKO_S", 3, changeFromQuantity=before), key="set-1") == done
    other = run(change("TS-ØKO_S", 5, changeFromQuantity=None), key="set-1")
    assert other["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH" and stock("TS-ØKO_S") == 3
    variables = {
        "input": {
            "name": "available",
            "reason": "correction",
            "quantities": [change("TS-ØKO_S", 1, changeFromQuantity=None)],
        }
    }
    unkeyed = gql(mutation.replace(" @idempotent(key: $key)", "").replace(", $key: String!", ""), variables)
    assert unkeyed["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and stock("TS-ØKO_S") == 3
