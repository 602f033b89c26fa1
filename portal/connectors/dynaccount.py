"""Dynaccount (https://api.dynaccount.com/, API v7): customers, products, invoices, credit notes, vouchers.

Transport, as the official PHP library clarkk/php-dynaccount-api does it (API.php, Account.php):
    /v7/{API_ID}/{API_KEY}/{method}/{table or action}/{id}/   (empty segments dropped, trailing slash)
    X-Hash: sha1(<URL without "https://", query included> + <raw POST body> + API_SECRET), hex
Requests are form-encoded (insert_bulk: `field[row]=value`), answers JSON `{"result": [...]}` or
`{"error": {"field": "message"}}`. Booleans are 'YES'/'NO'; we send dates as UNIX timestamps.

The HTTP verb is not significant to Dynaccount (its docs), so we pick the verb that tells our ApiClient what
is safe to retry: GET for reads, PUT for updates of an existing id and DELETE for deletes (idempotent), POST
for inserts and actions (never blind-retried; an ambiguous failure is looked up by our reference).

Our reference (e.g. "WC-1234") is stored in `requisition` on invoices and credit notes and in `note` on
enclosures (vouchers, payments); every create looks it up first. See docs/connectors/dynaccount.md for what
is verified and what is a guess.
"""

import hashlib
import logging
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

import httpx

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.base import (
    N_,
    NO_VAT_LABEL,
    AccountingConnector,
    AccountingSystem,
    Capabilities,
    Choice,
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    Organisation,
    PaymentData,
    ProductData,
    RemoteCustomer,
    RemoteInvoice,
    RemoteProduct,
    TemplateField,
    TemplateSpec,
    Totals,
    Voucher,
)
from portal.connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    TransientError,
    UnsupportedOperation,
    ValidationError,
)
from portal.connectors.http import DEFAULT_TIMEOUT, client_for
from portal.connectors.ratelimit import RateLimit, configured_limit, limiter_for

log = logging.getLogger(__name__)

CONFIG_PREFIX = "DYNACCOUNT_"
API_VERSION = "v7"
CENT = Decimal("0.01")
PAGE_SIZE = 500
DEFAULT_DRAFT = "Bogbro"  # the kladde our vouchers and payments go to, unless the setup names another
# Dynaccount documents no rate limit; stay gentle and shared per company (settings may override).
DEFAULT_RATE = RateLimit(requests=5, per_seconds=1.0)


def _zone_templates(kind: str, labels: dict[str, str], account_label: str) -> tuple[TemplateSpec, ...]:
    return tuple(
        TemplateSpec(
            kind=kind,
            zone=zone,
            label=label,
            fields=(
                TemplateField("account", account_label, "accounts"),
                TemplateField("vat_code", N_("VAT code"), "vat_codes"),
            ),
        )
        for zone, label in labels.items()
    )


SYSTEM = AccountingSystem(
    key="dynaccount",
    name="Dynaccount",
    connect="api_key",
    capabilities=Capabilities(
        vat_model="line_code",
        orders=False,  # debtor_order + debtor_order_product exist; Bogbro does not create them yet
        stock=True,  # product.in_stock (read-only)
        email_invoice=True,  # action send_debtor_invoice
        oss=False,
        payment_endpoint=False,  # payments are accounting rows in a kladde
        credit_note="table",  # debtor_creditnote + debtor_creditnote_product
    ),
    templates=(
        TemplateSpec(
            kind="invoice",
            zone="",
            label=N_("Invoices"),
            fields=(
                TemplateField("payment_terms", N_("Payment terms"), "payment_terms"),
                TemplateField("debtor_group", N_("Customer group"), "debtor_groups"),
            ),
            help=N_("The payment terms and the customer group new customers get in Dynaccount."),
        ),
        *_zone_templates(
            "goods",
            {
                "domestic": N_("Goods sold in Denmark"),
                "eu": N_("Goods sold to other EU countries"),
                "world": N_("Goods sold outside the EU"),
            },
            N_("Sales account"),
        ),
        *_zone_templates(
            "freight",
            {
                "domestic": N_("Freight in Denmark"),
                "eu": N_("Freight to other EU countries"),
                "world": N_("Freight outside the EU"),
            },
            N_("Freight account"),
        ),
        TemplateSpec(
            kind="no_vat",
            zone="",
            label=NO_VAT_LABEL,
            fields=(
                TemplateField("account", N_("Sales account"), "accounts", required=False),
                TemplateField("vat_code", N_("VAT code"), "vat_codes", required=False),
            ),
            help=N_(
                "Only needed for orders with a gift card or a rounding line. They must carry no VAT: "
                "choose a sales account without a VAT code and leave the VAT code empty (Dynaccount has no "
                "code for sales without VAT; a line without a code gets none)."
            ),
        ),
    ),
    notes=(
        N_("Dynaccount sets VAT on each invoice line from the line's VAT code."),
        N_(
            "OSS is not supported: Dynaccount's API documents no OSS VAT codes, so EU sales to consumers "
            "are booked with Danish VAT."
        ),
        N_("Payments are posted as entries in a Dynaccount journal (kladde) that you book in Dynaccount."),
    ),
)

# find_customer(field) -> the debtor column it searches (equality where-clause).
CUSTOMER_FIELDS = {"email": "email", "vat_number": "vatno", "ean": "ean", "customer_number": "module_id_"}


def money(value: Decimal) -> Decimal:
    """Dynaccount rounds amounts half-up to øre."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def decimal(value) -> Decimal:
    """Amounts come as strings (or JSON numbers): never through float."""
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def unix_time(day: date) -> int:
    """A date as a UNIX timestamp at 12:00 UTC: the same calendar day in Denmark all year round."""
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def line_totals(line: InvoiceLine, vat_rate: Decimal) -> tuple[Decimal, Decimal]:
    """(net, vat) of one line the way Dynaccount rounds: per line, to øre, VAT from the line's rate."""
    net = money(line.quantity * line.unit_net_price * (100 - line.discount_percent) / 100)
    return net, money(net * vat_rate / 100)


def expected_totals(lines: list[InvoiceLine], vat_rates: dict[str, Decimal]) -> Totals:
    """What Dynaccount will compute for these lines (vat_rates: VAT code -> percent): the validate step."""
    net = vat = Decimal("0")
    for line in lines:
        line_net, line_vat = line_totals(line, vat_rates.get(line.vat_code or "", Decimal("0")))
        net += line_net
        vat += line_vat
    return Totals(net=net, vat=vat, gross=net + vat)


def _flatten(errors) -> str:
    if isinstance(errors, dict):
        parts = []
        for key, value in errors.items():
            if isinstance(value, dict):  # insert_bulk: errors per row index
                parts.append(f"line {key}: {_flatten(value)}")
            else:
                parts.append(f"{key}: {value}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return "; ".join(_flatten(e) for e in errors)
    return str(errors)


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """Dynaccount's own message from `{"error": {...}}` (or a gateway's `{"message": ...}`)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase, {}
    if isinstance(body, dict) and body.get("error"):
        errors = body["error"]
        return _flatten(errors), errors if isinstance(errors, dict) else {"error": errors}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]), {}
    return response.text[:500] or response.reason_phrase, {}


class XHash(httpx.Auth):
    """Signs the request exactly as sent: URL without scheme (query included) + body + API_SECRET."""

    requires_request_body = True

    def __init__(self, secret):
        self.secret = secret  # a callable, so rotated credentials are picked up

    def auth_flow(self, request: httpx.Request):
        signed = request.url.netloc + request.url.raw_path + request.content + self.secret().encode()
        request.headers["X-Hash"] = hashlib.sha1(signed).hexdigest()  # noqa: S324 - the vendor's scheme
        yield request


class DynaccountConnector(AccountingConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.settings = context.settings or {}
        limit = configured_limit(self.settings, DEFAULT_RATE)
        timeout = DEFAULT_TIMEOUT
        if self.settings.get("timeout_seconds"):
            seconds = float(self.settings["timeout_seconds"])
            timeout = httpx.Timeout(seconds, connect=min(seconds, 5.0))
        self.api = client_for(
            context,
            system="Dynaccount",
            base_url=context.base_url,
            auth=XHash(lambda: self._credentials()["api_secret"]),
            timeout=timeout,
            limiter=limiter_for(context, f"dynaccount:{self.api_id}", limit),
            error_message=error_message,
        )
        self._draft_ids: dict[str, int] = {}

    # --- transport ---

    def _credentials(self) -> dict:
        return self.context.credentials.get()

    @property
    def api_id(self) -> str:
        return str(self.context.external_id or self._credentials()["api_id"])

    def _call(self, verb: str, method: str, target: str, id_=None, *, params=None, fields=None) -> list[dict]:
        credentials = self._credentials()
        segments = [API_VERSION, credentials["api_id"], credentials["api_key"], method, target, id_]
        path = "/" + "/".join(str(s) for s in segments if s not in (None, "", 0, "0")) + "/"
        kwargs = {}
        if params:
            kwargs["params"] = params
        if fields is not None:
            kwargs["content"] = urlencode(fields).encode()
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self.api.request(verb, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise TransientError(
                f"Dynaccount answered {response.status_code} without JSON", system="Dynaccount"
            ) from None
        if isinstance(body, dict) and body.get("error"):  # an error in a 2xx answer is still an error
            message, details = error_message(response)
            raise ValidationError(message, system="Dynaccount", status=response.status_code, details=details)
        return (body.get("result") or []) if isinstance(body, dict) else []

    def _get(self, table: str, id_=None, *, where=None, select=None, order=None, limit=None) -> list[dict]:
        params = [(k, str(v)) for k, v in (where or {}).items()]
        if select:
            params.append(("select", ",".join(select)))
        if order:
            params.append(("order", order))
        if limit:
            params.append(("limit", limit))
        return self._call("GET", "get", table, id_, params=params)

    def _get_all(self, table: str, *, where=None, order="id") -> list[dict]:
        """Every row, page by page (limit=offset,count)."""
        rows, offset = [], 0
        while True:
            page = self._get(table, where=where, order=order, limit=f"{offset},{PAGE_SIZE}")
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows
            offset += PAGE_SIZE

    def _first(self, table: str, **where) -> dict | None:
        rows = self._get(table, where=where, limit="0,1")
        return rows[0] if rows else None

    def _insert(self, table: str, fields: dict) -> dict:
        return self._call("POST", "put", table, fields=fields)[0]

    def _update(self, table: str, id_, fields: dict) -> dict:
        return self._call("PUT", "put", table, id_, fields=fields)[0]

    def _delete(self, table: str, id_) -> None:
        self._call("DELETE", "delete", table, id_)

    def _insert_bulk(self, table: str, rows: list[dict]) -> list[dict]:
        fields = {f"{name}[{index}]": value for index, row in enumerate(rows) for name, value in row.items()}
        return self._call("POST", "insert_bulk", table, fields=fields)

    def _action(self, action: str, params: dict) -> list[dict]:
        return self._call("POST", "action", action, fields=params)

    # --- connecting ---

    def verify(self) -> Organisation:
        """One cheap read of the chart of accounts proves API_ID, API_KEY and the X-Hash secret."""
        self._get("account", select=["id"], limit="0,1")
        # No company/settings table is documented, so the company is named after its API ID (guess).
        return Organisation(external_id=self.api_id, name=f"Dynaccount {self.api_id}")

    def list_organisations(self) -> list[Organisation]:
        return [self.verify()]

    # --- master data ---

    def list_choices(self, kind: str) -> list[Choice]:
        if kind == "payment_terms":
            return sorted(
                (
                    Choice(row["name"], row["name"], {"type": row.get("type"), "days": row.get("days")})
                    for row in self._get_all("payment")
                ),
                key=lambda c: c.label.casefold(),
            )
        if kind == "accounts":
            return [
                Choice(
                    str(row["account_id_"]),
                    f"{row['account_id_']} {row['name']}",
                    {"vat_code": row.get("vatcode_name") or None, "type": row.get("type")},
                )
                for row in sorted(self._get_all("account"), key=lambda r: int(r["account_id_"]))
                if row.get("type") in ("OPERATING", "BALANCE")
            ]
        if kind == "vat_codes":
            return sorted(
                (
                    Choice(
                        row["name"],
                        f"{row['name']} {row.get('txt') or ''}".strip(),
                        {"rate": decimal(row.get("rate")), "type": row.get("type")},
                    )
                    for row in self._get_all("vatcode")
                ),
                key=lambda c: c.value,
            )
        if kind == "debtor_groups":
            return sorted(
                (
                    Choice(
                        row["name"],
                        row["name"],
                        {
                            "payment_terms": row.get("payment_name") or None,
                            "vat_code": row.get("vatcode_name") or None,
                            "currency": row.get("ref_currency_name") or None,
                        },
                    )
                    for row in self._get_all("debtor_group")
                ),
                key=lambda c: c.label.casefold(),
            )
        if kind in ("drafts", "journals"):
            return sorted(
                (Choice(row["name"], row["name"], {"id": row["id"]}) for row in self._get_all("draft")),
                key=lambda c: c.label.casefold(),
            )
        raise UnsupportedOperation(f"Dynaccount has no {kind}", system="Dynaccount")

    def vat_rates(self) -> dict[str, Decimal]:
        return {choice.value: choice.details["rate"] for choice in self.list_choices("vat_codes")}

    # --- customers ---

    @staticmethod
    def _remote_customer(row: dict) -> RemoteCustomer:
        return RemoteCustomer(id=str(row["id"]), number=str(row["module_id_"]), name=row["name"], raw=row)

    def find_customer(self, field: str, value: str) -> RemoteCustomer | None:
        if field not in CUSTOMER_FIELDS:
            raise UnsupportedOperation(f"Dynaccount cannot find customers by {field}", system="Dynaccount")
        if not value:
            return None
        row = self._first("debtor", **{CUSTOMER_FIELDS[field]: value})
        return None if row is None else self._remote_customer(row)

    def _debtor_fields(self, customer: CustomerData) -> dict:
        fields = {
            "name": customer.name,
            "address": customer.address or "",
            "zip": customer.postcode or "",
            "city": customer.city or "",
            "ref_country_name": customer.country.upper(),
            "phone": customer.phone or "",
            "email": customer.email or "",
            "email_invoice": customer.email or "",
            "vatno": customer.vat_number or "",
            "ean": customer.ean or "",
            "ref_currency_name": customer.currency,
            "lang": "da" if customer.country.upper() == "DK" else "en",
        }
        if customer.payment_terms:
            fields["payment_name"] = customer.payment_terms
        return fields

    def create_customer(self, customer: CustomerData, debtor_group: str | None = None) -> RemoteCustomer:
        """debtor_group: the invoice template's customer group (else settings, else the first group)."""
        group = debtor_group or self.settings.get("debtor_group")
        if not group:
            groups = self._get("debtor_group", select=["name"], order="id", limit="0,1")
            if not groups:
                raise ConfigurationError(
                    "Dynaccount has no customer group (debitorgruppe); create one in Dynaccount",
                    system="Dynaccount",
                )
            group = groups[0]["name"]
        fields = {
            "module_id_": customer.number or "",
            "module_group_name": group,
            **self._debtor_fields(customer),
        }
        return self._remote_customer(self._insert("debtor", fields))

    def update_customer(self, remote: RemoteCustomer, customer: CustomerData) -> RemoteCustomer:
        return self._remote_customer(self._update("debtor", remote.id, self._debtor_fields(customer)))

    # --- products ---

    @staticmethod
    def _remote_product(row: dict) -> RemoteProduct:
        stock = decimal(row.get("in_stock")) if row.get("is_stocked") == "YES" else None
        return RemoteProduct(
            id=str(row["id"]), number=row["product_id_"], name=row["name"], stock=stock, raw=row
        )

    @staticmethod
    def _product_fields(product: ProductData) -> dict:
        fields = {"name": product.name, "price": str(product.unit_net_price)}
        if product.vat_code:
            fields["vatcode_name"] = product.vat_code
        if product.product_group:
            fields["product_group_name"] = product.product_group
        if product.unit:
            fields["unit_name"] = product.unit
        return fields

    def find_product(self, number: str) -> RemoteProduct | None:
        row = self._first("product", product_id_=number)
        return None if row is None else self._remote_product(row)

    def create_product(self, product: ProductData) -> RemoteProduct:
        row = self._insert("product", {"product_id_": product.number, **self._product_fields(product)})
        return self._remote_product(row)

    def update_product(self, remote: RemoteProduct, product: ProductData) -> RemoteProduct:
        return self._remote_product(self._update("product", remote.id, self._product_fields(product)))

    def get_stock(self, number: str) -> Decimal | None:
        product = self.find_product(number)
        return None if product is None else product.stock

    # --- invoices and credit notes ---

    INVOICE = ("debtor_invoice", "debtor_invoice_product", "invoice_id", "book_debtor_invoice")
    CREDIT_NOTE = (
        "debtor_creditnote",
        "debtor_creditnote_product",
        "creditnote_id",
        "book_debtor_creditnote",
    )

    @staticmethod
    def _remote_invoice(row: dict, credit_note: bool) -> RemoteInvoice:
        vat, gross = decimal(row.get("vat_amount")), decimal(row.get("total_amount"))
        return RemoteInvoice(
            id=str(row["id"]),
            reference=row.get("requisition") or "",
            booked=row.get("is_booked") == "YES",
            totals=Totals(net=gross - vat, vat=vat, gross=gross),
            number=str(row["invoice_id_"]) if row.get("invoice_id_") else None,
            is_credit_note=credit_note,
            raw=row,
        )

    def _has_lines(self, kind, header_id) -> bool:
        _, line_table, fk, _ = kind
        return bool(self._get(line_table, where={fk: header_id}, select=["id"], limit="0,1"))

    def _find_document(self, kind, reference: str) -> tuple[dict | None, bool]:
        """(header carrying our reference, complete?). A draft without lines is an interrupted create, not
        a document: the next create completes it, and find_invoice does not report it."""
        row = self._first(kind[0], requisition=reference)
        if row is None:
            return None, False
        return row, row.get("is_booked") == "YES" or self._has_lines(kind, row["id"])

    def find_invoice(self, reference: str) -> RemoteInvoice | None:
        for kind in (self.INVOICE, self.CREDIT_NOTE):
            row, complete = self._find_document(kind, reference)
            if complete:
                return self._remote_invoice(row, kind is self.CREDIT_NOTE)
        return None

    @staticmethod
    def _line_fields(line: InvoiceLine) -> dict:
        fields = {
            "product_id_": line.product_number or "",
            "name": line.description,
            "qty": str(line.quantity),
            "price": str(line.unit_net_price),
            "vatcode_name": line.vat_code or "",
            "account_id_": line.account or "",
        }
        if line.discount_percent:
            fields["discount_type"] = "PERCENT"
            fields["discount_value"] = str(line.discount_percent)
        if line.unit:
            fields["unit_name"] = line.unit
        return fields

    def _create_document(self, kind, header: dict, document: DraftInvoice, lookup: bool) -> RemoteInvoice:
        table, line_table, fk, _ = kind
        if not document.lines:
            raise ValidationError("An invoice needs at least one line", system="Dynaccount")
        existing, complete = self._find_document(kind, document.reference) if lookup else (None, False)
        if complete:
            return self._remote_invoice(existing, kind is self.CREDIT_NOTE)  # never twice
        if existing is not None:
            header_id = self._update(table, existing["id"], header)["id"]
        else:
            header_id = self._insert(table, header)["id"]
        try:
            self._insert_bulk(
                line_table, [{fk: header_id, **self._line_fields(line)} for line in document.lines]
            )
        except ValidationError:
            self._delete(table, header_id)  # refused lines: roll back, as the official library does
            raise
        # Any other failure leaves the header: the next create finds it by reference and completes it.
        return self._remote_invoice(self._get(table, header_id)[0], kind is self.CREDIT_NOTE)

    def create_draft_invoice(self, invoice: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        if not invoice.customer.number:
            raise ValidationError("The customer has no Dynaccount customer number", system="Dynaccount")
        header = {
            "module_id_": invoice.customer.number,
            "time": unix_time(invoice.date),
            "currency_name": invoice.currency,
            "requisition": invoice.reference,
            "txt": invoice.text or invoice.heading or "",
        }
        if invoice.payment_terms:
            header["payment_name"] = invoice.payment_terms
        return self._create_document(self.INVOICE, header, invoice, lookup)

    def create_credit_note(self, credit_note: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        original = credit_note.credit_for
        if original is None or original.is_credit_note:
            raise ValidationError("A credit note must credit an invoice", system="Dynaccount")
        if not original.booked:
            raise ValidationError("Only booked invoices can be credited", system="Dynaccount")
        header = {
            "invoice_id": original.id,
            "time": unix_time(credit_note.date),
            "requisition": credit_note.reference,
        }
        return self._create_document(self.CREDIT_NOTE, header, credit_note, lookup)

    def book_invoice(self, draft: RemoteInvoice) -> RemoteInvoice:
        kind = self.CREDIT_NOTE if draft.is_credit_note else self.INVOICE
        table, _, fk, action = kind
        if not draft.booked:
            try:
                self._action(action, {fk: draft.id})
            except ValidationError:
                # Booked already (e.g. our earlier attempt's answer was lost)? Then that is success.
                row = self._get(table, draft.id)
                if not row or row[0].get("is_booked") != "YES":
                    raise
        rows = self._get(table, draft.id)
        if not rows:
            raise ValidationError(f"{table} {draft.id} no longer exists", system="Dynaccount")
        return self._remote_invoice(rows[0], draft.is_credit_note)

    def invoice_pdf(self, invoice: RemoteInvoice) -> bytes:
        # The official PHP library has a generic `document/{document}/{id}/` call, but which documents
        # exist, how they are named and what they answer is documented nowhere: not guessed.
        raise UnsupportedOperation(
            "Dynaccount's API documents no way to fetch an invoice as PDF", system="Dynaccount"
        )

    def send_invoice_email(self, invoice: RemoteInvoice, to: str, subject: str, body: str) -> None:
        """Dynaccount chooses the subject itself; `msg` is the mail's text and the PDF is attached."""
        if invoice.is_credit_note:
            raise UnsupportedOperation(
                "Dynaccount's API sends invoices only, not credit notes", system="Dynaccount"
            )
        self._action(
            "send_debtor_invoice", {"invoice_id": invoice.id, "email": to, "msg": body, "is_attached": "YES"}
        )

    # --- vouchers and payments (an enclosure in a kladde + accounting rows, as Webshop.php does) ---

    def _draft_id(self, name: str) -> int:
        if name not in self._draft_ids:
            row = self._first("draft", name=name)
            if row is None:
                raise ConfigurationError(
                    f"Dynaccount has no journal (kladde) named {name!r}; create it or choose another",
                    system="Dynaccount",
                )
            self._draft_ids[name] = row["id"]
        return self._draft_ids[name]

    def _post_enclosure(
        self, reference: str, day: date, text: str, rows: list[dict], draft: str | None
    ) -> str:
        existing = self._first("enclosure", note=reference)
        if existing is not None and self._get(
            "accounting", where={"enclosure_id": existing["id"]}, limit="0,1"
        ):
            return str(existing["id"])  # never twice
        if existing is not None:
            enclosure_id = existing["id"]  # an interrupted post: complete it
        else:
            fields = {
                "time": unix_time(day),
                "draft_id": self._draft_id(draft or self.settings.get("draft") or DEFAULT_DRAFT),
                "txt": text[:255],
                "note": reference,
            }
            enclosure_id = self._insert("enclosure", fields)["id"]
        try:
            self._insert_bulk("accounting", [{"enclosure_id": enclosure_id, **row} for row in rows])
        except ValidationError:
            self._delete("enclosure", enclosure_id)  # manual rollback, as Webshop.php put_enclosure does
            raise
        return str(enclosure_id)

    def post_voucher(self, voucher: Voucher) -> str:
        """amount posts to account_id_, the opposite sign to accountoff_id_ (the contra account)."""
        if not voucher.lines:
            raise ValidationError("A voucher needs at least one line", system="Dynaccount")
        open_amount = sum(
            (money(line.amount) for line in voucher.lines if not line.contra_account), Decimal(0)
        )
        if open_amount:
            raise ValidationError(
                f"The voucher does not balance (difference {open_amount})", system="Dynaccount"
            )
        rows = [
            {
                "type": "LEDGER",
                "account_id_": line.account,
                "accountoff_id_": line.contra_account or "",
                "vatcode_name": line.vat_code or "",
                "amount": str(money(line.amount)),
            }
            for line in voucher.lines
        ]
        return self._post_enclosure(voucher.reference, voucher.date, voucher.text, rows, voucher.journal)

    def register_payment(self, payment: PaymentData) -> str:
        """A DEBTOR_INVOICE row: the bank account is debited, the debtor credited, matched to the invoice
        number (invoice_id_). Dynaccount has no payment endpoint; the customer books the kladde."""
        invoice = payment.invoice
        if not invoice.booked or not invoice.number:
            raise ValidationError("Only booked invoices can be paid", system="Dynaccount")
        account = payment.account or self.settings.get("bank_account")
        if not account:
            raise ConfigurationError("Choose the bank account payments are posted to", system="Dynaccount")
        debtor = invoice.raw.get("module_id_")
        if not debtor:
            table = self.CREDIT_NOTE[0] if invoice.is_credit_note else self.INVOICE[0]
            debtor = self._get(table, invoice.id)[0]["module_id_"]
        sign = -1 if invoice.is_credit_note else 1  # a refund of a credit note leaves the bank
        row = {
            "type": "DEBTOR_INVOICE",
            "account_id_": account,
            "accountoff_id_": debtor,
            "invoice_id_": invoice.number,
            "amount": str(money(payment.amount) * sign),
        }
        text = f"Betaling faktura {invoice.number}"
        return self._post_enclosure(payment.reference, payment.date, text, [row], payment.journal)

    # No public source shows a payment endpoint; the payout row mirrors register_payment's (a guess).
    REFUND_PAYOUT_GUESS = True

    def register_refund_payment(self, payment: PaymentData) -> str:
        """A refund's payout on a booked credit note: the same kladde row as an invoice payment
        (register_payment), with the amount negative: the bank is credited, the debtor debited back."""
        if not payment.invoice.is_credit_note:
            raise ValidationError("A refund payout belongs on a credit note", system="Dynaccount")
        return self.register_payment(payment)

    def customer_balance(self, debtor_id: str) -> Decimal:
        """What the debtor owes: the debtor's `balance` (get debtor/)."""
        rows = self._get("debtor", where={"module_id_": debtor_id})
        return Decimal(str(rows[0].get("balance") or 0)) if rows else Decimal(0)


CONNECTOR = DynaccountConnector


# --- settings and connecting ---


def sandbox_settings(origin: str) -> dict:
    """Bogbro's Dynaccount emulator, and the demo company it seeds on first use."""
    return {
        "api_url": f"{origin}/sandbox/dynaccount",
        "demo_api_id": "1000",
        "demo_api_key": "2433520ac8345e9f5a6bd70bfdb9e80e98a5b602",
        "demo_api_secret": "9ff03717417be8250bfa56d8c14c1f8ca56adadf",
        # Our own pace (DEFAULT_RATE, 5/s) is politeness towards the real Dynaccount, which documents no
        # limit; the local emulator needs none — as e-conomic's and WooCommerce's sandboxes (50/s).
        "rate_limit_requests": 50,
    }


def start_connect(settings: dict, callback_url: str, state: str) -> str | None:
    """Dynaccount has no OAuth: the customer copies the API keys into a form."""
    return None


MESSAGES = {
    "api_id": N_("The API ID is a number. Find it in Dynaccount under Administration > Virksomheder."),
    "api_key": N_(
        "The API key is 40 characters (0-9 and a-f). "
        "Copy it from Administration > Virksomheder in Dynaccount."
    ),
    "api_secret": N_("Enter the API secret from Administration > Virksomheder in Dynaccount."),
    "refused": N_(
        "Dynaccount did not accept these API keys. Copy API ID, API key and API secret again from "
        "Administration > Virksomheder in Dynaccount."
    ),
}


def finish_connect(settings: dict, params: dict, callback_url: str, transport=None) -> dict:
    """The submitted API_ID/API_KEY/API_SECRET -> the credentials to store, after one real signed call."""
    api_id = str(params.get("api_id") or "").strip()
    api_key = str(params.get("api_key") or "").strip().lower()
    api_secret = str(params.get("api_secret") or "").strip()
    if not re.fullmatch(r"\d{1,12}", api_id):
        raise ConfigurationError(MESSAGES["api_id"], system="Dynaccount", details={"field": "api_id"})
    if not re.fullmatch(r"[0-9a-f]{40}", api_key):
        raise ConfigurationError(MESSAGES["api_key"], system="Dynaccount", details={"field": "api_key"})
    if not api_secret:
        raise ConfigurationError(MESSAGES["api_secret"], system="Dynaccount", details={"field": "api_secret"})
    credentials = {"api_id": api_id, "api_key": api_key, "api_secret": api_secret}
    connector = DynaccountConnector(
        ConnectorContext(
            base_url=settings["api_url"],
            credentials=StaticCredentials(credentials),
            external_id=api_id,
            transport=transport,
            settings=settings,
        )
    )
    try:
        connector.verify()
    except AuthenticationError as exc:
        raise ConfigurationError(
            MESSAGES["refused"], system="Dynaccount", status=exc.status, details={"dynaccount": exc.message}
        ) from exc
    finally:
        connector.api.close()
    return credentials
