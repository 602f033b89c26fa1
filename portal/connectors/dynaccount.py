"""Dynaccount (https://api.dynaccount.com/, API v7): customers, and sales, refunds and payments as vouchers.

Built only on what public sources show (docs/connectors/dynaccount.md has the evidence per operation):
    /v7/{API_ID}/{API_KEY}/{method}/{table or action}/{id}/   (empty segments dropped, trailing slash)
    X-Hash: sha1(<URL without "https://", query included> + <raw POST body> + API_SECRET), hex
    GET when there is no data, POST (form-encoded; insert_bulk: `field[row]=value`) when there is —
    as clarkk/php-dynaccount-api API.php request() does; never HTTP PUT or DELETE.
Answers are JSON `{"result": [...]}` or `{"error": {"field": "message"}}`.

No public source shows how to book an invoice or credit note, or how to register a payment, through the
API. So a sale is what the official library's Webshop.php put_enclosure makes of it: a voucher (enclosure)
in a kladde (draft) with LEDGER rows — receivable +gross, sales accounts -net, VAT account -VAT — which the
bookkeeper books in Dynaccount. A refund reverses it; a payment moves the gross from the receivable to
the bank account. Our reference (e.g. "WC-1234") is the voucher's `note`, looked up before every write.
"""

import hashlib
import logging
import re
from datetime import UTC, date, datetime, timedelta
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
    LedgerDocument,
    OpenPeriod,
    Organisation,
    RemoteCustomer,
    RemoteInvoice,
    RemoteProduct,
    TemplateField,
    TemplateSpec,
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
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    ProductData,
    Totals,
    Voucher,
)

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
            kind=kind, zone=zone, label=label, fields=(TemplateField("account", account_label, "accounts"),)
        )
        for zone, label in labels.items()
    )


SYSTEM = AccountingSystem(
    key="dynaccount",
    name="Dynaccount",
    connect="api_key",
    capabilities=Capabilities(
        vat_model="line_code",
        orders=False,  # debtor_order is documented (Webshop.php) but cannot be invoiced or paid via the API
        stock=True,  # product.in_stock (read-only)
        email_invoice=False,  # send_debtor_invoice mails a debtor_invoice; Bogbro's sales are vouchers
        oss=False,
        payment_endpoint=False,  # payments are vouchers in a kladde
        credit_note="table",
    ),
    templates=(
        TemplateSpec(
            kind="invoice",
            zone="",
            label=N_("Sales vouchers"),
            fields=(
                TemplateField("journal", N_("Journal (kladde)"), "drafts"),
                TemplateField("receivable", N_("Receivable account"), "accounts"),
                TemplateField("vat_account", N_("Output VAT account"), "accounts"),
                TemplateField("debtor_group", N_("Customer group"), "debtor_groups", required=False),
            ),
            help=N_(
                "Dynaccount's public API offers no way to create and book invoices or credit notes. Bogbro "
                "therefore posts each sale (and each refund) as a voucher in this journal: the receivable "
                "account is charged the total, the sales accounts and the VAT account are credited. Your "
                "bookkeeper books the journal in Dynaccount."
            ),
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
            fields=(TemplateField("account", N_("Sales account"), "accounts", required=False),),
            help=N_("Only needed for orders with a gift card or a rounding line; no VAT is posted for them."),
        ),
        TemplateSpec(
            kind="payments",
            zone="",
            label=N_("Payments"),
            fields=(
                TemplateField("journal", N_("Journal (kladde)"), "drafts"),
                TemplateField("account", N_("Bank or clearing account"), "accounts"),
            ),
            help=N_(
                "A paid order moves its total from the receivable account to this account; a refund's payout "
                "moves it back. Both are vouchers in this journal."
            ),
        ),
    ),
    notes=(
        N_(
            "Dynaccount's public API documents no way to book invoices, credit notes or payments. Bogbro "
            "posts sales, refunds and payments as vouchers in a journal (kladde) that you book in "
            "Dynaccount; no invoice is made and none is e-mailed."
        ),
        N_(
            "OSS is not supported: Dynaccount's API documents no OSS VAT codes, so EU sales to consumers "
            "are booked with Danish VAT."
        ),
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


def voucher_day(value) -> date:
    """A voucher's `time` (a UNIX timestamp, as it is sent) as its calendar day."""
    text = str(value or "0")
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC).date()
    return date.fromisoformat(text[:10])


def line_totals(line: InvoiceLine, vat_rate: Decimal) -> tuple[Decimal, Decimal]:
    """(net, vat) of one line the way Dynaccount rounds: per line, to øre, VAT from the line's rate."""
    net = money(line.quantity * line.unit_net_price * (100 - line.discount_percent) / 100)
    return net, money(net * vat_rate / 100)


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
        self._balance: set[str] | None = None

    # --- transport ---

    @property
    def limiter(self):
        return self.api.limiter

    def _credentials(self) -> dict:
        return self.context.credentials.get()

    @property
    def api_id(self) -> str:
        return str(self.context.external_id or self._credentials()["api_id"])

    def _call(self, method: str, target: str, id_=None, *, params=None, fields=None) -> list[dict]:
        """GET without data, POST with data (API.php request()). Only GETs are retried blindly; a POST
        that may have been carried out raises AmbiguousWriteError and the caller looks up by reference."""
        credentials = self._credentials()
        segments = [API_VERSION, credentials["api_id"], credentials["api_key"], method, target, id_]
        path = "/" + "/".join(str(s) for s in segments if s not in (None, "", 0, "0")) + "/"
        kwargs = {}
        if params:
            kwargs["params"] = params
        if fields:
            kwargs["content"] = urlencode(fields).encode()
            kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self.api.request("POST" if fields else "GET", path, **kwargs)
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
        return self._call("get", table, id_, params=params)

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
        return self._call("put", table, fields=fields)[0]

    def _update(self, table: str, id_, fields: dict) -> dict:
        return self._call("put", table, id_, fields=fields)[0]

    def _delete(self, table: str, id_) -> None:
        self._call("delete", table, id_)  # no data: a GET, as Account.php delete() sends it

    def _insert_bulk(self, table: str, rows: list[dict]) -> list[dict]:
        fields = {f"{name}[{index}]": value for index, row in enumerate(rows) for name, value in row.items()}
        return self._call("insert_bulk", table, fields=fields)

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
                (Choice(str(row["id"]), row["name"]) for row in self._get_all("draft")),
                key=lambda c: c.label.casefold(),
            )
        raise UnsupportedOperation(f"Dynaccount has no {kind}", system="Dynaccount")

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
        # The product table's writable fields appear in no public source; sales vouchers name no products.
        raise UnsupportedOperation("Dynaccount's API documents no product fields", system="Dynaccount")

    def update_product(self, remote: RemoteProduct, product: ProductData) -> RemoteProduct:
        raise UnsupportedOperation("Dynaccount's API documents no product fields", system="Dynaccount")

    def get_stock(self, number: str) -> Decimal | None:
        product = self.find_product(number)
        return None if product is None else product.stock

    # --- sales, credit notes and payments: vouchers in a kladde (Webshop.php put_enclosure) ---
    # No public source shows how to book an invoice or a credit note through the API, so the sale is what
    # the official library's webshop example makes of it: an enclosure (voucher) in a kladde (draft) with
    # LEDGER rows, which the bookkeeper books in Dynaccount. "Booked" to Bogbro means: in the kladde.

    def _draft_id(self, journal: str | None) -> int:
        """A kladde by its id (the choice's value) or, for older setups, by its name (one look-up)."""
        value = str(journal or self.settings.get("draft") or DEFAULT_DRAFT)
        if value.isdigit():
            return int(value)
        if value not in self._draft_ids:
            row = self._first("draft", name=value)
            if row is None:
                raise ConfigurationError(
                    f"Dynaccount has no journal (kladde) named {value!r}; create it or choose another",
                    system="Dynaccount",
                )
            self._draft_ids[value] = row["id"]
        return self._draft_ids[value]

    def _enclosure(self, reference: str) -> tuple[dict | None, list[dict]]:
        """(the voucher carrying our reference in `note`, its rows in the order they were sent)."""
        enclosure = self._first("enclosure", note=reference)
        if enclosure is None:
            return None, []
        return enclosure, self._get("accounting", where={"enclosure_id": enclosure["id"]}, order="id")

    def _post_enclosure(
        self, reference: str, day: date, text: str, rows: list[dict], journal, lookup: bool = True
    ) -> tuple[dict, list[dict]]:
        """Looked up by reference first (unless the pipeline knows nothing was sent): never twice. A voucher
        left without rows by an interrupted post is completed; refused rows delete it again (the rollback
        Webshop.php does)."""
        if sum((decimal(row["amount"]) for row in rows), Decimal(0)):
            raise ValidationError("The voucher does not balance", system="Dynaccount")
        enclosure, existing = self._enclosure(reference) if lookup else (None, [])
        if existing:
            return enclosure, existing
        if enclosure is None:
            fields = {
                "time": unix_time(day),
                "draft_id": self._draft_id(journal),
                "txt": text[:255],
                "note": reference,
            }
            enclosure = self._insert("enclosure", fields)
        try:
            self._insert_bulk("accounting", [{"enclosure_id": enclosure["id"], **row} for row in rows])
        except ValidationError:
            self._delete("enclosure", enclosure["id"])
            raise
        return enclosure, rows

    @staticmethod
    def _ledger_row(account, amount: Decimal) -> dict:
        # vatcode_name empty, as Webshop.php put_accounting() sends it: the VAT is a row of its own, so the
        # account's default VAT code must not add VAT again.
        return {
            "type": "LEDGER",
            "account_id_": str(account),
            "vatcode_name": "",
            "amount": str(money(amount)),
        }

    @staticmethod
    def _remote_sale(reference: str, enclosure: dict, rows: list[dict], vat: Decimal) -> RemoteInvoice:
        """The receivable row comes first: positive for a sale, negative for a credit note."""
        receivable = rows[0]
        gross = decimal(receivable["amount"])
        vat = abs(vat)
        return RemoteInvoice(
            id=str(enclosure["id"]),
            reference=reference,
            booked=True,  # final on our side: the voucher is in the kladde, for the bookkeeper to book
            totals=Totals(net=abs(gross) - vat, vat=vat, gross=abs(gross)),
            number=str(enclosure["id"]),
            is_credit_note=gross < 0,
            raw={"receivable": str(receivable["account_id_"]), "rows": rows},
        )

    def _balance_accounts(self) -> set[str]:
        if self._balance is None:
            rows = self._get_all("account", where={"type": "BALANCE"})
            self._balance = {str(row["account_id_"]) for row in rows}
        return self._balance

    def list_documents(self, start: date, end: date, prefix: str, template: dict) -> list[LedgerDocument]:
        """Our vouchers: every voucher (enclosure) page by page, those whose `note` starts with the prefix
        and dated in the range; each one's total is its row on the receivable account (a sale debits it, a
        refund credits it), read as every row on that account page by page — two listings, not a read per
        voucher. The where-clauses are equality only, so the prefix and the dates are narrowed here."""
        receivable = str(template.get("receivable") or "")
        if not receivable:
            raise ConfigurationError(
                "Choose the receivable account in the template “Sales vouchers”", system="Dynaccount"
            )
        ours = {}
        for row in self._get_all("enclosure"):
            note = str(row.get("note") or "")
            if note.startswith(prefix) and start <= voucher_day(row.get("time")) <= end:
                ours[str(row["id"])] = row
        totals: dict[str, Decimal] = {}
        for row in self._get_all("accounting", where={"account_id_": receivable}):
            key = str(row.get("enclosure_id"))
            if key in ours:
                totals[key] = totals.get(key, Decimal(0)) + decimal(row["amount"])
        return [
            LedgerDocument(
                reference=str(row["note"]),
                id=key,
                number=key,
                kind="credit_note" if totals.get(key, Decimal(0)) < 0 else "invoice",
                booked=True,  # final on our side, as find_invoice says
                date=voucher_day(row.get("time")),
                gross=abs(totals.get(key, Decimal(0))),
            )
            for key, row in ours.items()
        ]

    def find_invoice(self, reference: str) -> RemoteInvoice | None:
        """Read back, the VAT is the rows on balance-sheet accounts after the receivable (sales accounts
        are operating accounts): one more read, only off the steady path (resumes and refunds)."""
        enclosure, rows = self._enclosure(reference)
        return self._read_back(reference, enclosure, rows) if rows else None

    def _read_back(self, reference: str, enclosure: dict, rows: list[dict]) -> RemoteInvoice:
        balance = self._balance_accounts()
        vat = sum((decimal(r["amount"]) for r in rows[1:] if str(r["account_id_"]) in balance), Decimal(0))
        return self._remote_sale(reference, enclosure, rows, vat)

    def _sale_rows(self, document: DraftInvoice, sign: int) -> tuple[list[dict], Decimal]:
        """Receivable +gross, each account -net, the VAT account -VAT (sign -1 reverses: a credit note).
        VAT per line, rounded half-up to øre, as the engine's totals for Dynaccount assume."""
        values = document.sales_voucher or {}
        receivable, vat_account = values.get("receivable"), values.get("vat_account")
        if not receivable or not vat_account:
            raise ConfigurationError(
                "Choose the receivable account and the VAT account in the template “Sales vouchers”",
                system="Dynaccount",
            )
        if not document.lines:
            raise ValidationError("An invoice needs at least one line", system="Dynaccount")
        net_by_account: dict[str, Decimal] = {}
        vat = Decimal(0)
        for line in document.lines:
            if not line.account or line.vat_rate is None:
                raise ValidationError(f"The line {line.description!r} has no account", system="Dynaccount")
            net, line_vat = line_totals(line, line.vat_rate)
            net_by_account[line.account] = net_by_account.get(line.account, Decimal(0)) + net
            vat += line_vat
        gross = sum(net_by_account.values(), Decimal(0)) + vat
        if not gross:  # the receivable row is what identifies the voucher when it is read back
            raise ValidationError(
                "The total is 0.00: there is nothing to charge the receivable account; post it by hand "
                "in Dynaccount if it is needed",
                system="Dynaccount",
            )
        rows = [self._ledger_row(receivable, gross * sign)]
        rows += [self._ledger_row(account, -net * sign) for account, net in net_by_account.items() if net]
        if vat:
            rows.append(self._ledger_row(vat_account, -vat * sign))
        return rows, vat

    def _post_sale(self, document: DraftInvoice, sign: int, text: str, lookup: bool) -> RemoteInvoice:
        rows, vat = self._sale_rows(document, sign)
        journal = (document.sales_voucher or {}).get("journal")
        enclosure, posted = self._post_enclosure(
            document.reference, document.date, text, rows, journal, lookup
        )
        if posted is not rows:  # posted before (a replay): read back
            return self._read_back(document.reference, enclosure, posted)
        return self._remote_sale(document.reference, enclosure, rows, vat)

    def create_draft_invoice(self, invoice: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        """The sale as a voucher: the look-up by reference (unless `lookup` is False: the pipeline knows
        nothing was sent), the enclosure, insert_bulk of its rows."""
        name = invoice.recipient.name if invoice.recipient else invoice.customer.name
        text = f"{invoice.text or invoice.reference} · {name}" if name else invoice.text or invoice.reference
        return self._post_sale(invoice, 1, text, lookup)

    def create_credit_note(self, credit_note: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        """The refund as a voucher reversing the sale's accounts (the receivable is credited)."""
        original = credit_note.credit_for
        if original is None or original.is_credit_note:
            raise ValidationError("A credit note must credit an invoice", system="Dynaccount")
        return self._post_sale(credit_note, -1, credit_note.text or credit_note.reference, lookup)

    def book_invoice(self, draft: RemoteInvoice) -> RemoteInvoice:
        # The API documents no booking call: the bookkeeper books the kladde in Dynaccount.
        return draft

    def invoice_pdf(self, invoice: RemoteInvoice) -> bytes:
        raise UnsupportedOperation(
            "Dynaccount's API documents no way to fetch an invoice as PDF", system="Dynaccount"
        )

    def send_invoice_email(self, invoice: RemoteInvoice, to: str, subject: str, body: str) -> None:
        # send_debtor_invoice (test/account_test.php) mails a debtor_invoice; Bogbro's sales are vouchers.
        raise UnsupportedOperation(
            "Bogbro posts sales to Dynaccount as vouchers, which Dynaccount cannot e-mail",
            system="Dynaccount",
        )

    def post_voucher(self, voucher: Voucher) -> str:
        """LEDGER rows; a row with a contra account posts the opposite amount there."""
        if not voucher.lines:
            raise ValidationError("A voucher needs at least one line", system="Dynaccount")
        rows = []
        for line in voucher.lines:
            rows.append(self._ledger_row(line.account, line.amount))
            if line.contra_account:
                rows.append(self._ledger_row(line.contra_account, -line.amount))
        enclosure, _ = self._post_enclosure(
            voucher.reference, voucher.date, voucher.text, rows, voucher.journal
        )
        return str(enclosure["id"])

    def _payment(self, payment: PaymentData, sign: int, text: str) -> str:
        """The bank (or clearing) account gets the money, the sale's receivable account is settled."""
        invoice = payment.invoice
        receivable = invoice.raw.get("receivable")
        if not receivable:
            found = self.find_invoice(invoice.reference)
            receivable = found.raw.get("receivable") if found else None
        if not receivable:
            raise ValidationError(
                f"No voucher carries {invoice.reference} in Dynaccount", system="Dynaccount"
            )
        if not payment.account:
            raise ConfigurationError("Choose the bank account payments are posted to", system="Dynaccount")
        amount = money(payment.amount) * sign
        rows = [self._ledger_row(payment.account, amount), self._ledger_row(receivable, -amount)]
        enclosure, _ = self._post_enclosure(payment.reference, payment.date, text, rows, payment.journal)
        return str(enclosure["id"])

    def open_periods(self) -> list[OpenPeriod]:
        """The accounting years (`year`: time_start, time_end, is_closed) not closed. Bogbro dates each
        voucher at 12:00 UTC (unix_time), so a day is in a year when that moment is. One call."""
        found = []
        for year in self._get_all("year"):
            if year.get("is_closed") == "YES" or not year.get("time_start") or not year.get("time_end"):
                continue
            start, end = int(year["time_start"]), int(year["time_end"])
            first = datetime.fromtimestamp(start, UTC).date()
            first += timedelta(days=1) if unix_time(first) < start else timedelta()
            last = datetime.fromtimestamp(end, UTC).date()
            last -= timedelta(days=1) if unix_time(last) > end else timedelta()
            if first <= last:
                found.append(OpenPeriod(first, last))
        return found

    def register_payment(self, payment: PaymentData) -> str:
        return self._payment(payment, 1, f"Betaling {payment.invoice.reference}")

    # The payout is LEDGER rows like every other voucher (Webshop.php): documented, so on by default
    # (portal/connectors/evidence/dynaccount.py).
    def register_refund_payment(self, payment: PaymentData) -> str:
        """The money that went back leaves the bank; the credit note's receivable returns to zero."""
        if not payment.invoice.is_credit_note:
            raise ValidationError("A refund payout belongs on a credit note", system="Dynaccount")
        return self._payment(payment, -1, f"Tilbagebetaling {payment.invoice.reference}")


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
