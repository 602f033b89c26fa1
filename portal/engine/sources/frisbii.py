"""Frisbii invoices and credit notes → SalesDocument / Refund.

The payload is Frisbii's Invoice (GET /v1/invoice/{handle}) with its customer's record under `_customer`
(portal.connectors.frisbii adds it). Amounts are integers in minor units (øre, cent) and are converted here
explicitly. Each order line states its own `amount` (the line total incl. VAT), `amount_vat`,
`amount_ex_vat` and `vat` (a fraction: 0.25); discounts are lines of their own with negative amounts
(`origin: discount`). A credit note is the money that went back (`amount`), not tied to lines.
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
from portal.engine.money import HUNDRED, sum_dec
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import clean, join, parse_datetime, product_number

SOURCE = "frisbii"
PREFIX = "FR"  # of every reference (order_reference): never change it, it finds what was posted
# an order line's `origin` → the kind of line (what the ledger books it on)
KINDS = {
    "discount": "discount",
    "additional_cost": "goods",
    "plan": "goods",
    "ondemand": "goods",
    "add_on": "goods",
}
# The origins whose `origin_handle` names what is sold again and again: a plan (its handle outlives its
# versions: GET /v1/plan/{handle}/current) is the product its lines are booked on. Frisbii's OrderLine gives
# `origin_handle` "for additional cost, credit, plan or subscription discount" only — an additional cost's is
# that one charge's own, and an add-on line names no add-on — so the other lines go on the default product
# with their text (docs/connectors/frisbii.md).
PRODUCT_ORIGINS = frozenset({"plan"})


def minor(value: object, name: str) -> Decimal:
    """An amount in minor units (an integer, as Frisbii sends every amount) as a Decimal in major units."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not an amount in minor units: {value!r}")
    return Decimal(value) / HUNDRED


def _line(item: dict, index: int) -> SalesLine:
    net = minor(item.get("amount_ex_vat"), f"order_lines[{index}].amount_ex_vat")
    vat = minor(item.get("amount_vat"), f"order_lines[{index}].amount_vat")
    gross = minor(item.get("amount"), f"order_lines[{index}].amount")
    if net + vat != gross:
        raise ValueError(f"order line {index}: amount_ex_vat + amount_vat is not amount")
    rate = (Decimal(str(item["vat"])) * HUNDRED).normalize() if item.get("vat") is not None else None
    quantity = Decimal(int(item.get("quantity") or 1))
    origin = str(item.get("origin") or "")
    kind = KINDS.get(origin, "goods")
    return SalesLine(
        kind=kind,
        description=clean(item.get("ordertext")) or "",
        quantity=quantity,
        net_total=net,
        vat_total=vat,
        vat_rate=rate,
        vat_rate_exact=rate is not None,
        sku=product_number(item.get("origin_handle")) if origin in PRODUCT_ORIGINS else None,
        source_line_id=clean(item.get("id")),
    )


def _party(invoice: dict) -> Party:
    customer = invoice.get("_customer") or {}
    company = clean(customer.get("company"))
    vat_number = clean(customer.get("vat"))
    person = join(customer.get("first_name"), customer.get("last_name"))
    return Party(
        type="b2b" if vat_number else "b2c",
        name=company or person or clean(customer.get("email")) or str(invoice.get("customer") or ""),
        country=(clean(customer.get("country")) or "").upper(),
        email=(clean(customer.get("email")) or "").lower() or None,
        company=company,
        phone=clean(customer.get("phone")),
        address=join(customer.get("address"), customer.get("address2"), sep=", ") or None,
        postcode=clean(customer.get("postal_code")),
        city=clean(customer.get("city")),
        vat_number=vat_number,
        source_customer_id=clean(invoice.get("customer")),
    )


def _payment(invoice: dict) -> Payment:
    """The transaction that paid it (settled, else authorized): its payment type is the method the
    settings map to "paid" (card, mobilepay …) or to payment terms."""
    found = None
    for state in ("settled", "authorized"):
        found = next((t for t in invoice.get("transactions") or [] if t.get("state") == state), None)
        if found:
            break
    if found is None:
        return Payment()
    return Payment(
        method=clean(found.get("payment_type")),
        title=clean(found.get("payment_type")),
        transaction_id=clean(found.get("id")),
        paid_at=parse_datetime(found.get("settled") or found.get("authorized")),
    )


def number_of(invoice: dict) -> str:
    """The number the customer sees: the handle (inv-<number> for subscription invoices)."""
    return str(invoice.get("handle") or invoice["id"])


def normalise_order(payload: dict, settings: SourceLinkSettings) -> SalesDocument:
    lines = [_line(item, index) for index, item in enumerate(payload.get("order_lines") or [])]
    if not lines:
        raise ValueError("the invoice has no order lines")
    gross = minor(payload.get("amount"), "amount")
    vat = minor(payload.get("amount_vat"), "amount_vat") if payload.get("amount_vat") is not None else None
    if vat is None:
        vat = sum_dec(line.vat_total for line in lines)
    number = number_of(payload)
    created = parse_datetime(payload.get("created"))
    if created is None:
        raise ValueError("the invoice has no creation date")
    return SalesDocument(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(payload["id"]),
        number=number,
        reference=order_reference(PREFIX, settings.shop_id, number),
        created_at=created,
        currency=str(payload.get("currency") or "DKK").upper(),
        prices_include_tax=bool((payload.get("order_lines") or [{}])[0].get("amount_defined_incl_vat", True)),
        customer=_party(payload),
        lines=tuple(lines),
        shop_totals=ShopTotals(net=gross - vat, vat=vat, gross=gross),
        payment=_payment(payload),
        status=str(payload.get("state") or ""),
    )


def normalise_refund(order_payload: dict, refund_payload: dict, settings: SourceLinkSettings) -> Refund:
    """A credit note as the money that went back: its `amount`, not tied to lines."""
    amount = minor(refund_payload.get("amount"), "credit note amount")
    if amount <= 0:
        raise ValueError("the credit note's amount is not positive")
    number = number_of(order_payload)
    created = parse_datetime(refund_payload.get("created"))
    if created is None:
        raise ValueError("the credit note has no creation date")
    texts = [clean(line.get("text")) for line in refund_payload.get("credit_note_lines") or []]
    return Refund(
        source=SOURCE,
        shop_id=settings.shop_id,
        source_id=str(refund_payload["id"]),
        order_source_id=str(order_payload["id"]),
        order_number=number,
        reference=refund_reference(
            order_reference(PREFIX, settings.shop_id, number), str(refund_payload["id"])
        ),
        created_at=created,
        currency=str(order_payload.get("currency") or "DKK").upper(),
        amount=amount,
        unallocated=amount,
        reason=", ".join(text for text in texts if text),
    )
