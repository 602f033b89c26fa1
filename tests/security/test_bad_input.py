"""No 500 on bad input: ids too big for the database in paths and query strings, and shop addresses httpx
cannot even parse. Every `<int:…>` route is found in app.url_map, so a new route is covered by itself."""

import re

import pytest
from werkzeug.routing import IntegerConverter

from portal.ids import MAX_ID
from tests.conftest import login

HUGE = 2**64  # 20 digits: above any BIGINT (SQLite's OverflowError)
# Sample values for the routes' other (non-int) parts, so the id is what the view trips over.
SAMPLES = {"section": "systems", "source": "woocommerce", "system_key": "e-conomic", "token": "x"}


def int_routes(app):
    for rule in app.url_map.iter_rules():
        ints = [
            name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)
        ]
        if ints:
            yield rule, ints


def path_for(rule, value) -> str:
    def part(match):
        name = match.group(2)
        return str(value) if name in rule._converters and match.group(1) == "int" else SAMPLES.get(name, "x")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", part, rule.rule)


def methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


@pytest.fixture
def clients(app, owner, staff):
    owner_client, staff_client = app.test_client(), app.test_client()
    login(owner_client, owner.email)
    login(staff_client, staff.email)
    return {"owner": owner_client, "staff": staff_client}


def test_the_walk_finds_the_int_routes(app):
    endpoints = {rule.endpoint for rule, _ in int_routes(app)}
    assert {"transfers.detail", "shops.link", "support.account", "account.revoke_invitation"} <= endpoints
    assert len([e for e in endpoints if not e.startswith("sandbox")]) >= 14


def test_every_int_route_refuses_an_id_above_any_database_id(app, clients):
    for rule, _ in int_routes(app):
        path = path_for(rule, HUGE)
        for method in methods(rule):
            for who, client in clients.items():
                response = client.open(path, method=method)
                # 405: the path matches another route (a string part) that takes other methods
                assert response.status_code in (404, 405), f"{who} {method} {path}: {response.status_code}"


@pytest.mark.parametrize("number", [MAX_ID, MAX_ID + 1], ids=["2^31-1", "2^31"])
def test_every_int_route_copes_with_the_largest_id(app, clients, number):
    """MAX_ID reaches the database (it fits our INTEGER ids): nothing there, so 404 — or a redirect/403 from a
    view that checks something else first — but never 500. One more is past PostgreSQL's integer: it raised
    "integer out of range" there, so it must stop before the database."""
    for rule, _ in int_routes(app):
        if rule.endpoint.startswith("sandbox"):
            continue  # the vendor emulators answer in their vendors' own ways
        path = path_for(rule, number)
        for method in methods(rule):
            for who, client in clients.items():
                response = client.open(path, method=method)
                assert response.status_code in (302, 400, 403, 404, 405), f"{who} {method} {path}"


@pytest.mark.parametrize(
    "value", [str(HUGE), str(MAX_ID), str(MAX_ID + 1), "9" * 400, "²", "１２", "-1", "1e3", " 7 "]
)
def test_int_query_arguments_are_ignored_when_they_cannot_be_ids(app, clients, value):
    owner, staff = clients["owner"], clients["staff"]
    for name in ("before", "after", "source_link"):
        assert owner.get("/transfers", query_string={name: value}).status_code == 200, name
    assert owner.get("/transfers/preview", query_string={"source_link": value}).status_code in (200, 404)
    for name in ("system_id", "feature_id"):
        response = staff.get("/support/catalogue/caveats/new", query_string={name: value})
        assert response.status_code in (200, 404), name
