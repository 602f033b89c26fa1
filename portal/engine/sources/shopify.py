"""Shopify Admin REST orders and refunds → SalesDocument / Refund.

Semantics (sending-systems.md §2): money is decimal strings (refund line `subtotal`/`total_tax` may be JSON
numbers); `*_set.shop_money` is the shop currency and is preferred. With `taxes_included` the line `price`
and the discounts are gross and the line's `tax_lines[].price` is the VAT inside them; without it, prices
are net and tax is added. Discounts are allocated to lines (`discount_allocations`), shipping lines carry
their own `tax_lines` and allocations. Refunds list `refund_line_items` with positive quantities, shipping
refunds (`refund_shipping_lines`, or `order_adjustments` of kind "shipping_refund" in older versions) and
the money moved in `transactions` (kind "refund").
"""

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
from portal.engine.money import HUNDRED, ZERO, D, sum_dec
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import clean, first_value, join, parse_datetime

SOURCE = "shopify"
PREFIX = "SH"  # of every reference (order_reference): never change it, it finds what was posted


def money(obj: dict, key: str, default: Decimal | None = ZERO) -> Decimal:
    """`obj[key]` in the shop currency: `<key>_set.shop_money.amount` when present, else `obj[key]`."""
    money_set = obj.get(f"{key}_set") or {}
    shop_money = money_set.get("shop_money") if isinstance(money_set, dict) else None
    if shop_money and shop_money.get("amount") is not None:
        return D(shop_money["amount"])
    return D(obj.get(key), default)


def _tax(tax_lines: list[dict]) -> tuple[Decimal, Decimal | None]:
    vat = sum_dec(money(t, "price") for t in tax_lines)
    if not tax_lines:
        return vat, ZERO
    rate = sum_dec(D(t.get("rate"), ZERO) for t in tax_lines) * HUNDRED
    return vat, rate.normalize() if rate else ZERO


def _amounts(
    price_total: Decimal, discount: Decimal, vat: Decimal, taxes_included: bool
) -> tuple[Decimal, Decimal]:
    """(net, VAT) of a line after its discounts."""
    after_discount = price_total - discount
    return (after_discount - vat, vat) if taxes_included else (after_discount, vat)


def _goods_line(item: dict, taxes_included: bool) -> SalesLine:
    quantity = D(item.get("quantity"), ZERO)
    discount = sum_dec(money(a, "amount") for a in item.get("discount_allocations") or [])
    vat, rate = _tax(item.get("tax_lines") or [])
    net, vat = _amounts(money(item, "price") * quantity, discount, vat, taxes_included)
    return SalesLine(
        kind="gift_card" if item.get("gift_card") else "goods",
        description=str(item.get("name") or item.get("title") or ""),
        quantity=quantity,
        net_total=net,
        vat_total=vat,
        vat_rate=rate,
        vat_rate_exact=bool(item.get("tax_lines")),
        sku=clean(item.get("sku")),
        discount=discount / (1 + (rate or ZERO) / HUNDRED) if taxes_included else discount,
        source_line_id=str(item.get("id")),
    )


def _shipping_line(item: dict, taxes_included: bool) -> SalesLine:
    allocations = item.get("discount_allocations") or []
    if allocations:
        discount = sum_dec(money(a, "amount") for a in allocations)
    else:
        discounted = (
            money(item, "discounted_price", None) if item.get("discounted_price") is not None else None
        )
        discount = money(item, "price") - discounted if discounted is not None else ZERO
    vat, rate = _tax(item.get("tax_lines") or [])
    net, vat = _amounts(money(item, "price"), discount, vat, taxes_included)
    return SalesLine(
        kind="freight",
        description=str(item.get("title") or item.get("code") or "Shipping"),
        quantity=Decimal(1),
        net_total=net,
        vat_total=vat,
        vat_rate=rate,
        vat_rate_exact=bool(item.get("tax_lines")),
        source_line_id=str(item.get("id")),
    )


def _party(order: dict, settings: SourceLinkSettings) -> Party:
    billing = order.get("billing_address") or {}
    shipping = order.get("shipping_address") or {}
    customer = order.get("customer") or {}
    notes = [(a.get("name", ""), a.get("value")) for a in order.get("note_attributes") or []]
    vat_number = first_value(notes, settings.vat_meta_keys)
    ean = first_value(notes, settings.ean_meta_keys)
    company = clean(billing.get("company"))
    person = clean(billing.get("name")) or join(billing.get("first_name"), billing.get("last_name"))
    email = clean(order.get("email")) or clean(order.get("contact_email")) or clean(customer.get("email"))
    return Party(
        type="ean" if ean else "b2b" if vat_number else "b2c",
        name=company or person or join(customer.get("first_name"), customer.get("last_name")) or email or "",
        country=(clean(billing.get("country_code")) or "").upper(),
        email=email.lower() if email else None,
        company=company,
        phone=clean(billing.get("phone")) or clean(order.get("phone")),
        address=join(billing.get("address1"), billing.get("address2"), sep=", ") or None,
        postcode=clean(billing.get("zip")),
        city=clean(billing.get("city")),
        ship_to_country=(clean(shipping.get("country_code")) or "").upper() or None,
        ship_to_postcode=clean(shipping.get("zip")),
        vat_number=vat_number,
        ean=ean,
        source_customer_id=str(customer["id"]) if customer.get("id") else None,
    )


def _number(order: dict) -> str:
    if order.get("order_number") is not None:
        return str(order["order_number"])
    return str(order.get("name") or order["id"]).lstrip("#")


def _order(payload: dict) -> dict:
    return payload.get("order", payload)


def normalise_order(payload: dict, settings: SourceLinkSettings) -> SalesDocument:
    order = _order(payload)
    taxes_included = bool(order.get("taxes_included"))
    lines = [_goods_line(item, taxes_included) for item in order.get("line_items") or []]
    lines += [
        _shipping_line(item, taxes_included)
        for item in order.get("shipping_lines") or []
        if not item.get("is_removed")
    ]
    gross = money(order, "total_price")
    vat = money(order, "total_tax")
    number = _number(order)
    created = parse_datetime(order.get("processed_at") or order.get("created_at"), assume_utc=False)
    if created is None:
        raise ValueError("the order has no creation date")
    gateways = order.get("payment_gateway_names") or ([order["gateway"]] if order.get("gateway") else [])
    return SalesDocument(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(order["id"]),
        number=number,
        reference=order_reference(PREFIX, settings.shop_id, number),
        created_at=created,
        currency=str(order.get("currency") or "DKK").upper(),
        prices_include_tax=taxes_included,
        customer=_party(order, settings),
        lines=tuple(lines),
        shop_totals=ShopTotals(net=gross - vat, vat=vat, gross=gross),
        payment=Payment(
            method=gateways[0] if gateways else None,
            title=", ".join(gateways) or None,
            paid_at=parse_datetime(order.get("processed_at")),
        ),
        status=str(order.get("financial_status") or ""),
        coupons=tuple(str(c.get("code")) for c in order.get("discount_codes") or [] if c.get("code")),
    )


def _refund_line(item: dict, original: dict, taxes_included: bool) -> SalesLine:
    """A refund line item. `subtotal` is taken as the refunded amount in the order's own price mode: gross
    with `taxes_included`, else net (a guess: Shopify documents `subtotal` only as "the subtotal of the
    refund line item"; in the doc sample without taxes_included it is the net after discounts)."""
    line = {**(item.get("line_item") or {}), **original}
    quantity = D(item.get("quantity"), ZERO)
    vat = money(item, "total_tax")
    subtotal = money(item, "subtotal")
    net = subtotal - vat if taxes_included else subtotal
    tax_lines = line.get("tax_lines") or []
    _, rate = _tax(tax_lines)
    return SalesLine(
        kind="gift_card" if line.get("gift_card") else "goods",
        description=str(line.get("name") or line.get("title") or ""),
        quantity=quantity if quantity else Decimal(1),
        net_total=net,
        vat_total=vat,
        vat_rate=rate,
        vat_rate_exact=bool(tax_lines),
        sku=clean(line.get("sku")),
        source_line_id=str(item.get("line_item_id") or line.get("id")),
    )


def _shipping_refunds(refund: dict) -> list[SalesLine]:
    """Shipping refunds. Shopify lists the same refund twice — as an `order_adjustments` entry of kind
    shipping_refund (net and tax, negative) and in `refund_shipping_lines` (net only) — so the adjustments
    win, and the shipping lines count only where there are no such adjustments."""
    lines = []
    for adjustment in refund.get("order_adjustments") or []:
        if adjustment.get("kind") == "shipping_refund":
            # amount and tax_amount are negative (money back to the buyer).
            net = -money(adjustment, "amount")
            vat = -money(adjustment, "tax_amount")
            lines.append(
                SalesLine(
                    "freight", "Shipping", Decimal(1), net, vat, source_line_id=str(adjustment.get("id"))
                )
            )
    if lines:
        return lines
    for item in refund.get("refund_shipping_lines") or []:
        # Shape assumed from the GraphQL RefundShippingLine: subtotalAmountSet (net), taxAmountSet.
        net = money(item, "subtotal_amount")
        vat = money(item, "tax_amount")
        lines.append(
            SalesLine("freight", "Shipping", Decimal(1), net, vat, source_line_id=str(item.get("id")))
        )
    return lines


def normalise_refund(order_payload: dict, refund_payload: dict, settings: SourceLinkSettings) -> Refund:
    """A refund as positive amounts: its line items, its shipping refunds, and whatever part of the money
    actually refunded (successful `transactions` of kind "refund") the lines do not explain (`unallocated`:
    an amount-only refund or a refund discrepancy)."""
    order = _order(order_payload)
    refund = refund_payload.get("refund", refund_payload)
    taxes_included = bool(order.get("taxes_included"))
    originals = {str(item.get("id")): item for item in order.get("line_items") or []}
    lines = [
        _refund_line(item, originals.get(str(item.get("line_item_id")), {}), taxes_included)
        for item in refund.get("refund_line_items") or []
    ]
    lines += _shipping_refunds(refund)
    lines = [line for line in lines if line.net_total or line.vat_total]
    transactions = [
        t
        for t in refund.get("transactions") or []
        if t.get("kind") == "refund" and t.get("status") in (None, "success")
    ]
    explained = sum_dec(line.gross_total for line in lines)
    amount = sum_dec(money(t, "amount") for t in transactions) if transactions else explained
    rest = amount - explained
    number = _number(order)
    created = parse_datetime(refund.get("processed_at") or refund.get("created_at"), assume_utc=False)
    if created is None:
        raise ValueError("the refund has no creation date")
    return Refund(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(refund["id"]),
        order_source_id=str(order["id"]),
        order_number=number,
        reference=refund_reference(order_reference(PREFIX, settings.shop_id, number), str(refund["id"])),
        created_at=created,
        currency=str(order.get("currency") or "DKK").upper(),
        amount=amount,
        lines=tuple(lines),
        # Without lines the whole amount is the refund; with lines, a rest within the tolerance is rounding.
        unallocated=rest if rest > settings.rounding_tolerance or (not lines and rest > 0) else ZERO,
        reason=str(refund.get("note") or ""),
    )
