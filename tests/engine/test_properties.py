"""Property tests: the arithmetic holds for random carts, not only for the worked examples."""

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.engine.money import has_2dp
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources.woocommerce import normalise_order
from portal.engine.totals import (
    TotalsLine,
    invoice_totals,
    line_amount,
    price_lines,
    reconcile,
    with_rounding,
)
from tests.engine.factories import plan_for, wc_order

CENT = Decimal("0.01")
TOLERANCE = Decimal("0.10")
RATES = [Decimal(r) for r in ("0", "6", "12", "19", "25", "25.5")]
FAST = settings(max_examples=150, deadline=None)


def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


cents = st.integers(min_value=-50_000, max_value=2_000_000).map(lambda c: Decimal(c) * CENT)
shop_lines = st.lists(
    st.tuples(st.integers(min_value=1, max_value=500).map(Decimal), cents, st.sampled_from(RATES)),
    min_size=1,
    max_size=12,
)


def invoice_lines(cart):
    return [
        TotalsLine(part.quantity, part.unit_price, rate)
        for quantity, net, rate in cart
        for part in price_lines(quantity, net)
    ]


@FAST
@given(shop_lines)
def test_split_prices_have_two_decimals_and_add_up_to_each_line(cart):
    for quantity, net, _rate in cart:
        parts = price_lines(quantity, net)
        assert all(has_2dp(p.quantity) and has_2dp(p.unit_price) for p in parts)
        assert sum(p.quantity for p in parts) == quantity  # the stock moves by the real quantity
        assert sum(line_amount(TotalsLine(p.quantity, p.unit_price, Decimal(0))) for p in parts) == net
        prices = {p.unit_price for p in parts}
        assert max(prices) - min(prices) <= CENT


@FAST
@given(shop_lines)
def test_economic_totals_are_rounded_lines_plus_rounded_vat_per_rate(cart):
    lines = invoice_lines(cart)
    totals = invoice_totals(lines, "e-conomic")
    net_by_rate = defaultdict(Decimal)
    for line in lines:
        net_by_rate[line.vat_rate] += r2(line.quantity * line.unit_price)
    assert totals.net == sum(net_by_rate.values()) == sum(net for _q, net, _r in cart)
    assert totals.vat == sum(r2(amount * rate / 100) for rate, amount in net_by_rate.items())
    assert totals.gross == totals.net + totals.vat
    assert all(has_2dp(x) for x in (totals.net, totals.vat, totals.gross))


@FAST
@given(
    shop_lines,
    st.integers(min_value=-10, max_value=10),
    st.sampled_from(["e-conomic", "dinero", "dynaccount"]),
)
def test_rounding_line_brings_the_invoice_exactly_to_the_shop_total(cart, delta_cents, system):
    lines = invoice_lines(cart)
    computed = invoice_totals(lines, system)
    shop_gross = computed.gross + Decimal(delta_cents) * CENT
    result = reconcile(shop_gross, computed, TOLERANCE)
    assert result.ok and not result.totals_differ
    assert (result.rounding_line is None) == (delta_cents == 0)
    assert invoice_totals(with_rounding(lines, result), system).gross == shop_gross


@FAST
@given(shop_lines, st.integers(min_value=11, max_value=100_000), st.booleans())
def test_beyond_the_tolerance_the_totals_differ(cart, delta_cents, negative):
    computed = invoice_totals(invoice_lines(cart), "e-conomic")
    delta = Decimal(delta_cents) * CENT * (-1 if negative else 1)
    result = reconcile(computed.gross + delta, computed, TOLERANCE)
    assert result.totals_differ and not result.ok and result.rounding_line is None
    assert result.difference == delta


# --- whole orders ---------------------------------------------------------------------------------------

gross_prices = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) * CENT)
cart_items = st.lists(
    st.tuples(st.integers(min_value=1, max_value=25), gross_prices), min_size=1, max_size=8
)  # at most 8 lines: the per-line tax rounding of the shop stays within 8 × ½ øre of e-conomic's


def danish_order(items, shipping_gross):
    """A WooCommerce order as a Danish shop with prices incl. 25 % VAT computes it (tax rounded per line)."""
    lines = []
    for i, (quantity, unit_gross) in enumerate(items):
        gross = unit_gross * quantity
        tax = r2(gross / 5)  # 25 % VAT inside a gross price is a fifth of it
        lines.append((f"Vare {i}", f"SKU-{i}", quantity, str(gross - tax), str(tax)))
    ship_tax = r2(shipping_gross / 5)
    return wc_order(lines, [("Fragt", str(shipping_gross - ship_tax), str(ship_tax))])


@settings(max_examples=60, deadline=None)
@given(cart_items, st.integers(min_value=0, max_value=10_000).map(lambda c: Decimal(c) * CENT))
def test_danish_orders_book_to_the_ore_in_every_system(items, shipping_gross):
    store = SourceLinkSettings(shop_id="1")
    document = normalise_order(danish_order(items, shipping_gross), store)
    for system in ("e-conomic", "dinero", "dynaccount"):
        plan = plan_for(document, store, system)
        for line in plan.invoice.lines:
            assert has_2dp(line.quantity) and has_2dp(line.unit_net_price)
        assert all(has_2dp(x) for x in (plan.totals.net, plan.totals.vat, plan.totals.gross))
        assert plan.can_book, plan.reconciliation.message
        assert plan.totals.gross == document.shop_totals.gross
        assert abs(plan.totals.vat - document.shop_totals.vat) <= TOLERANCE
        assert not plan.warnings
