"""e-conomic: the legacy REST API (restapi.e-conomic.com) for master data, customers, products and invoices,
and the journals service of apis.e-conomic.com to book the journal (kassekladde) payments are put in.

Connecting is e-conomic's grant-token handshake: the customer approves Bogbro on e-conomic's page, which
redirects back with `?token=<agreement grant token>`; every call then sends our app secret token and that
grant token as headers. The grant does not expire; a revoked one answers 401.

VAT is never given per line: e-conomic takes each line's product → its product group → the group's sales
account for the recipient's VAT zone → that account's VAT code. Totals are rounded per line (2 decimals,
half up) and VAT is computed on the net total per rate. Amounts and quantities may have at most 2 decimals.
Our dedupe key on invoices and orders is `references.other` (filterable on drafts, booked invoices and
every order collection); on journal entries it is the start of the entry text. Orders (which reserve stock)
become invoices through e-conomic's upgrade instructions (see docs/connectors/economic.md, "Orders").
"""

import contextlib
import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from functools import cached_property
from urllib.parse import quote, urlencode

import httpx

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.base import (
    N_,
    NO_VAT_LABEL,
    OSS_COUNTRIES,
    OSS_LABEL,
    AccountingConnector,
    AccountingSystem,
    Capabilities,
    Choice,
    LedgerDocument,
    OpenPeriod,
    Organisation,
    RemoteCustomer,
    RemoteInvoice,
    RemoteOrder,
    RemoteProduct,
    TemplateField,
    TemplateSpec,
    danish_country_name,
)
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    ForeignEntries,
    NotFound,
    UnsupportedOperation,
    ValidationError,
)
from portal.connectors.http import DEFAULT_TIMEOUT, ApiClient, client_for, pdf_content
from portal.connectors.ratelimit import limiter_for, per_second
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    ProductData,
    Totals,
    Voucher,
)

KEY = "e-conomic"
CONFIG_PREFIX = "ECONOMIC_"
# The journals service's version: 11.1.0 added booking chosen entries (bookdraftentries), so a payment books
# only its own voucher; 16.0.1 is the newest in e-conomic's changelog (docs/connectors/economic.md).
JOURNALS_API = "/journalsapi/v16.0.1"
# The text of our customer-payment entries: "<reference> Betaling faktura <number>" (register_payment) or
# "<reference> Udbetaling kreditnota <number>" (register_refund_payment).
PAYMENT_TEXT = re.compile(r"^\S+ (Betaling faktura|Udbetaling kreditnota) \d+$")
CENT = Decimal("0.01")
PAGE_SIZE = 1000
# Payments per voucher POST: the draft-entries read that follows names their voucher numbers in one `$in:`,
# which takes 200 values at most (ECO-OAPI-J5, "Using in and not in operators"); the POST's own limit is
# not published.
BATCH_LIMIT = 100
ZONE_NUMBERS = {"domestic": 1, "eu": 2, "world": 3}
ZONE_NAMES = {number: zone for zone, number in ZONE_NUMBERS.items()}
# Where e-conomic keeps orders: open ones as drafts (or "sent", once registered as sent), invoiced ones
# archived.
ORDER_COLLECTIONS = (("draft", "/orders/drafts"), ("sent", "/orders/sent"), ("archived", "/orders/archived"))
ORDER_PATHS = dict(ORDER_COLLECTIONS)
# What a draft invoice POST may carry (invoices.drafts.post schema, read-only totals left out) …
DRAFT_WRITABLE = (
    "date", "currency", "exchangeRate", "dueDate", "paymentTerms", "customer", "recipient", "delivery",
    "deliveryLocation", "notes", "references", "layout", "project", "lines",
)  # fmt: skip
# … and per line.
LINE_WRITABLE = (
    "lineNumber", "sortKey", "description", "product", "quantity", "unit", "unitNetPrice",
    "discountPercentage", "unitCostPrice", "accrual", "departmentalDistribution",
)  # fmt: skip

_PRODUCT_GROUP_HELP = N_(
    "e-conomic decides the account and the VAT from the product group: each group has a sales account per "
    "VAT zone, and the customer's VAT zone (domestic, EU, abroad) picks which one."
)

SYSTEM = AccountingSystem(
    key=KEY,
    name="e-conomic",
    connect="grant_token",
    capabilities=Capabilities(
        vat_model="product_group",
        orders=True,  # /orders/drafts, upgraded to the invoice draft by a later state (see "Orders")
        stock=True,
        email_invoice=False,
        oss=True,  # per-country product groups chosen in the OSS template; products OSS-<country code>
        payment_endpoint=False,
        credit_note="negative_draft",
    ),
    templates=(
        TemplateSpec(
            kind="invoice",
            zone="",
            label=N_("Invoice"),
            fields=(
                TemplateField("layout", N_("Layout"), "layouts"),
                TemplateField("payment_terms", N_("Payment terms"), "payment_terms"),
            ),
            help=N_("The layout prints the invoice; the payment terms set its due date."),
        ),
        TemplateSpec(
            kind="goods",
            zone="",
            label=N_("Goods"),
            fields=(TemplateField("product_group", N_("Product group"), "product_groups"),),
            help=_PRODUCT_GROUP_HELP,
        ),
        TemplateSpec(
            kind="freight",
            zone="",
            label=N_("Freight"),
            fields=(TemplateField("product_group", N_("Product group"), "product_groups"),),
            help=_PRODUCT_GROUP_HELP,
        ),
        TemplateSpec(
            kind="no_vat",
            zone="",
            label=NO_VAT_LABEL,
            fields=(TemplateField("product_group", N_("Product group"), "product_groups", required=False),),
            help=N_(
                "Only needed for orders with a gift card or a rounding line: Bogbro books them on the fixed "
                "products (GAVEKORT, AFRUND) it creates in this product group. They must carry no VAT: "
                "choose a group whose sales account has no VAT in every zone."
            ),
        ),
        TemplateSpec(
            kind="oss",
            zone="",
            label=OSS_LABEL,
            fields=tuple(
                TemplateField(code, name, "product_groups", required=False)
                for code, name in OSS_COUNTRIES.items()
            ),
            help=N_(
                "Only needed when OSS is on in a sales source's settings: EU sales to private customers then "
                "carry the VAT of the buyer's country. Choose a product group per country you sell to; its "
                "EU sales account must carry a VAT code with that country's rate (your accountant sets these "
                "up in e-conomic), and Bogbro warns here when the rate is not the country's current one. "
                "Bogbro books those sales on a product per country (OSS-SE, OSS-DE and so on), which it "
                "creates in the chosen group if it is missing. Orders to a country without a group stop "
                "with a message, and so do lines at a reduced rate of the country: book those by hand."
            ),
            compact=True,
        ),
        TemplateSpec(
            kind="payments",
            zone="",
            label=N_("Payments"),
            fields=(
                TemplateField("journal", N_("Journal"), "journals"),
                TemplateField("account", N_("Bank or clearing account"), "accounts"),
            ),
            help=N_(
                "Payments become customer-payment entries in this journal, against the bank or clearing "
                "account, and Bogbro books each payment's own voucher, never the rest of the journal. Best "
                "is a journal only Bogbro uses (create one in e-conomic, e.g. “Bogbro betalinger”): the list "
                "warns when the chosen journal holds entries Bogbro did not make."
            ),
        ),
    ),
    notes=(
        N_(
            "OSS in e-conomic: EU sales to consumers are booked on a product group per country, whose EU "
            "sales account carries that country's VAT code. Your accountant sets these up in e-conomic; you "
            "choose them in the template “EU sales to consumers (OSS)”."
        ),
        N_("e-conomic cannot e-mail an invoice with our text through its API: Bogbro sends the PDF itself."),
        N_(
            "Stock is read from e-conomic when the inventory module is on; "
            "it cannot be changed through the API."
        ),
    ),
)


def sandbox_settings(origin: str) -> dict:
    """Settings that point every URL at Bogbro's own e-conomic sandbox."""
    return {
        "app_secret_token": "demo",
        "app_public_token": "demo-public",
        "api_url": f"{origin}/sandbox/e-conomic",
        "apis_url": f"{origin}/sandbox/e-conomic-apis",
        "connect_url": "/sandbox/e-conomic/_connect/requestaccess.aspx",  # a browser page on this app
        "requests_per_second": 50,
    }


# --- the connect flow ---------------------------------------------------------------------------------------


def start_connect(settings: dict, callback_url: str, state: str) -> str | None:
    """e-conomic's install URL. Its page echoes no state: the caller keeps the tenant binding itself."""
    query = urlencode(
        {"appPublicToken": settings["app_public_token"], "redirectUrl": callback_url, "locale": "da-DK"}
    )
    return f"{settings['connect_url']}?{query}"


def finish_connect(settings: dict, params: dict, callback_url: str, transport=None) -> dict:
    """The credentials to store, from the callback's `token`, verified with GET /self."""
    token = (params.get("token") or "").strip()
    if not token:
        raise ConfigurationError(
            N_(
                "e-conomic did not grant access: the answer carried no token. Start the connection again and "
                "choose Accept on e-conomic's page."
            ),
            system=KEY,
        )
    credentials = {"agreement_grant_token": token}
    connector = EconomicConnector(
        ConnectorContext(
            base_url=settings["api_url"],
            credentials=StaticCredentials(credentials),
            transport=transport,
            settings=settings,
        )
    )
    try:
        connector.verify()
    finally:
        connector.close()
    return credentials


# --- helpers ------------------------------------------------------------------------------------------------

_SELF_LINK = {
    "<": "_0_",
    ">": "_1_",
    "*": "_2_",
    "%": "_3_",
    ":": "_4_",
    "&": "_5_",
    "/": "_6_",
    "\\": "_7_",
    "_": "_8_",
    " ": "_9_",
    "?": "_10_",
    ".": "_11_",
    "#": "_12_",
    "+": "_13_",
}


def encode_key(value: str) -> str:
    """e-conomic's self-link encoding of a string key (e.g. "_" → "_8_", "." → "_11_", "/" → "_6_"),
    then standard URL encoding of what is left."""
    return quote("".join(_SELF_LINK.get(c, c) for c in value), safe="")


def product_path(number: str) -> str:
    return f"/products/{encode_key(number)}"


def filter_value(value: str) -> str:
    """A value escaped for e-conomic's filter syntax."""
    out = value.replace("$", "$$")
    for char in "()*,[]":
        out = out.replace(char, "$" + char)
    return out


def dumps(value) -> str:
    """JSON with Decimals written as numbers with exactly their digits (never through float)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)


def decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def amount(value) -> Decimal:
    """Money as e-conomic holds it: two decimals (e-conomic rounds half up)."""
    return decimal(value).quantize(CENT)


def error_message(response: httpx.Response) -> tuple[str, dict]:
    """e-conomic's own message: REST annotated errors, or the OpenAPI services' ProblemDetails."""
    try:
        body = response.json()
    except ValueError:
        return (response.text[:500] or response.reason_phrase), {}
    if not isinstance(body, dict):
        return str(body)[:500], {}
    message = body.get("message") or body.get("title") or response.reason_phrase
    if body.get("detail"):
        message = f"{message}: {body['detail']}" if body.get("title") else body["detail"]
    details = [f"{where}: {text}" for where, text in _field_errors(body.get("errors"))]
    if details:
        message = f"{message} {'; '.join(details)}"
    return message, body


def _field_errors(errors, path=""):
    """(where, message) pairs from annotated errors (nested, arrays with arrayIndex) or ProblemDetails."""
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict) and "arrayIndex" in item:
                rest = {k: v for k, v in item.items() if k != "arrayIndex"}
                yield from _field_errors(rest, f"{path}[{item['arrayIndex']}]")
            elif isinstance(item, dict) and "message" in item:
                code = f" ({item['errorCode']})" if item.get("errorCode") else ""
                yield (item.get("property") or path or "request"), f"{item['message']}{code}"
        return
    if not isinstance(errors, dict):
        return
    for key, value in errors.items():
        if key == "errors" and isinstance(value, list):
            for error in value:
                code = f" ({error['errorCode']})" if error.get("errorCode") else ""
                yield (path or "request"), f"{error.get('message', '')}{code}"
        elif isinstance(value, dict | list):
            yield from _field_errors(value, f"{path}.{key}" if path else key)


def _one(results: list):
    """The single payment's id, or raise what stopped it."""
    if isinstance(results[0], Exception):
        raise results[0]
    return results[0]


def _address(who: CustomerData) -> dict:
    """A customer's address (and EAN) as e-conomic's customer and recipient documents name them."""
    return {
        "address": who.address,
        "zip": who.postcode,
        "city": who.city,
        # e-conomic's country is free text; Danish agreements write it in Danish
        "country": danish_country_name(who.country) if who.country else None,
        "ean": who.ean,
    }


# --- the connector ------------------------------------------------------------------------------------------


class EconomicConnector(AccountingConnector):
    system = SYSTEM

    def __init__(self, context: ConnectorContext):
        self.context = context
        settings = context.settings
        grant = context.credentials.get().get("agreement_grant_token")
        if not grant:
            raise AuthenticationError("No e-conomic grant is stored: connect to e-conomic again.", system=KEY)
        headers = {
            "X-AppSecretToken": settings.get("app_secret_token") or "",
            "X-AgreementGrantToken": grant,
            "Accept": "application/json",
        }
        organisation = context.external_id or hashlib.sha256(grant.encode()).hexdigest()[:16]
        rate = float(settings.get("requests_per_second") or 3)
        # One request per 1/rate seconds, shared by every worker on this agreement (no bursts).
        limiter = limiter_for(context, f"{KEY}:{organisation}", per_second(rate))
        timeout = httpx.Timeout(float(settings["timeout"])) if settings.get("timeout") else DEFAULT_TIMEOUT
        common = {
            "system": KEY,
            "headers": headers,
            "timeout": timeout,
            "limiter": limiter,
            "error_message": error_message,
        }
        self.rest = client_for(context, base_url=context.base_url, **common)
        apis_url = (settings.get("apis_url") or "https://apis.e-conomic.com").rstrip("/")
        self._apis_options = {"base_url": apis_url + JOURNALS_API, **common}
        # The accounting years (GET /accounting-years): from the API once, or given from the pipeline's
        # cache (use_accounting_years: portal.pipeline.periods), then read again only for a date they miss.
        self.accounting_years: list[dict] | None = None
        self.years_fetched = False

    @cached_property
    def apis(self) -> ApiClient:
        """The journals service's client, made when a journal is booked (not for every transfer)."""
        return client_for(self.context, **self._apis_options)

    @property
    def limiter(self):
        return self.rest.limiter  # the journals client shares it

    def close(self):
        self.rest.close()
        if "apis" in self.__dict__:
            self.apis.close()

    # --- plumbing ---

    def _get(self, path: str, **params) -> dict:
        return self.rest.get(path, params=params or None).json(parse_float=Decimal)

    def _send(self, method: str, path: str, body) -> dict:
        response = self.rest.request(
            method, path, content=dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        return response.json(parse_float=Decimal)

    def _all(self, path: str, filter: str | None = None) -> list[dict]:
        """Every item of a collection, page by page."""
        items, page = [], 0
        while True:
            params = {"skippages": page, "pagesize": PAGE_SIZE}
            if filter:
                params["filter"] = filter
            body = self._get(path, **params)
            items.extend(body.get("collection", []))
            if not body.get("pagination", {}).get("nextPage"):
                return items
            page += 1

    def _first(self, path: str, filter: str) -> dict | None:
        body = self._get(path, filter=filter, pagesize=1)
        collection = body.get("collection", [])
        return collection[0] if collection else None

    # --- connecting ---

    def verify(self) -> Organisation:
        me = self._get("/self")
        company = me.get("company") or {}
        return Organisation(
            external_id=str(me["agreementNumber"]), name=company.get("name") or str(me["agreementNumber"])
        )

    def list_organisations(self) -> list[Organisation]:
        return [self.verify()]

    # --- master data ---

    def list_choices(self, kind: str) -> list[Choice]:
        if kind == "layouts":
            choices = [
                Choice(str(x["layoutNumber"]), x["name"])
                for x in self._all("/layouts")
                if not x.get("deleted")
            ]
        elif kind == "payment_terms":
            choices = [
                Choice(
                    str(x["paymentTermsNumber"]),
                    x["name"],
                    {"days": x.get("daysOfCredit", 0), "type": x["paymentTermsType"]},
                )
                for x in self._all("/payment-terms")
            ]
        elif kind == "product_groups":
            choices = self._product_group_choices()
        elif kind == "journals":
            foreign = self._foreign_entry_counts()
            choices = [
                Choice(
                    str(x["journalNumber"]),
                    x["name"],
                    {"foreign_entries": foreign.get(x["journalNumber"], 0)},
                )
                for x in self._all("/journals")
            ]
        elif kind == "accounts":
            choices = [
                Choice(
                    str(x["accountNumber"]),
                    f"{x['accountNumber']} {x['name']}",
                    {"type": x.get("accountType"), "vat_code": (x.get("vatAccount") or {}).get("vatCode")},
                )
                for x in self._all("/accounts")
                if x.get("accountType", "profitAndLoss") in ("profitAndLoss", "status")
                and not x.get("barred")
            ]
        elif kind == "vat_zones":
            choices = [
                Choice(str(x["vatZoneNumber"]), x["name"], {"zone": ZONE_NAMES.get(x["vatZoneNumber"])})
                for x in self._all("/vat-zones")
                if x.get("enabledForCustomer")
            ]
        elif kind == "vat_codes":
            choices = [
                Choice(
                    x["vatCode"],
                    f"{x['vatCode']} {x['name']}",
                    # the VAT type's name ("Salgsmoms", "Købsmoms", …) tells output from input VAT
                    {"rate": str(decimal(x["ratePercentage"])), "type": (x.get("vatType") or {}).get("name")},
                )
                for x in self._all("/vat-accounts")
                if not x.get("barred")
            ]
        elif kind == "customer_groups":
            choices = [
                Choice(str(x["customerGroupNumber"]), x["name"]) for x in self._all("/customer-groups")
            ]
        else:
            raise UnsupportedOperation(f"e-conomic has no master data called {kind!r}", system=KEY)
        return sorted(choices, key=lambda c: (len(c.value), c.value) if c.value.isdigit() else (0, c.value))

    def _product_group_choices(self) -> list[Choice]:
        """Each group with its sales account per VAT zone and that account's VAT code and rate (what a line
        in the group costs in VAT for a customer in that zone: the OSS template checks it against the
        destination's rate). The chart and the VAT codes are read once for all groups."""
        codes = {
            account["accountNumber"]: (account.get("vatAccount") or {}).get("vatCode")
            for account in self._all("/accounts")
        }
        vat_accounts = self._all("/vat-accounts")
        rates = {code["vatCode"]: decimal(code["ratePercentage"]) for code in vat_accounts}
        types = {code["vatCode"]: (code.get("vatType") or {}).get("name") for code in vat_accounts}
        return [
            self._product_group_choice(group, codes, rates, types) for group in self._all("/product-groups")
        ]

    def _product_group_choice(self, group: dict, codes: dict, rates: dict, types: dict) -> Choice:
        number = group["productGroupNumber"]
        sales_accounts, vat_codes, vat_rates, vat_types = {}, {}, {}, {}
        for item in self._all(f"/product-groups/{number}/sales-accounts"):
            zone = ZONE_NAMES.get(item["vatZone"]["vatZoneNumber"])
            if zone:
                account = item["salesAccount"]
                sales_accounts[zone] = f"{account['accountNumber']} {account.get('name', '')}".strip()
                code = (account.get("vatAccount") or {}).get("vatCode") or codes.get(account["accountNumber"])
                if code and code in rates:
                    vat_codes[zone], vat_rates[zone] = code, str(rates[code])
                    if types.get(code):
                        vat_types[zone] = types[code]
        details = {
            "sales_accounts": sales_accounts,
            "vat_codes": vat_codes,
            "vat_rates": vat_rates,
            "vat_types": vat_types,  # the VAT type's name: output or input VAT (the wizard's checks)
        }
        return Choice(str(number), group["name"], details)

    # --- customers ---

    def find_customer(self, field: str, value: str) -> RemoteCustomer | None:
        value = str(value).strip()
        if field == "customer_number":
            if not value.isdigit():
                return None
            try:
                return self._remote_customer(self._get(f"/customers/{int(value)}"))
            except NotFound:
                return None
        escaped = filter_value(value)
        filters = {
            "email": f"email$eq:{escaped}",
            "ean": f"ean$eq:{escaped}",
            # CVR for Danish companies, the VAT number for foreign ones
            "vat_number": f"corporateIdentificationNumber$eq:{escaped}$or:vatNumber$eq:{escaped}",
        }
        if field not in filters:
            raise UnsupportedOperation(f"e-conomic cannot find customers by {field!r}", system=KEY)
        found = self._first("/customers", filters[field])
        return None if found is None else self._remote_customer(found)

    def create_customer(self, customer: CustomerData) -> RemoteCustomer:
        body = self._customer_document(customer, {})
        return self._remote_customer(self._send("POST", "/customers", body))

    def update_customer(self, remote: RemoteCustomer, customer: CustomerData) -> RemoteCustomer:
        current = self._get(f"/customers/{int(remote.id)}")  # PUT replaces: start from the whole document
        body = self._customer_document(customer, current)
        return self._remote_customer(self._send("PUT", f"/customers/{int(remote.id)}", body))

    def _customer_document(self, customer: CustomerData, current: dict) -> dict:
        writable = {
            k: v
            for k, v in current.items()
            if k not in ("self", "balance", "dueAmount", "lastUpdated", "contacts", "deliveryLocations")
            and k not in ("templates", "totals", "invoices")
        }
        body = {**writable, "name": customer.name[:255], "currency": customer.currency}
        body["vatZone"] = {"vatZoneNumber": ZONE_NUMBERS[customer.zone]}
        if customer.payment_terms:
            body["paymentTerms"] = {"paymentTermsNumber": int(customer.payment_terms)}
        elif "paymentTerms" not in body:
            body["paymentTerms"] = {
                "paymentTermsNumber": int(self._first_number("/payment-terms", "paymentTermsNumber"))
            }
        if "customerGroup" not in body:
            body["customerGroup"] = {
                "customerGroupNumber": int(self._first_number("/customer-groups", "customerGroupNumber"))
            }
        if customer.number and customer.number.isdigit() and not current:
            body["customerNumber"] = int(customer.number)
        optional = {"email": customer.email, "telephoneAndFaxNumber": customer.phone, **_address(customer)}
        if customer.vat_number:
            danish = customer.country.upper() == "DK"
            number = customer.vat_number.upper().removeprefix("DK") if danish else customer.vat_number
            optional["corporateIdentificationNumber" if danish else "vatNumber"] = number
        for key, value in optional.items():
            if value:
                body[key] = value
        # e-conomic refuses null: references are sent as plain {number} objects without their self links
        for key in ("customerGroup", "paymentTerms", "vatZone", "layout", "salesPerson"):
            if isinstance(body.get(key), dict):
                body[key] = {k: v for k, v in body[key].items() if k != "self"}
        return {k: v for k, v in body.items() if v is not None}

    def _first_number(self, path: str, key: str) -> int:
        items = self._all(path)
        if not items:
            raise ConfigurationError(
                f"e-conomic has no {path.strip('/')} to use for new customers", system=KEY
            )
        return min(item[key] for item in items)

    @staticmethod
    def _remote_customer(document: dict) -> RemoteCustomer:
        number = str(document["customerNumber"])
        return RemoteCustomer(id=number, number=number, name=document.get("name", ""), raw=document)

    # --- products ---

    def find_product(self, number: str) -> RemoteProduct | None:
        try:
            return self._remote_product(self._get(product_path(number)))
        except NotFound:
            return None

    def create_product(self, product: ProductData) -> RemoteProduct:
        return self._remote_product(self._send("POST", "/products", self._product_document(product, {})))

    def update_product(self, remote: RemoteProduct, product: ProductData) -> RemoteProduct:
        current = self._get(product_path(remote.number))
        body = self._product_document(product, current)
        return self._remote_product(self._send("PUT", product_path(remote.number), body))

    def _product_document(self, product: ProductData, current: dict) -> dict:
        group = product.product_group or (current.get("productGroup") or {}).get("productGroupNumber")
        if group is None:
            raise ConfigurationError(
                f"Choose an e-conomic product group for {product.number}: it decides account and VAT.",
                system=KEY,
            )
        body = {
            k: current[k]
            for k in ("description", "costPrice", "recommendedPrice", "barCode", "barred")
            if k in current
        }
        body.update(
            {
                "productNumber": product.number,
                "name": product.name[:300],
                "salesPrice": decimal(product.unit_net_price),
                "productGroup": {"productGroupNumber": int(group)},
            }
        )
        if product.unit:
            body["unit"] = {"unitNumber": int(product.unit)}
        elif current.get("unit"):
            body["unit"] = {"unitNumber": current["unit"]["unitNumber"]}
        return body

    @staticmethod
    def _remote_product(document: dict) -> RemoteProduct:
        inventory = document.get("inventory") or {}
        stock = decimal(inventory["inStock"]) if "inStock" in inventory else None
        number = document["productNumber"]
        return RemoteProduct(
            id=number, number=number, name=document.get("name", ""), stock=stock, raw=document
        )

    def get_stock(self, number: str) -> Decimal | None:
        """In-stock quantity (read-only in e-conomic); None when the agreement has no inventory module or
        the product's group does not keep stock."""
        found = self.find_product(number)
        if found is None:
            raise NotFound(f"e-conomic has no product {number}", system=KEY, status=404)
        return found.stock

    # --- invoices ---

    def create_draft_invoice(self, invoice: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        existing = self.find_invoice(invoice.reference) if lookup else None
        if existing is not None:
            return existing  # never twice: the reference is already in e-conomic
        return self._remote_invoice(
            self._send("POST", "/invoices/drafts", self._invoice_document(invoice, 1))
        )

    def create_credit_note(self, credit_note: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        """A draft with negative quantities (e-conomic has no credit-note endpoint); book it as usual."""
        existing = self.find_invoice(credit_note.reference) if lookup else None
        if existing is not None:
            return existing
        return self._remote_invoice(
            self._send("POST", "/invoices/drafts", self._credit_note_document(credit_note))
        )

    def _credit_note_document(self, credit_note: DraftInvoice) -> dict:
        body = self._invoice_document(credit_note, -1)
        if credit_note.credit_for is not None and not credit_note.text:
            body.setdefault("notes", {})["textLine1"] = (
                f"Kreditnota for faktura {credit_note.credit_for.number}"
            )
        return body

    def replace_draft(self, draft: RemoteInvoice, document: DraftInvoice) -> RemoteInvoice:
        """PUT /invoices/drafts/{draftInvoiceNumber} replaces the whole draft, lines included (schema
        invoices.drafts.draftInvoiceNumber.put); its number and our reference stay."""
        body = (
            self._credit_note_document(document)
            if document.credit_for is not None
            else self._invoice_document(document, 1)
        )
        return self._remote_invoice(self._send("PUT", f"/invoices/drafts/{int(draft.id)}", body))

    def delete_draft_invoice(self, draft: RemoteInvoice) -> None:
        """DELETE /invoices/drafts/{draftInvoiceNumber} (e-conomic/slate _invoices.md); 404: gone already."""
        if draft.booked:
            raise ValueError("a booked invoice is credited, never deleted")
        with contextlib.suppress(NotFound):
            self.rest.delete(f"/invoices/drafts/{int(draft.id)}")

    def _invoice_document(self, invoice: DraftInvoice, sign: int) -> dict:
        if not invoice.layout or not invoice.payment_terms:
            raise ConfigurationError(
                "Choose an e-conomic layout and payment terms in the invoice template.", system=KEY
            )
        if invoice.recipient is not None:  # the order's own addressee: no need to read the customer
            customer = {"name": invoice.recipient.name, **_address(invoice.recipient)}
        else:
            customer = invoice.customer.raw or self._get(f"/customers/{int(invoice.customer.id)}")
        recipient = {"name": (customer.get("name") or invoice.customer.name)[:250]}
        for key, limit in (("address", 250), ("zip", 50), ("city", 250), ("country", 50), ("ean", 13)):
            if customer.get(key):
                recipient[key] = customer[key][:limit]
        # The recipient's zone decides VAT and is copied onto the invoice: set it explicitly every time.
        recipient["vatZone"] = {"vatZoneNumber": ZONE_NUMBERS[invoice.zone]}
        body = {
            "date": invoice.date.isoformat(),
            "currency": invoice.currency,
            "layout": {"layoutNumber": int(invoice.layout)},
            "paymentTerms": {"paymentTermsNumber": int(invoice.payment_terms)},
            "customer": {"customerNumber": int(invoice.customer.id)},
            "recipient": recipient,
            "references": {"other": invoice.reference},
            "lines": [self._line(line, sign, n) for n, line in enumerate(invoice.lines, start=1)],
        }
        notes = {"heading": invoice.heading, "textLine1": invoice.text}
        notes = {k: v for k, v in notes.items() if v}
        if notes:
            body["notes"] = notes
        return body

    @staticmethod
    def _line(line: InvoiceLine, sign: int, number: int) -> dict:
        if not line.product_number:
            raise ConfigurationError(
                f"Line {number} ({line.description}) has no product: "
                "e-conomic decides the account and the VAT from the product.",
                system=KEY,
            )
        # Values go as they are: e-conomic itself refuses more than two decimals (E04740).
        out = {
            "lineNumber": number,
            "description": line.description[:2500],
            "product": {"productNumber": line.product_number},
            "quantity": decimal(line.quantity) * sign,
            "unitNetPrice": decimal(line.unit_net_price),
        }
        if line.discount_percent:
            out["discountPercentage"] = decimal(line.discount_percent)
        if line.unit:
            out["unit"] = {"unitNumber": int(line.unit)}
        return out

    def find_invoice(self, reference: str) -> RemoteInvoice | None:
        wanted = f"references.other$eq:{filter_value(reference)}"
        for path in ("/invoices/drafts", "/invoices/booked"):
            for found in self._all(path, wanted):
                # filters compare case-insensitively; our references are exact
                if (found.get("references") or {}).get("other") == reference:
                    return self._remote_invoice(found)
        return None

    # Where the completeness report finds documents: (path, kind, booked, the number's field)
    LISTED = (
        ("/invoices/drafts", "invoice", False, "draftInvoiceNumber"),
        ("/invoices/booked", "invoice", True, "bookedInvoiceNumber"),
        ("/orders/drafts", "order", False, "orderNumber"),
        ("/orders/sent", "order", False, "orderNumber"),
    )

    def list_documents(self, start: date, end: date, prefix: str, template: dict) -> list[LedgerDocument]:
        """Drafts, booked invoices (a credit note is one with a negative total) and open orders, filtered
        by e-conomic on the date and our reference's start (`$like:` with a trailing wildcard)."""
        wanted = (
            f"date$gte:{start.isoformat()}$and:date$lte:{end.isoformat()}"
            f"$and:references.other$like:{filter_value(prefix)}*"
        )
        found = []
        for path, kind, booked, number_field in self.LISTED:
            for document in self._all(path, wanted):
                reference = (document.get("references") or {}).get("other") or ""
                if not reference.startswith(prefix):  # $like: compares case-insensitively
                    continue
                gross = amount(document.get("grossAmount", 0))
                number = str(document[number_field])
                found.append(
                    LedgerDocument(
                        reference=reference,
                        id=number,
                        number=number,
                        kind="credit_note" if kind == "invoice" and gross < 0 else kind,
                        booked=booked,
                        date=date.fromisoformat(document["date"]),
                        gross=abs(gross),
                        vat=abs(amount(document.get("vatAmount", 0))),
                    )
                )
        return found

    def book_invoice(self, draft: RemoteInvoice) -> RemoteInvoice:
        if draft.booked:
            return draft
        # Booking consumes the draft, so e-conomic itself refuses a second booking of it: no lookup first.
        # If the answer is lost or the draft is gone (booked by an earlier attempt, or by hand), the
        # booked invoice carrying our reference tells what happened.
        body = {"draftInvoice": {"draftInvoiceNumber": int(draft.id)}}
        try:
            return self._remote_invoice(self._send("POST", "/invoices/booked", body))
        except (AmbiguousWriteError, NotFound, ValidationError):
            booked = self._find_booked(draft.reference)
            if booked is None:
                raise
            return booked

    def _find_booked(self, reference: str) -> RemoteInvoice | None:
        for found in self._all("/invoices/booked", f"references.other$eq:{filter_value(reference)}"):
            if (found.get("references") or {}).get("other") == reference:
                return self._remote_invoice(found)
        return None

    @staticmethod
    def _remote_invoice(document: dict) -> RemoteInvoice:
        booked = "bookedInvoiceNumber" in document
        number = document["bookedInvoiceNumber"] if booked else document["draftInvoiceNumber"]
        totals = Totals(
            net=amount(document.get("netAmount", 0)),
            vat=amount(document.get("vatAmount", 0)),
            gross=amount(document.get("grossAmount", 0)),
        )
        return RemoteInvoice(
            id=str(number),
            reference=(document.get("references") or {}).get("other", ""),
            booked=booked,
            totals=totals,
            number=str(number) if booked else None,
            is_credit_note=totals.gross < 0,
            raw=document,
        )

    # --- orders ---
    # An order has the draft invoice's document shape (POST /orders/drafts) and carries our reference in
    # `references.other` (filterable on drafts, sent and archived orders). It is invoiced with e-conomic's
    # documented upgrade: GET …/templates/upgrade-instructions/draftInvoice gives the draft invoice to
    # POST to /invoices/drafts. See docs/connectors/economic.md ("Orders") for what is guessed.

    def create_order(self, order: DraftInvoice, lookup: bool = True) -> RemoteOrder:
        existing = self.find_order(order.reference) if lookup else None
        if existing is not None:
            return existing  # never twice: the reference is already in e-conomic
        document = self._send("POST", "/orders/drafts", self._invoice_document(order, 1))
        return self._remote_order(document, "draft")

    def find_order(self, reference: str) -> RemoteOrder | None:
        wanted = f"references.other$eq:{filter_value(reference)}"
        for state, path in ORDER_COLLECTIONS:
            for found in self._all(path, wanted):
                if (found.get("references") or {}).get("other") == reference:
                    return self._remote_order(found, state)
        return None

    def invoice_order(self, order: RemoteOrder, invoice: DraftInvoice) -> RemoteInvoice:
        """Upgrade the order to a draft invoice (lines, customer, layout, terms come from the order; the
        date and reference from `invoice`), then make sure the order is gone: e-conomic archives a sent
        order when it is upgraded; what it does with a draft order is undocumented, so one still there is
        deleted (which also ends its stock reservation)."""
        if not order.open:
            raise ConfigurationError(
                f"The e-conomic order {order.id} is archived: it was turned into an invoice already.",
                system=KEY,
            )
        collection = ORDER_PATHS[order.state]
        template = self._get(f"{collection}/{int(order.id)}/templates/upgrade-instructions/draftInvoice")
        body = self._upgrade_document(template.get("draftInvoice") or {}, invoice)
        remote = self._remote_invoice(self._send("POST", "/invoices/drafts", body))
        self.delete_order(order)
        return remote

    def delete_order(self, order: RemoteOrder) -> None:
        if not order.open:
            return  # archived orders are history, not reservations
        collection = ORDER_PATHS[order.state]
        # DELETE is not idempotent at e-conomic: 404 when the order is gone (or was archived) already.
        with contextlib.suppress(NotFound):
            self.rest.delete(f"{collection}/{int(order.id)}")

    @staticmethod
    def _upgrade_document(template: dict, invoice: DraftInvoice) -> dict:
        """The upgrade template as a draft invoice POST: writable properties only (no read-only totals,
        self links to templates, or `metaData`, which third-party clients report breaks the POST), with
        our invoice date and reference."""
        if not template.get("lines") and not template.get("customer"):
            raise ConfigurationError(
                "e-conomic's upgrade instructions for the order held no draft invoice.", system=KEY
            )
        body = {k: template[k] for k in DRAFT_WRITABLE if template.get(k) is not None}
        body["lines"] = [
            {k: line[k] for k in LINE_WRITABLE if line.get(k) is not None} for line in body.get("lines", [])
        ]
        if (body.get("paymentTerms") or {}).get("paymentTermsType") != "dueDate":
            body.pop("dueDate", None)  # only read for "dueDate" terms; e-conomic derives it otherwise
        body["date"] = invoice.date.isoformat()
        body["references"] = {**(body.get("references") or {}), "other": invoice.reference}
        return body

    @staticmethod
    def _remote_order(document: dict, state: str) -> RemoteOrder:
        return RemoteOrder(
            id=str(document["orderNumber"]),
            reference=(document.get("references") or {}).get("other", ""),
            state=state,
            totals=Totals(
                net=amount(document.get("netAmount", 0)),
                vat=amount(document.get("vatAmount", 0)),
                gross=amount(document.get("grossAmount", 0)),
            ),
            raw=document,
        )

    # --- journals: payments and vouchers ---

    def register_payment(self, payment: PaymentData) -> str:
        """A customer-payment entry in the payments journal, then its own voucher is booked (journals API).

        The amount is sent negative: it credits the debtor (a positive amount would add to what the
        customer owes). Returns "<journal>:<accounting year>-<voucher number>"."""
        return _one(self._customer_payments([payment], -1, "Betaling faktura"))

    def register_payments(self, payments: list[PaymentData]) -> list[str | Exception]:
        """As register_payment for many at once, in three calls per BATCH_LIMIT payments of a journal: one
        POST of an array of vouchers (one voucher per payment), one GET of their draft entries, one
        bookdraftentries of all our entries. A voucher holding entries we did not make is that payment's
        ForeignEntries; the others are booked. A failure of a call raises for all (nothing is booked)."""
        return self._customer_payments(payments, -1, "Betaling faktura")

    # The payout's sign (positive: debits the debtor) is inferred from the payment's, not documented.

    def register_refund_payment(self, payment: PaymentData) -> str:
        """A refund's payout on a booked credit note: a customerPayments entry against the credit note's
        number with a **positive** amount (the debtor is debited back to zero, the bank/contra account
        credited), booked like an invoice's payment. A guess: off unless the source link turns
        `refund_payouts_guessed` on (docs/connectors/economic.md)."""
        return _one(self._customer_payments([payment], 1, "Udbetaling kreditnota"))

    def _customer_payments(self, payments: list[PaymentData], sign: int, what: str) -> list[str | Exception]:
        results: list[str | Exception | None] = [None] * len(payments)
        journals: dict[int, list[int]] = {}
        contras: dict[int, str] = {}
        for index, payment in enumerate(payments):
            document = payment.invoice
            if not document.booked or not document.number:
                raise ConfigurationError(
                    "Book the invoice or credit note in e-conomic before registering its payment.", system=KEY
                )
            journal_number = int(payment.journal or self.context.settings.get("payments_journal") or 0)
            if not journal_number:
                raise ConfigurationError(
                    "Choose an e-conomic journal for payments in the payments template.", system=KEY
                )
            journals.setdefault(journal_number, []).append(index)
            if not payment.account and journal_number not in contras:
                # the journal's own contra account, read only when the template names none
                journal = self._get(f"/journals/{journal_number}")
                accounts = (journal.get("settings") or {}).get("contraAccounts") or {}
                contras[journal_number] = (accounts.get("customerPayments") or {}).get("accountNumber")
        for journal_number, indexes in journals.items():
            for start in range(0, len(indexes), BATCH_LIMIT):
                chunk = indexes[start : start + BATCH_LIMIT]
                done = self._payment_vouchers(
                    journal_number, [payments[i] for i in chunk], contras, sign, what
                )
                for index, result in zip(chunk, done, strict=True):
                    results[index] = result
        return results

    def _payment_vouchers(
        self, journal_number: int, payments: list[PaymentData], contras: dict, sign: int, what: str
    ) -> list[str | Exception]:
        """Post the vouchers of one journal's payments (those not found by their reference), then book
        them: per payment its id, or ForeignEntries."""
        found = [
            self._find_entry(journal_number, p.reference, p.date) if p.lookup else None for p in payments
        ]
        new = [n for n, hit in enumerate(found) if hit is None]
        if new:
            bodies = []
            for n in new:
                payment = payments[n]
                contra = payment.account or contras.get(journal_number)
                if not contra:
                    raise ConfigurationError(
                        "Choose the bank or clearing account for payments in the payments template.",
                        system=KEY,
                    )
                document = payment.invoice
                customer = (document.raw.get("customer") or {}).get("customerNumber")
                entry = {
                    "customer": {"customerNumber": int(customer)},
                    "customerInvoice": int(document.number),
                    "amount": sign * amount(abs(payment.amount)),
                    "contraAccount": {"accountNumber": int(contra)},
                    "currency": {"code": document.raw.get("currency", "DKK")},
                    "date": payment.date.isoformat(),
                    "text": f"{payment.reference} {what} {document.number}"[:250],
                }
                bodies.append(self._voucher_body(journal_number, payment.date, {"customerPayments": [entry]}))
            for n, voucher_id in zip(new, self._post_vouchers(journal_number, bodies), strict=True):
                found[n] = (voucher_id, False)
        unbooked = {n: voucher_id for n, (voucher_id, booked) in enumerate(found) if not booked}
        refused = self._book_own_vouchers(
            journal_number, {n: (unbooked[n], payments[n].reference) for n in unbooked}
        )
        return [refused.get(n) or f"{journal_number}:{voucher_id}" for n, (voucher_id, _) in enumerate(found)]

    def customer_balance(self, customer_number: str) -> Decimal:
        """What the customer owes: `balance` of GET /customers/{customerNumber}."""
        return Decimal(str(self._get(f"/customers/{int(customer_number)}").get("balance") or 0))

    def post_voucher(self, voucher: Voucher) -> str:
        """A finance voucher in the journal (one voucher number for all its lines), left for the bookkeeper
        to book (or call book_journal). Debit positive, credit negative. Returns "<journal>:<year>-<no>"."""
        journal_number = int(voucher.journal or self.context.settings.get("vouchers_journal") or 0)
        if not journal_number:
            raise ConfigurationError("Choose an e-conomic journal for vouchers.", system=KEY)
        found = self._find_entry(journal_number, voucher.reference, voucher.date)
        if found is not None:
            return f"{journal_number}:{found[0]}"
        entries = []
        for line in voucher.lines:
            entry = {
                "account": {"accountNumber": int(line.account)},
                "amount": decimal(line.amount),
                "date": voucher.date.isoformat(),
                "text": f"{voucher.reference} {line.text or voucher.text}"[:250],
                "currency": {"code": "DKK"},
            }
            if line.contra_account:
                entry["contraAccount"] = {"accountNumber": int(line.contra_account)}
            if line.vat_code:
                entry["vatAccount"] = {"vatCode": line.vat_code}
            entries.append(entry)
        voucher_id = self._post_entries(journal_number, voucher.date, {"financeVouchers": entries})
        return f"{journal_number}:{voucher_id}"

    def _draft_entries(self, filter: str | None = None) -> list[dict]:
        """The journals service's draft entries (matching the filter), cursor page by cursor page."""
        items, cursor = [], None
        while True:
            params = {**({"filter": filter} if filter else {}), **({"cursor": cursor} if cursor else {})}
            body = self.apis.get("/draft-entries", params=params).json(parse_float=Decimal)
            items.extend(body.get("items") or [])
            cursor = body.get("cursor")
            if not cursor:
                return items

    def _foreign_entry_counts(self) -> dict[int, int]:
        """Journal number -> how many of its draft entries Bogbro did not make (the bookkeeper's)."""
        counts: dict[int, int] = {}
        for entry in self._draft_entries():
            if not PAYMENT_TEXT.match(entry.get("text") or ""):
                counts[entry["journalNumber"]] = counts.get(entry["journalNumber"], 0) + 1
        return counts

    def _book_own_vouchers(self, journal_number: int, vouchers: dict) -> dict[int, ForeignEntries]:
        """Book our payments' vouchers and nothing else (journals API bookdraftentries): the journal's other
        entries — a bookkeeper's unfinished work — stay unbooked and cannot block us. `vouchers`: key →
        (voucher id, reference). A voucher that also holds entries we did not make is not booked: its key
        maps to ForeignEntries (the customer decides); the others are booked in one call."""
        if not vouchers:
            return {}
        numbers = {key: int(voucher_id.rsplit("-", 1)[1]) for key, (voucher_id, _) in vouchers.items()}
        wanted = ",".join(str(n) for n in sorted(set(numbers.values())))
        by_voucher: dict[int, list[dict]] = {}
        for entry in self._draft_entries(
            f"journalNumber$eq:{journal_number}$and:voucherNumber$in:[{wanted}]"
        ):
            by_voucher.setdefault(entry.get("voucherNumber"), []).append(entry)
        batch = tuple(reference + " " for _, reference in vouchers.values())
        refused, ours = {}, []
        for key, (_, reference) in vouchers.items():
            entries = by_voucher.get(numbers[key], [])
            mine = [e for e in entries if (e.get("text") or "").startswith(reference + " ")]
            # not foreign: a batch payment of the other accounting year under the same voucher number
            others = [e for e in entries if not (e.get("text") or "").startswith(batch)]
            if others:
                refused[key] = ForeignEntries(journal_number, numbers[key], len(others), system=KEY)
            else:
                ours.extend(e["entryNumber"] for e in mine)  # none: booked meanwhile (a lost answer)
        if ours:
            entry_numbers = sorted(ours)
            key = hashlib.sha256(f"bookdraftentries|{journal_number}|{entry_numbers}".encode())
            self.apis.post(
                f"/journals/{journal_number}/bookdraftentries",
                content=dumps({"entryNumbers": entry_numbers}).encode(),
                headers={"Content-Type": "application/json", "Idempotency-Key": key.hexdigest()},
            )
        return refused

    def book_journal(self, journal_number: int, key: str | None = None) -> None:
        """Book EVERY entry in the journal (also a bookkeeper's) through the journals API — for journals
        only Bogbro writes to; payments never call it. The Idempotency-Key makes a retry after a lost
        answer harmless."""
        headers = (
            {"Idempotency-Key": hashlib.sha256(f"book|{journal_number}|{key}".encode()).hexdigest()}
            if key
            else {}
        )
        self.apis.post(f"/journals/{journal_number}/book", headers=headers)

    def _post_entries(self, journal_number: int, day: date, entries: dict) -> str:
        return self._post_vouchers(journal_number, [self._voucher_body(journal_number, day, entries)])[0]

    def _voucher_body(self, journal_number: int, day: date, entries: dict) -> dict:
        return {
            "accountingYear": {"year": self._accounting_year(day)},
            "journal": {"journalNumber": journal_number},
            "entries": entries,
        }

    def _post_vouchers(self, journal_number: int, bodies: list[dict]) -> list[str]:
        """One POST for all: the endpoint takes one voucher or an array and answers with an array, in the
        order sent (docs/connectors/economic.md, sandbox point 13). One voucher is sent as an object, as
        every client we know does."""
        created = self._send(
            "POST", f"/journals/{journal_number}/vouchers", bodies[0] if len(bodies) == 1 else bodies
        )
        created = created if isinstance(created, list) else [created]
        if len(created) != len(bodies):  # sent, but which voucher is whose is unclear: a resume looks them up
            raise AmbiguousWriteError(
                f"e-conomic answered {len(created)} vouchers for {len(bodies)} sent.", system=KEY
            )
        return [f"{v['accountingYear']['year']}-{v['voucherNumber']}" for v in created]

    def open_periods(self) -> list[OpenPeriod]:
        """The open periods of the open accounting years: a year closes as a whole (`closed`), and so can
        each of its periods. 1 + one call per open year."""
        found = []
        for year in self._fetch_years():
            if year.get("closed"):
                continue
            for period in self._all(f"/accounting-years/{encode_key(year['year'])}/periods"):
                if not period.get("closed"):
                    first, last = period["fromDate"], period["toDate"]
                    found.append(OpenPeriod(date.fromisoformat(first), date.fromisoformat(last)))
        return found

    def use_accounting_years(self, years: list[dict]) -> None:
        """Years known already (the pipeline's cache): a voucher's year then costs no call."""
        self.accounting_years, self.years_fetched = years, False

    def _fetch_years(self) -> list[dict]:
        self.accounting_years, self.years_fetched = self._all("/accounting-years"), True
        return self.accounting_years

    def _accounting_year(self, day: date) -> str:
        years = self.accounting_years if self.accounting_years is not None else self._fetch_years()
        for attempt in range(2):
            for year in years:
                if year["fromDate"] <= day.isoformat() <= year["toDate"]:
                    return year["year"]
            if attempt or self.years_fetched:
                break
            years = self._fetch_years()  # the cached years miss it: a year created since?
        raise ConfigurationError(
            f"e-conomic has no accounting year for {day.isoformat()}: create it first.", system=KEY
        )

    def _find_entry(self, journal_number: int, reference: str, day: date) -> tuple[str, bool] | None:
        """The voucher whose entry text starts with our reference: still in the journal (not booked) or
        already booked in the accounting year."""
        wanted = f"text$like:{filter_value(reference)}*"

        def ours(entry):
            text = entry.get("text") or ""
            return text == reference or text.startswith(reference + " ")

        for entry in self._all(f"/journals/{journal_number}/entries", wanted):
            if ours(entry):
                voucher = entry["voucher"]
                return f"{voucher['accountingYear']['year']}-{voucher['voucherNumber']}", False
        year = self._accounting_year(day)
        for entry in self._all(f"/accounting-years/{encode_key(year)}/entries", wanted):
            if ours(entry):
                return f"{year}-{entry['voucherNumber']}", True
        return None

    # --- e-mail ---

    def invoice_pdf(self, invoice: RemoteInvoice) -> bytes:
        """GET /invoices/booked/{bookedInvoiceNumber}/pdf — the address a booked invoice's `pdf.download`
        names (schema invoices.booked.bookedInvoiceNumber.get). A credit note is a booked invoice with
        negative amounts: the same endpoint. The path is built from the number, not taken from the
        answer's link, so the grant headers never go to a host other than the configured API."""
        if not invoice.booked or not invoice.number:
            raise ConfigurationError("Only a booked invoice has a PDF in e-conomic", system=KEY)
        response = self.rest.get(
            f"/invoices/booked/{int(invoice.number)}/pdf", headers={"Accept": "application/pdf"}
        )
        return pdf_content(response, KEY)

    def send_invoice_email(self, invoice: RemoteInvoice, to: str, subject: str, body: str) -> None:
        # The 2026 schema lists sendBy "Email" on booking, but neither recipient nor text can be given and
        # the behaviour is undocumented; Bogbro mails the invoice PDF through its own mailer instead.
        raise UnsupportedOperation(
            "e-conomic's API cannot e-mail an invoice to a given address with our text; "
            "Bogbro sends the PDF itself.",
            system=KEY,
        )


CONNECTOR = EconomicConnector
