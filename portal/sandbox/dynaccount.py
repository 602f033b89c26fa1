"""Emulator of the Dynaccount API v7 (https://api.dynaccount.com/) below /sandbox/dynaccount/.

    /v7/{API_ID}/{API_KEY}/{method}/{table or action}/{id}/   method: get|put|insert_bulk|delete|action

It answers what the real API is known to answer and refuses the rest in Dynaccount's error shape: HTTP verbs
other than GET (no data) and POST (data), actions other than send_debtor_invoice (no booking action is
public), unknown tables and fields.

Every request is signed: X-Hash = sha1(<URL without scheme, incl. query> + <raw POST body> + API_SECRET).
POST bodies are application/x-www-form-urlencoded (insert_bulk: `field[row]=value`), answers are JSON:
`{"result": [...]}` or `{"error": {"<field>": "<message>"}}` (insert_bulk: keyed by row index).

Sources: the official PHP library clarkk/php-dynaccount-api (API.php, Account.php, Webshop.php, test/*.php),
the Ruby gem prograsdk/dynaccount (table names, read-only fields) and the readable introduction of
Dynaccount's API documentation. Everything else (status codes, error texts, document totals, value rules)
is a documented guess; docs/connectors/dynaccount.md lists them.
State lives in SandboxStore, per API_ID.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import parse_qsl, quote

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.sandbox.store import SandboxStore

SYSTEM = "dynaccount"
VERSION = "v7"
CENT = Decimal("0.01")

bp = Blueprint("sandbox_dynaccount", __name__)

# The seeded demo company (a known demo tenant: seeded lazily on its first request).
DEMO_API_ID = "1000"
DEMO_API_KEY = "2433520ac8345e9f5a6bd70bfdb9e80e98a5b602"
DEMO_API_SECRET = "9ff03717417be8250bfa56d8c14c1f8ca56adadf"  # noqa: S105 - a public demo key
DEMO_COMPANY = "Bogbro Demo ApS"


class ApiError(Exception):
    """Answered as {"error": errors} with the given status."""

    def __init__(self, errors: dict, status: int = 400):
        super().__init__(str(errors))
        self.errors = errors
        self.status = status


# --- tables ---
# kinds: int | str | dec | bool ('YES'/'NO') | time (UNIX timestamp) | enum:A|B
# Writable fields come from the PHP library's field lists and the research notes; read-only fields from the
# Ruby gem's `ignore_put` lists. The rest is our reconstruction (docs/connectors/dynaccount.md).


@dataclass(frozen=True)
class Table:
    writable: dict
    readonly: dict = field(default_factory=dict)
    required: tuple = ()
    unique: tuple = ()


DOC_HEADER = {
    "module_id_": "int",
    "dimension_name": "str",
    "time": "time",
    "currency_name": "str",
    "payment_name": "str",
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
}
DOC_LINE = {
    "product_id_": "str",
    "vatcode_name": "str",
    "account_id_": "int",
    "product_type": "str",
    "qty": "dec",
    "discount_type": "enum:|PERCENT|AMOUNT",
    "discount_value": "dec",
    "price": "dec",
    "name": "str",
    "txt": "str",
    "unit_name": "str",
}
LINE_TOTALS = {"product_id": "int", "vat_amount": "dec", "total_amount": "dec"}

TABLES: dict[str, Table] = {
    "account": Table(
        {
            "account_id_": "int",
            "name": "str",
            "type": "enum:HEADING|OPERATING|BALANCE|SUM",
            "vatcode_name": "str",
            "is_monitored": "bool",
            "sum_account_id_": "int",
            "ref_currency_name": "str",
            "is_dimension": "bool",
            "accountoff_id_": "int",
        },
        {"is_bank": "bool"},
        required=("account_id_", "name", "type"),
        unique=("account_id_",),
    ),
    "vatcode": Table(
        {"name": "str", "txt": "str", "type": "enum:SALES|PURCHASE", "rate": "dec", "account_id_": "int"},
        required=("name", "type"),
        unique=("name",),
    ),
    "payment": Table(
        {"name": "str", "type": "enum:NET|CURRENT_MONTH|CASH", "days": "int"},
        required=("name", "type"),
        unique=("name",),
    ),
    "debtor_group": Table(
        {
            "name": "str",
            "payment_name": "str",
            "vatcode_name": "str",
            "ref_currency_name": "str",
            "payment_method": "enum:|BANK_ACCOUNT|FI_CARD",
            "bank_name": "str",
            "lang": "str",
            "account_id_": "int",
        },
        required=("name",),
        unique=("name",),
    ),
    "currency": Table({"name": "str", "rate": "dec"}, required=("name",), unique=("name",)),
    "unit": Table({"name": "str"}, required=("name",), unique=("name",)),
    "year": Table(
        {"name": "str", "time_start": "time", "time_end": "time"},
        {"is_closed": "bool"},
        required=("name", "time_start", "time_end"),
        unique=("name",),
    ),
    "draft": Table({"name": "str"}, required=("name",), unique=("name",)),
    "product_group": Table(
        {"name": "str", "account_id_": "int", "vatcode_name": "str", "is_stocked": "bool"},
        required=("name",),
        unique=("name",),
    ),
    "product": Table(
        {
            "product_id_": "str",
            "name": "str",
            "price": "dec",
            "vatcode_name": "str",
            "product_group_name": "str",
            "unit_name": "str",
            "txt": "str",
        },
        {
            "product_group_id": "int",
            "in_stock": "dec",
            "in_order": "dec",
            "in_supplier_order": "dec",
            "is_stocked": "bool",
            "price_cost": "dec",
            "time_stock_change": "time",
        },
        required=("product_id_", "name"),
        unique=("product_id_",),
    ),
    "stock_adjustment": Table(
        {"product_id_": "str", "qty": "dec", "time": "time", "txt": "str"},
        {"product_id": "int"},
        required=("product_id_", "qty"),
    ),
    "debtor": Table(
        {
            "module_id_": "int",
            "module_group_name": "str",
            "vatcode_name": "str",
            "payment_name": "str",
            "payment_method": "enum:|BANK_ACCOUNT|FI_CARD",
            "bank_name": "str",
            "discount_percent": "dec",
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
        },
        {"balance": "dec", "due": "dec", "is_blocked": "bool"},
        required=("name", "module_group_name"),
        unique=("module_id_",),
    ),
    "debtor_order": Table(
        DOC_HEADER,
        {
            "is_approved": "bool",
            "is_invoiced": "bool",
            "order_id_": "int",
            "vat_amount": "dec",
            "total_amount": "dec",
        },
        required=("module_id_",),
    ),
    "debtor_order_product": Table(
        {"order_id": "int", **DOC_LINE}, LINE_TOTALS, required=("order_id", "qty", "price")
    ),
    "debtor_invoice": Table(
        DOC_HEADER,
        {
            "is_booked": "bool",
            "is_matched": "bool",
            "is_credited": "bool",
            "is_credited_complete": "bool",
            "invoice_id_": "int",
            "time_due": "time",
            "currency_rate": "dec",
            "vat_amount": "dec",
            "total_amount": "dec",
        },
        required=("module_id_",),
    ),
    "debtor_invoice_product": Table(
        {"invoice_id": "int", **DOC_LINE},
        {**LINE_TOTALS, "qty_credited": "dec"},
        required=("invoice_id", "qty", "price"),
    ),
    "debtor_creditnote": Table(
        {"invoice_id": "int", "time": "time", "requisition": "str", "dimension_name": "str"},
        {
            "is_booked": "bool",
            "module_id_": "int",
            "invoice_id_": "int",
            "credit_invoice_id_": "int",
            "currency_name": "str",
            "lang": "str",
            "attention": "str",
            "address": "str",
            "zip": "str",
            "city": "str",
            "txt": "str",
            "vat_amount": "dec",
            "total_amount": "dec",
        },
        required=("invoice_id",),
    ),
    "debtor_creditnote_product": Table(
        {"creditnote_id": "int", **DOC_LINE}, LINE_TOTALS, required=("creditnote_id", "qty", "price")
    ),
    "enclosure": Table(
        {
            "time": "time",
            "draft_id": "int",
            "dimension_name": "str",
            "enc_id_": "int",
            "txt": "str",
            "note": "str",
        },
        {"is_booked": "bool", "balance_amount": "dec", "vat_amount": "dec"},
        required=("time", "draft_id"),
    ),
    "accounting": Table(
        {
            "enclosure_id": "int",
            "type": "enum:LEDGER|DEBTOR|CREDITOR|DEBTOR_INVOICE|CREDITOR_INVOICE",
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
        },
        {"time": "time", "currency_amount": "dec", "is_readonly": "bool"},
        required=("enclosure_id", "type", "amount"),
    ),
}

# Documents with lines: header table -> (line table, foreign key in the line table).
DOCUMENTS = {
    "debtor_order": ("debtor_order_product", "order_id"),
    "debtor_invoice": ("debtor_invoice_product", "invoice_id"),
    "debtor_creditnote": ("debtor_creditnote_product", "creditnote_id"),
}
LINE_PARENTS = {lines: (header, fk) for header, (lines, fk) in DOCUMENTS.items()}

DEFAULTS = {"int": 0, "str": "", "dec": "0", "bool": "NO", "time": 0}


def default(kind: str):
    return "" if kind.startswith("enum:") else DEFAULTS[kind]


def columns(table: str) -> dict:
    t = TABLES[table]
    return {"id": "int", **t.writable, **t.readonly}


# --- values ---


def money(value) -> str:
    return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))


def dec(value) -> Decimal:
    return Decimal(str(value or "0"))


def parse_time(raw: str) -> int:
    """UNIX timestamp, or m-d-Y as in the official library's examples."""
    if re.fullmatch(r"\d{1,10}", raw):
        return int(raw)
    for pattern in ("%m-%d-%Y", "%m-%d-%y"):
        try:
            return int(datetime.strptime(raw, pattern).replace(hour=12, tzinfo=UTC).timestamp())
        except ValueError:
            pass
    raise ValueError("Invalid date")


def day(timestamp: int) -> date:
    return datetime.fromtimestamp(int(timestamp), UTC).date()


def timestamp(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, 12, tzinfo=UTC).timestamp())


def convert(kind: str, raw: str):
    """A submitted form value -> the stored value; ValueError with Dynaccount-style text."""
    raw = raw.strip()
    if kind == "str":
        return raw
    if kind.startswith("enum:"):
        allowed = kind[5:].split("|")
        if raw not in allowed:
            raise ValueError(f"Invalid value, allowed: {', '.join(a for a in allowed if a)}")
        return raw
    if raw == "":
        return DEFAULTS[kind]
    if kind == "int":
        if not re.fullmatch(r"-?\d+", raw):
            raise ValueError("Must be an integer")
        return int(raw)
    if kind == "dec":
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValueError("Must be a number") from None
        if not value.is_finite():
            raise ValueError("Must be a number")
        return str(value)
    if kind == "bool":
        if raw not in ("YES", "NO"):
            raise ValueError("Must be YES or NO")
        return raw
    if kind == "time":
        return parse_time(raw)
    raise AssertionError(kind)


# --- the store of one company ---


class Company:
    def __init__(self, api_id: str):
        self.store = SandboxStore(SYSTEM, api_id)

    def rows(self, table: str) -> list[dict]:
        return self.store.all(table)

    def get(self, table: str, id_) -> dict | None:
        return self.store.get(table, int(id_)) if str(id_).isdigit() else None

    def find(self, table: str, **where) -> dict | None:
        return next(
            (r for r in self.rows(table) if all(str(r.get(k)) == str(v) for k, v in where.items())), None
        )

    def save(self, table: str, row: dict) -> dict:
        return self.store.put(table, row["id"], row)

    def insert(self, table: str, values: dict) -> dict:
        row = {name: default(kind) for name, kind in columns(table).items()}
        row.update(values)
        row["id"] = self.store.next_number(f"id:{table}")
        return self.save(table, row)

    def delete(self, table: str, id_) -> None:
        self.store.delete(table, int(id_))


# --- validation ---


def parse_fields(table: str, form: dict, *, insert: bool) -> tuple[dict, dict]:
    """Form fields -> (values, errors)."""
    t = TABLES[table]
    values, errors = {}, {}
    for name, raw in form.items():
        if name in t.writable:
            try:
                values[name] = convert(t.writable[name], raw)
            except ValueError as exc:
                errors[name] = str(exc)
        elif name in t.readonly or name == "id":
            errors[name] = "Field is read-only"
        else:
            errors[name] = "Unknown field"
    if insert:
        for name in t.required:
            if values.get(name) in (None, "", 0) and name not in errors:
                errors[name] = "Field is required"
    return values, errors


REFERENCES = {
    "vatcode_name": ("vatcode", "name", "VAT code does not exist"),
    "payment_name": ("payment", "name", "Payment terms do not exist"),
    "module_group_name": ("debtor_group", "name", "Debtor group does not exist"),
    "ref_currency_name": ("currency", "name", "Currency does not exist"),
    "currency_name": ("currency", "name", "Currency does not exist"),
    "product_group_name": ("product_group", "name", "Product group does not exist"),
    "unit_name": ("unit", "name", "Unit does not exist"),
    "draft_id": ("draft", "id", "Draft does not exist"),
    "enclosure_id": ("enclosure", "id", "Enclosure does not exist"),
}
COUNTRY_FIELDS = ("ref_country_name", "dlv_ref_country_name")
EMAIL_FIELDS = ("email", "email_invoice", "email_statement", "attention_email", "dlv_email")


def check_references(company: Company, table: str, row: dict, errors: dict) -> None:
    for name, (other, column, message) in REFERENCES.items():
        value = row.get(name)
        known = name in columns(table) and value not in (None, "", 0) and name not in errors
        if known and company.find(other, **{column: value}) is None:
            errors.setdefault(name, message)
    for name in COUNTRY_FIELDS:
        value = row.get(name)
        if value and not re.fullmatch(r"[A-Z]{2}", value):
            errors.setdefault(name, "Country must be an ISO 3166-1 alpha-2 code")
    for name in EMAIL_FIELDS:
        value = row.get(name)
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            errors.setdefault(name, "Invalid e-mail address")
    account = row.get("account_id_")
    checked = table not in ("account", "accounting") and "account_id_" in columns(table)
    if checked and account and company.find("account", account_id_=account) is None:
        errors.setdefault("account_id_", "Account does not exist")
    for name in TABLES[table].unique:
        value = row.get(name)
        if value in (None, "", 0):
            continue
        clash = company.find(table, **{name: value})
        if clash is not None and clash["id"] != row.get("id"):
            errors.setdefault(name, "Already exists")


def check_rules(company: Company, table: str, row: dict, errors: dict, *, insert: bool) -> None:
    """The business rules of each table (beyond types and references)."""
    if table in DOCUMENTS and row.get("is_booked") == "YES":
        errors.setdefault("id", "Booked documents cannot be changed")
    debtor = row.get("module_id_") if table in ("debtor_invoice", "debtor_order") else None
    if debtor and company.find("debtor", module_id_=debtor) is None:
        errors.setdefault("module_id_", "Debtor does not exist")
    if table == "debtor_creditnote" and row.get("invoice_id"):
        invoice = company.get("debtor_invoice", row["invoice_id"])
        if invoice is None:
            errors.setdefault("invoice_id", "Invoice does not exist")
        elif invoice["is_booked"] != "YES":
            errors.setdefault("invoice_id", "Only booked invoices can be credited")
    if table in LINE_PARENTS:
        header_table, fk = LINE_PARENTS[table]
        header = company.get(header_table, row.get(fk) or 0)
        if header is None:
            errors.setdefault(fk, "Document does not exist")
        elif header.get("is_booked") == "YES":
            errors.setdefault(fk, "Booked documents cannot be changed")
        product = None
        if row.get("product_id_"):
            product = company.find("product", product_id_=row["product_id_"])
            if product is None:
                errors.setdefault("product_id_", "Product does not exist")
        if not row.get("account_id_") and product is None and "account_id_" not in errors:
            errors.setdefault("account_id_", "Account is required for lines without a product")
        if row.get("discount_type") and dec(row.get("discount_value")) < 0:
            errors.setdefault("discount_value", "Must not be negative")
    if table == "product" and row.get("price") and dec(row["price"]) < 0:
        errors.setdefault("price", "Must not be negative")
    product = row.get("product_id_") if table == "stock_adjustment" else None
    if product and company.find("product", product_id_=product) is None:
        errors.setdefault("product_id_", "Product does not exist")
    if table == "enclosure" and row.get("is_booked") == "YES":
        errors.setdefault("id", "Booked enclosures cannot be changed")
    if table == "enclosure" and row.get("time"):
        check_year(company, row["time"], errors)
    if table == "accounting":
        check_accounting_row(company, row, errors)


def check_year(company: Company, moment: int, errors: dict) -> None:
    """A voucher lies in an accounting year that is not closed (a guess: docs/connectors/dynaccount.md)."""
    year = next((y for y in company.rows("year") if y["time_start"] <= moment <= y["time_end"]), None)
    if year is None:
        errors.setdefault("time", "No accounting year for this date")
    elif year.get("is_closed") == "YES":
        errors.setdefault("time", f"Accounting year {year['name']} is closed")


def check_accounting_row(company: Company, row: dict, errors: dict) -> None:
    """LEDGER rows post to accounts; for DEBTOR_* rows accountoff_id_ is the debtor number (Webshop.php)."""
    enclosure = company.get("enclosure", row.get("enclosure_id") or 0)
    if enclosure is not None and enclosure["is_booked"] == "YES":
        errors.setdefault("enclosure_id", "Booked enclosures cannot be changed")
    kind = row.get("type")
    account, offset = row.get("account_id_"), row.get("accountoff_id_")
    if account and company.find("account", account_id_=account) is None:
        errors.setdefault("account_id_", "Account does not exist")
    if kind == "LEDGER":
        if not account:
            errors.setdefault("account_id_", "Field is required")
        if offset and company.find("account", account_id_=offset) is None:
            errors.setdefault("accountoff_id_", "Account does not exist")
    elif kind in ("DEBTOR", "DEBTOR_INVOICE"):
        debtor = company.find("debtor", module_id_=offset) if offset else None
        if debtor is None:
            errors.setdefault("accountoff_id_", "Debtor does not exist")
        if row.get("invoice_id_"):
            invoice = company.find("debtor_invoice", invoice_id_=row["invoice_id_"], is_booked="YES")
            if invoice is None:
                errors.setdefault("invoice_id_", "Invoice does not exist")
            elif debtor is not None and invoice["module_id_"] != debtor["module_id_"]:
                errors.setdefault("invoice_id_", "Invoice belongs to another debtor")
    elif kind in ("CREDITOR", "CREDITOR_INVOICE"):
        errors.setdefault("type", "Creditors are not emulated by the Bogbro sandbox")
    if row.get("amount") is not None and dec(row["amount"]) == 0:
        errors.setdefault("amount", "Amount must not be 0")


# --- derived values ---


def vat_rate(company: Company, code: str) -> Decimal:
    vatcode = company.find("vatcode", name=code) if code else None
    return dec(vatcode["rate"]) if vatcode else Decimal("0")


def fill_line_defaults(company: Company, row: dict) -> None:
    """A line without VAT code/account takes the product's, then the product group's (guess)."""
    product = company.find("product", product_id_=row["product_id_"]) if row.get("product_id_") else None
    if product is not None:
        row["product_id"] = product["id"]
        group = company.find("product_group", name=product["product_group_name"])
        if not row.get("name"):
            row["name"] = product["name"]
        if not row.get("vatcode_name"):
            row["vatcode_name"] = product["vatcode_name"] or (group or {}).get("vatcode_name", "")
        if not row.get("account_id_") and group is not None:
            row["account_id_"] = group["account_id_"]
    if not row.get("vatcode_name") and row.get("account_id_"):
        account = company.find("account", account_id_=row["account_id_"])
        row["vatcode_name"] = (account or {}).get("vatcode_name", "")


def line_amounts(line: dict, header_discount: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """qty * price - discount, rounded half-up to øre; VAT per line from the line's rate, rounded (guess)."""
    amount = dec(line["qty"]) * dec(line["price"])
    if line.get("discount_type") == "PERCENT":
        amount = amount * (100 - dec(line["discount_value"])) / 100
    elif line.get("discount_type") == "AMOUNT":
        amount = amount - dec(line["discount_value"])
    if header_discount:
        amount = amount * (100 - header_discount) / 100
    net = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    vat = (net * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return net, vat


def recompute(company: Company, header_table: str, header: dict) -> dict:
    """Header vat_amount = Σ line VAT; total_amount = Σ line net + vat_amount (read-only sums)."""
    line_table, fk = DOCUMENTS[header_table]
    discount = dec(header.get("discount_percent"))
    net_sum = vat_sum = Decimal("0")
    for line in company.rows(line_table):
        if line[fk] != header["id"]:
            continue
        net, vat = line_amounts(line, discount, vat_rate(company, line["vatcode_name"]))
        if (line["total_amount"], line["vat_amount"]) != (str(net), str(vat)):
            company.save(line_table, {**line, "total_amount": str(net), "vat_amount": str(vat)})
        net_sum += net
        vat_sum += vat
    header = {**header, "vat_amount": str(vat_sum), "total_amount": str(net_sum + vat_sum)}
    return company.save(header_table, header)


def copy_from_debtor(company: Company, table: str, row: dict) -> None:
    """Address, terms and currency default to the debtor's (as the Dynaccount UI does; guess for the API)."""
    debtor = company.find("debtor", module_id_=row.get("module_id_")) if row.get("module_id_") else None
    if debtor is None:
        return
    for mine, theirs in (
        ("attention", "attention_name"),
        ("address", "address"),
        ("zip", "zip"),
        ("city", "city"),
        ("ref_country_name", "ref_country_name"),
        ("payment_name", "payment_name"),
        ("currency_name", "ref_currency_name"),
        ("lang", "lang"),
    ):
        if not row.get(mine):
            row[mine] = debtor[theirs]
    if not row.get("time"):
        row["time"] = timestamp(datetime.now(UTC).date())


def enclosure_balance(company: Company, enclosure: dict) -> dict:
    """balance_amount: what the rows without an offset account leave unbalanced (rows with one balance)."""
    balance = sum(
        (
            dec(r["amount"])
            for r in company.rows("accounting")
            if r["enclosure_id"] == enclosure["id"] and not r["accountoff_id_"]
        ),
        Decimal("0"),
    )
    return company.save("enclosure", {**enclosure, "balance_amount": money(balance)})


# --- methods ---

RESERVED = ("select", "order", "limit")


def method_get(company: Company, table: str, id_: str, query: list[tuple[str, str]]) -> list[dict]:
    known = columns(table)
    rows = company.rows(table)
    if id_:
        rows = [r for r in rows if str(r["id"]) == id_]
    params = dict(query)
    errors = {}
    for name, value in query:
        if name in RESERVED:
            continue
        if name not in known:
            errors[name] = "Unknown field"
            continue
        # MySQL's default collation compares case-insensitively (guess: Dynaccount keeps it).
        rows = [r for r in rows if str(r.get(name, "")).casefold() == value.casefold()]
    if "order" in params:
        for part in reversed([p.strip() for p in params["order"].split(",") if p.strip()]):
            name, _, direction = part.partition(" ")
            if name not in known:
                errors["order"] = f"Unknown field: {name}"
                break
            numeric = known[name] in ("int", "time", "dec")
            rows.sort(
                key=lambda r, n=name, num=numeric: dec(r.get(n)) if num else str(r.get(n, "")).casefold(),
                reverse=direction.strip().lower() == "desc",
            )
    if "limit" in params:
        match = re.fullmatch(r"\s*(?:(\d+)\s*,\s*)?(\d+)\s*", params["limit"])
        if not match:
            errors["limit"] = "Invalid limit, use offset,count"
        else:
            offset, count = int(match.group(1) or 0), int(match.group(2))
            rows = rows[offset : offset + count]
    selected = list(known)
    if params.get("select"):
        selected = [s.strip() for s in params["select"].split(",") if s.strip()]
        unknown = [s for s in selected if s not in known]
        if unknown:
            errors["select"] = f"Unknown field: {', '.join(unknown)}"
    if errors:
        raise ApiError(errors)
    return [{name: row.get(name, default(known[name])) for name in selected} for row in rows]


def method_put(company: Company, table: str, id_: str, form: dict) -> list[dict]:
    insert = id_ in ("", "0")
    existing = None
    if not insert:
        existing = company.get(table, id_)
        if existing is None:
            raise ApiError({"id": "Not found"}, 404)
    values, errors = parse_fields(table, form, insert=insert)
    row = {**(existing or {}), **values}
    if table in LINE_PARENTS:
        fill_line_defaults(company, row)
    check_rules(company, table, row, errors, insert=insert)
    check_references(company, table, row, errors)
    if errors:
        raise ApiError(errors)
    saved = after_write(company, table, row, insert=insert)
    return [saved]


def after_write(company: Company, table: str, row: dict, *, insert: bool) -> dict:
    if table in ("debtor_invoice", "debtor_order"):
        copy_from_debtor(company, table, row)
    if table == "debtor_creditnote":
        invoice = company.get("debtor_invoice", row["invoice_id"])
        for name in ("module_id_", "currency_name", "lang", "attention", "address", "zip", "city", "txt"):
            row[name] = invoice[name]
        row["credit_invoice_id_"] = invoice["invoice_id_"]
        row.setdefault("time", 0)
        if not row["time"]:
            row["time"] = timestamp(datetime.now(UTC).date())
    if table == "debtor_invoice":
        currency = company.find("currency", name=row.get("currency_name") or "DKK")
        row["currency_rate"] = (currency or {}).get("rate", "100")
    if table == "product":
        group = company.find("product_group", name=row.get("product_group_name") or "")
        if group is None:  # guess: products land in the first product group when none is given
            group = company.rows("product_group")[0]
            row["product_group_name"] = group["name"]
        row["product_group_id"] = group["id"]
        row["is_stocked"] = group["is_stocked"]
    if table == "debtor" and insert and not row.get("module_id_"):
        # guess: without a number the debtor gets the next free one
        row["module_id_"] = company.store.next_number("module_id_")
        while company.find("debtor", module_id_=row["module_id_"]) is not None:
            row["module_id_"] = company.store.next_number("module_id_")
    if table == "stock_adjustment":
        product = company.find("product", product_id_=row["product_id_"])
        row["product_id"] = product["id"]
        if not row.get("time"):
            row["time"] = int(datetime.now(UTC).timestamp())
    saved = company.insert(table, row) if insert else company.save(table, row)
    if table == "stock_adjustment" and insert:
        adjust_stock(company, saved["product_id_"], dec(saved["qty"]), saved["time"])
    if table in DOCUMENTS:
        saved = recompute(company, table, saved)
    if table in LINE_PARENTS:
        header_table, fk = LINE_PARENTS[table]
        recompute(company, header_table, company.get(header_table, saved[fk]))
        saved = company.get(table, saved["id"])
    if table == "accounting":
        enclosure_balance(company, company.get("enclosure", saved["enclosure_id"]))
    return saved


def method_insert_bulk(company: Company, table: str, form: list[tuple[str, str]]) -> list[dict]:
    """`field[row]=value` arrays; every row is validated before any is inserted (errors keyed by row)."""
    rows: dict[int, dict] = {}
    for key, value in form:
        match = re.fullmatch(r"([a-z_]+)\[(\d+)\]", key)
        if not match:
            raise ApiError({key: "insert_bulk expects fields as field[row]"})
        rows.setdefault(int(match.group(2)), {})[match.group(1)] = value
    if not rows:
        raise ApiError({"rows": "No rows"})
    prepared, errors = [], {}
    for index in sorted(rows):
        values, row_errors = parse_fields(table, rows[index], insert=True)
        if table in LINE_PARENTS:
            fill_line_defaults(company, values)
        check_rules(company, table, values, row_errors, insert=True)
        check_references(company, table, values, row_errors)
        if row_errors:
            errors[str(index)] = row_errors
        prepared.append(values)
    if errors:
        raise ApiError(errors)
    return [after_write(company, table, values, insert=True) for values in prepared]


DELETABLE = {*DOCUMENTS, *LINE_PARENTS, "enclosure", "accounting", "debtor", "product"}


def method_delete(company: Company, table: str, id_: str) -> list[dict]:
    row = company.get(table, id_)
    if row is None:
        raise ApiError({"id": "Not found"}, 404)
    if row.get("is_booked") == "YES":
        raise ApiError({"id": "Booked entries cannot be deleted"})
    if table in LINE_PARENTS:
        header_table, fk = LINE_PARENTS[table]
        header = company.get(header_table, row[fk])
        if header is not None and header["is_booked"] == "YES":
            raise ApiError({"id": "Booked entries cannot be deleted"})
    if table not in DELETABLE:
        raise ApiError({"id": "Master data in use cannot be deleted"})  # guess: kept simple
    if table in DOCUMENTS:  # lines go with their document
        line_table, fk = DOCUMENTS[table]
        for line in company.rows(line_table):
            if line[fk] == row["id"]:
                company.delete(line_table, line["id"])
    if table == "enclosure":
        for entry in company.rows("accounting"):
            if entry["enclosure_id"] == row["id"]:
                company.delete("accounting", entry["id"])
    company.delete(table, row["id"])
    if table in LINE_PARENTS:
        header_table, fk = LINE_PARENTS[table]
        recompute(company, header_table, company.get(header_table, row[fk]))
    return [{"id": row["id"]}]


def adjust_stock(company: Company, product_number: str, qty: Decimal, when: int) -> None:
    product = company.find("product", product_id_=product_number) if product_number else None
    if product is None or product["is_stocked"] != "YES":
        return
    product = {**product, "in_stock": str(dec(product["in_stock"]) + qty), "time_stock_change": when}
    company.save("product", product)


# --- actions ---
# Only send_debtor_invoice is known (clarkk/php-dynaccount-api test/account_test.php, with its parameters).
# No public source names a booking action, so none is answered: the real API is not known to have one.


def send_debtor_invoice(company: Company, params: dict) -> list[dict]:
    errors = {}
    invoice = company.get("debtor_invoice", params.get("invoice_id") or 0)
    if invoice is None:
        errors["invoice_id"] = "Invoice does not exist"
    elif invoice["is_booked"] != "YES":
        errors["invoice_id"] = "Only booked invoices can be sent"
    email = params.get("email", "")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        errors["email"] = "Invalid e-mail address"
    if params.get("is_attached", "YES") not in ("YES", "NO"):
        errors["is_attached"] = "Must be YES or NO"
    if errors:
        raise ApiError(errors)
    number = company.store.next_number("id:_mail")
    company.store.put(
        "_mail",
        number,
        {
            "id": number,
            "invoice_id": invoice["id"],
            "email": email,
            "msg": params.get("msg", ""),
            "is_attached": params.get("is_attached", "YES"),
        },
    )
    return [{"invoice_id": invoice["id"], "email": email}]


ACTIONS = {"send_debtor_invoice": send_debtor_invoice}


# --- credentials, seeding ---


def credentials_for(api_id: str) -> dict:
    """The demo company's keys; other seeded tenants get keys derived from their API_ID."""
    if str(api_id) == DEMO_API_ID:
        return {"api_id": DEMO_API_ID, "api_key": DEMO_API_KEY, "api_secret": DEMO_API_SECRET}

    def derive(what: str) -> str:
        return hashlib.sha1(f"bogbro-sandbox:{api_id}:{what}".encode()).hexdigest()  # noqa: S324

    return {"api_id": str(api_id), "api_key": derive("key"), "api_secret": derive("secret")}


def regenerate_key(api_id: str) -> dict:
    """What "Administration > Virksomheder > new API key" does: the old key stops working at once."""
    store = SandboxStore(SYSTEM, api_id)
    company = store.get("_company", "settings")
    company = {**company, "api_key": hashlib.sha1(f"{company['api_key']}:rotated".encode()).hexdigest()}  # noqa: S324
    store.put("_company", "settings", company)
    db.session.commit()
    return company


ACCOUNTS = [
    (1000, "Omsætning", "HEADING", ""),
    (1010, "Salg af varer, indland", "OPERATING", "U25"),
    (1020, "Salg af varer, EU", "OPERATING", "UEUV"),
    (1030, "Salg af varer, udland (eksport)", "OPERATING", "UEXP"),
    (1040, "Fragt, indland", "OPERATING", "U25"),
    (1050, "Fragt, EU", "OPERATING", "UEUV"),
    (1060, "Fragt, udland", "OPERATING", "UEXP"),
    (1070, "Momsfrit salg (gavekort, afrunding)", "OPERATING", ""),  # no VAT code: lines on it get none
    (1099, "Omsætning i alt", "SUM", ""),
    (1300, "Vareforbrug", "HEADING", ""),
    (1310, "Varekøb", "OPERATING", "K25"),
    (1320, "Varekøb, EU", "OPERATING", "KEUV"),
    (2750, "Gebyrer til betalingsformidlere", "OPERATING", ""),
    (2800, "Kontorartikler", "OPERATING", "K25"),
    (5600, "Debitorer", "BALANCE", ""),
    (5800, "Bank", "BALANCE", ""),
    (5830, "Mellemregning kortindløser", "BALANCE", ""),
    (6900, "Moms", "HEADING", ""),
    (6910, "Salgsmoms", "BALANCE", ""),
    (6920, "Købsmoms", "BALANCE", ""),
    (6930, "Moms af varekøb i EU", "BALANCE", ""),
    (6950, "Momsafregning", "BALANCE", ""),
]
VATCODES = [
    ("U25", "Salgsmoms 25 %", "SALES", "25.00", 6910),
    ("UEUV", "EU-salg af varer (0 %)", "SALES", "0.00", 6910),
    ("UEUY", "EU-salg af ydelser (0 %)", "SALES", "0.00", 6910),
    ("UEXP", "Eksport uden for EU (0 %)", "SALES", "0.00", 6910),
    ("K25", "Købsmoms 25 %", "PURCHASE", "25.00", 6920),
    ("KEUV", "Køb af varer i EU (25 %)", "PURCHASE", "25.00", 6930),
]


def seed(tenant: str) -> None:
    """Idempotent master data of a real-looking small Danish webshop company."""
    company = Company(str(tenant))
    if company.store.is_seeded():
        return
    try:
        _seed(company, str(tenant))
        db.session.commit()
    except IntegrityError:  # seeded concurrently by another request
        db.session.rollback()


def _seed(company: Company, tenant: str) -> None:
    store = company.store
    keys = credentials_for(tenant)
    name = DEMO_COMPANY if tenant == DEMO_API_ID else f"Sandbox {tenant} ApS"
    store.put("_company", "settings", {**keys, "name": name})
    for code, rate in (
        ("DKK", "100.00"),
        ("EUR", "746.08"),
        ("SEK", "68.12"),
        ("NOK", "64.37"),
        ("USD", "689.95"),
    ):
        company.insert("currency", {"name": code, "rate": rate})
    for code, txt, kind, rate, account in VATCODES:
        company.insert(
            "vatcode", {"name": code, "txt": txt, "type": kind, "rate": rate, "account_id_": account}
        )
    for number, title, kind, vatcode in ACCOUNTS:
        company.insert(
            "account",
            {
                "account_id_": number,
                "name": title,
                "type": kind,
                "vatcode_name": vatcode,
                "ref_currency_name": "DKK",
                "is_bank": "YES" if number == 5800 else "NO",
                "sum_account_id_": 1099 if 1000 < number < 1099 else 0,
            },
        )
    for title, kind, days in (
        ("Netto 8 dage", "NET", 8),
        ("Netto 14 dage", "NET", 14),
        ("Løbende måned + 30", "CURRENT_MONTH", 30),
        ("Kontant", "CASH", 0),
    ):
        company.insert("payment", {"name": title, "type": kind, "days": days})
    for title, vatcode, lang in (("Indland", "U25", "da"), ("EU", "UEUV", "en"), ("Udland", "UEXP", "en")):
        company.insert(
            "debtor_group",
            {
                "name": title,
                "payment_name": "Netto 8 dage",
                "vatcode_name": vatcode,
                "ref_currency_name": "DKK",
                "payment_method": "BANK_ACCOUNT",
                "lang": lang,
                "account_id_": 5600,
            },
        )
    for title in ("stk.", "timer", "kg"):
        company.insert("unit", {"name": title})
    this_year = datetime.now(UTC).year
    for year in range(this_year - 1, this_year + 2):
        company.insert(
            "year",
            {
                "name": str(year),
                "time_start": timestamp(date(year, 1, 1)) - 12 * 3600,
                "time_end": timestamp(date(year, 12, 31)) + 12 * 3600 - 1,
            },
        )
    for title in ("Bogbro", "Kassekladde"):
        company.insert("draft", {"name": title})
    company.insert(
        "product_group", {"name": "Varer", "account_id_": 1010, "vatcode_name": "U25", "is_stocked": "YES"}
    )
    company.insert(
        "product_group", {"name": "Ydelser", "account_id_": 1010, "vatcode_name": "U25", "is_stocked": "NO"}
    )
    for number, title, price, stock in (
        ("KAFFE-500", "Kaffebønner, 500 g", "89.00", "42"),
        ("KRUS-HVID", "Kaffekrus, hvid", "59.00", "12"),
    ):
        company.insert(
            "product",
            {
                "product_id_": number,
                "name": title,
                "price": price,
                "product_group_name": "Varer",
                "product_group_id": 1,
                "is_stocked": "YES",
                "in_stock": stock,
                "unit_name": "stk.",
                "vatcode_name": "U25",
            },
        )
    for number, title, email, city, zip_code in (
        (1, "Café Bønnen ApS", "bogholderi@cafe-bonnen.dk", "Aarhus C", "8000"),
        (2, "Jens Hansen", "jens.hansen@example.dk", "Odense C", "5000"),
    ):
        company.insert(
            "debtor",
            {
                "module_id_": number,
                "module_group_name": "Indland",
                "name": title,
                "email": email,
                "email_invoice": email,
                "city": city,
                "zip": zip_code,
                "ref_country_name": "DK",
                "ref_currency_name": "DKK",
                "payment_name": "Netto 8 dage",
                "payment_method": "BANK_ACCOUNT",
                "lang": "da",
            },
        )
    store.next_number("module_id_", start=2)  # customer numbers continue after the seeded ones
    store.mark_seeded()


def load_company(api_id: str) -> dict | None:
    store = SandboxStore(SYSTEM, api_id)
    company = store.get("_company", "settings")
    if company is None and api_id == DEMO_API_ID:
        seed(api_id)
        company = store.get("_company", "settings")
    return company


# --- the HTTP surface ---


def signed_url() -> str:
    """The URL as the client sent it, without the scheme (what the client hashed)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = quote(request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", ""))
        if request.environ.get("QUERY_STRING"):
            raw += "?" + request.environ["QUERY_STRING"]
    return request.host + raw


def error(errors: dict, status: int):
    return jsonify({"error": errors}), status


@bp.route("/<version>/<api_id>/<api_key>/<method>/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
@bp.route("/<version>/<api_id>/<api_key>/<method>/", methods=["GET", "POST", "PUT", "DELETE"])
def api(version, api_id, api_key, method, rest=""):
    # "GET for requests without data, POST for requests with data" (the docs' introduction; API.php):
    # the operation is in the path, so HTTP PUT and DELETE are not known to be accepted.
    if request.method not in ("GET", "POST"):
        return error({"method": "Use GET without data or POST with data"}, 405)
    if version != VERSION:
        return error({"version": f"Unsupported API version, use {VERSION}"}, 404)
    company = load_company(api_id) if api_id.isdigit() else None
    if company is None or not hmac.compare_digest(company["api_key"], api_key):
        return error({"auth": "Invalid API_ID or API_KEY"}, 401)
    body = request.get_data(cache=True)
    expected = hashlib.sha1(signed_url().encode() + body + company["api_secret"].encode()).hexdigest()  # noqa: S324
    if not hmac.compare_digest(expected, request.headers.get("X-Hash", "")):
        return error({"hash": "Invalid X-Hash"}, 401)
    if body and request.mimetype != "application/x-www-form-urlencoded":
        return error({"content_type": "POST data must be application/x-www-form-urlencoded"}, 400)
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return error({"encoding": "POST data must be UTF-8"}, 400)
    segments = [s for s in rest.split("/") if s]
    target = segments[0] if segments else ""
    id_ = segments[1] if len(segments) > 1 else ""
    if len(segments) > 2 or (id_ and not id_.isdigit()):
        return error({"url": "Invalid URL"}, 404)
    query = parse_qsl(request.query_string.decode("utf-8"), keep_blank_values=True)
    books = Company(api_id)
    try:
        if method == "action":
            if target not in ACTIONS:
                raise ApiError({"action": "Unknown action"}, 404)
            result = ACTIONS[target](books, dict(form))
        elif target not in TABLES:
            raise ApiError({"table": "Unknown table"}, 404)
        elif method == "get":
            result = method_get(books, target, id_, query)
        elif method == "put":
            result = method_put(books, target, id_, dict(form))
        elif method == "insert_bulk":
            result = method_insert_bulk(books, target, form)
        elif method == "delete":
            result = method_delete(books, target, id_)
        else:
            raise ApiError({"method": "Unknown method"}, 404)
    except ApiError as exc:
        db.session.rollback()
        return error(exc.errors, exc.status)
    db.session.commit()
    return jsonify({"result": result})
