"""Each accounting system's invoice arithmetic, 2-decimal pricing, and reconciliation with the shop.

The engine computes the invoice exactly as the target system will, before anything is sent, so it can
compare with what the shop charged: equal → book; a difference within the tolerance → a rounding line
(0 % VAT) brings the invoice to the sales source's total; beyond it → a draft only, flagged "totals differ".
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from portal.engine.ledger_documents import Totals
from portal.engine.money import CENT, HUNDRED, ZERO, floor2, has_2dp, is_integral, q2, sum_dec
from portal.engine.text import N_, Text, amount

System = Literal["e-conomic", "dinero", "dynaccount"]
SYSTEMS: tuple[System, ...] = ("e-conomic", "dinero", "dynaccount")
# The arithmetic follows the system; the connectors' Capabilities name it by VAT model (one system each).
SYSTEM_BY_VAT_MODEL: dict[str, System] = {
    "product_group": "e-conomic",
    "account": "dinero",
    "line_code": "dynaccount",
}


@dataclass(frozen=True)
class TotalsLine:
    """An invoice line as the accounting system sees it, plus the VAT rate its account/code carries."""

    quantity: Decimal
    unit_price: Decimal  # ex VAT (incl. VAT only for Dinero with prices_include_vat)
    vat_rate: Decimal  # percent
    discount_percent: Decimal = ZERO


def line_amount(line: TotalsLine) -> Decimal:
    """quantity × unit price × (1 − discount %), rounded half-up to 2 decimals — e-conomic's
    `totalNetAmount` (accounting-apis.md §2.8, TRAELS example 3 × 153.44 at 10 % → 414.29)."""
    return q2(line.quantity * line.unit_price * (1 - line.discount_percent / HUNDRED))


def invoice_totals(lines: Iterable[TotalsLine], system: System, prices_include_vat: bool = False) -> Totals:
    """The net, VAT and gross the target system will compute for these lines.

    e-conomic [V: accounting-apis.md §2.8]: each line's net rounded to 2 decimals; VAT per VAT rate on the
    summed net of that rate, rounded (half-up: a guess — the example does not tell half-up from half-even).
    Dinero [guess; verify with POST /invoices/fetch]: per line. Excl. VAT: net rounded, VAT = round(net ×
    rate). Incl. VAT (ShowLinesInclVat): the line's gross rounded, net = round(gross / (1 + rate)), VAT the
    rest — Dinero reports TotalAmount and TotalAmountInclVat per line, which suggests per-line rounding.
    Dynaccount [guess]: per line: net rounded, VAT = round(net × rate) (its lines carry their own VAT code).
    """
    lines = list(lines)
    if system == "e-conomic":
        if prices_include_vat:
            raise ValueError("e-conomic takes unit prices excl. VAT only")
        net_by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
        for line in lines:
            net_by_rate[line.vat_rate] += line_amount(line)
        net = sum_dec(net_by_rate.values())
        vat = sum_dec(q2(amount * rate / HUNDRED) for rate, amount in net_by_rate.items())
        return Totals(net=net, vat=vat, gross=net + vat)
    if system == "dinero" and prices_include_vat:
        gross = net = ZERO
        for line in lines:
            line_gross = line_amount(line)
            gross += line_gross
            net += q2(line_gross / (1 + line.vat_rate / HUNDRED))
        return Totals(net=net, vat=gross - net, gross=gross)
    if system in ("dinero", "dynaccount"):
        net = vat = ZERO
        for line in lines:
            line_net = line_amount(line)
            net += line_net
            vat += q2(line_net * line.vat_rate / HUNDRED)
        return Totals(net=net, vat=vat, gross=net + vat)
    raise ValueError(f"unknown accounting system {system!r}")


# --- prices the systems accept ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PricedQuantity:
    quantity: Decimal
    unit_price: Decimal
    folded: bool = False  # True: quantity 1 carrying the whole line; the description must state the quantity


def price_lines(quantity: Decimal, net_total: Decimal) -> list[PricedQuantity]:
    """Splits a shop line (quantity, net total) into invoice lines whose unit prices and quantities have at
    most 2 decimals and whose amounts add up to the line's net total (rounded to the cent) exactly.

    e-conomic refuses more than 2 decimals on unitNetPrice and quantity (E04740). 3 × 33.3333 (net 100.00)
    cannot be priced as 3 × 33.33 (99.99) nor 3 × 33.34 (100.02). Rather than quantity 1 with the line total
    (which would move stock by 1 instead of 3 in e-conomic's inventory module) or a rounded unit price whose
    error grows with the quantity (1,920 units × 0.005 = 9.60) and would end up on a rounding line, we split
    the units over two adjacent cent prices: 2 × 33.33 + 1 × 33.34 = 100.00. Quantities stay right, every
    unit price is within one cent of the shop's, and the net is exact, so VAT is computed on the right base.
    Only a non-integral quantity that cannot be priced exactly (2.5 kg at 3.333) is folded into 1 × total,
    with the quantity in the description."""
    net = q2(net_total)
    if quantity == 0:
        return [PricedQuantity(Decimal(1), net, folded=True)] if net else [PricedQuantity(ZERO, ZERO)]
    if has_2dp(quantity):
        price = q2(net / quantity)
        if q2(quantity * price) == net:
            return [PricedQuantity(quantity, price)]
    if is_integral(quantity) and abs(quantity) >= 2:
        sign = 1 if quantity > 0 else -1
        count = abs(quantity)
        per_unit = net * sign  # the amount per positive unit count
        base = floor2(per_unit / count)
        extra = int((per_unit - base * count) / CENT)  # units that get one cent more; 0 < extra < count
        parts = [
            PricedQuantity((count - extra) * sign, base),
            PricedQuantity(Decimal(extra) * sign, base + CENT),
        ]
        return [part for part in parts if part.quantity]
    return [PricedQuantity(Decimal(1), net, folded=True)]


# --- reconciliation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciliation:
    ok: bool  # the document can be booked
    difference: Decimal  # shop gross − computed gross (before any rounding line)
    rounding_line: TotalsLine | None  # 1 × difference at 0 % VAT, when within the tolerance
    totals_differ: bool  # beyond the tolerance: draft only, never book
    message: str
    shop_gross: Decimal
    computed_gross: Decimal
    vat_difference: Decimal | None = None  # shop VAT − computed VAT, when the shop's VAT is known
    tolerance: Decimal = ZERO


def reconcile(
    shop_gross: Decimal,
    computed: Totals,
    tolerance: Decimal,
    shop_vat: Decimal | None = None,
    currency: str = "DKK",
) -> Reconciliation:
    """Compares the invoice the system will compute with what the shop charged.

    Gross within the tolerance → a rounding line (0 % VAT, so it moves the gross by exactly its amount and
    leaves the VAT of every other rate alone) makes the invoice gross equal the shop's. Gross or VAT beyond
    the tolerance → totals differ, with both figures in the message. Comparing VAT too catches a gross that
    matches by accident while the VAT is wrong (e.g. shop VAT kept inside a 0 % line)."""
    shop_gross = q2(shop_gross)
    difference = shop_gross - computed.gross
    vat_difference = None if shop_vat is None else q2(shop_vat) - computed.vat
    problems = []
    if abs(difference) > tolerance:
        problems.append(
            Text(
                N_(
                    "Totals differ: the sales source's total is %(shop)s, the invoice's would be "
                    "%(computed)s (difference %(difference)s, tolerance %(tolerance)s)."
                ),
                shop=amount(shop_gross, currency),
                computed=amount(computed.gross, currency),
                difference=amount(difference, currency),
                tolerance=amount(tolerance, currency),
            )
        )
    if vat_difference is not None and abs(vat_difference) > tolerance:
        problems.append(
            Text(
                N_(
                    "VAT differs: the sales source charged %(shop)s VAT, the invoice would carry "
                    "%(computed)s (difference %(difference)s, tolerance %(tolerance)s)."
                ),
                shop=amount(q2(shop_vat), currency),
                computed=amount(computed.vat, currency),
                difference=amount(vat_difference, currency),
                tolerance=amount(tolerance, currency),
            )
        )
    common = {
        "difference": difference,
        "shop_gross": shop_gross,
        "computed_gross": computed.gross,
        "vat_difference": vat_difference,
        "tolerance": tolerance,
    }
    if problems:
        said = problems[0]
        if len(problems) == 2:  # both in one text, each translated
            said = Text("%(gross)s %(vat)s", gross=problems[0], vat=problems[1])
        return Reconciliation(False, rounding_line=None, totals_differ=True, message=said, **common)
    if difference == 0:
        return Reconciliation(
            True, rounding_line=None, totals_differ=False, message=Text(N_("Totals match.")), **common
        )
    return Reconciliation(
        True,
        rounding_line=TotalsLine(Decimal(1), difference, ZERO),
        totals_differ=False,
        message=Text(
            N_("Rounding line of %(difference)s brings the invoice to the sales source's total %(shop)s."),
            difference=amount(difference, currency),
            shop=amount(shop_gross, currency),
        ),
        **common,
    )


def with_rounding(lines: Sequence[TotalsLine], reconciliation: Reconciliation) -> list[TotalsLine]:
    return [*lines, reconciliation.rounding_line] if reconciliation.rounding_line else list(lines)
