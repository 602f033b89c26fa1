"""Property tests: a credit note equals the money that went back, however a shop splits its refund.

WooCommerce: the refund's `amount` "takes precedence over line item totals, even when total of line items
does not matches with this amount" (developer.woocommerce.com/docs/apis/rest-api/v3/order-refunds/); a line's
`refund_total` is ex tax and its `refund_tax` may be left out. Shopify: the money is the refund's
`transactions`; a shop may "refund less than the calculated amount" (an order adjustment records the
discrepancy), and shipping refunds come as `order_adjustments` of kind shipping_refund
(shopify.dev/api/admin-rest/2023-10/resources/refund).
"""

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portal.engine.invoice import build_credit_note
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources import shopify, woocommerce
from portal.engine.totals import TotalsLine, invoice_totals
from portal.engine.vat import TEST_RATES, decide_zone
from tests.engine.factories import SYSTEMS, wc_order

CENT = Decimal("0.01")
TOLERANCE = Decimal("0.10")
STORE = SourceLinkSettings(shop_id="7")
FAST = settings(max_examples=80, deadline=None)


def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


money = st.integers(min_value=100, max_value=200_000).map(lambda c: Decimal(c) * CENT)
# (quantity, unit price incl. 25 % VAT) per order line
order_lines = st.lists(st.tuples(st.integers(1, 4), money), min_size=1, max_size=5)
# per order line: refunded units (0 = not refunded) and how the shop states the line's tax
line_refunds = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["split", "net_only", "gross_only"])), min_size=5, max_size=5
)
extras = st.integers(min_value=0, max_value=20_000).map(lambda c: Decimal(c) * CENT)
shortfalls = st.one_of(st.just(Decimal(0)), st.integers(1, 20_000).map(lambda c: Decimal(c) * CENT))


def check(plan, refund_money: Decimal, order_gross: Decimal, system: str) -> None:
    """The credit note's gross is the money to the øre, never above what the order was paid, and its VAT
    is the system's own arithmetic over its lines and the order's 25 % of its gross (øre rounding aside)."""
    totals = plan.totals
    assert totals.gross == r2(refund_money), plan.warnings
    assert totals.gross <= order_gross
    assert totals.net + totals.vat == totals.gross
    recomputed = invoice_totals(
        [
            TotalsLine(li.quantity, li.unit_net_price, rate)
            for li, rate in zip(plan.invoice.lines, plan.line_rates, strict=True)
        ],
        system,
    )
    assert recomputed == totals
    assert abs(totals.vat - totals.gross / 5) <= TOLERANCE, (totals, plan.invoice.lines)
    assert plan.can_book, plan.reconciliation.message


def plans(refund, document):
    decision = decide_zone(document.customer, STORE, TEST_RATES, document.invoice_date)
    for system, (capabilities, setup) in SYSTEMS.items():
        yield system, build_credit_note(refund, document, decision, setup, capabilities, STORE, TEST_RATES)


# --- WooCommerce -----------------------------------------------------------------------------------------


def wc_refund_payload(order: dict, picks, shipping: bool, fee: bool, extra: Decimal, short: Decimal):
    """A refund as WooCommerce stores it (negative lines), and the money it moved."""
    items, paid = [], Decimal(0)
    for item, (units, mode) in zip(order["line_items"], picks, strict=False):
        units = min(units, item["quantity"])
        if not units:
            continue
        net = r2(Decimal(item["total"]) * units / item["quantity"])
        tax = r2(Decimal(item["total_tax"]) * units / item["quantity"])
        stated = {"split": net, "net_only": net, "gross_only": net + tax}[mode]
        taxes = [{"id": 1, "total": f"{-tax}", "subtotal": f"{-tax}"}] if mode == "split" else []
        items.append(
            {
                "id": 5000 + item["id"],
                "name": item["name"],
                "quantity": -units,
                "subtotal": f"{-stated}",
                "total": f"{-stated}",
                "total_tax": f"{-tax}" if mode == "split" else "0.00",
                "taxes": taxes,
                "sku": "",
                "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": str(item["id"])}],
            }
        )
        paid += net + tax
    refund = {"id": 77, "date_created_gmt": "2025-03-20T09:00:00", "reason": "", "line_items": items}
    for key, wanted in (("shipping_lines", shipping), ("fee_lines", fee)):
        refund[key] = []
        for line in order[key] if wanted else []:
            net, tax = Decimal(line["total"]), Decimal(line["total_tax"])
            refund[key].append(
                {
                    "id": 6000 + line["id"],
                    "method_title": "Fragt",
                    "name": line.get("name", ""),
                    "total": f"{-net}",
                    "total_tax": f"{-tax}",
                    "taxes": [{"id": 1, "total": f"{-tax}", "subtotal": ""}],
                    "meta_data": [{"id": 2, "key": "_refunded_item_id", "value": str(line["id"])}],
                }
            )
            paid += net + tax
    paid = min(paid + extra, Decimal(order["total"])) - short
    refund["amount"] = f"{paid}"
    return refund, paid


@FAST
@given(order_lines, line_refunds, st.booleans(), st.booleans(), extras, shortfalls, money)
def test_woocommerce_credit_note_is_the_money(lines, picks, shipping, fee, extra, short, ship_gross):
    items = []
    for i, (quantity, unit_gross) in enumerate(lines):
        gross = unit_gross * quantity
        tax = r2(gross / 5)
        items.append((f"Vare {i}", f"SKU-{i}", quantity, str(gross - tax), str(tax)))
    ship_tax = r2(ship_gross / 5)
    order = wc_order(
        items,
        [("Fragt", str(ship_gross - ship_tax), str(ship_tax))],
        [("Ekspeditionsgebyr", "20.00", "5.00")],
    )
    payload, paid = wc_refund_payload(order, picks, shipping, fee, extra, short)
    assume(paid > 0)
    document = woocommerce.normalise_order(order, STORE)
    refund = woocommerce.normalise_refund(order, payload, STORE)
    for system, plan in plans(refund, document):
        check(plan, paid, document.shop_totals.gross, system)


# --- Shopify -------------------------------------------------------------------------------------------


def sh_money(amount) -> dict:
    return {"shop_money": {"amount": str(amount), "currency_code": "DKK"}}


def sh_order(lines, ship_gross: Decimal) -> dict:
    """A Danish Shopify store: prices incl. 25 % VAT, the tax of each line rounded by Shopify."""
    items = []
    for i, (quantity, unit_gross) in enumerate(lines):
        tax = r2(unit_gross * quantity / 5)
        tax_lines = [{"price": str(tax), "rate": 0.25, "title": "Moms", "price_set": sh_money(tax)}]
        items.append(
            {
                "id": 100 + i,
                "name": f"Vare {i}",
                "sku": f"SKU-{i}",
                "quantity": quantity,
                "price": str(unit_gross),
            }
            | {"price_set": sh_money(unit_gross), "tax_lines": tax_lines, "discount_allocations": []}
        )
    ship_tax = r2(ship_gross / 5)
    shipping = {"id": 900, "title": "GLS", "price": str(ship_gross), "discount_allocations": []}
    shipping["tax_lines"] = [{"price": str(ship_tax), "rate": 0.25, "title": "Moms"}]
    gross = sum((q * p for q, p in lines), Decimal(0)) + ship_gross
    tax = sum((Decimal(i["tax_lines"][0]["price"]) for i in items), Decimal(0)) + ship_tax
    return {
        "order": {
            "id": 5001,
            "order_number": 1042,
            "currency": "DKK",
            "processed_at": "2025-05-02T10:15:00+02:00",
            "taxes_included": True,
            "total_price": str(gross),
            "total_price_set": sh_money(gross),
            "total_tax": str(tax),
            "billing_address": {"name": "Bo Hansen", "country_code": "DK", "zip": "1165"},
            "line_items": items,
            "shipping_lines": [shipping],
        }
    }


@FAST
@given(
    order_lines,
    line_refunds,
    st.sampled_from(["none", "adjustment", "shipping_line"]),
    extras,
    shortfalls,
    money,
    st.integers(1, 3),
)
def test_shopify_credit_note_is_the_money(lines, picks, shipping, extra, short, ship_gross, parts):
    order = sh_order(lines, ship_gross)
    refund_items, calculated = [], Decimal(0)
    for item, (units, _mode) in zip(order["order"]["line_items"], picks, strict=False):
        units = min(units, item["quantity"])
        if not units:
            continue
        gross = Decimal(item["price"]) * units
        tax = r2(Decimal(item["tax_lines"][0]["price"]) * units / item["quantity"])
        refund_items.append(
            {"line_item_id": item["id"], "quantity": units, "subtotal": float(gross), "total_tax": float(tax)}
            | {"subtotal_set": sh_money(gross), "total_tax_set": sh_money(tax)}
        )
        calculated += gross
    refund = {"id": 901, "processed_at": "2025-05-09T09:00:00+02:00", "refund_line_items": refund_items}
    ship_tax = r2(ship_gross / 5)
    if shipping == "adjustment":
        adjustment = {"id": 3, "kind": "shipping_refund", "amount": str(-(ship_gross - ship_tax))}
        refund["order_adjustments"] = [adjustment | {"tax_amount": str(-ship_tax)}]
        calculated += ship_gross
    elif shipping == "shipping_line":
        shipping_line = {
            "subtotal_amount_set": sh_money(ship_gross - ship_tax),
            "tax_amount_set": sh_money(ship_tax),
        }
        refund["refund_shipping_lines"] = [shipping_line]
        calculated += ship_gross
    order_gross = Decimal(order["order"]["total_price"])
    paid = min(calculated + extra, order_gross) - short
    assume(paid > 0)
    # the money in one to three successful refund transactions, and a failed one that moved nothing
    shares = [r2(paid / parts)] * (parts - 1)
    amounts = [*shares, paid - sum(shares, Decimal(0))]
    refund["transactions"] = [{"kind": "refund", "status": "success", "amount": str(a)} for a in amounts]
    refund["transactions"].append({"kind": "refund", "status": "failure", "amount": "1.00"})
    document = shopify.normalise_order(order, STORE)
    normalised = shopify.normalise_refund(order, {"refund": refund}, STORE)
    for system, plan in plans(normalised, document):
        check(plan, paid, document.shop_totals.gross, system)
