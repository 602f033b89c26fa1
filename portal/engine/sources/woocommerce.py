"""WooCommerce REST v3 orders and refunds → SalesDocument / Refund.

Semantics (sending-systems.md §1.2–1.3): line `subtotal` is before and `total` after coupons, both ex tax;
the tax is in `total_tax` / `taxes[].total` (which may carry more than 2 decimals, e.g. "2.371541");
`price` is a JSON number (may be a long float). Coupons are already inside line `total`: coupon_lines are
never subtracted again. Fee lines can be negative. Refunds carry negative quantities and totals and meta
`_refunded_item_id`; a refund without lines is an amount-only refund.
"""

import html
from dataclasses import replace
from decimal import Decimal

from portal.engine.documents import (
    Party,
    Payment,
    Refund,
    SalesDocument,
    SalesLine,
    ShopTotals,
    order_reference,
    refund_reference,
)
from portal.engine.money import HUNDRED, ZERO, D, q2, sum_dec
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import clean, first_value, join, parse_datetime

SOURCE = "woocommerce"
PREFIX = "WC"  # of every reference (order_reference): never change it, it finds what was posted


def _meta_pairs(payload: dict) -> list[tuple[str, object]]:
    return [(m.get("key", ""), m.get("value")) for m in payload.get("meta_data") or []]


def _rate_percents(order: dict) -> dict[str, Decimal]:
    """tax rate id → percent, from the order's tax_lines (`rate_percent`, WooCommerce ≥ 5.x)."""
    rates = {}
    for tax_line in order.get("tax_lines") or []:
        if tax_line.get("rate_percent") is not None:
            rates[str(tax_line.get("rate_id"))] = D(tax_line["rate_percent"])
    return rates


def _tax(item: dict, rates: dict[str, Decimal], net: Decimal) -> tuple[Decimal, Decimal | None, bool]:
    """(VAT amount at full precision, rate percent or None, rate stated by the shop?)."""
    taxes = item.get("taxes") or []
    if taxes:
        vat = sum_dec(D(t.get("total"), ZERO) for t in taxes)
        ids = [str(t.get("id")) for t in taxes if D(t.get("total"), ZERO) != 0]
        if ids and all(i in rates for i in ids):
            return vat, sum_dec(rates[i] for i in ids), True
    else:
        vat = D(item.get("total_tax"), ZERO)
    if vat == 0:
        return vat, ZERO, False
    if net == 0:
        return vat, None, False
    return vat, (vat / net * HUNDRED).quantize(Decimal("0.01")), False


def _goods_line(item: dict, rates: dict[str, Decimal], sign: int = 1) -> SalesLine:
    net = D(item.get("total"), ZERO) * sign
    vat, rate, exact = _tax(item, rates, net)
    return SalesLine(
        kind="goods",
        description=html.unescape(str(item.get("name") or "")),
        quantity=D(item.get("quantity"), ZERO) * sign,
        net_total=net,
        vat_total=vat * sign,
        vat_rate=rate,
        vat_rate_exact=exact,
        sku=clean(item.get("sku")),
        discount=(D(item.get("subtotal"), net * sign) - D(item.get("total"), ZERO)) * sign,
        source_line_id=str(item.get("id")),
    )


def _shipping_line(item: dict, rates: dict[str, Decimal], sign: int = 1) -> SalesLine:
    net = D(item.get("total"), ZERO) * sign
    vat, rate, exact = _tax(item, rates, net)
    return SalesLine(
        kind="freight",
        description=html.unescape(str(item.get("method_title") or "Shipping")),
        quantity=Decimal(1),
        net_total=net,
        vat_total=vat * sign,
        vat_rate=rate,
        vat_rate_exact=exact,
        source_line_id=str(item.get("id")),
    )


def _fee_kind(name: str, net: Decimal, settings: SourceLinkSettings) -> str:
    lowered = name.lower()
    if any(word in lowered for word in settings.gift_card_fee_names):
        return "gift_card"
    return "discount" if net < 0 else "fee"


def _fee_line(
    item: dict, rates: dict[str, Decimal], settings: SourceLinkSettings, sign: int = 1
) -> SalesLine:
    name = html.unescape(str(item.get("name") or "Fee"))
    net = D(item.get("total"), ZERO) * sign
    vat, rate, exact = _tax(item, rates, net)
    return SalesLine(
        kind=_fee_kind(name, net * sign, settings),  # the kind as sold, also for a refund of it
        description=name,
        quantity=Decimal(1),
        net_total=net,
        vat_total=vat * sign,
        vat_rate=rate,
        vat_rate_exact=exact,
        source_line_id=str(item.get("id")),
    )


def _party(order: dict, settings: SourceLinkSettings) -> Party:
    billing = order.get("billing") or {}
    shipping = order.get("shipping") or {}
    meta = _meta_pairs(order)
    vat_number = first_value(meta, settings.vat_meta_keys)
    ean = first_value(meta, settings.ean_meta_keys)
    company = clean(billing.get("company"))
    person = join(billing.get("first_name"), billing.get("last_name"))
    customer_id = order.get("customer_id")
    return Party(
        type="ean" if ean else "b2b" if vat_number else "b2c",
        name=company or person or clean(billing.get("email")) or "",
        country=(clean(billing.get("country")) or "").upper(),
        email=(clean(billing.get("email")) or "").lower() or None,
        company=company,
        phone=clean(billing.get("phone")),
        address=join(billing.get("address_1"), billing.get("address_2"), sep=", ") or None,
        postcode=clean(billing.get("postcode")),
        city=clean(billing.get("city")),
        ship_to_country=(clean(shipping.get("country")) or "").upper() or None,
        ship_to_postcode=clean(shipping.get("postcode")),
        vat_number=vat_number,
        ean=ean,
        source_customer_id=str(customer_id) if customer_id else None,
    )


def normalise_order(payload: dict, settings: SourceLinkSettings) -> SalesDocument:
    rates = _rate_percents(payload)
    lines = [_goods_line(item, rates) for item in payload.get("line_items") or []]
    lines += [_shipping_line(item, rates) for item in payload.get("shipping_lines") or []]
    lines += [_fee_line(item, rates, settings) for item in payload.get("fee_lines") or []]
    gross = D(payload.get("total"))
    vat = D(payload.get("total_tax"), ZERO)
    number = str(payload.get("number") or payload["id"])
    created = parse_datetime(payload.get("date_created_gmt") or payload.get("date_created"))
    if created is None:
        raise ValueError("the order has no creation date")
    return SalesDocument(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(payload["id"]),
        number=number,
        reference=order_reference(PREFIX, settings.shop_id, number),
        created_at=created,
        currency=str(payload.get("currency") or "DKK").upper(),
        prices_include_tax=bool(payload.get("prices_include_tax")),
        customer=_party(payload, settings),
        lines=tuple(lines),
        shop_totals=ShopTotals(net=gross - vat, vat=vat, gross=gross),
        payment=Payment(
            method=clean(payload.get("payment_method")),
            title=clean(payload.get("payment_method_title")),
            transaction_id=clean(payload.get("transaction_id")),
            paid_at=parse_datetime(payload.get("date_paid_gmt")),
        ),
        status=str(payload.get("status") or ""),
        coupons=tuple(str(c.get("code")) for c in payload.get("coupon_lines") or [] if c.get("code")),
    )


def _refunded_id(item: dict) -> str | None:
    return first_value(_meta_pairs(item), ("_refunded_item_id",))


def normalise_refund(order_payload: dict, refund_payload: dict, settings: SourceLinkSettings) -> Refund:
    """A refund as positive amounts. Lines come from the refund's `line_items` (and `shipping_lines` /
    `fee_lines`, which newer WooCommerce versions include); whatever part of `amount` the lines do not
    explain is `unallocated` (an amount-only refund, credited on the refund product) — a few øre of
    difference are left to the credit note's rounding line instead.

    A line refunded without its tax split (`refund_total` given, `refund_tax` not: the refund line carries
    no tax although the order line did) gets the order line's rate: read as ex tax, as WooCommerce defines
    `refund_total`, when the refund's `amount` covers that; else as the gross amount refunded."""
    rates = _rate_percents(order_payload)
    originals = {
        str(item.get("id")): item
        for key in ("line_items", "shipping_lines", "fee_lines")
        for item in order_payload.get(key) or []
    }
    pairs: list[tuple[SalesLine, dict]] = []
    for item in refund_payload.get("line_items") or []:
        original = originals.get(_refunded_id(item) or "", {})
        pairs.append((_with_original(_goods_line(item, rates, sign=-1), original), original))
    for item in refund_payload.get("shipping_lines") or []:
        pairs.append((_shipping_line(item, rates, sign=-1), originals.get(_refunded_id(item) or "", {})))
    for item in refund_payload.get("fee_lines") or []:
        original = originals.get(_refunded_id(item) or "", {})
        pairs.append((_fee_line(item, rates, settings, sign=-1), original))
    pairs = [(line, original) for line, original in pairs if line.net_total or line.vat_total]
    amount = D(refund_payload.get("amount"), ZERO)
    lines, vat_stated = _with_missing_vat(pairs, order_payload, rates, amount, settings)
    explained = sum_dec(line.gross_total for line in lines)
    rest = amount - explained
    # Without lines the whole amount is the refund; with lines, a rest within the tolerance is rounding.
    unallocated = rest if rest > settings.rounding_tolerance or (not lines and rest > 0) else ZERO
    order_number = str(order_payload.get("number") or order_payload["id"])
    order_ref = order_reference(PREFIX, settings.shop_id, order_number)
    created = parse_datetime(refund_payload.get("date_created_gmt") or refund_payload.get("date_created"))
    if created is None:
        raise ValueError("the refund has no creation date")
    return Refund(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(refund_payload["id"]),
        order_source_id=str(order_payload["id"]),
        order_number=order_number,
        reference=refund_reference(order_ref, str(refund_payload["id"])),
        created_at=created,
        currency=str(order_payload.get("currency") or "DKK").upper(),
        amount=amount,
        lines=tuple(lines),
        unallocated=unallocated,
        reason=str(refund_payload.get("reason") or ""),
        vat_stated=vat_stated,
    )


def _missing_rate(line: SalesLine, original: dict, order: dict, rates: dict[str, Decimal]) -> Decimal | None:
    """The VAT rate a refund line left out: the rate of the taxed order line it refunds (or the order's one
    rate when the line cannot be found). None when the line states its VAT or the sale carried none."""
    if line.vat_total != 0 or line.net_total == 0:
        return None
    if original:
        vat, rate, _ = _tax(original, rates, D(original.get("total"), ZERO))
        return rate if vat != 0 and rate else None
    distinct = set(rates.values())
    if len(distinct) == 1 and D(order.get("total_tax"), ZERO) != 0:
        return distinct.pop() or None
    return None


def _with_missing_vat(
    pairs: list[tuple[SalesLine, dict]],
    order: dict,
    rates: dict[str, Decimal],
    amount: Decimal,
    settings: SourceLinkSettings,
) -> tuple[list[SalesLine], bool]:
    """The refund lines with the VAT the shop left out filled in, and whether all VAT was stated."""
    missing = {i: _missing_rate(line, original, order, rates) for i, (line, original) in enumerate(pairs)}
    missing = {i: rate for i, rate in missing.items() if rate is not None}
    lines = [line for line, _ in pairs]
    if not missing:
        return lines, True
    as_net = sum_dec(
        line.net_total * (1 + missing[i] / HUNDRED) if i in missing else line.gross_total
        for i, line in enumerate(lines)
    )
    # ex tax (WooCommerce's meaning of refund_total) unless that would credit more than went back
    ex_tax = amount >= as_net - settings.rounding_tolerance
    for i, rate in missing.items():
        stated = lines[i].net_total
        net = stated if ex_tax else q2(stated / (1 + rate / HUNDRED))
        vat = q2(stated * rate / HUNDRED) if ex_tax else stated - net
        lines[i] = replace(lines[i], net_total=net, vat_total=vat, vat_rate=rate, vat_rate_exact=True)
    return lines, False


def _with_original(line: SalesLine, original: dict) -> SalesLine:
    """Fills what the refund line lacks from the order line it refunds; a refund of an amount on a line
    without a quantity becomes quantity 1."""
    quantity = line.quantity if line.quantity else Decimal(1)
    return replace(
        line,
        quantity=quantity,
        sku=line.sku or clean(original.get("sku")),
        description=line.description or html.unescape(str(original.get("name") or "")),
        discount=ZERO,
    )
