"""The e-conomic sandbox and connector against e-conomic's published contracts.

Every request body the connector sends and every sandbox answer it reads must validate against the
official JSON Schemas (draft-03, with e-conomic's `maxDecimal` and `readOnly` keywords) of the legacy REST
API, and the journals service's errors against its OpenAPI document. A route the connector uses without a
schema here fails the test too, so the sandbox cannot drift unnoticed.
"""

import functools
import json
import re
from datetime import date
from decimal import Decimal
from functools import cache

import httpx
import jsonschema
import pytest

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.economic import CONNECTOR, JOURNALS_API, sandbox_settings
from portal.connectors.errors import AuthenticationError, ValidationError
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    ProductData,
    Voucher,
    VoucherLine,
)
from portal.sandbox.economic import DEMO_AGREEMENT
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import SPECS

ECONOMIC = SPECS / "e-conomic"
SCHEMAS = ECONOMIC / "rest-json-schemas"
JOURNALS_OPENAPI = ECONOMIC / "openapi" / "journalsapi-v5.0.0.openapi.json"
REST = "/sandbox/e-conomic"
# The version the connector pins (JOURNALS_API); shapes are checked against the newest official document we
# hold (v5.0.0): DraftEntry and ProblemDetails have kept their names and fields in the changelog since.
APIS = "/sandbox/e-conomic-apis" + JOURNALS_API
PDF = "application/pdf"

# (method, path pattern below the REST prefix, request schema, response schema)
ROUTES = [
    ("GET", r"/self", None, "self.get"),
    ("GET", r"/layouts", None, "layouts.get"),
    ("GET", r"/payment-terms", None, "payment-terms.get"),
    ("GET", r"/product-groups", None, "product-groups.get"),
    (
        "GET",
        r"/product-groups/\d+/sales-accounts",
        None,
        "product-groups.productGroupNumber.sales-accounts.get",
    ),
    ("GET", r"/journals", None, "journals.get"),
    ("GET", r"/journals/\d+", None, "journals.journalNumber.get"),
    ("GET", r"/journals/\d+/entries", None, "journals.journalNumber.entries.get"),
    (
        "POST",
        r"/journals/\d+/vouchers",
        "journals.journalNumber.vouchers.post",
        "journals.journalNumber.vouchers.accountingYear-voucherNumber.get",  # the answer is an array of these
    ),
    ("GET", r"/accounts", None, "accounts.get"),
    ("GET", r"/vat-zones", None, "vat-zones.get"),
    ("GET", r"/vat-accounts", None, "vat-accounts.get"),
    ("GET", r"/customer-groups", None, "customer-groups.get"),
    ("GET", r"/accounting-years", None, "accounting-years.get"),
    ("GET", r"/accounting-years/[^/]+/entries", None, "accounting-years.accountingYear.entries.get"),
    ("GET", r"/accounting-years/[^/]+/periods", None, "accounting-years.accountingYear.periods.get"),
    ("GET", r"/customers", None, "customers.get"),
    ("POST", r"/customers", "customers.post", "customers.customerNumber.get"),
    ("GET", r"/customers/\d+", None, "customers.customerNumber.get"),
    ("PUT", r"/customers/\d+", "customers.customerNo.put", "customers.customerNumber.get"),
    ("POST", r"/products", "products.post", "products.productNumber.get"),
    ("GET", r"/products/[^/]+", None, "products.productNumber.get"),
    ("PUT", r"/products/[^/]+", "products.productNumber.put", "products.productNumber.get"),
    ("GET", r"/invoices/drafts", None, "invoices.drafts.get"),
    ("POST", r"/invoices/drafts", "invoices.drafts.post", "invoices.drafts.draftInvoiceNumber.get"),
    (
        "PUT",
        r"/invoices/drafts/\d+",
        "invoices.drafts.draftInvoiceNumber.put",
        "invoices.drafts.draftInvoiceNumber.get",
    ),
    ("GET", r"/invoices/booked", None, "invoices.booked.get"),
    ("POST", r"/invoices/booked", "invoices.booked.post", "invoices.booked.bookedInvoiceNumber.get"),
    # the address a booked invoice's `pdf.download` names (no schema: the answer is the PDF itself)
    ("GET", r"/invoices/booked/\d+/pdf", None, PDF),
    ("GET", r"/orders/drafts", None, "orders.drafts.get"),
    ("POST", r"/orders/drafts", "orders.drafts.post", "orders.drafts.orderNumber.get"),
    ("GET", r"/orders/drafts/\d+", None, "orders.drafts.orderNumber.get"),
    ("DELETE", r"/orders/drafts/\d+", None, None),  # 204 without a body (404 once gone)
    ("GET", r"/orders/drafts/\d+/templates", None, "orders.drafts.orderNumber.templates.get"),
    # No schema is published for the upgrade instructions; the docs call the answer "a draftInvoice entity
    # that can be POSTed to /invoices/drafts", so its `draftInvoice` is checked against that schema.
    (
        "GET",
        r"/orders/drafts/\d+/templates/upgrade-instructions/draftInvoice",
        None,
        "invoices.drafts.post#draftInvoice",
    ),
    ("GET", r"/orders/sent", None, "orders.sent.get"),
    ("GET", r"/orders/archived", None, "orders.archived.get"),
]

# e-conomic's documented error document ("Annotated errors" in the REST docs; 404/401 bodies share the
# envelope). The REST API publishes no schema for it, so this one is written from that documentation.
REST_ERROR = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "required": True},
        "developerHint": {"type": "string", "required": True},
        "logId": {"type": "string", "required": True},
        "httpStatusCode": {"type": "integer", "required": True},
        "logTime": {"type": "string", "required": True},
        "errorCode": {"type": "string"},
        "errors": {"type": "object"},
    },
}


@pytest.fixture(scope="module")
def specs():
    if not SCHEMAS.is_dir() or not JOURNALS_OPENAPI.is_file():
        pytest.skip(f"e-conomic's published contracts are not at {ECONOMIC} (the shared/specs folder)")
    return ECONOMIC


# --- validation ---------------------------------------------------------------------------------------------


def _max_decimal(validator, places, instance, schema):
    if isinstance(instance, int | Decimal) and not isinstance(instance, bool):
        exponent = Decimal(str(instance)).normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            yield jsonschema.ValidationError(f"{instance} has more than {places} decimals")


EconomicValidator = jsonschema.validators.extend(jsonschema.Draft3Validator, {"maxDecimal": _max_decimal})


# A defect as served: the orders (and products, quotes) schemas write lastUpdated's pattern without two of
# its backslashes ("…Td{2}:d{2}:d{2}Z"), which no real timestamp matches. Checked as evidently meant.
_BROKEN_TIMESTAMP = "Td{2}:d{2}:d{2}Z"
_TIMESTAMP = "T\\\\d{2}:\\\\d{2}:\\\\d{2}Z"  # the JSON text of T\d{2}:\d{2}:\d{2}Z


@cache
def schema(name: str) -> dict:
    text = (SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text.replace(_BROKEN_TIMESTAMP, _TIMESTAMP))


def problems(instance, schema_document) -> list[str]:
    errors = EconomicValidator(schema_document).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def _errors(instance, name):
    return EconomicValidator(schema(name)).iter_errors(instance)


def annotated_paths(errors, path=()):
    """Property paths named by an annotated error document ("lines/0/unitNetPrice")."""
    if isinstance(errors, list):
        for item in errors:
            rest = {k: v for k, v in item.items() if k != "arrayIndex"}
            yield from annotated_paths(rest, (*path, str(item.get("arrayIndex", ""))))
    elif isinstance(errors, dict):
        for key, value in errors.items():
            if key == "errors" and isinstance(value, list):
                yield "/".join(path)
            else:
                yield from annotated_paths(value, (*path, key))


def read_only_sent(instance, schema_document, path="") -> list[str]:
    """Properties a request must not send (marked readOnly in the schema)."""
    found = []
    if isinstance(instance, dict):
        properties = schema_document.get("properties") or {}
        for key, value in instance.items():
            sub = properties.get(key) or {}
            if sub.get("readOnly"):
                found.append(f"{path}{key} is read-only")
            found += read_only_sent(value, sub, f"{path}{key}.")
    elif isinstance(instance, list) and isinstance(schema_document.get("items"), dict):
        for item in instance:
            found += read_only_sent(item, schema_document["items"], path)
    return found


@functools.cache
def journals_validator(name: str):
    document = json.loads(JOURNALS_OPENAPI.read_text(encoding="utf-8"))
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft4Validator(root)


def problem_details_validator():
    return journals_validator("ProblemDetails")


class Recorder(httpx.BaseTransport):
    """Keeps every request and answer that passes through to the sandbox."""

    def __init__(self, inner):
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def route_for(method: str, path: str):
    for route in ROUTES:
        if route[0] == method and re.fullmatch(route[1], path):
            return route
    return None


def check_exchange(
    request: httpx.Request, response: httpx.Response, problem_details
) -> tuple[str, list[str]]:
    path = request.url.path
    found = []
    if path.startswith(APIS):
        label = f"{request.method} journalsapi{path[len(APIS) :]}"
        relative = path[len(APIS) :]
        if response.status_code >= 400:
            body = response.json()
            found += [f"ProblemDetails: {e.message}" for e in problem_details.iter_errors(body)]
        elif relative == "/draft-entries" and response.status_code == 200:
            body = response.json()
            found += [
                f"DraftEntryCursorResults: {e.message}"
                for e in journals_validator("DraftEntryCursorResults").iter_errors(body)
            ]
        elif re.fullmatch(r"/journals/\d+/bookdraftentries", relative) and response.status_code == 204:
            # no published schema: the body we send is the clients' (docs/connectors/economic.md)
            sent = json.loads(request.content)
            if set(sent) != {"entryNumbers"} or not all(isinstance(n, int) for n in sent["entryNumbers"]):
                found.append("bookdraftentries body is not {entryNumbers: [int, ...]}")
        elif not (re.fullmatch(r"/journals/\d+/book", relative) and response.status_code == 204):
            found.append(f"unexpected journals API exchange ({response.status_code})")
        return label, found
    assert path.startswith(REST), path
    relative = path[len(REST) :]
    route = route_for(request.method, relative)
    label = f"{request.method} {route[1] if route else relative}"
    if route is None:
        return label, ["no published schema mapped for this route"]
    _, _, request_schema, response_schema = route
    pdf = response_schema == PDF and response.status_code < 400
    body = json.loads(response.content, parse_float=Decimal) if response.content and not pdf else None
    if request_schema:
        sent = json.loads(request.content, parse_float=Decimal)
        # an array (POST …/vouchers takes one voucher or several): each item against the schema
        items = [((n,), item) for n, item in enumerate(sent)] if isinstance(sent, list) else [((), sent)]
        broken = {
            "/".join(map(str, (*prefix, *e.absolute_path)))
            for prefix, item in items
            for e in _errors(item, request_schema)
        }
        if response.status_code == 400:
            # the refusal must name every property the request broke the contract on
            broken -= set(annotated_paths((body or {}).get("errors")))
        found += [f"request breaks the contract at {path!r}" for path in sorted(broken)]
        found += [f"request {p}" for _, item in items for p in read_only_sent(item, schema(request_schema))]
    if response_schema == PDF and response.status_code < 400:
        if not response.headers.get("Content-Type", "").startswith(PDF) or not response.content.startswith(
            b"%PDF-"
        ):
            found.append("the answer is not a PDF")
        return label, found
    if response.status_code >= 400:
        found += [f"error body {p}" for p in problems(body, REST_ERROR)]
        if body and body.get("httpStatusCode") != response.status_code:
            found.append("error body httpStatusCode differs from the status")
        return label, found
    if response_schema is None:
        if body is not None:
            found.append("a body where none is expected")
        return label, found
    if "#" in response_schema:  # the schema describes one property of the answer
        response_schema, key = response_schema.split("#")
        if not isinstance((body or {}).get(key), dict):
            return label, [f"response has no {key}"]
        body = body[key]
    items = body if isinstance(body, list) else [body]  # POST …/vouchers answers with an array
    for item in items:
        found += [f"response {p}" for p in problems(item, schema(response_schema))]
    return label, found


# --- the scenario -------------------------------------------------------------------------------------------


def run_every_operation(connector, client):
    """Every operation the connector has, with the answers it meets in real life (404s, 400s, 401s)."""
    connector.verify()
    for kind in (
        "layouts",
        "payment_terms",
        "product_groups",
        "journals",
        "accounts",
        "vat_zones",
        "vat_codes",
    ):
        assert connector.list_choices(kind)
    connector.list_choices("customer_groups")
    assert connector.open_periods()  # the years and their periods (portal.pipeline.periods)
    customer = connector.create_customer(
        CustomerData(
            "Contract Kunde ApS", "DK", "domestic", email="kontrakt@example.dk", vat_number="29400008"
        )
    )
    assert connector.find_customer("email", "kontrakt@example.dk")
    assert connector.find_customer("vat_number", "29400008")
    assert connector.find_customer("ean", "5798000000001") is None
    customer = connector.update_customer(
        customer, CustomerData("Contract Kunde ApS", "DK", "domestic", city="Vejle")
    )
    assert connector.find_customer("customer_number", customer.id)

    assert connector.find_product("KON_TRAKT.1") is None
    product = connector.create_product(
        ProductData("KON_TRAKT.1", "Kontrakt", Decimal("80.00"), product_group="1")
    )
    connector.update_product(
        product, ProductData("KON_TRAKT.1", "Kontrakt 2", Decimal("79.96"), product_group="1")
    )
    assert connector.get_stock("KON_TRAKT.1") == Decimal("0")

    lines = [
        InvoiceLine("Kontrakt", Decimal("3"), Decimal("79.96"), product_number="KON_TRAKT.1"),
        InvoiceLine(
            "Fragt", Decimal("1"), Decimal("39.20"), product_number="FRAGT", discount_percent=Decimal("10")
        ),
    ]
    invoice = DraftInvoice(
        "CONTRACT-1", customer, date.today(), lines, layout="19", payment_terms="1", heading="H"
    )
    invoice.text = "Tak for handlen"
    draft = connector.create_draft_invoice(invoice)
    draft = connector.replace_draft(draft, invoice)  # a retry after the shop's order changed
    booked = connector.book_invoice(draft)
    credit = DraftInvoice(
        "CREDIT:CONTRACT-1",
        customer,
        date.today(),
        lines[:1],
        layout="19",
        payment_terms="1",
        credit_for=booked,
    )
    credit_note = connector.book_invoice(connector.create_credit_note(credit))
    for document in (booked, credit_note):
        pdf = connector.invoice_pdf(document)
        assert pdf.startswith(b"%PDF-1.4") and f"nr. {document.number}".encode() in pdf

    order = connector.create_order(
        DraftInvoice("CONTRACT-ORDER-1", customer, date.today(), lines, layout="19", payment_terms="1")
    )
    connector.rest.get(f"/orders/drafts/{order.id}")
    connector.rest.get(f"/orders/drafts/{order.id}/templates")
    assert connector.find_order("CONTRACT-ORDER-1").state == "draft"
    from_order = connector.invoice_order(
        order, DraftInvoice("CONTRACT-ORDER-1", customer, date.today(), [], layout="19", payment_terms="1")
    )
    assert from_order.totals == order.totals
    assert connector.find_order("CONTRACT-ORDER-1") is None  # drafts, sent and archived looked through
    connector.delete_order(order)  # gone already: the 404 is fine
    connector.register_payment(
        PaymentData(booked, booked.totals.gross, date.today(), "PAY-CONTRACT-1", journal="2")
    )
    paid = connector.register_payments(  # one POST of an array of vouchers
        [PaymentData(booked, Decimal("1.00"), date.today(), f"PAY-CONTRACT-{n}", journal="2") for n in (2, 3)]
    )
    assert all(isinstance(result, str) for result in paid), paid
    connector.post_voucher(
        Voucher(
            "PAYOUT-CONTRACT",
            date.today(),
            "Udbetaling",
            [
                VoucherLine("5820", Decimal("100.00"), "Bank", contra_account="5830"),
                VoucherLine("7220", Decimal("1.50"), "Gebyr", contra_account="5830", vat_code="I25"),
            ],
            journal="3",
        )
    )
    connector.book_journal(3)

    bad = DraftInvoice("CONTRACT-BAD", customer, date.today(), [lines[0]], layout="19", payment_terms="1")
    bad.lines[0].unit_net_price = Decimal("79.955")
    with pytest.raises(ValidationError):
        connector.create_draft_invoice(bad)  # 400 annotated error
    connector.post_voucher(
        Voucher("UNBALANCED", date.today(), "x", [VoucherLine("5820", Decimal("1.00"), "x")], journal="1")
    )
    with pytest.raises(ValidationError):
        connector.book_journal(1)  # 400 ProblemDetails
    client.delete(f"/sandbox/e-conomic/_grants/{connector.rest.http.headers['X-AgreementGrantToken']}")


def test_connector_and_sandbox_keep_to_e_conomic_contracts(app, db, redis, client, specs):
    # a grant of its own, so revoking it at the end (a 401 in the scenario) does not touch "demo"
    from portal.sandbox.economic import issue_grant, seed

    with app.app_context():
        seed(str(DEMO_AGREEMENT))
        token = issue_grant(DEMO_AGREEMENT, "demo-public")
        db.session.commit()
    recorder = Recorder(SandboxTransport(app))
    context = ConnectorContext(
        base_url=f"{IN_PROCESS_ORIGIN}{REST}",
        credentials=StaticCredentials({"agreement_grant_token": token}),
        external_id=str(DEMO_AGREEMENT),
        transport=recorder,
        redis=redis,
        settings=sandbox_settings(IN_PROCESS_ORIGIN),
        sleep=lambda s: None,
    )
    connector = CONNECTOR(context)
    run_every_operation(connector, client)
    with pytest.raises(AuthenticationError):
        connector.verify()  # 401 after the grant was revoked

    problem_details = problem_details_validator()
    failures, used = [], set()
    for request, response in recorder.exchanges:
        label, found = check_exchange(request, response, problem_details)
        used.add(label)
        failures += [f"{label} → {response.status_code}: {p}" for p in found]
    assert not failures, "\n".join(failures)
    unused = {f"{method} {pattern}" for method, pattern, _, _ in ROUTES} - used
    assert not unused, f"the scenario no longer exercises: {sorted(unused)}"
    statuses = {response.status_code for _, response in recorder.exchanges}
    assert {200, 201, 204, 400, 401, 404} <= statuses


def test_the_contract_check_notices_drift(specs):
    layouts = {"collection": [{"layoutNumber": 19, "name": "Standard"}], "self": "http://x/layouts"}
    assert any("self" in p for p in problems(layouts, schema("layouts.get")))  # a missing self link
    draft = schema("invoices.drafts.draftInvoiceNumber.get")
    assert problems({"netAmount": Decimal("1.005"), "self": "http://x"}, draft)  # more than 2 decimals
    assert problems({"paymentTerms": {"paymentTermsType": "weekly", "self": "http://x"}, "self": "x"}, draft)
    assert read_only_sent({"productNumber": "A", "inventory": {"inStock": 1}}, schema("products.post"))


def test_the_evidence_cites_the_schemas_this_test_checks():
    """docs/connectors/economic.md's evidence table (portal/connectors/evidence/economic.py) and this
    contract test agree: each schema cited is one the requests and answers are checked against here."""
    from portal.connectors.evidence import evidence

    prefix = "e-conomic/rest-json-schemas/"
    cited = {
        path.removeprefix(prefix).removesuffix(".schema.json")
        for call in evidence("e-conomic")
        for path in call.spec_files()
        if path.startswith(prefix)
    }
    checked = {name.partition("#")[0] for route in ROUTES for name in route[2:] if name and name != PDF}
    assert cited - checked == set(), "cited as evidence but never checked here"
