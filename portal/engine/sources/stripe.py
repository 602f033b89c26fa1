"""Stripe invoices, credit notes and refunds → SalesDocument / Refund.

Semantics (docs/connectors/stripe.md; sending-systems.md §3.2): amounts are integers in the currency's minor
unit (none for zero-decimal currencies). A line's `amount` is before its `discount_amounts` (coupons are
spread over the lines by Stripe) and includes its tax only where the tax is `inclusive`; its taxes are
`taxes[]` (basil and later: `tax_behavior`, `tax_rate_details.tax_rate`) or `tax_amounts[]` (before basil:
`inclusive`, `tax_rate`). Prorations are lines of their own, negative for the unused time.
"""

import re
from dataclasses import replace
from datetime import UTC, datetime
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
from portal.engine.money import HUNDRED, ZERO, sum_dec
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import clean, join, parse_datetime, product_number

SOURCE = "stripe"
PREFIX = "ST"  # of every reference (order_reference): never change it, it finds what was posted
# Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal): amounts are whole units.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".upper().split())


def money(amount: object, currency: str) -> Decimal:
    """Minor units (an integer) → Decimal in the currency's unit."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"a Stripe amount is an integer, not {amount!r}")
    return Decimal(amount) if currency.upper() in ZERO_DECIMAL else Decimal(amount) / HUNDRED


def _taxes(line: dict) -> list[tuple[int, bool, int, object]]:
    """(tax amount, inclusive?, taxable amount, the rate: an id or an expanded TaxRate) per tax of a line."""
    if line.get("taxes") is not None:
        return [
            (
                int(t["amount"]),
                t.get("tax_behavior") == "inclusive",
                int(t.get("taxable_amount") or 0),
                (t.get("tax_rate_details") or {}).get("tax_rate"),
            )
            for t in line["taxes"]
        ]
    return [
        (int(t["amount"]), bool(t.get("inclusive")), int(t.get("taxable_amount") or 0), t.get("tax_rate"))
        for t in line.get("tax_amounts") or []
    ]


def _product(item: dict) -> str | None:
    """The Stripe product a line sells: `pricing.price_details.product` (basil and later), else the pre-basil
    `price.product` / `plan.product`. The product, not the price: a price is immutable, so changing what a
    plan costs makes a new price of the same product, and the ledger's product should stay the same."""
    details = (item.get("pricing") or {}).get("price_details") or {}
    found = details.get("product")
    for old in ("price", "plan"):
        if not found and isinstance(item.get(old), dict):
            found = item[old].get("product")
    return str(found.get("id") if isinstance(found, dict) else found) if found else None


# Stripe's texts of a subscription's lines, "1 × Kaffe (at 100,00 kr. / month)" and the prorations' "Unused
# time on 1 × Kaffe after 12 Jun 2026": what the product is called when it is created from such a line.
PLAN_TEXTS = (
    re.compile(r"^\d+ × (?P<name>.+) \(at .+\)$"),
    re.compile(r"^(?:Unused|Remaining) time on (?:\d+ × )?(?P<name>.+) after .+$"),
)


def _product_name(description: str) -> str | None:
    found = next((m for m in (p.match(description) for p in PLAN_TEXTS) if m), None)
    return found["name"] if found else None


def _line(item: dict, currency: str) -> SalesLine:
    taxes = _taxes(item)
    discount = sum(int(d["amount"]) for d in item.get("discount_amounts") or [])
    inclusive = sum(amount for amount, included, _, _ in taxes if included)
    net_minor = int(item["amount"]) - discount - inclusive
    vat_minor = sum(amount for amount, _, _, _ in taxes)
    rate, exact = _rate(taxes, net_minor, vat_minor)
    quantity = item.get("quantity")
    return SalesLine(
        kind="goods",
        description=str(item.get("description") or ""),
        quantity=Decimal(quantity) if isinstance(quantity, int) else Decimal(1),
        net_total=money(net_minor, currency),
        vat_total=money(vat_minor, currency),
        vat_rate=rate,
        vat_rate_exact=exact,
        sku=product_number(_product(item)),
        discount=money(discount, currency),
        source_line_id=str(item.get("id")),
        product_name=_product_name(str(item.get("description") or "")),
    )


def _rate(taxes: list, net_minor: int, vat_minor: int) -> tuple[Decimal | None, bool]:
    """The line's VAT percent: stated where the tax rates are expanded, else derived from the amounts."""
    stated = [rate.get("percentage") for _, _, _, rate in taxes if isinstance(rate, dict)]
    if taxes and len(stated) == len(taxes) and all(p is not None for p in stated):
        return sum_dec(Decimal(str(p)) for p in stated), True
    if vat_minor == 0:
        return ZERO, False
    if net_minor == 0:
        return None, False
    return (Decimal(vat_minor) / Decimal(net_minor) * HUNDRED).quantize(Decimal("0.01")), False


def _party(invoice: dict) -> Party:
    address = invoice.get("customer_address") or {}
    shipping = (invoice.get("customer_shipping") or {}).get("address") or {}
    tax_ids = [t for t in invoice.get("customer_tax_ids") or [] if clean(t.get("value"))]
    name = clean(invoice.get("customer_name")) or clean(invoice.get("customer_email")) or ""
    business = bool(tax_ids) or invoice.get("customer_tax_exempt") == "reverse"
    customer = invoice.get("customer")
    return Party(
        type="b2b" if business else "b2c",
        name=name,
        country=(clean(address.get("country")) or "").upper(),
        email=(clean(invoice.get("customer_email")) or "").lower() or None,
        company=name if business else None,
        phone=clean(invoice.get("customer_phone")),
        address=join(address.get("line1"), address.get("line2"), sep=", ") or None,
        postcode=clean(address.get("postal_code")),
        city=clean(address.get("city")),
        ship_to_country=(clean(shipping.get("country")) or "").upper() or None,
        ship_to_postcode=clean(shipping.get("postal_code")),
        vat_number=clean(tax_ids[0]["value"]) if tax_ids else None,
        source_customer_id=str(customer.get("id") if isinstance(customer, dict) else customer or "") or None,
    )


def payment_method(invoice: dict) -> str:
    """How the invoice is paid, the key of the settings' paid_methods / payment_terms_by_method: "stripe"
    where Stripe collects it (card, direct debit: the money lands in the Stripe balance), "bank_transfer"
    where the customer pays the invoice themselves (send_invoice)."""
    return "stripe" if invoice.get("collection_method") == "charge_automatically" else "bank_transfer"


def _transaction(invoice: dict) -> str | None:
    payments = (invoice.get("payments") or {}).get("data") or []
    for entry in payments:
        intent = (entry.get("payment") or {}).get("payment_intent")
        if intent:
            return str(intent.get("id") if isinstance(intent, dict) else intent)
    intent = invoice.get("payment_intent")  # before basil
    return str(intent.get("id") if isinstance(intent, dict) else intent) if intent else None


def _moment(seconds: object) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), UTC) if seconds else None


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def issued_at(invoice: dict) -> str:
    """The invoice's date as ISO text: when it was finalized (numbered), else made."""
    transitions = invoice.get("status_transitions") or {}
    return _iso(int(transitions.get("finalized_at") or invoice["created"]))


def invoice_number(invoice: dict) -> str:
    return str(invoice.get("number") or invoice["id"])


def _coupon(discount: object) -> str:
    """A discount's coupon: the discount is an id unless expanded (its coupon an id or an object)."""
    if not isinstance(discount, dict):
        return str(discount)
    coupon = discount.get("coupon") or (discount.get("source") or {}).get("coupon") or discount.get("id")
    return str(coupon.get("id") if isinstance(coupon, dict) else coupon)


def normalise_order(payload: dict, settings: SourceLinkSettings) -> SalesDocument:
    lines_list = payload.get("lines") or {}
    if lines_list.get("has_more"):
        raise ValueError("the invoice has more lines than were read: it must be fetched whole")
    currency = str(payload["currency"]).upper()
    lines = [_line(item, currency) for item in lines_list.get("data") or []]
    total = money(payload["total"], currency)
    net = money(payload.get("total_excluding_tax", payload["total"]), currency)
    number = invoice_number(payload)
    transitions = payload.get("status_transitions") or {}
    inclusive = any(included for item in lines_list.get("data") or [] for _, included, _, _ in _taxes(item))
    return SalesDocument(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(payload["id"]),
        number=number,
        reference=order_reference(PREFIX, settings.shop_id, number),
        created_at=parse_datetime(issued_at(payload)),
        currency=currency,
        prices_include_tax=inclusive,
        customer=_party(payload),
        lines=tuple(lines),
        shop_totals=ShopTotals(net=net, vat=total - net, gross=total),
        payment=Payment(
            method=payment_method(payload),
            title="Stripe",
            transaction_id=_transaction(payload),
            paid_at=_moment(transitions.get("paid_at")),
        ),
        status=str(payload.get("status") or ""),
        coupons=tuple(_coupon(d) for d in payload.get("discounts") or []),
    )


def linked_refunds(note: dict) -> dict[str, int]:
    """The refunds a credit note names (`refunds[]`: made by its `refund_amount`, or linked): id → amount."""
    found = {}
    for entry in note.get("refunds") or []:
        refund = entry.get("refund")
        refund_id = refund.get("id") if isinstance(refund, dict) else refund
        if refund_id:
            found[str(refund_id)] = int(entry.get("amount_refunded") or 0)
    return found


def credit_documents(notes: list[dict], refunds: list[dict]) -> list[dict]:
    """What becomes a credit note in the ledger, from an invoice's credit notes and the refunds of its
    payments — each krone once. The refund is the one source of truth for money paid back: every succeeded
    refund is credited, whether a credit note names it or not (a Dashboard refund has none); a credit note
    credits what it credits beyond the refunds it names (the customer's balance, paid outside Stripe), and is
    left out when that is nothing. Both sides read only Stripe's own data, so the order the events arrive in
    (or a credit note linking an earlier refund afterwards) cannot credit a refund twice. A refund that a
    credit note was made with, whole, carries that note (`_credit_note`) for its lines and VAT split."""
    live = [note for note in notes if note.get("status") != "void"]
    documents = [note for note in live if int(note["total"]) > sum(linked_refunds(note).values())]
    for refund in refunds:
        if refund.get("status") != "succeeded":  # pending, failed, canceled: no money went back (yet)
            continue
        made_with = next(
            (
                note
                for note in live
                if linked_refunds(note) == {refund["id"]: refund["amount"]}
                and note["total"] == refund["amount"]
            ),
            None,
        )
        documents.append({**refund, "_credit_note": made_with} if made_with else refund)
    return documents


def _credit_lines(order_payload: dict, note: dict, currency: str) -> list[SalesLine]:
    """A credit note's lines as positive amounts, each on the product of the invoice line it credits."""
    products = {
        str(item.get("id")): product_number(_product(item))
        for item in (order_payload.get("lines") or {}).get("data") or []
    }
    lines = []
    for item in (note.get("lines") or {}).get("data") or []:
        line = _line(item, currency)
        if line.net_total or line.vat_total:
            lines.append(replace(line, sku=products.get(str(item.get("invoice_line_item")))))
    return lines


def normalise_refund(order_payload: dict, refund_payload: dict, settings: SourceLinkSettings) -> Refund:
    """What credit_documents lists: a refund (the money that went back on the invoice's payment: an amount,
    with the lines of the credit note it was made with, if any) or a credit note (its lines and total, less
    the refunds it names — those are credited as refunds; then an amount without lines)."""
    currency = str(order_payload["currency"]).upper()
    if refund_payload.get("object") == "refund":
        note = refund_payload.get("_credit_note") or {}
        amount = money(refund_payload["amount"], currency)
        lines = _credit_lines(order_payload, note, currency) if note else []
        reason = refund_payload.get("reason") or note.get("reason") or note.get("memo") or ""
    else:
        refunded = sum(linked_refunds(refund_payload).values())
        amount = money(int(refund_payload["total"]) - refunded, currency)
        lines = [] if refunded else _credit_lines(order_payload, refund_payload, currency)
        reason = refund_payload.get("reason") or refund_payload.get("memo") or ""
    if amount <= 0:
        raise ValueError(f"{refund_payload['id']} credits nothing")
    explained = sum_dec(line.gross_total for line in lines)
    rest = amount - explained
    unallocated = rest if rest > settings.rounding_tolerance or (not lines and rest > 0) else ZERO
    number = invoice_number(order_payload)
    return Refund(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(refund_payload["id"]),
        order_source_id=str(order_payload["id"]),
        order_number=number,
        reference=refund_reference(
            order_reference(PREFIX, settings.shop_id, number), str(refund_payload["id"])
        ),
        created_at=parse_datetime(_iso(int(refund_payload["created"]))),
        currency=currency,
        amount=amount,
        lines=tuple(lines),
        unallocated=unallocated,
        reason=str(reason),
    )
