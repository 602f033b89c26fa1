"""Source link settings as plain frozen dataclasses. The app builds them from the database."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

MatchField = Literal["email", "vat_number", "ean"]


class EngineConfigError(ValueError):
    """The setup cannot produce a correct document (a missing template, OSS on a system without OSS…).
    A configuration error: stop at once and tell the user what to fix; never retry.

    str() is the English text. One made with `translatable` also keeps its msgid (marked with N_ where it
    is written) and parameters, so a page can show it in the reader's language: `params` named in
    `labels` are msgids themselves (a template's name as the wizard shows it)."""

    def __init__(
        self,
        message: str,
        msgid: str | None = None,
        params: Mapping[str, str] | None = None,
        labels: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.msgid = msgid
        self.params = dict(params or {})
        self.labels = labels

    @classmethod
    def translatable(cls, msgid: str, labels: tuple[str, ...] = (), **params: str) -> "EngineConfigError":
        return cls(msgid % params, msgid, params, labels)


class OrderError(EngineConfigError):
    """The order itself cannot be booked as it is (a country code that is no country): nothing is posted;
    the customer corrects the order in the shop and retries. Not the setup's fault, so not "complete the
    templates"."""


@dataclass(frozen=True)
class FixedProducts:
    """Product numbers for lines that are not shop products (IEX asks for the same list)."""

    shipping: str = "FRAGT"
    fee: str = "GEBYR"
    discount: str = "RABAT"
    gift_card: str = "GAVEKORT"
    rounding: str = "AFRUND"
    refund: str = "REFUSION"  # amount-only refunds
    default: str = "VARE"  # shop lines without a SKU

    def for_kind(self, kind: str) -> str:
        return {
            "freight": self.shipping,
            "fee": self.fee,
            "discount": self.discount,
            "gift_card": self.gift_card,
            "rounding": self.rounding,
            "refund": self.refund,
        }.get(kind, self.default)


@dataclass(frozen=True)
class SourceLinkSettings:
    """One sales source's settings (a shop linked to an accounting setup)."""

    shop_id: str = ""  # goes into the deterministic reference, e.g. "WC-<shop_id>-<order number>"
    home_country: str = "DK"
    oss: bool = False  # EU B2C at the destination country's rate (One-Stop-Shop)
    rounding_tolerance: Decimal = Decimal("0.10")
    # WooCommerce order meta keys (Shopify: note attribute names) holding the buyer's VAT number / EAN,
    # tried in this order; compared case-insensitively.
    vat_meta_keys: tuple[str, ...] = ("_billing_vat_number", "_vat_number", "vat_number")
    ean_meta_keys: tuple[str, ...] = ("_billing_ean", "_billing_ean_number", "_ean", "ean", "ean_number")
    # WooCommerce fee lines whose name contains one of these are gift-card redemptions (no VAT).
    gift_card_fee_names: tuple[str, ...] = ("gift card", "giftcard", "gavekort")
    # the connector field (find_customer) each customer type is matched on
    match_b2c: MatchField = "email"
    match_b2b: MatchField = "vat_number"
    match_ean: MatchField = "ean"
    collective_customer: str | None = None  # a customer number: all B2C sales go to it
    fixed_products: FixedProducts = field(default_factory=FixedProducts)
    # shop payment method id (WooCommerce `payment_method`, Shopify gateway name) → payment terms value
    payment_terms_by_method: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "payment_terms_by_method", MappingProxyType(dict(self.payment_terms_by_method))
        )
        object.__setattr__(self, "home_country", self.home_country.upper())
        if self.rounding_tolerance < 0:
            raise EngineConfigError("The rounding tolerance cannot be negative.")

    def payment_terms_for(self, method: str | None) -> str | None:
        if not method:
            return None
        return self.payment_terms_by_method.get(method)
