"""The Stripe sandbox against Stripe's published contract.

Stripe's OpenAPI document is the source of both halves. Paths: stripe-python's services are "generated from
our OpenAPI spec", one `_request(method, "/v1/…")` per operation, so every path and method the sandbox
answers must be one of theirs. Fields: the library's resource classes are generated from the same spec's
schemas, so every field the sandbox returns, nested ones too, must be an attribute of the class for its
`object`; and the top-level fields of invoices, subscriptions and credit notes must occur in the OpenAPI
fixtures (stripe/openapi `fixtures3.json`) in ../shared/specs/stripe.
"""

import importlib
import json
import re
import typing
from pathlib import Path

import httpx
import pytest
import stripe
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject

from portal.sandbox.stripe import DEMO_KEY
from tests.conftest import SPECS
from tests.sandbox_stripe.conftest import DAY, START, api, clock, plan, subscribe  # noqa: F401 (fixtures)

FIXTURES = SPECS / "stripe" / "openapi-fixtures3.json"
LIBRARY = Path(stripe.__file__).parent


def _generic(path: str) -> str:
    return re.sub(r"\{[^}]+\}|<[^>]+>", "{}", path)


def test_every_path_and_method_the_sandbox_answers_is_in_stripes_api(app):
    operations = set()
    for source in LIBRARY.rglob("_*_service.py"):
        text = source.read_text()
        for method, path in re.findall(r'"(get|post|delete)",\s*"(/v1/[^"]+)"', text):
            operations.add((method.upper(), _generic(path)))
    answered = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sandbox_stripe.") and rule.endpoint != "sandbox_stripe.unrecognized":
            path = _generic(rule.rule.removeprefix("/sandbox/stripe"))
            answered |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(answered) > 50
    assert answered - operations == set(), "answered by the sandbox but not in Stripe's API"


def _operations_and_their_parameters() -> dict[tuple[str, str], set[str]]:
    """(METHOD, /v1/path) → the parameters stripe-python's generated `…Params` type for it names."""
    found = {}
    for source in LIBRARY.rglob("_*_service.py"):
        text = source.read_text()
        modules = {  # each Params type → the module the service imports it from
            name: module
            for module, grouped, single in re.findall(
                r"from (stripe\.params[\w.]*) import (?:\(([^)]*)\)|(\w+))", text
            )
            for name in re.findall(r"\w+Params", grouped or single)
        }
        for block in re.split(r"\n    (?:async )?def ", text)[1:]:
            request = re.search(r'"(get|post|delete)",\s*"(/v1/[^"]+)"', block)
            typed = re.search(r'params: (?:Optional\[)?"(\w+Params)"', block)
            if request and typed:
                params = getattr(importlib.import_module(modules[typed.group(1)]), typed.group(1))
                found[(request.group(1).upper(), _generic(request.group(2)))] = set(params.__annotations__)
    return found


def test_every_parameter_the_sandbox_takes_is_one_stripe_takes(app):
    operations = _operations_and_their_parameters()
    invented = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "stripe_params"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            key = (method, _generic(rule.rule.removeprefix("/sandbox/stripe")))
            extra = set(view.stripe_params) - operations.get(key, set())
            if extra:
                invented[key] = sorted(extra)
    assert invented == {}, sorted(invented.items())


def _nested_class(annotation):
    """The StripeObject subclass an annotation holds (Optional[X], List[X], X), if it is a nested one."""
    if isinstance(annotation, type) and issubclass(annotation, StripeObject):
        return annotation
    for argument in typing.get_args(annotation):
        found = _nested_class(argument)
        if found is not None:
            return found
    return None


def _resource(object_name: str):
    module, name = OBJECT_CLASSES[object_name]
    return getattr(__import__(module, fromlist=[name]), name)


def _unknown_fields(document: dict, cls, where: str) -> list[str]:
    """Fields of `document` that `cls` (generated from Stripe's schema) does not have, recursively."""
    kind = document.get("object") if isinstance(document.get("object"), str) else None
    if kind and kind != "list" and cls is None:
        cls = _resource(kind)
    if kind == "list":  # basil dropped total_count from lists
        extra = [f"{where}.{key}" for key in document if key not in ("object", *ListObject.__annotations__)]
        return extra + [
            f for item in document["data"] for f in _unknown_fields(item, None, f"{where}.data[]")
        ]
    hints = {}
    for klass in reversed(cls.__mro__):
        hints.update(getattr(klass, "__annotations__", {}))
    unknown = []
    for key, value in document.items():
        if key == "object" and kind:
            continue
        if key not in hints:
            unknown.append(f"{where}.{key}")
            continue
        if key == "metadata" or value is None:
            continue
        inner = _nested_class(hints[key])
        for element in value if isinstance(value, list) else [value]:
            if isinstance(element, dict):
                typed = isinstance(element.get("object"), str)
                if not typed and inner is None:
                    continue  # a free-form hash in the schema
                own = None if typed else inner
                unknown += _unknown_fields(element, own, f"{where}.{key}")
    return unknown


LISTS = {  # every kind of object the sandbox makes, listed with what is expandable expanded
    "customers": [],
    "products": [],
    "prices": [],
    "tax_rates": [],
    "payment_methods": [],
    "subscriptions": ["data.discounts"],
    "invoices": ["data.payments", "data.discounts"],
    "invoiceitems": [],
    "invoice_payments": [],
    "charges": [],
    "refunds": [],
    "credit_notes": [],
    "events": [],
    "webhook_endpoints": [],
    "test_helpers/test_clocks": [],
}


@pytest.fixture
def everything(api, clock, plan, live_server):  # noqa: F811 (the fixtures imported above)
    """One of each: a subscription with a coupon, a proration, a renewal, a refund, a credit note."""
    api.v1.coupons.create({"id": "HALV", "percent_off": 50, "duration": "repeating", "duration_in_months": 3})
    api.v1.webhook_endpoints.create({"url": f"{live_server}/nowhere", "enabled_events": ["invoice.paid"]})
    customer, subscription = subscribe(api, clock, plan, discounts=[{"coupon": "HALV"}])
    api.v1.customers.tax_ids.create(customer.id, {"type": "eu_vat", "value": "DK13585628"})
    item = subscription["items"].data[0]
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": START + 10 * DAY})
    api.v1.subscriptions.update(subscription.id, {"items": [{"id": item.id, "quantity": 2}]})
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": item.current_period_end + 2 * 3600})
    invoice = api.v1.invoices.retrieve(subscription.latest_invoice)
    api.v1.credit_notes.create(
        {
            "invoice": invoice.id,
            "refund_amount": 1000,
            "lines": [
                {"type": "invoice_line_item", "invoice_line_item": invoice.lines.data[0].id, "amount": 800}
            ],
        }
    )
    listed = {}
    headers = {"Authorization": f"Bearer {DEMO_KEY}"}
    for resource, expand in LISTS.items():
        params = {"limit": 100, **{f"expand[{i}]": path for i, path in enumerate(expand)}}
        response = httpx.get(f"{live_server}/sandbox/stripe/v1/{resource}", params=params, headers=headers)
        assert response.status_code == 200, response.text
        listed[resource] = response.json()["data"]
        assert listed[resource], f"no {resource} made"
    listed["subscription_items"] = httpx.get(
        f"{live_server}/sandbox/stripe/v1/subscription_items",
        params={"subscription": subscription.id},
        headers=headers,
    ).json()["data"]
    listed["tax_ids"] = httpx.get(
        f"{live_server}/sandbox/stripe/v1/customers/{customer.id}/tax_ids", headers=headers
    ).json()["data"]
    listed["coupon"] = [httpx.get(f"{live_server}/sandbox/stripe/v1/coupons/HALV", headers=headers).json()]
    return listed


def test_the_field_check_finds_a_field_stripe_does_not_have():
    line = {"object": "line_item", "amount": 1, "pricing": {"type": "price_details", "unit_price": 1}}
    invoice = {"object": "invoice", "total": 1, "vat": 1, "lines": {"object": "list", "data": [line]}}
    assert _unknown_fields(invoice, None, "invoice") == [
        "invoice.vat",
        "invoice.lines.data[].pricing.unit_price",
    ]


def test_every_field_the_sandbox_returns_is_in_stripes_schema(everything):
    unknown = [
        field
        for documents in everything.values()
        for d in documents
        for field in _unknown_fields(d, None, d["object"])
    ]
    assert sorted(set(unknown)) == []
    events = {e["type"] for e in everything["events"]}
    assert {
        "invoice.paid",
        "invoice.finalized",
        "customer.subscription.updated",
        "credit_note.created",
    } <= events
    for event in everything["events"]:
        assert _unknown_fields(event["data"]["object"], None, event["type"]) == []


@pytest.mark.skipif(not FIXTURES.is_file(), reason=f"Stripe's OpenAPI fixtures are not at {FIXTURES}")
def test_invoices_subscriptions_and_credit_notes_have_the_fields_of_stripes_fixtures(everything):
    resources = json.loads(FIXTURES.read_text())["resources"]
    for listing, name in (
        ("invoices", "invoice"),
        ("subscriptions", "subscription"),
        ("credit_notes", "credit_note"),
    ):
        for document in everything[listing]:
            assert set(document) - set(resources[name]) - {"payments"} == set(), name
            if name == "invoice":
                for line in document["lines"]["data"]:
                    assert set(line) <= set(resources["line_item"])
            if name == "credit_note":
                for line in document["lines"]["data"]:
                    assert set(line) <= set(resources["credit_note_line_item"])
