"""Canonical document + accounting setup + the system's capabilities → a DraftPlan: the connector's
DraftInvoice (lines with product numbers for e-conomic, revenue accounts for Dinero, account + VAT code for
Dynaccount), the customer, the products to ensure, and the reconciliation with the shop's totals.

The accounting setup's template values arrive as a plain dict:

    {
      "invoice": {"layout": "19", "payment_terms": "1"},
      "goods": {"product_group": "1"}                        # e-conomic: the group has an account per zone
            | {"domestic": {"account": "1000"}, "eu": {...}, "world": {...}}   # Dinero
            | {"domestic": {"account": "1000", "vat_code": "U25"}, ...},       # Dynaccount
      "freight": ..., "fee": ..., "discount": ..., "refund": ...,   # optional; default: as goods
      "no_vat": ...,               # gift cards and the rounding line (0 % VAT); or "gift_card"/"rounding".
                                   # Dynaccount: the account alone (it has no "no VAT" code; a line
                                   # without a code gets none), a vat_code only if it is a 0 % one
      "fixed_products": {"shipping": "FRAGT", ...},            # optional; overrides SourceLinkSettings'
    }

Under OSS (EU private customers at the destination's VAT) a taxed kind needs `"oss": {"SE": {...},
"SE-12": {...}}` in its template: a target per destination country at its standard rate, and a key
"CC-rate" for a reduced rate of the destination. With e-conomic the VAT follows the product's group, so an
OSS target must name the product to book on as well as its group — a shop SKU cannot sit in several groups
at once: `{"product_group": "12", "product": "OSS-SE", "product_name": "OSS-salg Sverige"}` (the name is
what the product gets when it is created). The app fills these from the wizard's OSS template
(portal.pipeline.settings.setup_values: one group per country, standard rates only). A country or rate
without a target is a translatable EngineConfigError that names the country, the rate and the template.

Unit prices are always ex VAT with at most 2 decimals (InvoiceLine.unit_net_price), split over two cent
prices where needed (totals.price_lines). Dinero could take prices incl. VAT (ShowLinesInclVat), but the
connector DraftInvoice has no field for it yet, so Dinero gets ex-VAT prices too and its totals are
modelled in ex-VAT mode.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from portal.connectors.base import (
    N_,
    NO_VAT_LABEL,
    OSS_COUNTRIES,
    OSS_LABEL,
    Capabilities,
    RemoteCustomer,
    RemoteInvoice,
)
from portal.engine.customers import CustomerMatch, customer_data, decide_match
from portal.engine.documents import Payment, Refund, SalesDocument, SalesLine
from portal.engine.ledger_documents import ZONES, CustomerData, DraftInvoice, InvoiceLine, ProductData, Totals
from portal.engine.money import CENT, HUNDRED, ZERO, fmt_rate, q2, sum_dec
from portal.engine.settings import EngineConfigError, FixedProducts, SourceLinkSettings
from portal.engine.text import Text, amount
from portal.engine.totals import (
    SYSTEM_BY_VAT_MODEL,
    Reconciliation,
    System,
    TotalsLine,
    invoice_totals,
    price_lines,
    reconcile,
)
from portal.engine.vat import RateTable, VatDecision, check_line_rate, expected_line_rate

# uuid5 namespace for Dinero Guids (fixed forever: changing it would break "never twice").
GUID_NAMESPACE = uuid.UUID("6f1c2b0e-4d0a-5b6e-9a57-2f0b0b7b6a10")

KIND_TEMPLATES: dict[str, tuple[str, ...]] = {
    "goods": ("goods",),
    "freight": ("freight", "goods"),
    "fee": ("fee", "goods"),
    "discount": ("discount", "goods"),
    "refund": ("refund", "goods"),
    "gift_card": ("gift_card", "no_vat"),
    "rounding": ("rounding", "no_vat"),
}
ZERO_VAT_KINDS = frozenset({"gift_card", "rounding"})
# The wizard's names (msgids) of the templates a line kind falls back to last (KIND_TEMPLATES).
TEMPLATE_LABELS = {"goods": N_("Goods"), "no_vat": NO_VAT_LABEL}
EMPTY_TEMPLATE = {
    "goods": N_("The template “%(template)s” is empty: choose its values under Setup."),
    "no_vat": N_(
        "The template “%(template)s” is empty: choose its values under Setup. Orders with a gift card or a "
        "rounding line need it."
    ),
}
# An OSS sale to a country (or at a rate of it) the setup names no target for. "country" is a msgid (its
# name); the rates are shown as they are.
NO_OSS_TARGET = N_(
    "No product group is chosen for %(country)s in the template “%(template)s”: OSS sales to %(country)s are "
    "booked at its VAT rate of %(rate)s %%."
)
NO_OSS_TARGET_REDUCED = N_(
    "A line of this order carries %(country)s's reduced VAT rate of %(rate)s %%, but the template "
    "“%(template)s” books OSS sales to %(country)s at its standard rate (%(standard)s %%) only: create this "
    "invoice by hand in the accounting system."
)
# Names of the fixed products when they are created (shown in the accounting system).
FIXED_PRODUCT_NAMES = {
    "goods": "Vare",
    "freight": "Fragt",
    "fee": "Gebyr",
    "discount": "Rabat",
    "gift_card": "Gavekort",
    "rounding": "Øreafrunding",
    "refund": "Refusion",
}


def dinero_guid(reference: str, organisation: str = "") -> str:
    """Dinero's client-chosen Guid: uuid5 of the organisation and our deterministic reference."""
    name = f"{organisation}:{reference}" if organisation else reference
    return str(uuid.uuid5(GUID_NAMESPACE, name))


@dataclass(frozen=True)
class Target:
    """Where one line is booked: e-conomic product group (and optional product), Dinero revenue account,
    Dynaccount account + VAT code."""

    product_group: str | None = None
    account: str | None = None
    vat_code: str | None = None
    product: str | None = None  # book on this product instead of the shop SKU (OSS on e-conomic)
    product_name: str | None = None  # the name `product` gets when it is created


def _fixed_products(setup: Mapping, settings: SourceLinkSettings) -> FixedProducts:
    overrides = {k: str(v) for k, v in (setup.get("fixed_products") or {}).items() if v}
    known = set(FixedProducts.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise EngineConfigError(
            f"Unknown fixed products in the accounting setup: {', '.join(sorted(unknown))}."
        )
    return replace(settings.fixed_products, **overrides)


class Templates:
    """The accounting setup's template values, resolved per line kind, zone and (OSS) country and rate."""

    def __init__(self, setup: Mapping, vat_model: str):
        self.setup = setup
        self.vat_model = vat_model
        invoice = setup.get("invoice") or {}
        self.layout = _text(invoice.get("layout"))
        self.payment_terms = _text(invoice.get("payment_terms"))
        # Dynaccount posts the sale as a voucher: its kladde, receivable and VAT accounts come from here.
        self.sales_voucher = {name: str(value) for name, value in invoice.items() if _text(value)}

    def target(self, kind: str, decision: VatDecision, rate: Decimal) -> Target:
        names = KIND_TEMPLATES.get(kind, ("goods",))
        entry = next((self.setup[n] for n in names if self.setup.get(n)), None)
        label = names[-1]
        if entry is None:
            raise EngineConfigError.translatable(
                EMPTY_TEMPLATE[label], labels=("template",), template=TEMPLATE_LABELS[label]
            )
        if decision.oss_country and rate != 0 and kind not in ZERO_VAT_KINDS:
            oss = entry.get("oss") or {}
            key = decision.oss_country
            if rate != decision.rate:
                key = f"{decision.oss_country}-{fmt_rate(rate)}"
            if not oss.get(key):
                raise _no_oss_target(decision, rate)
            values = oss[key]
            if self.vat_model == "product_group" and not values.get("product"):
                raise EngineConfigError(
                    f"e-conomic books VAT by product group: the OSS target {label}/{key} must name a product "
                    "in an OSS product group."
                )
            return self._validated(values, f"{label}/oss/{key}")
        if any(zone in entry for zone in ZONES):
            if not entry.get(decision.zone):
                raise EngineConfigError(f"The {label} template has no account for the {decision.zone} zone.")
            return self._validated(entry[decision.zone], f"{label}/{decision.zone}")
        return self._validated(entry, label)

    def _validated(self, values: Mapping, where: str) -> Target:
        target = Target(
            product_group=_text(values.get("product_group")),
            account=_text(values.get("account")),
            vat_code=_text(values.get("vat_code")),
            product=_text(values.get("product")),
            product_name=_text(values.get("product_name")),
        )
        needed = {
            "product_group": ("product_group",),
            "account": ("account",),
            "line_code": ("account",),  # Dynaccount: VAT is posted explicitly to the VAT account
        }
        missing = [name for name in needed.get(self.vat_model, ()) if getattr(target, name) is None]
        if missing:
            raise EngineConfigError(f"The template {where} lacks {', '.join(missing)}.")
        return target


def _no_oss_target(decision: VatDecision, rate: Decimal) -> EngineConfigError:
    """What to fix when an OSS sale has no target: the country (by name), the rate, the template."""
    country = decision.oss_country or ""
    name = OSS_COUNTRIES.get(country, country)  # a msgid; a code outside the list is shown as it is
    labels = ("template", "country") if country in OSS_COUNTRIES else ("template",)
    params = {"country": name, "template": OSS_LABEL, "rate": fmt_rate(rate)}
    if rate == decision.rate:
        return EngineConfigError.translatable(NO_OSS_TARGET, labels=labels, **params)
    standard = fmt_rate(decision.rate)
    return EngineConfigError.translatable(NO_OSS_TARGET_REDUCED, labels=labels, standard=standard, **params)


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True)
class DraftPlan:
    """Everything the post step needs, decided: ensure the customer (or use the collective one), ensure the
    products, create the draft, and book it only when `can_book`."""

    invoice: DraftInvoice  # its `customer` is a placeholder until the customer is ensured: for_customer()
    line_rates: tuple[Decimal, ...]  # the VAT rate each invoice line will carry, in line order
    system: System
    customer: CustomerData
    match: CustomerMatch
    products: tuple[ProductData, ...]
    shop_totals: Totals
    totals: Totals  # what the accounting system will compute, rounding line included
    reconciliation: Reconciliation
    decision: VatDecision
    warnings: tuple[str, ...] = ()
    # the kind of each invoice line (goods, freight, fee, discount, gift_card, refund, rounding), in line
    # order: the invoice lines themselves do not say, and a preview must show what each one is
    line_kinds: tuple[str, ...] = ()
    # how the order was paid, as the shop says (method, when): decides "register as paid"
    payment: Payment | None = None

    @property
    def can_book(self) -> bool:
        """False when the totals differ: create the draft, never book it, flag the transfer."""
        return self.reconciliation.ok

    @property
    def totals_differ(self) -> bool:
        return self.reconciliation.totals_differ

    def for_customer(self, customer: RemoteCustomer) -> DraftInvoice:
        return replace(self.invoice, customer=customer)

    def after_undos(self, undone: int, organisation: str = "") -> "DraftPlan":
        """The plan of an order transferred again after its document was undone `undone` times: a reference
        of its own ("WC-12-727-V2"), so the undone invoice is never taken for the new one."""
        if not undone:
            return self
        reference = f"{self.invoice.reference}-V{undone + 1}"
        guid = dinero_guid(reference, organisation) if self.invoice.guid else None
        return replace(self, invoice=replace(self.invoice, reference=reference, guid=guid))


def _describe(line: SalesLine, product: str, target: Target) -> str:
    description = line.description or FIXED_PRODUCT_NAMES.get(line.kind, product)
    if target.product and line.sku:  # booked on a stand-in product: keep the SKU visible
        description = f"{line.sku} {description}"
    return description


def _quantity_text(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


class _Builder:
    def __init__(self, decision, setup, capabilities, settings, rates):
        self.decision: VatDecision = decision
        self.capabilities: Capabilities = capabilities
        self.settings: SourceLinkSettings = settings
        self.rates: RateTable | None = rates
        self.system: System = SYSTEM_BY_VAT_MODEL[capabilities.vat_model]
        self.templates = Templates(setup, capabilities.vat_model)
        self.fixed = _fixed_products(setup, settings)
        self.lines: list[InvoiceLine] = []
        self.rates_per_line: list[Decimal] = []
        self.kinds_per_line: list[str] = []
        self.products: dict[str, ProductData] = {}
        self.warnings: list[str] = list(decision.warnings)
        if decision.oss_country and not capabilities.oss:
            raise EngineConfigError(
                "This accounting system cannot book OSS sales (EU private customers at the destination "
                "country's VAT): turn OSS off for this source link or use another accounting system."
            )

    def add(self, line: SalesLine) -> None:
        rate = ZERO if line.kind in ZERO_VAT_KINDS else expected_line_rate(line, self.decision, self.rates)
        warning = check_line_rate(line, rate, self.decision, self.rates)
        if warning:
            self.warnings.append(warning)
        target = self.templates.target(line.kind, self.decision, rate)
        if self._productless(line.kind, target):
            description = line.description or FIXED_PRODUCT_NAMES.get(line.kind, line.kind)
            for part in price_lines(line.quantity, line.net_total):
                self._append(description, part.quantity, part.unit_price, None, target, rate, line.kind)
            return
        if target.product:
            product = target.product
        elif line.kind == "goods":
            product = line.sku or self.fixed.default
        else:
            product = self.fixed.for_kind(line.kind)
        description = _describe(line, product, target)
        for part in price_lines(line.quantity, line.net_total):
            text = description
            if part.folded and line.quantity not in (0, 1):
                text = f"{_quantity_text(line.quantity)} × {description}"
            self._append(text, part.quantity, part.unit_price, product, target, rate, line.kind)
        if product not in self.products:
            is_sku = line.kind == "goods" and product == line.sku
            name = target.product_name or FIXED_PRODUCT_NAMES.get(line.kind, product)
            self.products[product] = ProductData(
                number=product,
                name=(line.product_name or line.description) if is_sku else name,
                unit_net_price=q2(line.unit_net) if is_sku else ZERO,
                product_group=target.product_group,
                account=target.account,
                vat_code=target.vat_code,
            )

    def _productless(self, kind: str, target: Target) -> bool:
        """Dynaccount: the sale is a voucher of account rows (clarkk/php-dynaccount-api Webshop.php), which
        names no products, so none are made (the product table's fields are documented nowhere)."""
        return self.capabilities.vat_model == "line_code"

    def _append(self, text, quantity, unit_price, product, target: Target, rate: Decimal, kind: str) -> None:
        model = self.capabilities.vat_model
        self.lines.append(
            InvoiceLine(
                description=text,
                quantity=quantity,
                unit_net_price=unit_price,
                product_number=product,
                account=target.account if model in ("account", "line_code") else None,
                vat_code=target.vat_code if model == "line_code" else None,
                vat_rate=rate,
            )
        )
        self.rates_per_line.append(rate)
        self.kinds_per_line.append(kind)

    def totals_lines(self) -> list[TotalsLine]:
        return [
            TotalsLine(line.quantity, line.unit_net_price, rate, line.discount_percent)
            for line, rate in zip(self.lines, self.rates_per_line, strict=True)
        ]

    def reconcile(
        self, shop_gross: Decimal, shop_vat: Decimal | None, currency: str = "DKK"
    ) -> tuple[Totals, Reconciliation]:
        computed = invoice_totals(self.totals_lines(), self.system)
        result = reconcile(shop_gross, computed, self.settings.rounding_tolerance, shop_vat, currency)
        if result.rounding_line is None:
            return computed, result
        target = self.templates.target("rounding", self.decision, ZERO)
        product = None if self._productless("rounding", target) else self.fixed.rounding
        self._append(
            FIXED_PRODUCT_NAMES["rounding"],
            Decimal(1),
            result.rounding_line.unit_price,
            product,
            target,
            ZERO,
            "rounding",
        )
        if product is not None:
            self.products.setdefault(
                product,
                ProductData(
                    product,
                    FIXED_PRODUCT_NAMES["rounding"],
                    ZERO,
                    target.product_group,
                    target.account,
                    target.vat_code,
                ),
            )
        final = invoice_totals(self.totals_lines(), self.system)
        if final.gross != result.shop_gross:  # cannot happen: a 0 % line moves the gross by its amount
            raise AssertionError(f"rounding line failed: {final.gross} != {result.shop_gross}")
        return final, result


def _payment_terms(settings: SourceLinkSettings, method: str | None, templates: Templates) -> str | None:
    return settings.payment_terms_for(method) or templates.payment_terms


def build_draft(
    document: SalesDocument,
    decision: VatDecision,
    setup: Mapping,
    capabilities: Capabilities,
    settings: SourceLinkSettings | None = None,
    rates: RateTable | None = None,
    organisation: str = "",
) -> DraftPlan:
    """The invoice for an order, computed as the target system will compute it and reconciled with the
    shop's total. `rates` lets OSS lines at a reduced rate of the destination through (and names the rate's
    effective date in drift warnings). Raises EngineConfigError when the setup cannot book the sale."""
    settings = settings or SourceLinkSettings()
    builder = _Builder(decision, setup, capabilities, settings, rates)
    for line in document.lines:
        builder.add(line)
    shop = document.shop_totals
    totals, result = builder.reconcile(shop.gross, shop.vat, document.currency)
    match = decide_match(document.customer, settings)
    terms = _payment_terms(settings, document.payment.method, builder.templates)
    customer = customer_data(document.customer, decision, document.currency, terms)
    invoice = DraftInvoice(
        reference=document.reference,
        customer=_placeholder(match, customer),
        date=document.invoice_date,
        lines=builder.lines,
        zone=decision.zone,
        currency=document.currency,
        layout=builder.templates.layout,
        sales_voucher=builder.templates.sales_voucher,
        payment_terms=terms,
        text=f"Ordre #{document.number}",
        recipient=customer,
        guid=dinero_guid(document.reference, organisation) if capabilities.vat_model == "account" else None,
    )
    shop = document.shop_totals
    return DraftPlan(
        invoice=invoice,
        line_rates=tuple(builder.rates_per_line),
        line_kinds=tuple(builder.kinds_per_line),
        system=builder.system,
        customer=customer,
        match=match,
        products=tuple(builder.products.values()),
        shop_totals=Totals(net=shop.net, vat=shop.vat, gross=shop.gross),
        totals=totals,
        reconciliation=result,
        decision=decision,
        warnings=(*builder.warnings, *match.warnings) + ((result.message,) if result.totals_differ else ()),
        payment=document.payment,
    )


def build_credit_note(
    refund: Refund,
    document: SalesDocument,
    decision: VatDecision,
    setup: Mapping,
    capabilities: Capabilities,
    settings: SourceLinkSettings | None = None,
    rates: RateTable | None = None,
    credit_for: RemoteInvoice | None = None,
    organisation: str = "",
) -> DraftPlan:
    """A credit note for exactly the money that went back (`refund.amount`): the refunded lines (goods,
    shipping, fees) as the shop split them, and where they do not add up to the money, the difference on
    the refund product at the order's VAT rate — an amount refunded without lines, or (negative) the part of
    the lines that was not paid back. Never more than the money, never the lines on top of it. Quantities
    are positive (the connector turns them into e-conomic's negative draft); `decision` is the original
    order's, so the credit note mirrors the invoice's VAT treatment.

    The difference is assumed to carry VAT at the order's rate (a guess: WooCommerce and Shopify state no
    VAT for it); a warning says so when the order mixed several rates."""
    settings = settings or SourceLinkSettings()
    money = q2(refund.amount)
    if money <= 0:
        raise ValueError(f"Refund {refund.source_id} credits nothing.")
    builder = _Builder(decision, setup, capabilities, settings, rates)
    for line in refund.lines:
        builder.add(line)
    of_lines = invoice_totals(builder.totals_lines(), builder.system)
    difference = money - of_lines.gross
    placed = not refund.lines or abs(difference) > settings.rounding_tolerance
    if placed:
        _place_difference(builder, difference, refund, document)
    # The VAT to expect: the shop's on its lines (when it stated it) plus that of the placed difference.
    shop_vat = None
    if refund.vat_stated and not refund.unallocated:
        shop_vat = sum_dec(line.vat_total for line in refund.lines)
        shop_vat += invoice_totals(builder.totals_lines(), builder.system).vat - of_lines.vat
    totals, result = builder.reconcile(money, shop_vat, refund.currency)
    paid = q2(document.shop_totals.gross)
    if money > paid + settings.rounding_tolerance:
        result = replace(
            result,
            ok=False,
            totals_differ=True,
            message=Text(
                N_(
                    "The refund of %(refund)s exceeds the order's total %(paid)s: "
                    "check it in the sales source."
                ),
                refund=amount(money, refund.currency),
                paid=amount(paid, refund.currency),
            ),
        )
    match = decide_match(document.customer, settings)
    terms = _payment_terms(settings, document.payment.method, builder.templates)
    customer = customer_data(document.customer, decision, refund.currency, terms)
    invoice = DraftInvoice(
        reference=refund.reference,
        customer=_placeholder(match, customer),
        date=refund.invoice_date,
        lines=builder.lines,
        zone=decision.zone,
        currency=refund.currency,
        layout=builder.templates.layout,
        sales_voucher=builder.templates.sales_voucher,
        payment_terms=terms,
        text=f"Kreditnota for ordre #{refund.order_number}",
        guid=dinero_guid(refund.reference, organisation) if capabilities.vat_model == "account" else None,
        credit_for=credit_for,
        recipient=customer,
    )
    shop_vat = totals.vat if shop_vat is None else shop_vat
    return DraftPlan(
        invoice=invoice,
        line_rates=tuple(builder.rates_per_line),
        line_kinds=tuple(builder.kinds_per_line),
        system=builder.system,
        customer=customer,
        match=match,
        products=tuple(builder.products.values()),
        shop_totals=Totals(net=refund.amount - shop_vat, vat=shop_vat, gross=refund.amount),
        totals=totals,
        reconciliation=result,
        decision=decision,
        warnings=(*builder.warnings, *match.warnings) + ((result.message,) if result.totals_differ else ()),
    )


def _place_difference(
    builder: _Builder, difference: Decimal, refund: Refund, document: SalesDocument
) -> None:
    """One explicit line on the refund product whose gross, as the accounting system computes it, is
    `difference` to the øre: the net is searched around gross / (1 + rate) so that the system's VAT
    rounding (e-conomic per rate on the summed net, Dinero/Dynaccount per line) lands on it."""
    rate = builder.decision.rate
    base = builder.totals_lines()
    before = invoice_totals(base, builder.system).gross
    estimate = q2(difference / (1 + rate / HUNDRED))
    net = estimate
    for step in (0, -1, 1, -2, 2):
        candidate = estimate + step * CENT
        line = TotalsLine(Decimal(1), candidate, rate)
        if invoice_totals([*base, line], builder.system).gross - before == difference:
            net = candidate
            break  # else the rounding line takes the last øre
    reason = f": {refund.reason}" if refund.reason else ""
    if difference > 0:
        description = FIXED_PRODUCT_NAMES["refund"] + reason
    else:
        description = "Refusion, ikke tilbagebetalt" + reason
    builder.add(
        SalesLine("refund", description, Decimal(1), net, difference - net, rate, vat_rate_exact=True)
    )
    if refund.lines and difference < 0:
        builder.warnings.append(
            Text(
                N_(
                    "The refunded lines come to %(lines)s, but %(back)s went back: the credit note deducts "
                    "the %(kept)s not paid back at %(rate)s %% VAT."
                ),
                lines=amount(q2(refund.amount) - difference, refund.currency),
                back=amount(q2(refund.amount), refund.currency),
                kept=amount(-difference, refund.currency),
                rate=fmt_rate(rate),
            )
        )
    order_rates = {
        expected_line_rate(li, builder.decision, builder.rates) for li in document.lines if li.net_total
    }
    if len(order_rates) > 1:
        shown = ", ".join(sorted(fmt_rate(r) + " %" for r in order_rates))
        what = N_("amount-only refund") if difference > 0 else N_("difference")
        builder.warnings.append(
            Text(
                N_(
                    "The %(what)s of %(amount)s is credited at %(rate)s %% VAT, but the order had lines at "
                    "%(rates)s: check the split."
                ),
                ("what",),
                what=what,
                amount=amount(difference, refund.currency),
                rate=fmt_rate(rate),
                rates=shown,
            )
        )


def _placeholder(match: CustomerMatch, customer: CustomerData) -> RemoteCustomer:
    number = match.customer_number if match.kind == "collective" else None
    return RemoteCustomer(id=number or "", number=number, name=customer.name)
