"""The Shopify connector and sandbox against Shopify's published GraphQL Admin API schema, version 2026-04
(../shared/specs/shopify/graphql-admin/2026-04.schema.graphql: Shopify's introspection rendered as SDL, from
ShopifySharp's graphql-schemas/; see that folder's README for provenance).

- Every document the connector sends validates against the real schema with graphql-core (zero errors).
- Every type, field, argument, input field and enum value of the sandbox's own schema subset
  (portal/sandbox/shopify_admin.graphql) exists in the real schema with the same type: the sandbox cannot
  accept a query, an argument or a value that Shopify would refuse.
"""

from functools import cache

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    parse,
    validate,
)

from portal.connectors.shopify import API_VERSION
from portal.connectors.shopify_graphql import DOCUMENTS
from portal.sandbox.shopify_graphql import SCHEMA as SANDBOX_SCHEMA
from tests.conftest import SPECS

SCHEMA_FILE = SPECS / "shopify" / "graphql-admin" / f"{API_VERSION}.schema.graphql"


@cache
def _real() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shopify_schema():
    if not SCHEMA_FILE.is_file():
        pytest.skip(f"Shopify's GraphQL Admin schema is not at {SCHEMA_FILE} (the shared/specs folder)")
    return _real()


def differences(ours: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """What our schema has that the real one does not have in the same form."""
    found = []
    for directive in ours.directives:
        real_directive = real.get_directive(directive.name)
        if real_directive is None:
            found.append(f"@{directive.name} is not a directive")
            continue
        for arg_name, arg in directive.args.items():
            if arg_name not in real_directive.args or str(real_directive.args[arg_name].type) != str(
                arg.type
            ):
                found.append(f"@{directive.name}({arg_name}) differs at Shopify")
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        real_type = real.type_map.get(name)
        if real_type is None:
            found.append(f"type {name} is not in Shopify's schema")
            continue
        if type(real_type) is not type(ours_type):
            found.append(f"{name} is a {type(real_type).__name__} at Shopify")
            continue
        if isinstance(ours_type, GraphQLEnumType):
            found += [f"{name}.{v} is not a value" for v in ours_type.values if v not in real_type.values]
        if isinstance(ours_type, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in ours_type.fields.items():
                real_field = real_type.fields.get(field_name)
                if real_field is None:
                    found.append(f"{name}.{field_name} is not a field")
                    continue
                if str(real_field.type) != str(field.type):
                    found.append(f"{name}.{field_name} is {real_field.type} at Shopify, not {field.type}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    real_arg = real_field.args.get(arg_name)
                    if real_arg is None:
                        found.append(f"{name}.{field_name}({arg_name}) is not an argument")
                    elif str(real_arg.type) != str(arg.type):
                        found.append(f"{name}.{field_name}({arg_name}) is {real_arg.type} at Shopify")
    return found


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_connector_document_is_valid_at_shopify_and_in_the_sandbox(shopify_schema, name):
    document = parse(DOCUMENTS[name])
    assert [error.message for error in validate(shopify_schema, document)] == []
    assert [error.message for error in validate(SANDBOX_SCHEMA, document)] == []


def test_the_sandbox_schema_is_a_subset_of_shopifys(shopify_schema):
    assert differences(SANDBOX_SCHEMA, shopify_schema) == []


def test_the_comparisons_catch_drift(shopify_schema):
    drifted = build_schema(
        """
        schema { query: QueryRoot }
        type QueryRoot { order(id: ID!, status: String): Order  orders(first: String): OrderConnection! }
        type Order { id: ID!  totalPrice: Float  name: String! }
        type OrderConnection { nodes: [Order!]! }
        enum OrderSortKeys { UPDATED_AT NEWEST }
        directive @idempotent(key: ID) on FIELD
        type Nonsense { id: ID! }
        """
    )
    assert sorted(differences(drifted, shopify_schema)) == sorted(
        [
            "QueryRoot.order(status) is not an argument",
            "QueryRoot.orders(first) is Int at Shopify",
            "Order.totalPrice is Money! at Shopify, not Float",
            "OrderSortKeys.NEWEST is not a value",
            "type Nonsense is not in Shopify's schema",
            "@idempotent(key) differs at Shopify",
        ]
    )
    wrong = parse("query { orders(first: 5, sortKey: NEWEST) { nodes { id grandTotal } } }")
    assert len(validate(shopify_schema, wrong)) == 2
