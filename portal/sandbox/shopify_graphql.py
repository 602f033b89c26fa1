"""The Shopify sandbox's GraphQL Admin API: POST /admin/api/<version>/graphql.json.

The schema is our own subset of Shopify's 2026-04 Admin schema (shopify_admin.graphql, checked against the
published schema by a contract test), executed with graphql-core over the same store the REST paths use
(REST-shaped documents, turned into GraphQL objects here). What follows Shopify's documentation:
- 401 with REST's error body for a bad token; everything else is HTTP 200 with `errors` and/or `data`.
- Query cost (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): scalars and enums 0, objects 1,
  a connection 2 + `first`/`last` × its nodes' cost, a mutation 10. The requested cost must be in the
  bucket before the query runs (else THROTTLED, nothing run); the bucket is refunded the difference to the
  actual cost (connections counted at the number of nodes returned). A single query may cost at most 1000
  (MAX_COST_EXCEEDED). Every answer carries extensions.cost with the throttleStatus.
- Connections need `first` or `last` (at most 250) and page by opaque cursors with pageInfo.
- A field the token has no scope for is null with an ACCESS_DENIED error.
"""

import base64
import json
from pathlib import Path

from flask import current_app, request
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationType,
    build_schema,
    execute,
    get_named_type,
    parse,
    validate,
    value_from_ast,
)
from graphql.language import OperationDefinitionNode

from portal.extensions import db
from portal.redis_client import get_redis
from portal.sandbox import shopify as rest

SCHEMA = build_schema((Path(__file__).with_name("shopify_admin.graphql")).read_text(encoding="utf-8"))
MAX_PAGE = 250
MAX_COST = 1000
MUTATION_COST = 10
DOCS = "https://shopify.dev/api/usage/rate-limits"
# (maximumAvailable, restoreRate per second): the figures of Shopify's client README example.
DEFAULT_BUCKET = (1000, 50.0)

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate_per_ms = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'available', 'at')
local available = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
available = math.min(capacity, available + (now - at) * rate_per_ms)
local admitted = 0
if cost <= available then
  available = available - cost
  admitted = 1
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate_per_ms) + 1000)
return {admitted, tostring(available)}
"""


def _bucket() -> tuple[int, float]:
    return current_app.config.get("SANDBOX_SHOPIFY_GRAPHQL_BUCKET", DEFAULT_BUCKET)


def _take(token: dict, cost: int) -> tuple[bool, float]:
    """Take `cost` points from the app's bucket for this shop (a negative cost is a refund)."""
    capacity, rate = _bucket()
    script = get_redis().register_script(_TAKE)
    key = f"bogbro:sandbox:shopify:graphql:{token['shop']}:{token['client_id']}"
    admitted, available = script(keys=[key], args=[capacity, rate / 1000, cost])
    return bool(int(admitted)), float(available)


def _cost_extension(requested: int, actual: int | None, available: float) -> dict:
    capacity, rate = _bucket()
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": float(capacity),
                "currentlyAvailable": int(available),
                "restoreRate": float(rate),
            },
        }
    }


# --- query cost ---------------------------------------------------------------------------------------------


def _page_size(field: FieldNode, definition, variables: dict) -> int:
    args = {a.name.value: a.value for a in field.arguments or []}
    for name in ("first", "last"):
        if name in args:
            value = value_from_ast(args[name], definition.args[name].type, variables)
            return max(0, int(value or 0))
    return 1


def _selection_cost(selection_set, parent: GraphQLObjectType, fragments, variables, data) -> int:
    total = 0
    for selection in selection_set.selections if selection_set else []:
        if isinstance(selection, FieldNode):
            total += _field_cost(selection, parent, fragments, variables, data)
        else:  # inline fragment or fragment spread: counted in full (an upper bound)
            fragment = (
                selection if isinstance(selection, InlineFragmentNode) else fragments[selection.name.value]
            )
            condition = fragment.type_condition
            target = SCHEMA.get_type(condition.name.value) if condition else parent
            total += _selection_cost(fragment.selection_set, target, fragments, variables, data)
    return total


def _field_cost(field: FieldNode, parent, fragments, variables, data) -> int:
    """Requested cost when `data` is None, else the actual cost of `data` (the parent's answer)."""
    name = field.name.value
    if name.startswith("__"):
        return 0
    definition = parent.fields[name]
    named = get_named_type(definition.type)
    in_connection = parent.name.endswith("Connection")
    if not isinstance(named, GraphQLObjectType) or (in_connection and name == "pageInfo"):
        return 0
    actual = data is not None
    value = data.get(field.alias.value if field.alias else name) if actual else None
    if actual and value is None:
        return 0

    def inner(item):
        return _selection_cost(field.selection_set, named, fragments, variables, item)

    if named.name.endswith("Connection"):
        return 2 + (inner(value) if actual else _page_size(field, definition, variables) * inner(None))
    nullable = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
    if isinstance(nullable, GraphQLList):
        own = 0 if in_connection and name == "edges" else 1  # an edge is free, its node counts
        if actual:
            return sum(own + inner(item) for item in value)
        return _page_size(field, definition, variables) * (own + inner(None))
    return 1 + inner(value)


def query_cost(document, operation: OperationDefinitionNode, variables: dict, data=None) -> int:
    """The requested cost (data None) or the actual cost of the answer `data`."""
    fragments = {d.name.value: d for d in document.definitions if not isinstance(d, OperationDefinitionNode)}
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * len(operation.selection_set.selections)
    return _selection_cost(operation.selection_set, SCHEMA.query_type, fragments, variables, data)


# --- the endpoint ------------------------------------------------------------------------------------------


def _error(message: str, code: str | None = None, **extensions) -> dict:
    error = {"message": message}
    if code:
        error["extensions"] = {"code": code, **extensions}
    return error


def _operation(document, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


@rest.bp.post("/admin/api/<version>/graphql.json")
def graphql(version: str):
    if not rest.API_VERSION.match(version):
        return rest._json({"errors": "Not Found"}, 404)
    try:
        token = rest._token()
    except rest.ApiError as error:
        return rest._json({"errors": error.errors}, error.status)
    rest.seed(token["shop"])
    body, status = answer(token, rest._store(token["shop"]), version)
    return rest._json(body, status, {"X-Shopify-API-Version": version})


def answer(token: dict, store, version: str) -> tuple[dict, int]:
    """One GraphQL request from an app whose token is valid."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return {"errors": [_error("No query string was present")]}, 400
    variables = payload.get("variables") or {}
    try:
        document = parse(payload["query"])
    except GraphQLError as exc:
        return {"errors": [exc.formatted]}, 200
    problems = validate(SCHEMA, document)
    if problems:
        return {"errors": [p.formatted for p in problems]}, 200
    operation = _operation(document, payload.get("operationName"))
    if operation is None:
        return {"errors": [_error("An operation name is required")]}, 200
    try:
        requested = query_cost(document, operation, variables)
    except (GraphQLError, KeyError, TypeError, ValueError):
        requested = MAX_COST
    if requested > MAX_COST:
        message = f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_COST})."
        error = _error(message, "MAX_COST_EXCEEDED", cost=requested, maxCost=MAX_COST, documentation=DOCS)
        return {"errors": [error]}, 200
    admitted, available = _take(token, requested)
    if not admitted:
        return {
            "errors": [_error("Throttled", "THROTTLED", documentation=DOCS)],
            "extensions": _cost_extension(requested, None, available),
        }, 200
    from portal.sandbox.shopify_resolvers import Root

    result = execute(
        SCHEMA,
        document,
        root_value=Root(token, store),
        context_value={"token": token, "version": version},
        variable_values=variables,
        operation_name=payload.get("operationName"),
    )
    if operation.operation == OperationType.MUTATION and not result.errors:
        db.session.commit()
    else:
        db.session.rollback()
    actual = requested
    if operation.operation != OperationType.MUTATION and result.data is not None:
        actual = min(requested, query_cost(document, operation, variables, result.data))
    if actual < requested:
        _, available = _take(token, actual - requested)
    body = {}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    body["data"] = result.data
    body["extensions"] = _cost_extension(requested, actual, available)
    return body, 200


# --- cursors and connections ---------------------------------------------------------------------------


def encode_cursor(key) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(value: str):
    try:
        return json.loads(base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode()))
    except (ValueError, UnicodeDecodeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {value}") from None


def connection(items: list, key, *, first=None, last=None, after=None, before=None, reverse=False, **_):
    """A Relay connection over `items` sorted by `key(item)` (unique per item)."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE:
            raise GraphQLError(f"The value of {name} must be between 0 and {MAX_PAGE}.")
    ordered = sorted(items, key=key, reverse=bool(reverse))
    keys = [key(item) for item in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        anchor = decode_cursor(after)
        start = next((i for i, k in enumerate(keys) if (k < anchor if reverse else k > anchor)), len(keys))
    if before is not None:
        anchor = decode_cursor(before)
        end = next((i for i, k in enumerate(keys) if (k <= anchor if reverse else k >= anchor)), len(keys))
    window = list(range(start, max(start, end)))
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    nodes = [ordered[i] for i in window]
    cursors = [encode_cursor(keys[i]) for i in window]
    return {
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < len(ordered) - 1,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def timestamp(text: str | None) -> float:
    return rest._parse_time(text).timestamp() if text else 0.0
