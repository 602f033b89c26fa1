"""Dynaccount's contract, checked on every request the connector sends and every answer the sandbox gives.

Dynaccount publishes no machine-readable spec (../shared/specs/dynaccount/README.md), so the JSON Schemas
below are written by hand from the documented field lists. Every field names its source:
  DOC  Dynaccount's API documentation, introduction (https://dynaccount.dk/support/api-dokumentation/):
       URL layout, select/order/limit, where-clauses as query parameters, form-encoded POST, JSON answers.
  PHP  the official PHP library clarkk/php-dynaccount-api @e27b075: API.php (X-Hash, URL), Account.php
       (methods), Webshop.php (field lists of debtor, debtor_group, debtor_order(_product), enclosure,
       accounting, draft), test/account_test.php (account fields, action send_debtor_invoice).
  RB   the Ruby gem prograsdk/dynaccount @c0549c6, lib/dynaccount/*.rb: table names and the read-only fields
       (`ignore_put`) of account, debtor, debtor_invoice, debtor_creditnote(_product), product, enclosure,
       accounting, stock_adjustment.
  RES  ../shared/research/accounting-apis.md §4.3 (the reconstructed contract of these tables).
  GUESS  no public source; listed in docs/connectors/dynaccount.md.
Responses are closed (additionalProperties false): a sandbox that adds, drops or retypes a field fails here.
"""

import hashlib
import re
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import jsonschema
import pytest

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.dynaccount import CONNECTOR, finish_connect, sandbox_settings
from portal.connectors.errors import AuthenticationError, ValidationError
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    Voucher,
    VoucherLine,
)
from portal.sandbox import dynaccount as sandbox
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import SPECS

README = SPECS / "dynaccount" / "README.md"
pytestmark = pytest.mark.skipif(
    not README.exists(),
    reason=f"{README} is absent: the vendor material (../shared/specs) is not next to this checkout",
)

SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
DEMO = {
    "api_id": SETTINGS["demo_api_id"],
    "api_key": SETTINGS["demo_api_key"],
    "api_secret": SETTINGS["demo_api_secret"],
}

# --- value types: in JSON answers, and as form values (always strings) in requests ---

ANSWER = {
    "int": {"type": "integer"},
    "str": {"type": "string"},
    "dec": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},  # GUESS: amounts as strings (PHP/MySQL style)
    "bool": {"enum": ["YES", "NO"]},  # PHP test/account_test.php
    "time": {"type": "integer", "minimum": 0},  # PHP test/webshop_test.php: "INT(10) UNIX timestamp"
}
FORM = {
    "int": {"type": "string", "pattern": r"^(-?\d+)?$"},
    "str": {"type": "string"},
    "dec": {"type": "string", "pattern": r"^(-?\d+(\.\d+)?)?$"},
    "bool": {"enum": ["YES", "NO"]},
    "time": {"type": "string", "pattern": r"^\d{1,10}$"},
}


def enum(*values):
    return {"enum": list(values)}


# table -> field -> (kind or enum schema, source, writable)
W, R = True, False
TABLES = {
    "account": {
        "id": ("int", "PHP Webshop.php (`id` of every row); RB read-only", R),
        "account_id_": ("int", "PHP test/account_test.php", W),
        "name": ("str", "PHP test/account_test.php", W),
        "type": (enum("HEADING", "OPERATING", "BALANCE", "SUM"), "PHP (BALANCE); other values GUESS", W),
        "vatcode_name": ("str", "PHP test/account_test.php", W),
        "is_monitored": ("bool", "PHP test/account_test.php", W),
        "sum_account_id_": ("int", "PHP test/account_test.php", W),
        "ref_currency_name": ("str", "PHP test/account_test.php", W),
        "is_dimension": ("bool", "PHP test/account_test.php", W),
        "accountoff_id_": ("int", "PHP test/account_test.php (insert_bulk)", W),
        "is_bank": ("bool", "RB account.rb ignore_put", R),
    },
    "vatcode": {
        "id": ("int", "DOC get/vatcode?select=id,name", R),
        "name": ("str", "DOC get/vatcode?name=K25", W),
        "txt": ("str", "GUESS", W),
        "type": (enum("SALES", "PURCHASE"), "GUESS", W),
        "rate": ("dec", "GUESS", W),
        "account_id_": ("int", "GUESS", W),
    },
    "payment": {
        "id": ("int", "RB payment.rb ignore_put", R),
        "name": ("str", "PHP Webshop.php payment_name refers to it", W),
        "type": (enum("NET", "CURRENT_MONTH", "CASH"), "GUESS", W),
        "days": ("int", "GUESS", W),
    },
    "debtor_group": {
        "id": ("int", "RB debtor_group.rb ignore_put", R),
        "name": ("str", "PHP Webshop.php get_debtor_group", W),
        "payment_name": ("str", "PHP Webshop.php get_debtor_group", W),
        "vatcode_name": ("str", "PHP Webshop.php get_debtor_group", W),
        "ref_currency_name": ("str", "PHP Webshop.php get_debtor_group", W),
        "payment_method": (enum("", "BANK_ACCOUNT", "FI_CARD"), "PHP (BANK_ACCOUNT); FI_CARD GUESS", W),
        "bank_name": ("str", "PHP Webshop.php get_debtor_group", W),
        "lang": ("str", "PHP Webshop.php get_debtor_group", W),
        "account_id_": ("int", "GUESS (the collective account)", W),
    },
    "draft": {
        "id": ("int", "PHP Webshop.php get_draft_id", R),
        "name": ("str", "PHP Webshop.php get_draft_id", W),
    },
    "debtor": {
        "id": ("int", "PHP Webshop.php get_debtor", R),
        **{
            name: (kind, "PHP Webshop.php get_debtor", W)
            for name, kind in {
                "module_id_": "int",
                "module_group_name": "str",
                "vatcode_name": "str",
                "payment_name": "str",
                "discount_percent": "dec",
                "payment_method": enum("", "BANK_ACCOUNT", "FI_CARD"),
                "bank_name": "str",
                "name": "str",
                "attention_name": "str",
                "attention_position": "str",
                "attention_phone": "str",
                "attention_email": "str",
                "address": "str",
                "zip": "str",
                "city": "str",
                "ref_country_name": "str",
                "phone": "str",
                "email": "str",
                "email_invoice": "str",
                "email_statement": "str",
                "vatno": "str",
                "ean": "str",
                "ean_contact": "str",
                "lang": "str",
                "ref_currency_name": "str",
                "dlv_attention": "str",
                "dlv_name": "str",
                "dlv_address": "str",
                "dlv_zip": "str",
                "dlv_city": "str",
                "dlv_ref_country_name": "str",
                "dlv_phone": "str",
                "dlv_email": "str",
                "note": "str",
                "credit_max": "dec",
                "invoicing_module_id_": "int",
                "invoicing_module_attention": "str",
            }.items()
        },
        "balance": ("dec", "RB debtor.rb ignore_put", R),
        "due": ("dec", "RB debtor.rb ignore_put", R),
        "is_blocked": ("bool", "RB debtor.rb ignore_put", R),
    },
    "product": {
        "id": ("int", "RB product.rb ignore_put", R),
        "product_id_": ("str", "RES §4.1 (SKU); PHP Webshop.php debtor_order_product", W),
        "name": ("str", "GUESS (as on order lines)", W),
        "price": ("dec", "GUESS (as on order lines)", W),
        "vatcode_name": ("str", "GUESS (as on order lines)", W),
        "product_group_name": ("str", "GUESS (RB has the read-only product_group_id)", W),
        "unit_name": ("str", "GUESS", W),
        "txt": ("str", "GUESS", W),
        "product_group_id": ("int", "RB product.rb ignore_put", R),
        "in_stock": ("dec", "RB product.rb ignore_put", R),
        "in_order": ("dec", "RB product.rb ignore_put", R),
        "in_supplier_order": ("dec", "RB product.rb ignore_put", R),
        "is_stocked": ("bool", "RB product.rb ignore_put", R),
        "price_cost": ("dec", "RB product.rb ignore_put", R),
        "time_stock_change": ("time", "RB product.rb ignore_put", R),
    },
    "debtor_invoice": {
        "id": ("int", "RB debtor_invoice.rb ignore_put", R),
        **{
            name: (kind, "PHP Webshop.php put_debtor_order (same header fields; GUESS for invoices)", W)
            for name, kind in {
                "module_id_": "int",
                "dimension_name": "str",
                "time": "time",
                "currency_name": "str",
                "discount_percent": "dec",
                "requisition": "str",
                "lang": "str",
                "attention": "str",
                "address": "str",
                "zip": "str",
                "city": "str",
                "ref_country_name": "str",
                "dlv_attention": "str",
                "dlv_name": "str",
                "dlv_address": "str",
                "dlv_zip": "str",
                "dlv_city": "str",
                "dlv_ref_country_name": "str",
                "txt": "str",
            }.items()
        },
        "payment_name": ("str", "GUESS (RB's read-only time_due implies terms on the invoice)", W),
        **{
            name: (kind, "RB debtor_invoice.rb ignore_put", R)
            for name, kind in {
                "is_booked": "bool",
                "is_matched": "bool",
                "is_credited": "bool",
                "is_credited_complete": "bool",
                "invoice_id_": "int",
                "time_due": "time",
                "currency_rate": "dec",
                "vat_amount": "dec",
                "total_amount": "dec",
            }.items()
        },
    },
    "debtor_invoice_product": {
        "id": ("int", "RB ignore_put", R),
        "invoice_id": ("int", "GUESS (as order_id on debtor_order_product)", W),
        **{
            name: (kind, "PHP Webshop.php put_debtor_order_product (same line fields)", W)
            for name, kind in {
                "product_id_": "str",
                "vatcode_name": "str",
                "product_type": "str",
                "qty": "dec",
                "discount_type": enum("", "PERCENT", "AMOUNT"),  # values: GUESS
                "discount_value": "dec",
                "price": "dec",
                "name": "str",
                "txt": "str",
            }.items()
        },
        "account_id_": ("int", "GUESS (template accounts per line)", W),
        "unit_name": ("str", "GUESS", W),
        "product_id": ("int", "RB debtor_creditnote_product.rb ignore_put", R),
        "vat_amount": ("dec", "RES §4.3 read-only", R),
        "total_amount": ("dec", "RES §4.3 read-only", R),
        "qty_credited": ("dec", "RES §4.3 read-only", R),
    },
    "debtor_creditnote": {
        "id": ("int", "RB debtor_creditnote.rb ignore_put", R),
        "invoice_id": ("int", "GUESS (the credited invoice)", W),
        "time": ("time", "GUESS", W),
        "requisition": ("str", "GUESS", W),
        "dimension_name": ("str", "GUESS", W),
        **{
            name: (kind, "RB debtor_creditnote.rb ignore_put", R)
            for name, kind in {
                "is_booked": "bool",
                "invoice_id_": "int",
                "credit_invoice_id_": "int",
                "lang": "str",
                "attention": "str",
                "address": "str",
                "zip": "str",
                "city": "str",
                "txt": "str",
                "vat_amount": "dec",
                "total_amount": "dec",
            }.items()
        },
        "module_id_": ("int", "GUESS (RB lists module_id read-only)", R),
        "currency_name": ("str", "GUESS", R),
    },
    "enclosure": {
        "id": ("int", "PHP Webshop.php put_enclosure", R),
        **{
            name: (kind, "PHP Webshop.php put_enclosure", W)
            for name, kind in {
                "time": "time",
                "draft_id": "int",
                "dimension_name": "str",
                "enc_id_": "int",
                "txt": "str",
                "note": "str",
            }.items()
        },
        "is_booked": ("bool", "RB enclosure.rb ignore_put", R),
        "balance_amount": ("dec", "RB enclosure.rb ignore_put", R),
        "vat_amount": ("dec", "RB enclosure.rb ignore_put", R),
    },
    "accounting": {
        "id": ("int", "RB accounting.rb ignore_put", R),
        **{
            name: (kind, "PHP Webshop.php put_accounting", W)
            for name, kind in {
                "enclosure_id": "int",
                "type": enum("LEDGER", "DEBTOR", "CREDITOR", "DEBTOR_INVOICE", "CREDITOR_INVOICE"),
                "account_id_": "int",
                "accountoff_id_": "int",
                "vatcode_name": "str",
                "dimension_name": "str",
                "dimensionoff_name": "str",
                "invoice_id_": "int",
                "invoice_time_due": "time",
                "fi_payment_id_": "str",
                "currency_name": "str",
                "amount": "dec",
                "currency_rate": "dec",
            }.items()
        },
        "time": ("time", "RB accounting.rb ignore_put", R),
        "currency_amount": ("dec", "RB accounting.rb ignore_put", R),
        "is_readonly": ("bool", "RB accounting.rb ignore_put", R),
    },
}
TABLES["debtor_creditnote_product"] = {
    **{k: v for k, v in TABLES["debtor_invoice_product"].items() if k not in ("invoice_id", "qty_credited")},
    "creditnote_id": ("int", "GUESS (as order_id on debtor_order_product)", W),
}
# The DEBTOR_INVOICE type's accountoff_id_ is the debtor number (PHP Webshop.php put_accounting); the values
# DEBTOR/CREDITOR/CREDITOR_INVOICE are GUESS.

# What the actions take and give (GUESS except send_debtor_invoice's parameters: PHP test/account_test.php).
ACTIONS = {
    "send_debtor_invoice": (
        {
            "invoice_id": ("int", "PHP test/account_test.php"),
            "email": ("str", "PHP test/account_test.php"),
            "msg": ("str", "PHP test/account_test.php"),
            "is_attached": ("bool", "PHP test/account_test.php"),
        },
        {
            "type": "object",
            "properties": {"invoice_id": ANSWER["int"], "email": ANSWER["str"]},
            "required": ["invoice_id", "email"],
            "additionalProperties": False,
            "$comment": "GUESS",
        },
    ),
}
# No public source names an action that books an invoice, a credit note or a kladde: the contract has none.


def typed(kind, types):
    return dict(kind) if isinstance(kind, dict) else dict(types[kind])


def row_schema(table, required=None):
    fields = TABLES[table]
    return {
        "type": "object",
        "properties": {
            name: {**typed(kind, ANSWER), "$comment": source} for name, (kind, source, _) in fields.items()
        },
        "required": sorted(required if required is not None else fields),
        "additionalProperties": False,
    }


def form_schema(table, required=()):
    fields = TABLES[table]
    return {
        "type": "object",
        "properties": {
            name: {**typed(kind, FORM), "$comment": source}
            for name, (kind, source, writable) in fields.items()
            if writable  # read-only fields are never sent (RB ignore_put)
        },
        "required": list(required),
        "additionalProperties": False,
    }


def result_schema(items):
    return {
        "type": "object",
        "properties": {"result": {"type": "array", "items": items}},
        "required": ["result"],
        "additionalProperties": False,
        "$comment": "DOC: Content-Type application/json; PHP Webshop.php reads $result['result']",
    }


ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "minProperties": 1,
            # a message per field; insert_bulk: per row index, a message per field (PHP Webshop.php)
            "additionalProperties": {
                "anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]
            },
        }
    },
    "required": ["error"],
    "additionalProperties": False,
    "$comment": "PHP Webshop.php (implode of $result['error'], per-line errors of insert_bulk)",
}
# What the connector must send for an insert (the sandbox's own rules aside).
REQUIRED_ON_INSERT = {
    "debtor": ("name", "module_group_name"),
    "product": ("product_id_", "name", "price"),
    "debtor_invoice": ("module_id_", "time", "requisition"),
    "debtor_creditnote": ("invoice_id", "time", "requisition"),
    "enclosure": ("time", "draft_id", "txt", "note"),
    "debtor_invoice_product": ("invoice_id", "qty", "price", "name"),
    "debtor_creditnote_product": ("creditnote_id", "qty", "price", "name"),
    "accounting": ("enclosure_id", "type", "amount"),
}
URL = re.compile(
    r"^/sandbox/dynaccount/v7/(?P<api_id>\d+)/(?P<api_key>[0-9a-f]{40})/"
    r"(?P<method>get|put|insert_bulk|delete|action)/(?P<target>[a-z_]+)/(?:(?P<id>[1-9]\d*)/)?$"
)
QUERY = {
    "select": re.compile(r"^[a-z_]+(,[a-z_]+)*$"),  # DOC
    "order": re.compile(r"^[a-z_]+( desc)?(,[a-z_]+( desc)?)*$"),  # DOC: order=name+desc
    "limit": re.compile(r"^\d+,\d+$"),  # DOC: limit=0,10
}


# --- recording the exchanges ---


class Recorder(httpx.BaseTransport):
    def __init__(self, inner):
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def check_exchange(request: httpx.Request, response: httpx.Response) -> str:
    """Validate one exchange against the contract; returns "method target" for the coverage check."""
    match = URL.match(request.url.path)
    assert match, f"not a Dynaccount v7 URL: {request.url.path}"
    method, target, id_ = match["method"], match["target"], match["id"]
    body = request.content
    # PHP API.php request(): CURLOPT_POST with data, else a GET; DOC: "GET for requests without data,
    # POST for requests with data". The operation is in the path, never in the HTTP verb.
    assert request.method == ("POST" if body else "GET"), (request.method, request.url.path)
    # API.php generate_hash: sha1(URL without scheme + POST body + API_SECRET), hex
    signed = request.url.netloc + request.url.raw_path + body + DEMO["api_secret"].encode()
    assert request.headers["X-Hash"] == hashlib.sha1(signed).hexdigest()  # noqa: S324
    if body:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"  # DOC
    form = parse_qsl(body.decode(), keep_blank_values=True)
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    payload = response.json()
    assert response.headers["Content-Type"].startswith("application/json")  # DOC

    if "error" in payload:
        jsonschema.validate(payload, ERROR)
        assert response.status_code >= 400, "an error must not look like a success"
        return f"{method} {target} (error)"
    assert response.status_code == 200

    if method == "get":
        assert target in TABLES, f"the contract does not describe table {target}"
        assert not body
        for name, value in query:
            if name in QUERY:
                assert QUERY[name].match(value), (name, value)
                if name in ("select", "order"):
                    for field in re.findall(r"[a-z_]+", value.replace(" desc", "")):
                        assert field in TABLES[target], f"{target} has no {field}"
            else:
                assert name in TABLES[target], f"where-clause on an undocumented field {target}.{name}"
        select = dict(query).get("select")
        required = select.split(",") if select else None
        jsonschema.validate(payload, result_schema(row_schema(target, required)))
    elif method == "put":
        assert target in TABLES, f"the contract does not describe table {target}"
        required = () if id_ else REQUIRED_ON_INSERT.get(target, ())
        jsonschema.validate(dict(form), form_schema(target, required))
        assert len(form) == len(dict(form)), "a field sent twice"
        jsonschema.validate(payload, {**result_schema(row_schema(target)), "maxItems": 1})
    elif method == "insert_bulk":
        rows: dict[int, dict] = {}
        for key, value in form:
            parsed = re.fullmatch(r"([a-z_]+)\[(\d+)\]", key)
            assert parsed, f"insert_bulk field not as field[row]: {key}"  # PHP Account.php sequential_array
            rows.setdefault(int(parsed[2]), {})[parsed[1]] = value
        assert sorted(rows) == list(range(len(rows))), "rows must be sequential from 0"
        for row in rows.values():
            jsonschema.validate(row, form_schema(target, REQUIRED_ON_INSERT.get(target, ())))
        jsonschema.validate(payload, result_schema(row_schema(target)))
        assert len(payload["result"]) == len(rows)
    elif method == "delete":
        assert id_ and not body
        jsonschema.validate(
            payload,
            result_schema(
                {
                    "type": "object",
                    "properties": {"id": ANSWER["int"]},
                    "required": ["id"],
                    "$comment": "GUESS",
                }
            ),
        )
    elif method == "action":
        assert target in ACTIONS, f"the contract does not describe action {target}"
        params, answer = ACTIONS[target]
        jsonschema.validate(
            dict(form),
            {
                "type": "object",
                "properties": {
                    name: {**FORM[kind], "$comment": source} for name, (kind, source) in params.items()
                },
                "required": list(params),
                "additionalProperties": False,
            },
        )
        jsonschema.validate(payload, result_schema(row_schema(answer) if isinstance(answer, str) else answer))
    return f"{method} {target}"


# --- the scenario: everything the connector does ---


@pytest.fixture
def recorded(app, db, redis):
    sandbox.seed(DEMO["api_id"])
    recorder = Recorder(SandboxTransport(app))
    connector = CONNECTOR(
        ConnectorContext(
            base_url=SETTINGS["api_url"],
            credentials=StaticCredentials(dict(DEMO)),
            transport=recorder,
            redis=redis,
            settings={**SETTINGS, "rate_limit_requests": 1000},
            sleep=lambda s: None,
        )
    )
    return connector, recorder


SALES_VOUCHER = {"journal": "1", "receivable": "5600", "vat_account": "6910"}


def run_everything(dyn, recorder):
    assert finish_connect(SETTINGS, dict(DEMO), "", transport=recorder) == DEMO
    dyn.list_organisations()
    for kind in ("accounts", "debtor_groups", "drafts"):
        assert dyn.list_choices(kind)
    data = CustomerData(
        name="Kunde ApS",
        country="DK",
        zone="domestic",
        email="ordre@kunde.dk",
        vat_number="35000011",
        ean="5790000123456",
        payment_terms="Netto 8 dage",
    )
    customer = dyn.create_customer(data)
    for field, value in (("email", "ordre@kunde.dk"), ("vat_number", "35000011"), ("ean", "5790000123456")):
        assert dyn.find_customer(field, value).id == customer.id
    customer = dyn.update_customer(dyn.find_customer("customer_number", customer.number), data)
    assert dyn.get_stock("KAFFE-500") == Decimal("42")
    lines = [
        InvoiceLine("Kaffe", Decimal("2"), Decimal("89"), account="1010", vat_rate=Decimal("25")),
        InvoiceLine("Fragt", Decimal("1"), Decimal("39.2"), account="1040", vat_rate=Decimal("25")),
    ]
    day = date(2026, 3, 2)
    sale = dyn.create_draft_invoice(
        DraftInvoice("WC-1", customer, day, lines, text="Ordre 1", sales_voucher=SALES_VOUCHER)
    )
    assert dyn.find_invoice("WC-1").id == sale.id
    payment = PaymentData(sale, Decimal("100"), date(2026, 3, 4), "WC-1-P", account="5800", journal="1")
    assert dyn.register_payment(payment) == dyn.register_payment(payment)
    credit = dyn.create_credit_note(
        DraftInvoice("WC-1-R", customer, day, lines[:1], credit_for=sale, sales_voucher=SALES_VOUCHER)
    )
    assert dyn.find_invoice("WC-1-R").is_credit_note
    payout = PaymentData(credit, Decimal("100"), date(2026, 3, 4), "WC-1-R-P", account="5800", journal="1")
    dyn.register_refund_payment(payout)
    dyn.post_voucher(
        Voucher(
            "payout:1",
            date(2026, 3, 5),
            "Udbetaling",
            [
                VoucherLine("5800", Decimal("95"), "Udbetaling", contra_account="5830"),
                VoucherLine("2750", Decimal("5"), "Gebyr", contra_account="5830"),
            ],
            journal="Kassekladde",  # by name: looked up (get draft ?name=)
        )
    )
    # the error answers: a refused field, refused rows (with the rollback), refused credentials
    with pytest.raises(ValidationError):
        dyn.create_customer(CustomerData(name="X", country="DK", zone="domestic", email="nope"), "Indland")
    with pytest.raises(ValidationError):
        bad = [InvoiceLine("X", Decimal("1"), Decimal("1"), account="1234", vat_rate=Decimal("25"))]
        dyn.create_draft_invoice(DraftInvoice("WC-2", customer, day, bad, sales_voucher=SALES_VOUCHER))
    with pytest.raises(AuthenticationError):
        CONNECTOR(
            ConnectorContext(
                base_url=SETTINGS["api_url"],
                credentials=StaticCredentials({**DEMO, "api_key": "a" * 40}),
                transport=recorder,
            )
        ).verify()


# Every operation the connector uses -> its evidence (the table in docs/connectors/dynaccount.md).
EVIDENCE = {
    "get account": "PHP test/account_test.php (Get; type BALANCE), Account.php get()",
    "get debtor_group": "PHP Webshop.php get_debtor_group()",
    "get draft": "PHP Webshop.php get_draft_id()",
    "get debtor": "PHP Webshop.php get_debtor()",
    "put debtor": "PHP Webshop.php get_debtor() (put with id 0 or the found id)",
    "get product": "RB lib/dynaccount/product.rb (table and read-only in_stock, is_stocked)",
    "get enclosure": "DOC where-clauses; PHP Webshop.php put_enclosure() (enclosure fields incl. note)",
    "put enclosure": "PHP Webshop.php put_enclosure()",
    "get accounting": "DOC where-clauses; PHP Webshop.php put_accounting() (enclosure_id)",
    "insert_bulk accounting": "PHP Webshop.php put_enclosure() (LEDGER rows), Account.php insert_bulk()",
    "delete enclosure": "PHP Webshop.php put_enclosure() (rollback), Account.php delete()",
}


def test_every_request_and_answer_follows_the_contract(recorded):
    dyn, recorder = recorded
    run_everything(dyn, recorder)
    seen = {check_exchange(request, response) for request, response in recorder.exchanges}
    # every operation of the connector was exercised and has its evidence; nothing else was called
    assert {s for s in seen if "(error)" not in s} == set(EVIDENCE), seen
    assert seen >= {"put debtor (error)", "insert_bulk accounting (error)", "get account (error)"}, seen


def send(app, http_method, path, body=b""):
    """A correctly signed request with any HTTP verb, to see what the sandbox refuses."""
    url = f"{IN_PROCESS_ORIGIN}/sandbox/dynaccount/v7/{DEMO['api_id']}/{DEMO['api_key']}/{path}"
    request = httpx.Request(http_method, url, content=body)
    signed = request.url.netloc + request.url.raw_path + body + DEMO["api_secret"].encode()
    headers = {"X-Hash": hashlib.sha1(signed).hexdigest()}  # noqa: S324
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    with httpx.Client(transport=SandboxTransport(app)) as client:
        return client.request(http_method, url, content=body, headers=headers)


def test_the_sandbox_refuses_what_the_real_api_is_not_known_to_accept(app, db, redis):
    sandbox.seed(DEMO["api_id"])
    refused = [
        # HTTP PUT/DELETE: DOC and PHP API.php send GET (no data) or POST (data) only
        ("PUT", "put/debtor/1/", b"name=Ny"),
        ("DELETE", "delete/enclosure/1/", b""),
        # booking actions appear in no public source (PHP, RB, DOC)
        ("POST", "action/book_debtor_invoice/", b"invoice_id=1"),
        ("POST", "action/book_debtor_creditnote/", b"creditnote_id=1"),
        ("GET", "get/invoice_booking/", b""),  # an unknown table
        ("GET", "get/debtor/?colour=red", b""),  # an unknown field
        ("POST", "put/debtor/", b"name=X&module_group_name=Indland&shoe_size=44"),
    ]
    for http_method, path, body in refused:
        response = send(app, http_method, path, body)
        assert response.status_code >= 400, (http_method, path)
        jsonschema.validate(response.json(), ERROR)  # Dynaccount's error shape
    assert send(app, "PUT", "put/debtor/1/", b"name=Ny").json() == {
        "error": {"method": "Use GET without data or POST with data"}
    }
    assert send(app, "GET", "get/debtor/1/?select=name").json() == {"result": [{"name": "Café Bønnen ApS"}]}


def test_the_contract_catches_a_drifting_answer(recorded):
    """The schemas are closed: an extra field, a missing field or a retyped value fails."""
    dyn, recorder = recorded
    dyn.find_product("KAFFE-500")
    request, response = recorder.exchanges[-1]
    row = response.json()["result"][0]
    check_exchange(request, response)
    for drifted in (
        {**row, "stock_level": 42},
        {k: v for k, v in row.items() if k != "in_stock"},
        {**row, "is_stocked": True},
        {**row, "price": 89.0},
    ):
        fake = httpx.Response(200, json={"result": [drifted]}, request=request)
        with pytest.raises(jsonschema.ValidationError):
            check_exchange(request, fake)
