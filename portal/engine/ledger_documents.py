"""The documents the engine makes for a ledger (plain data): the customer, products, invoice (or credit
note) with its lines, the payment and the voucher a connector is asked to post. They belong to the engine —
it produces them (portal.engine.invoice); connectors import them and answer in their own result types
(RemoteCustomer, RemoteInvoice … in portal.connectors.base).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # what the ledger answered, in the connectors' own types (annotations only)
    from portal.connectors.base import RemoteCustomer, RemoteInvoice

Zone = Literal["domestic", "eu", "world"]
ZONES: tuple[Zone, ...] = ("domestic", "eu", "world")


@dataclass
class CustomerData:
    name: str
    country: str  # ISO 3166-1 alpha-2
    zone: Zone
    email: str | None = None
    number: str | None = None  # our chosen customer number, if the system lets us choose
    is_company: bool = False
    vat_number: str | None = None  # CVR for Danish companies, VAT number for EU companies
    ean: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    currency: str = "DKK"
    payment_terms: str | None = None  # a payment_terms Choice.value
    external_reference: str | None = None


@dataclass
class ProductData:
    number: str  # SKU, exactly as in the shop (may contain "_", ".", "/", spaces …)
    name: str
    unit_net_price: Decimal
    product_group: str | None = None  # e-conomic
    account: str | None = None  # Dinero revenue account
    vat_code: str | None = None  # Dynaccount
    unit: str | None = None


@dataclass
class InvoiceLine:
    description: str
    quantity: Decimal
    unit_net_price: Decimal  # always ex. VAT, in the invoice currency
    product_number: str | None = None
    account: str | None = None  # Dinero: revenue account (decides VAT); Dynaccount: account
    vat_code: str | None = None  # Dynaccount: per-line VAT code
    discount_percent: Decimal = Decimal("0")
    unit: str | None = None
    vat_rate: Decimal | None = None  # percent; Dynaccount posts each line's VAT itself


@dataclass
class DraftInvoice:
    reference: str  # deterministic, e.g. "WC-1234"; the key for "never twice"
    customer: RemoteCustomer
    date: date
    lines: list[InvoiceLine]
    zone: Zone = "domestic"
    currency: str = "DKK"
    layout: str | None = None
    payment_terms: str | None = None
    heading: str | None = None
    text: str | None = None
    guid: str | None = None  # Dinero: client-chosen Guid (deterministic, uuid5)
    credit_for: RemoteInvoice | None = None  # set for credit notes
    # The invoice's addressee as the order gives it (name, address, EAN), when it may differ from the
    # customer record (a collective customer) or the record was not read (a cached match).
    recipient: CustomerData | None = None
    # Dynaccount: the invoice template's values (kladde, receivable and VAT account) for the sale's voucher
    sales_voucher: dict | None = None


@dataclass
class Totals:
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass
class PaymentData:
    invoice: RemoteInvoice
    amount: Decimal  # positive: money received
    date: date
    reference: str  # deterministic, for lookup
    account: str | None = None  # Dinero: deposit account; e-conomic: contra (bank/clearing) account
    journal: str | None = None  # e-conomic: the journal for payments
    # Whether the system must look for the reference before sending: False only when nothing can have sent
    # this payment yet (the pipeline's payment_requested checkpoint), so steady state spares the look-up.
    lookup: bool = True


@dataclass
class VoucherLine:
    account: str
    amount: Decimal  # debit positive, credit negative
    text: str
    contra_account: str | None = None
    vat_code: str | None = None


@dataclass
class Voucher:
    reference: str
    date: date
    text: str
    lines: list[VoucherLine]
    journal: str | None = None
