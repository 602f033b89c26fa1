"""Each accounting system's invoice arithmetic, 2-decimal pricing and reconciliation."""

from decimal import Decimal as D

import pytest

from portal.engine.ledger_documents import Totals
from portal.engine.money import D as parse
from portal.engine.totals import (
    PricedQuantity,
    TotalsLine,
    invoice_totals,
    line_amount,
    price_lines,
    reconcile,
    with_rounding,
)


def test_economic_reproduces_the_recorded_draft():
    # traels-it/economic-rest invoice_send.json: 3 × 153.44 at 10 % discount = 414.288 → 414.29; + 46.00;
    # VAT 25 % of 460.29 = 115.0725 → 115.07; gross 575.36 (accounting-apis.md §2.8).
    lines = [TotalsLine(D(3), D("153.44"), D(25), D(10)), TotalsLine(D(1), D("46.00"), D(25))]
    assert line_amount(lines[0]) == D("414.29")
    assert invoice_totals(lines, "e-conomic") == Totals(D("460.29"), D("115.07"), D("575.36"))


def test_economic_vat_is_per_rate_on_the_summed_net_while_dinero_and_dynaccount_round_per_line():
    lines = [TotalsLine(D(1), D("0.33"), D(25))] * 3
    # e-conomic: VAT of 0.99 = 0.2475 → 0.25. Per line: 0.0825 → 0.08, three times 0.24.
    assert invoice_totals(lines, "e-conomic") == Totals(D("0.99"), D("0.25"), D("1.24"))
    assert invoice_totals(lines, "dinero") == Totals(D("0.99"), D("0.24"), D("1.23"))
    assert invoice_totals(lines, "dynaccount") == Totals(D("0.99"), D("0.24"), D("1.23"))


def test_economic_keeps_a_bucket_per_vat_rate():
    lines = [
        TotalsLine(D(1), D("100.00"), D(25)),
        TotalsLine(D(1), D("-100.00"), D(0)),  # gift card redemption
        TotalsLine(D(1), D("10.01"), D(25)),
    ]
    # 25 %: 110.01 → 27.5025 → 27.50; 0 %: -100
    assert invoice_totals(lines, "e-conomic") == Totals(D("10.01"), D("27.50"), D("37.51"))


def test_dinero_prices_including_vat_keep_the_shop_gross():
    lines = [TotalsLine(D(3), D("99.95"), D(25)), TotalsLine(D(1), D("39.00"), D(25))]
    # gross 299.85 → net 239.88; 39.00 → 31.20
    assert invoice_totals(lines, "dinero", prices_include_vat=True) == Totals(
        D("271.08"), D("67.77"), D("338.85")
    )
    with pytest.raises(ValueError):
        invoice_totals(lines, "e-conomic", prices_include_vat=True)
    with pytest.raises(ValueError):
        invoice_totals(lines, "billy")


def test_line_rounding_is_half_up():
    assert line_amount(TotalsLine(D(1), D("0.125"), D(0))) == D("0.13")
    assert line_amount(TotalsLine(D(1), D("-0.125"), D(0))) == D("-0.13")
    assert line_amount(TotalsLine(D("2.5"), D("3.33"), D(0))) == D("8.33")  # 8.325


# --- 2-decimal prices -----------------------------------------------------------------------------------


def test_exact_unit_price_stays_one_line():
    assert price_lines(D(3), D("239.88")) == [PricedQuantity(D(3), D("79.96"))]
    assert price_lines(D(1), D("-40.00")) == [PricedQuantity(D(1), D("-40.00"))]


def test_three_times_33_3333_is_split_over_two_cent_prices():
    # 3 × 33.33 = 99.99 and 3 × 33.34 = 100.02: neither equals the net 100.00.
    parts = price_lines(D(3), D("100.00"))
    assert parts == [PricedQuantity(D(2), D("33.33")), PricedQuantity(D(1), D("33.34"))]
    lines = [TotalsLine(p.quantity, p.unit_price, D(25)) for p in parts]
    assert invoice_totals(lines, "e-conomic") == Totals(D("100.00"), D("25.00"), D("125.00"))


def test_large_quantity_prices_stay_within_a_cent():
    parts = price_lines(D(1920), D("87552.97"))
    assert parts == [PricedQuantity(D(1823), D("45.60")), PricedQuantity(D(97), D("45.61"))]
    assert sum(p.quantity for p in parts) == 1920
    assert sum(p.quantity * p.unit_price for p in parts) == D("87552.97")


def test_negative_quantities_and_amounts_split_the_same_way():
    assert price_lines(D(-3), D("-100.00")) == [
        PricedQuantity(D(-2), D("33.33")),
        PricedQuantity(D(-1), D("33.34")),
    ]
    assert price_lines(D(2), D("-0.03")) == [
        PricedQuantity(D(1), D("-0.02")),
        PricedQuantity(D(1), D("-0.01")),
    ]


def test_unpriceable_fractional_quantity_is_folded_into_one_line():
    assert price_lines(D("0.5"), D("0.01")) == [PricedQuantity(D("0.5"), D("0.02"))]  # 0.01 exactly
    assert price_lines(D("1.5"), D("0.10")) == [PricedQuantity(D(1), D("0.10"), folded=True)]  # 0.07 → 0.11
    assert price_lines(D("1.333"), D("10.00")) == [PricedQuantity(D(1), D("10.00"), folded=True)]
    assert price_lines(D(0), D("5.00")) == [PricedQuantity(D(1), D("5.00"), folded=True)]


def test_net_with_more_than_two_decimals_is_rounded_first():
    # WooCommerce may report an unrounded line total ("136.376", woocommerce#30424)
    assert price_lines(D(1), D("136.376")) == [PricedQuantity(D(1), D("136.38"))]


# --- reconciliation -------------------------------------------------------------------------------------


def test_matching_totals_need_no_rounding_line():
    result = reconcile(D("338.85"), Totals(D("271.08"), D("67.77"), D("338.85")), D("0.10"), D("67.77"))
    assert result.ok and not result.totals_differ and result.rounding_line is None
    assert result.difference == 0


def test_difference_within_tolerance_gives_a_zero_vat_rounding_line():
    computed = Totals(D("23.97"), D("5.99"), D("29.96"))
    result = reconcile(D("29.97"), computed, D("0.10"), D("6.00"))
    assert result.ok and not result.totals_differ
    assert result.rounding_line == TotalsLine(D(1), D("0.01"), D(0))
    assert result.difference == D("0.01") and result.vat_difference == D("0.01")
    lines = [TotalsLine(D(1), D("23.97"), D(25))]
    assert invoice_totals(with_rounding(lines, result), "e-conomic").gross == D("29.97")


def test_difference_beyond_tolerance_flags_totals_differ_with_both_figures():
    result = reconcile(D("279.85"), Totals(D("239.88"), D("59.97"), D("299.85")), D("0.10"))
    assert not result.ok and result.totals_differ and result.rounding_line is None
    assert result.difference == D("-20.00")
    assert "279.85" in result.message and "299.85" in result.message


def test_vat_beyond_tolerance_flags_even_when_the_gross_matches():
    # shop: 100 + 25 VAT; invoice on a 0 % account with the gross as net: same 125, wrong VAT
    result = reconcile(D("125.00"), Totals(D("125.00"), D("0.00"), D("125.00")), D("0.10"), D("25.00"))
    assert result.totals_differ and "VAT differs" in result.message and "25.00" in result.message


def test_tolerance_edge_is_inclusive():
    computed = Totals(D("100.00"), D("25.00"), D("125.00"))
    assert reconcile(D("125.10"), computed, D("0.10")).ok
    assert reconcile(D("124.90"), computed, D("0.10")).rounding_line.unit_price == D("-0.10")
    assert reconcile(D("125.11"), computed, D("0.10")).totals_differ
    assert reconcile(D("125.01"), computed, D("0")).totals_differ


def test_amounts_are_parsed_from_strings_and_json_numbers():
    assert parse("29.35") == D("29.35")
    assert parse(7.905138333333333) == D("7.905138333333333")
    assert parse(3) == D(3)
    assert parse(None, D(0)) == 0
    for bad in (None, "abc", True, "NaN"):
        with pytest.raises(ValueError):
            parse(bad)
