"""The Dinero sandbox and connector against Dinero's official OpenAPI document (../shared/specs/dinero).

Every request body the connector sends and every response body the sandbox answers is validated with
JSON Schema 2020-12 (OpenAPI 3.1) against the operation the real API documents for that method and path.
A sandbox that drifts from the published contract fails here.

One documented relaxation: list endpoints answer only the properties asked for with `fields=` (Dinero's
own parameter description), so for such answers an item's `required` list is cut to the fields asked for.
"""

import copy
import json
import re
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.dinero import CONNECTOR, PATHS, sandbox_settings
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    ProductData,
    Voucher,
    VoucherLine,
)
from portal.sandbox import dinero as sandbox
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import SPECS

OPENAPI = SPECS / "dinero" / "openapi.json"
EXTRACT = SPECS / "dinero" / "dinero-api-extract.derived.json"
BASE = "urn:dinero:openapi"
PREFIX = "/sandbox/dinero"
ORG = str(sandbox.PRO_ORG)

pytestmark = pytest.mark.skipif(
    not OPENAPI.exists(),
    reason=f"Dinero's OpenAPI document is not at {OPENAPI} (the shared specs folder beside the repository)",
)


class Contract:
    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resource(BASE, DRAFT202012.create_resource(document))
        self.operations = []  # (method, template, regex, literal segments, operation)
        for template, methods in document["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            literals = sum(1 for part in template.split("/") if part and not part.startswith("{"))
            for method, operation in methods.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    self.operations.append(
                        (method.upper(), template, re.compile(pattern), literals, operation)
                    )

    def operation(self, method: str, path: str):
        found = [op for op in self.operations if op[0] == method and op[2].match(path)]
        if not found:
            return None
        return max(found, key=lambda op: op[3])  # the most specific template wins

    def schema(self, name: str) -> dict:
        return self.document["components"]["schemas"][name]

    def _absolute(self, schema):
        if isinstance(schema, dict):
            return {
                key: (BASE + value if key == "$ref" and value.startswith("#") else self._absolute(value))
                for key, value in schema.items()
            }
        if isinstance(schema, list):
            return [self._absolute(item) for item in schema]
        return schema

    def errors(self, schema: dict, instance) -> list[str]:
        validator = Draft202012Validator(
            self._absolute(schema), registry=self.registry, format_checker=FormatChecker()
        )
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
        ]

    def model(self, schema: dict) -> str | None:
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
        return ref.rsplit("/", 1)[-1] if ref else None

    def response_errors(self, operation: dict, body, fields: list[str] | None) -> list[str]:
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        if not fields:
            return self.errors(schema, body)
        # fields= selection: validate the envelope, then each item against its model with `required`
        # cut to the fields asked for.
        name = self.model(schema)
        model = self.schema(name)
        items = body
        problems = []
        if "Collection" in model.get("properties", {}):
            envelope = copy.deepcopy(model)
            envelope["properties"]["Collection"] = {"type": ["null", "array"]}
            problems += self.errors(envelope, body)
            name = self.model(model["properties"]["Collection"])
            items = body.get("Collection") or []
        else:
            problems += self.errors({"type": "array"}, body)
        item_schema = copy.deepcopy(self.schema(name))
        wanted = {field.lower() for field in fields}
        item_schema["required"] = [r for r in item_schema.get("required", []) if r.lower() in wanted]
        canonical = {key.lower(): key for key in item_schema["properties"]}
        for index, item in enumerate(items):
            # Answered in the casing asked for: compare under the model's own property names.
            named = {canonical.get(key.lower(), key): value for key, value in item.items()}
            problems += [f"[{index}] {p}" for p in self.errors(item_schema, named)]
        return problems

    def request_errors(self, operation: dict, body) -> list[str]:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        return self.errors(schema, body)


@pytest.fixture(scope="module")
def contract():
    return Contract(json.loads(OPENAPI.read_text()))


class Recorder(SandboxTransport):
    """The in-process sandbox transport, keeping every exchange for the contract check."""

    def __init__(self, app):
        super().__init__(app)
        self.exchanges = []

    def handle_request(self, request):
        response = super().handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def check(contract: Contract, exchanges) -> tuple[set, list[str]]:
    covered, problems = set(), []
    for request, response in exchanges:
        path = request.url.path
        if not path.startswith(f"{PREFIX}/v"):
            continue  # the OAuth endpoints are Visma Connect's, not in Dinero's document
        path = path[len(PREFIX) :]
        found = contract.operation(request.method, path)
        where = f"{request.method} {path}"
        if found is None:
            problems.append(f"{where}: not an operation of Dinero's API")
            continue
        method, template, _, _, operation = found
        covered.add((method, template))
        if request.content and "requestBody" in operation:
            problems += [
                f"{where} request: {p}"
                for p in contract.request_errors(operation, json.loads(request.content))
            ]
        content_type = response.headers.get("content-type", "")
        if response.status_code == 200 and content_type.startswith("application/json"):
            if "application/json" not in operation["responses"]["200"].get("content", {}):
                problems.append(f"{where}: answers JSON where the document declares no body")
                continue
            fields = parse_qs(urlsplit(str(request.url)).query).get("fields")
            default = next(
                (
                    p["schema"].get("default")
                    for p in operation.get("parameters", [])
                    if p["name"] == "fields"
                ),
                None,
            )
            fields = fields[0] if fields else default
            fields = [f.strip() for f in fields.split(",")] if fields else None
            problems += [
                f"{where} response: {p}" for p in contract.response_errors(operation, response.json(), fields)
            ]
    return covered, problems


def connector(app, redis, transport, tokens):
    settings = sandbox_settings(IN_PROCESS_ORIGIN)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": 2**31,
    }
    return CONNECTOR(
        ConnectorContext(
            base_url=settings["api_url"],
            credentials=StaticCredentials(credentials),
            external_id=ORG,
            transport=transport,
            redis=redis,
            settings=settings,
            sleep=lambda seconds: None,
        )
    )


def run_every_connector_operation(dinero):
    dinero.list_organisations()
    dinero.verify()
    for kind in ("layouts", "payment_terms", "accounts", "deposit_accounts", "vat_codes"):
        dinero.list_choices(kind)
    buyer = dinero.create_customer(
        CustomerData(
            name="Kaffe & Kage ApS",
            country="DK",
            zone="domestic",
            email="bogholderi@kaffekage.dk",
            is_company=True,
            vat_number="DK29403473",
            ean="5798000012345",
            address="Nørregade 1",
            postcode="1165",
            city="København K",
            phone="+45 70 12 34 56",
            external_reference="wc-customer-1",
            payment_terms="Netto:14",
        )
    )
    dinero.find_customer("email", "bogholderi@kaffekage.dk")
    dinero.update_customer(buyer, CustomerData(name="Kaffe og Kage ApS", country="DK", zone="domestic"))
    product = dinero.create_product(
        ProductData(
            number="MUG'1", name="Krus", unit_net_price=Decimal("79.20"), account="1000", unit="parts"
        )
    )
    dinero.find_product("MUG'1")
    dinero.update_product(
        product, ProductData(number="MUG'1", name="Krus", unit_net_price=Decimal(80), account="1000")
    )
    lines = [
        InvoiceLine("Krus", Decimal(3), Decimal("33.333"), account="1000", discount_percent=Decimal("12.5")),
        InvoiceLine("Fragt", Decimal(1), Decimal("39.20"), account="1300"),
    ]
    invoice = DraftInvoice(
        reference="WC-1",
        customer=buyer,
        date=date.today(),
        lines=lines,
        payment_terms="Netto:8",
        heading="Ordre 1",
    )
    dinero.preview_totals(invoice)
    created = dinero.create_draft_invoice(invoice)
    dinero.create_draft_invoice(invoice)  # the replay: refused by Guid, then read
    dinero.find_invoice("WC-1")
    booked = dinero.book_invoice(created)
    dinero.register_payment(PaymentData(booked, booked.totals.gross, date.today(), "pay-1", account="55010"))
    dinero.send_invoice_email(booked, "kunde@example.dk", "Faktura", "Tak")
    credit = DraftInvoice(
        reference="WC-1-R", customer=buyer, date=date.today(), lines=lines[:1], credit_for=booked
    )
    dinero.preview_totals(credit)
    credited = dinero.book_invoice(dinero.create_credit_note(credit))
    dinero.register_refund_payment(
        PaymentData(credited, credited.totals.gross, date.today(), "refund-1", account="55010")
    )
    dinero.customer_balance(buyer.id)  # GET /v1/{org}/state-of-account/{guid}
    dinero.send_invoice_email(credited, "kunde@example.dk", "Kreditnota", "Se [link-to-pdf]")
    for document in (booked, credited):  # the invoice's octet-stream answer; the credit note's …/pdf
        pdf = dinero.invoice_pdf(document)
        assert pdf.startswith(b"%PDF-1.4") and f"nr. {document.number}".encode() in pdf
    voucher = dinero.post_voucher(
        Voucher(
            reference="payout:1",
            date=date.today(),
            text="Udbetaling",
            lines=[VoucherLine("55000", Decimal("98.50"), "Udbetaling", contra_account="55010"),
                   VoucherLine("3650", Decimal("1.50"), "Gebyr", contra_account="55010", vat_code="none")],
        )
    )  # fmt: skip
    return booked, credited, voucher


def test_connector_requests_and_sandbox_responses_follow_the_contract(app, db, redis, contract):
    tokens = sandbox.issue_demo_tokens()
    recorder = Recorder(app)
    dinero = connector(app, redis, recorder, tokens)
    booked, credited, voucher = run_every_connector_operation(dinero)

    # The rest of what the sandbox offers, called the way any client would.
    with httpx.Client(
        base_url=f"{IN_PROCESS_ORIGIN}{PREFIX}",
        transport=recorder,
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ) as http:
        for path in (
            "/v1.1/organizations",
            "/v1/organizations",
            f"/v1/{ORG}/accountingyears",
            f"/v1/{ORG}/accounts/entry",
            f"/v1/{ORG}/accounts/deposit",
            f"/v1/{ORG}/sales/settings",
            f"/v1/{ORG}/contacts",
            f"/v2/{ORG}/contacts?fields=Name,ContactGuid,CountryKey,VatRegionKey,CreatedAt",
            f"/v1/{ORG}/contacts/{booked.raw['ContactGuid']}",
            f"/v1/{ORG}/products",
            f"/v1/{ORG}/invoices",
            f"/v1/{ORG}/invoices?fields=Guid,Number,Status,MailOutStatus,LatestMailOutType,PaymentDate",
            f"/v1/{ORG}/sales/creditnotes",
            f"/v1/{ORG}/sales/creditnotes/{credited.id}",
            f"/v1/{ORG}/sales/creditnotes/{credited.id}/payments",
            f"/v2/{ORG}/invoices/{booked.id}/payments",
            f"/v1/{ORG}/vouchers/manuel/{voucher}",
        ):
            assert http.get(path).status_code == 200, path
        products = http.get(f"/v1/{ORG}/products?fields=ProductGuid").json()["Collection"]
        assert http.get(f"/v1/{ORG}/products/{products[0]['ProductGuid']}").status_code == 200
        generated = http.post(f"/v1/{ORG}/invoices/{booked.id}/generate-creditnote", json={}).json()
        assert http.get(f"/v1/{ORG}/sales/creditnotes/{generated['Guid']}").status_code == 200
        body = {"ProductLines": [{"BaseAmountValue": 10, "Quantity": 1, "AccountNumber": 1000, "Discount": 0,
                                  "Description": "x", "Unit": "parts"}]}  # fmt: skip
        draft = http.post(f"/v1/{ORG}/invoices", json=body).json()
        updated = http.put(
            f"/v1.2/{ORG}/invoices/{draft['Guid']}", json={**body, "Timestamp": draft["TimeStamp"]}
        )
        assert updated.status_code == 200
        deleted = http.request(
            "DELETE", f"/v1/{ORG}/invoices/{draft['Guid']}", json={"Timestamp": updated.json()["TimeStamp"]}
        )
        assert deleted.status_code == 200

    covered, problems = check(contract, recorder.exchanges)
    assert not problems, "\n".join(problems)
    templates = {template.replace("{organizationId}", "{org}") for _, template in covered}
    missing = sorted(path for path in set(PATHS.values()) if path not in templates)
    assert not missing, f"connector paths never exercised or not in the contract: {missing}"


def test_every_sandbox_route_is_an_operation_of_dinero(app, contract):
    problems = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(f"{PREFIX}/v"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(PREFIX) :])
        sample = re.sub(r"\{[^}]+\}", "1", path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found = contract.operation(method, sample)
            if found is None or found[1].count("{") != path.count("{"):
                problems.append(f"{method} {path}")
    assert not problems, f"sandbox routes Dinero's API does not have: {problems}"


def test_error_bodies_have_dinero_shape(app, db, redis):
    if not EXTRACT.exists():
        pytest.skip(f"no {EXTRACT}")
    shape = set(json.loads(EXTRACT.read_text())["schemas"]["ErrorBody"]["fields"])
    tokens = sandbox.issue_demo_tokens()
    with httpx.Client(
        base_url=f"{IN_PROCESS_ORIGIN}{PREFIX}",
        transport=SandboxTransport(app),
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ) as http:
        answers = [
            http.post(f"/v1/{ORG}/products", json={"Name": "no price"}),
            http.get(f"/v1/{ORG}/products/00000000-0000-0000-0000-000000000001"),
            http.get(f"/v1/{sandbox.FREE_ORG}/products"),
            http.get(f"/v1/{ORG}/contacts?queryFilter=City eq 'x'"),
        ]
    assert [a.status_code for a in answers] == [400, 404, 403, 400]
    for answer in answers:
        assert set(answer.json()) == shape
        assert isinstance(answer.json()["code"], int) and answer.json()["message"]


def test_the_check_catches_drift(contract):
    """A sandbox answer with a property Dinero's model does not have is refused (additionalProperties)."""
    operation = contract.operation("GET", f"/v1/{ORG}/accounts/deposit")[4]
    good = [{"AccountNumber": 55000, "Name": "Bank", "IsDefault": True, "IsHidden": False}]
    assert contract.response_errors(operation, good, None) == []
    drifted = [{**good[0], "Balance": 10}]
    assert contract.response_errors(operation, drifted, None)
    assert contract.response_errors(operation, [{"AccountNumber": "55000"}], ["AccountNumber"])
