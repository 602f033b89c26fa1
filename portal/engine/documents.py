"""The canonical sales documents every source is normalised into (plain, frozen data).

Amounts are Decimal at the shop's full precision (WooCommerce taxes may carry 6 decimals); rounding to what
an accounting system accepts happens later, in totals.py/invoice.py, and nowhere else. All amounts are in
the document's currency (the shop currency).
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from portal.engine.money import ZERO, sum_dec

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

CustomerType = Literal["b2c", "b2b", "ean"]
# goods: shop products; freight: shipping; fee: surcharges (WooCommerce fee lines); discount: negative
# fees and other order-level reductions; gift_card: gift-card sales/redemptions (no VAT: multi-purpose
# vouchers are taxed when spent); refund: an amount refunded without lines (credit notes only).
LineKind = Literal["goods", "freight", "fee", "discount", "gift_card", "refund"]


def order_reference(prefix: str, shop_id: str, number: str) -> str:
    """The deterministic key of a sale's invoice, e.g. "WC-12-727" (the source's prefix, shop and number).
    It goes to e-conomic `references.other`, Dinero `ExternalReference` (and the uuid5 `Guid`),
    Dynaccount's requisition."""
    return f"{prefix}-{shop_id}-{number}" if shop_id else f"{prefix}-{number}"


def refund_reference(order_ref: str, refund_id: str) -> str:
    """The deterministic key of a refund's credit note, e.g. "WC-12-727-R726"."""
    return f"{order_ref}-R{refund_id}"


def to_invoice_date(moment: datetime) -> date:
    """The invoice date of an aware (UTC) moment: its calendar day in Denmark."""
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(COPENHAGEN).date()


@dataclass(frozen=True)
class Party:
    """The buyer, from the billing address (the shipping address gives the VAT destination)."""

    type: CustomerType
    name: str
    country: str  # ISO 3166-1 alpha-2 of the billing address ("" when the shop has none)
    email: str | None = None
    company: str | None = None
    phone: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    ship_to_country: str | None = None
    ship_to_postcode: str | None = None
    vat_number: str | None = None  # as given by the shop (CVR or EU VAT number), not validated here
    ean: str | None = None  # EAN/GLN location number (public-sector customers), not validated here
    source_customer_id: str | None = None

    @property
    def destination_country(self) -> str:
        """Where the goods go: the place of supply for distance sales (shipping country, else billing)."""
        return (self.ship_to_country or self.country or "").upper()

    @property
    def destination_postcode(self) -> str | None:
        return self.ship_to_postcode if self.ship_to_country else self.postcode


@dataclass(frozen=True)
class SalesLine:
    """One line as the shop computed it. Orders: amounts as sold (a negative fee is a negative line).
    Refunds: positive quantities and amounts of what is credited."""

    kind: LineKind
    description: str
    quantity: Decimal
    net_total: Decimal  # ex VAT, after discounts (WooCommerce `total`; coupons are already in it)
    vat_total: Decimal
    vat_rate: Decimal | None = None  # percent; None when the shop gives neither rate nor tax
    vat_rate_exact: bool = False  # True: the shop stated the rate; False: derived from the amounts
    sku: str | None = None
    discount: Decimal = ZERO  # net discount already taken off net_total (information only)
    source_line_id: str | None = None
    product_name: str | None = None  # the product's own name where the line's text is more (Stripe's)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.vat_total

    @property
    def unit_net(self) -> Decimal:
        """Net unit price at full precision (may need more than 2 decimals)."""
        if self.quantity == 0:
            return self.net_total
        return self.net_total / self.quantity


@dataclass(frozen=True)
class ShopTotals:
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class Payment:
    method: str | None = None  # WooCommerce payment_method id, Shopify gateway
    title: str | None = None
    transaction_id: str | None = None
    paid_at: datetime | None = None  # aware UTC


@dataclass(frozen=True)
class SalesDocument:
    source: str  # the key of the source it came from (portal.sources)
    shop_id: str
    source_id: str  # the shop's own id of the order
    number: str  # the order number the customer sees
    reference: str  # deterministic, see order_reference()
    created_at: datetime  # aware UTC
    currency: str
    prices_include_tax: bool
    customer: Party
    lines: tuple[SalesLine, ...]
    shop_totals: ShopTotals
    payment: Payment = field(default_factory=Payment)
    status: str = ""
    coupons: tuple[str, ...] = ()

    @property
    def invoice_date(self) -> date:
        return to_invoice_date(self.created_at)

    def line_totals(self) -> ShopTotals:
        net = sum_dec(line.net_total for line in self.lines)
        vat = sum_dec(line.vat_total for line in self.lines)
        return ShopTotals(net=net, vat=vat, gross=net + vat)


@dataclass(frozen=True)
class Refund:
    """What a shop refunded on one order: specific lines (goods, shipping, fees), and/or an amount that is
    not tied to lines (`unallocated`, gross). Amounts are positive. `amount` is the money that went back and
    the credit note's total, whatever the lines say (WooCommerce: the refund's `amount` "takes precedence
    over line item totals"; Shopify: the refund transactions)."""

    source: str  # the key of the source it came from (portal.sources)
    shop_id: str
    source_id: str  # the refund's id
    order_source_id: str
    order_number: str
    reference: str  # deterministic, see refund_reference()
    created_at: datetime  # aware UTC
    currency: str
    amount: Decimal  # gross amount refunded, as the shop states it
    lines: tuple[SalesLine, ...] = ()
    unallocated: Decimal = ZERO  # gross, refunded without lines ("amount-only")
    reason: str = ""
    # False when a line's VAT was not stated by the shop but inferred from the order line it refunds
    # (a WooCommerce refund_total given without refund_tax): then the shop's refunded VAT is unknown.
    vat_stated: bool = True

    @property
    def invoice_date(self) -> date:
        return to_invoice_date(self.created_at)

    @property
    def kind(self) -> Literal["lines", "amount", "mixed"]:
        if not self.lines:
            return "amount"
        return "mixed" if self.unallocated else "lines"

    @property
    def shop_vat(self) -> Decimal | None:
        """The VAT the shop refunded, when it is known (unknown for amount-only parts and inferred VAT)."""
        if self.unallocated or not self.vat_stated:
            return None
        return sum_dec(line.vat_total for line in self.lines)
