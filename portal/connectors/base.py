"""What every accounting connector offers, in plain data — no Flask, no database sessions.

A system module (portal/connectors/economic.py, dinero.py, dynaccount.py) provides:
- SYSTEM: an AccountingSystem (name, capabilities, connect style, the templates it needs);
- a connector class implementing AccountingConnector over portal.connectors.http.ApiClient.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from babel import Locale

from portal.connectors.errors import ForeignEntries, UnsupportedOperation
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    PaymentData,
    ProductData,
    Totals,
    Voucher,
)

if TYPE_CHECKING:
    from portal.connectors.ratelimit import RateLimiter


def N_(message: str) -> str:
    """Marks a text for translation without translating it here (no Flask in connectors); the UI
    translates it where it is shown. `make extract-messages` collects N_("…") strings."""
    return message


# The wizard's name for the template of the lines that carry no VAT (gift cards, the rounding line): the same
# in every system, so the engine can name it when it is empty (portal.engine.invoice).
NO_VAT_LABEL = N_("VAT-free lines (gift cards, rounding)")
# The wizard's name for the template that says where EU sales to private customers are booked under OSS
# (at the destination country's VAT), named by the engine when a country lacks its target.
OSS_LABEL = N_("EU sales to consumers (OSS)")
# The EU member states a Danish business sells to under OSS (every member but Denmark), with their names as
# msgids (translated where shown). The OSS template has one field per country, named by its ISO code.
OSS_COUNTRIES: dict[str, str] = {
    "AT": N_("Austria"),
    "BE": N_("Belgium"),
    "BG": N_("Bulgaria"),
    "CY": N_("Cyprus"),
    "CZ": N_("Czechia"),
    "DE": N_("Germany"),
    "EE": N_("Estonia"),
    "ES": N_("Spain"),
    "FI": N_("Finland"),
    "FR": N_("France"),
    "GR": N_("Greece"),
    "HR": N_("Croatia"),
    "HU": N_("Hungary"),
    "IE": N_("Ireland"),
    "IT": N_("Italy"),
    "LT": N_("Lithuania"),
    "LU": N_("Luxembourg"),
    "LV": N_("Latvia"),
    "MT": N_("Malta"),
    "NL": N_("Netherlands"),
    "PL": N_("Poland"),
    "PT": N_("Portugal"),
    "RO": N_("Romania"),
    "SE": N_("Sweden"),
    "SI": N_("Slovenia"),
    "SK": N_("Slovakia"),
}


def danish_country_name(code: str) -> str:
    """A country's name in Danish ("Tyskland"), as Danish accounting systems write it; the code if unknown."""
    return Locale("da").territories.get(code.upper(), code)


# --- what a system is ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    vat_model: Literal["product_group", "account", "line_code"]
    # Bogbro creates orders there (reserving stock before invoicing): offers the per-state "order" document
    orders: bool
    stock: bool  # keeps stock we can read
    email_invoice: bool  # can e-mail a booked invoice itself
    oss: bool  # can book EU B2C sales with the destination country's VAT
    payment_endpoint: bool  # registers a payment on an invoice directly (else: a journal voucher)
    credit_note: Literal["negative_draft", "endpoint", "table"]
    customer_match_fields: tuple[str, ...] = ("email", "vat_number", "ean", "customer_number")


@dataclass(frozen=True)
class TemplateField:
    name: str  # key in Template.values, e.g. "layout"
    label: str  # English msgid; translated where shown
    # the connector's master-data list (list_choices kind): layouts | payment_terms | accounts |
    # product_groups | journals | vat_codes | vat_zones
    choices: str
    required: bool = True


@dataclass(frozen=True)
class TemplateSpec:
    kind: str  # invoice | goods | freight | no_vat | payments | oss (fields named by country code)
    zone: str  # "" or one of ZONES
    label: str  # English msgid
    fields: tuple[TemplateField, ...]
    help: str = ""  # English msgid: what this template decides
    # many optional fields (one per country): the wizard shows them as a compact table, folded away
    compact: bool = False


@dataclass(frozen=True)
class AccountingSystem:
    key: str  # "e-conomic" | "dinero" | "dynaccount"
    name: str  # "e-conomic"
    connect: Literal["grant_token", "oauth", "api_key"]
    capabilities: Capabilities
    templates: tuple[TemplateSpec, ...]
    notes: tuple[str, ...] = ()  # English msgids shown in the wizard and settings (e.g. "Dinero has no OSS")


# --- master data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One option from the accounting system (a layout, an account, …), as it identifies it."""

    value: str
    label: str
    # e.g. product group -> {"sales_accounts": {"domestic": "1010 Salg"}, "vat_codes": {"domestic": "U25"},
    # "vat_rates": {"domestic": "25.00"}} (a zone whose account has no VAT code is absent from the last two)
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Organisation:
    """An agreement/organisation/company reachable with a grant."""

    external_id: str
    name: str
    usable: bool = True
    reason: str | None = None  # why not usable, in the system's terms (e.g. no paid plan)


# --- documents -------------------------------------------------------------------------------------------


@dataclass
class RemoteCustomer:
    id: str  # customer number (e-conomic), ContactGuid (Dinero), debtor id (Dynaccount)
    number: str | None
    name: str
    raw: dict = field(default_factory=dict)


@dataclass
class RemoteProduct:
    id: str
    number: str
    name: str
    stock: Decimal | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpenPeriod:
    """Dates a ledger takes documents in: `start` to `end` inclusive; `end` None: open onwards."""

    start: date
    end: date | None = None

    def holds(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass
class RemoteInvoice:
    id: str  # draft number / Guid / internal id
    reference: str
    booked: bool
    totals: Totals | None  # None: the create's answer did not tell (Dinero); a booked one always has them
    number: str | None = None  # booked invoice number
    is_credit_note: bool = False
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerDocument:
    """One document in the ledger carrying a reference, as the completeness report lists them: an invoice,
    a credit note, an order, a draft of either, or (Dynaccount) a voucher in the kladde."""

    reference: str
    id: str  # the system's id (draft number, Guid, voucher id)
    number: str | None  # what the bookkeeper sees: booked invoice number, draft number, voucher number
    kind: Literal["invoice", "credit_note", "order"]
    booked: bool
    date: date
    gross: Decimal  # positive, also for a credit note
    vat: Decimal | None = None  # None: the listing does not show it
    url: str | None = None  # where a person opens it in the ledger, when the system has such an address


@dataclass
class RemoteOrder:
    """An order held in the accounting system (e-conomic: reserves stock until it is invoiced)."""

    id: str  # order number
    reference: str
    state: Literal["draft", "sent", "archived"]  # archived: already turned into an invoice
    totals: Totals
    raw: dict = field(default_factory=dict)

    @property
    def open(self) -> bool:
        """Still an order (it reserves stock and can be invoiced)."""
        return self.state != "archived"


# --- the connector -----------------------------------------------------------------------------------------


class AccountingConnector(ABC):
    """Business operations against one organisation/agreement. Errors: portal.connectors.errors."""

    system: AccountingSystem

    # connecting
    @abstractmethod
    def verify(self) -> Organisation:
        """Check the credentials work for this organisation; returns it (e-conomic: GET /self)."""

    @abstractmethod
    def list_organisations(self) -> list[Organisation]:
        """Every organisation the grant reaches (one for e-conomic and Dynaccount)."""

    # master data for the wizard (each returns Choices, sorted for display)
    @abstractmethod
    def list_choices(self, kind: str) -> list[Choice]:
        """kind: layouts | payment_terms | accounts | product_groups | journals | vat_codes | vat_zones."""

    # customers and products
    @abstractmethod
    def find_customer(self, field: str, value: str) -> RemoteCustomer | None: ...

    @abstractmethod
    def create_customer(self, customer: CustomerData) -> RemoteCustomer: ...

    @abstractmethod
    def update_customer(self, remote: RemoteCustomer, customer: CustomerData) -> RemoteCustomer: ...

    @abstractmethod
    def find_product(self, number: str) -> RemoteProduct | None: ...

    @abstractmethod
    def create_product(self, product: ProductData) -> RemoteProduct: ...

    @abstractmethod
    def update_product(self, remote: RemoteProduct, product: ProductData) -> RemoteProduct: ...

    # invoices
    # `lookup`: whether the create first looks for a document carrying the reference. Callers that know
    # no create was ever sent for it (the pipeline's checkpoint) pass False and save a request; after an
    # ambiguous failure they look it up themselves.
    @abstractmethod
    def create_draft_invoice(self, invoice: DraftInvoice, lookup: bool = True) -> RemoteInvoice: ...

    @abstractmethod
    def find_invoice(self, reference: str) -> RemoteInvoice | None:
        """The draft or booked invoice (or credit note) carrying our reference, if any."""

    @abstractmethod
    def book_invoice(self, draft: RemoteInvoice) -> RemoteInvoice: ...

    @abstractmethod
    def create_credit_note(self, credit_note: DraftInvoice, lookup: bool = True) -> RemoteInvoice:
        """credit_note.credit_for is the booked invoice; lines: positive quantities of what is credited."""

    @property
    def limiter(self) -> "RateLimiter | None":
        """The rate limiter its requests wait on, whose turns a run may take ahead (with its cache read:
        portal.pipeline.ensure.cache_entries); None: it has none."""
        return None

    def replace_draft(self, draft: RemoteInvoice, document: DraftInvoice) -> RemoteInvoice:
        """Make an unbooked draft (invoice or credit note) anew from `document`, under the same reference —
        a retry after the order was corrected. Raises UnsupportedOperation where the API cannot."""
        raise UnsupportedOperation(
            f"{self.system.name} cannot change a draft through its API", system=self.system.key
        )

    def delete_draft_invoice(self, draft: RemoteInvoice) -> None:
        """Delete an unbooked draft invoice (an undo: pipeline.undo); one already gone is fine. A booked
        invoice is never deleted: it is credited. Raises UnsupportedOperation where the API cannot."""
        raise UnsupportedOperation(
            f"{self.system.name} cannot delete a draft through its API", system=self.system.key
        )

    # orders (Capabilities.orders): a stock-reserving order first, the invoice made from it later.
    # Systems without orders keep these defaults.
    def _no_orders(self) -> UnsupportedOperation:
        return UnsupportedOperation(f"{self.system.name} has no orders", system=self.system.key)

    def create_order(self, order: DraftInvoice, lookup: bool = True) -> RemoteOrder:
        """An order with the invoice's document shape (reference, customer, lines)."""
        raise self._no_orders()

    def find_order(self, reference: str) -> RemoteOrder | None:
        """The order carrying our reference, wherever it is (open, or archived once invoiced)."""
        raise self._no_orders()

    def invoice_order(self, order: RemoteOrder, invoice: DraftInvoice) -> RemoteInvoice:
        """The draft invoice made from an open order; afterwards the order no longer reserves stock.
        `invoice` gives the reference and date the draft must carry (lines come from the order)."""
        raise self._no_orders()

    def delete_order(self, order: RemoteOrder) -> None:
        """Remove an open order (its stock reservation goes with it); an order already gone is fine."""
        raise self._no_orders()

    def list_documents(self, start: date, end: date, prefix: str, template: dict) -> list[LedgerDocument]:
        """Every document dated `start`..`end` (inclusive) whose reference starts with `prefix`, read page
        by page (the completeness report). `template`: the invoice template's values (Dynaccount's
        kladde and receivable account)."""
        raise UnsupportedOperation(f"{self.system.name} cannot list documents", system=self.system.key)

    def open_periods(self) -> list[OpenPeriod] | None:
        """The periods the ledger takes documents in, as far as its API shows them (None: it shows none).
        The pipeline checks a document's date against them before posting (portal.pipeline.periods)."""
        return None

    @abstractmethod
    def register_payment(self, payment: PaymentData) -> str:
        """Returns the system's id of the payment/voucher."""

    def register_payments(self, payments: list[PaymentData]) -> list[str | Exception]:
        """Several payments at once: per payment, its id or the exception that stopped it alone; a failure
        of the whole call raises. Here one register_payment each; e-conomic sends them in one voucher POST
        (portal.pipeline.payment_batches)."""
        results: list[str | Exception] = []
        for payment in payments:
            try:
                results.append(self.register_payment(payment))
            except ForeignEntries as exc:
                results.append(exc)
        return results

    @abstractmethod
    def post_voucher(self, voucher: Voucher) -> str: ...

    @abstractmethod
    def send_invoice_email(self, invoice: RemoteInvoice, to: str, subject: str, body: str) -> None: ...

    def invoice_pdf(self, invoice: RemoteInvoice) -> bytes:
        """The booked invoice (or credit note) as PDF, exactly as the accounting system renders it (its
        layout), for Bogbro's own invoice mail. Raises UnsupportedOperation where the system's API offers
        no PDF (the default here); ConfigurationError for a draft."""
        raise UnsupportedOperation(f"{self.system.name} offers no invoice PDF", system=self.system.key)

    @abstractmethod
    def get_stock(self, number: str) -> Decimal | None: ...
