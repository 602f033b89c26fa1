"""WooCommerce orders and refunds through the engine: worked examples with exact amounts."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from portal.engine.invoice import build_credit_note
from portal.engine.ledger_documents import Totals
from portal.engine.settings import SourceLinkSettings
from portal.engine.sources.woocommerce import normalise_order, normalise_refund
from portal.engine.vat import TEST_RATES, decide_zone
from tests.engine.factories import (
    ECONOMIC,
    ECONOMIC_SETUP,
    SYSTEMS,
    lines_of,
    plan_for,
    spec_path,
    wc_order,
    wc_refund,
)

SETTINGS = SourceLinkSettings(shop_id="12")
OSS = SourceLinkSettings(shop_id="12", oss=True)


# --- the official sample ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_order():
    return json.loads(
        spec_path("woocommerce", "rest-v3", "orders-retrieve-an-order-response.json").read_text()
    )


def test_sample_order_is_normalised(sample_order):
    doc = normalise_order(sample_order, SETTINGS)
    assert (doc.source, doc.source_id, doc.number, doc.reference) == (
        "woocommerce",
        "727",
        "727",
        "WC-12-727",
    )
    assert doc.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert doc.currency == "USD" and not doc.prices_include_tax
    assert [
        (li.kind, li.description, li.quantity, li.net_total, li.vat_total, li.sku) for li in doc.lines
    ] == [
        ("goods", "Woo Single #1", 2, D("6.00"), D("0.45"), None),
        ("goods", "Ship Your Idea – Color: Black, Size: M Test", 1, D("12.00"), D("0.9"), "Bar3"),
        ("freight", "Flat Rate", 1, D("10.00"), D("0.00"), None),
    ]
    assert doc.shop_totals.gross == D("29.35") and doc.shop_totals.vat == D("1.35")
    assert doc.line_totals().gross == D("29.35")
    assert doc.customer.country == "US" and doc.customer.type == "b2c"
    assert doc.payment.method == "bacs" and doc.payment.paid_at == datetime(
        2017, 3, 22, 19, 28, 8, tzinfo=UTC
    )


def test_sample_us_order_is_export_and_its_sales_tax_makes_the_totals_differ(sample_order):
    plan = plan_for(normalise_order(sample_order, SETTINGS), SETTINGS)
    assert plan.decision.zone == "world" and plan.invoice.zone == "world"
    assert lines_of(plan) == [("VARE", 2, D("3.00")), ("Bar3", 1, D("12.00")), ("FRAGT", 1, D("10.00"))]
    assert plan.totals == Totals(D("28.00"), D("0.00"), D("28.00"))
    assert plan.totals_differ and not plan.can_book
    assert "29.35" in plan.reconciliation.message and "28.00" in plan.reconciliation.message
    assert any("drift" in w for w in plan.warnings)


def test_sample_subscription_order_with_a_long_float_price(sample_order):
    data = json.loads(
        spec_path(
            "woocommerce",
            "subscriptions-v3",
            "wcs_subscription-orders-retrieve-subscription-orders-response.json",
        ).read_text()
    )
    doc = normalise_order(data[0], SETTINGS)
    (line,) = doc.lines
    assert (line.quantity, line.net_total, line.vat_total, line.vat_rate, line.vat_rate_exact) == (
        3,
        D("23.72"),
        D("2.371541"),
        D("10"),
        True,
    )
    assert doc.prices_include_tax
    # 3 × 7.905138… cannot be priced in cents: 1 × 7.90 + 2 × 7.91 = 23.72 exactly
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [("VARE", 1, D("7.90")), ("VARE", 2, D("7.91"))]


def test_sample_refunds_are_normalised():
    refunds = json.loads(
        spec_path("woocommerce", "rest-v3", "order-refunds-list-all-refunds-response.json").read_text()
    )
    order = {"id": 723, "number": "723", "currency": "USD", "line_items": [], "tax_lines": []}
    amount_only = normalise_refund(order, refunds[0], SETTINGS)
    assert (amount_only.kind, amount_only.amount, amount_only.unallocated) == (
        "amount",
        D("10.00"),
        D("10.00"),
    )
    assert amount_only.reference == "WC-12-723-R726"
    with_line = normalise_refund(order, refunds[1], SETTINGS)
    (line,) = with_line.lines
    assert (with_line.kind, line.description, line.quantity, line.net_total, line.vat_total) == (
        "lines",
        "Woo Album #2",
        1,
        D("9.00"),
        D("0.00"),
    )
    assert line.source_line_id == "314" and with_line.unallocated == 0


# --- worked examples: a Danish shop, prices incl. VAT ------------------------------------------------


def kaffe_order(**kwargs):
    return wc_order(
        [("Kaffekrus", "KRUS-1", 3, "239.88", "59.97")],
        [("PostNord", "31.20", "7.80")],
        **kwargs,
    )


def test_domestic_b2c_incl_vat_matches_to_the_ore():
    doc = normalise_order(kaffe_order(), SETTINGS)
    assert doc.shop_totals.gross == D("338.85")
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [("KRUS-1", 3, D("79.96")), ("FRAGT", 1, D("31.20"))]
    assert plan.totals == Totals(D("271.08"), D("67.77"), D("338.85"))
    assert plan.reconciliation.difference == 0 and plan.can_book
    assert plan.invoice.reference == "WC-12-1001" and plan.invoice.date == date(2025, 3, 10)
    assert plan.invoice.layout == "19" and plan.invoice.payment_terms == "1"
    assert plan.match.field == "email" and plan.match.value == "anna@example.dk"
    assert plan.customer.zone == "domestic" and not plan.customer.is_company
    assert {p.number: p.product_group for p in plan.products} == {"KRUS-1": "1", "FRAGT": "2"}


def test_invoice_date_is_the_danish_calendar_day():
    doc = normalise_order(kaffe_order(date_gmt="2025-03-31T22:30:00"), SETTINGS)  # 00:30 CEST on 1 April
    assert doc.invoice_date == date(2025, 4, 1)


def test_coupons_are_already_in_the_line_totals():
    order = wc_order([("Jakke", "JAK", 1, "640.00", "160.00", "800.00")], coupons=["SOMMER20"])
    order["discount_total"] = "160.00"
    doc = normalise_order(order, SETTINGS)
    assert doc.coupons == ("SOMMER20",)
    assert doc.lines[0].discount == D("160.00")
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [("JAK", 1, D("640.00"))]  # no second discount line
    assert plan.totals.gross == D("800.00") == doc.shop_totals.gross and plan.can_book


def test_positive_and_negative_fees_and_a_gift_card():
    order = wc_order(
        [("Lampe", "LAMPE", 1, "400.00", "100.00")],
        fees=[
            ("Fakturagebyr", "20.00", "5.00"),
            ("Rabat", "-40.00", "-10.00"),
            ("Gavekort 1234", "-100.00", "0"),
        ],
    )
    doc = normalise_order(order, SETTINGS)
    assert [(li.kind, li.net_total) for li in doc.lines] == [
        ("goods", D("400.00")),
        ("fee", D("20.00")),
        ("discount", D("-40.00")),
        ("gift_card", D("-100.00")),
    ]
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [
        ("LAMPE", 1, D("400.00")),
        ("GEBYR", 1, D("20.00")),
        ("RABAT", 1, D("-40.00")),
        ("GAVEKORT", 1, D("-100.00")),
    ]
    assert plan.line_rates == (25, 25, 25, 0)
    assert plan.totals == Totals(D("280.00"), D("95.00"), D("375.00")) and plan.can_book
    assert {p.number: p.product_group for p in plan.products}["GAVEKORT"] == "9"  # the no-VAT group


def test_free_shipping_is_a_zero_line():
    doc = normalise_order(
        wc_order([("Bog", "BOG", 1, "80.00", "20.00")], [("Gratis fragt", "0.00", "0")]), SETTINGS
    )
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [("BOG", 1, D("80.00")), ("FRAGT", 1, D("0.00"))]
    assert plan.totals.gross == D("100.00") and plan.can_book and not any("drift" in w for w in plan.warnings)


def test_multi_quantity_net_prices_with_more_than_two_decimals():
    # 3 × 41.66 incl. VAT: net 100.00 → 33.3333 per unit
    doc = normalise_order(wc_order([("Stearinlys", "LYS", 3, "100.00", "25.00")]), SETTINGS)
    assert doc.lines[0].unit_net == D("100.00") / 3
    plan = plan_for(doc, SETTINGS)
    assert lines_of(plan) == [("LYS", 2, D("33.33")), ("LYS", 1, D("33.34"))]
    assert (
        plan.totals == Totals(D("100.00"), D("25.00"), D("125.00"))
        and plan.reconciliation.rounding_line is None
    )


def test_rounding_line_within_tolerance():
    # three items at 9.99 incl. VAT: WooCommerce rounds each line's tax (1.998 → 2.00) and keeps the gross
    order = wc_order(
        [(f"Vare {i}", f"V{i}", 1, "7.99", "1.998") for i in range(3)], total="29.97", total_tax="6.00"
    )
    doc = normalise_order(order, SETTINGS)
    plan = plan_for(doc, SETTINGS)
    # e-conomic: net 23.97, VAT 25 % of it = 5.9925 → 5.99, gross 29.96: one øre short
    assert plan.reconciliation.difference == D("0.01") and plan.reconciliation.ok
    assert lines_of(plan)[-1] == ("AFRUND", 1, D("0.01"))
    assert plan.line_rates[-1] == 0
    assert plan.totals == Totals(D("23.98"), D("5.99"), D("29.97")) and plan.can_book
    assert {p.number for p in plan.products} >= {"AFRUND"}


def test_difference_beyond_tolerance_is_a_flagged_draft():
    # a gift-card plugin took 20 kr. off the total without a fee line
    doc = normalise_order(kaffe_order(total="318.85"), SETTINGS)
    plan = plan_for(doc, SETTINGS)
    assert plan.totals_differ and not plan.can_book
    assert plan.reconciliation.difference == D("-20.00")
    assert plan.reconciliation.shop_gross == D("318.85") and plan.reconciliation.computed_gross == D("338.85")
    assert "318.85" in plan.warnings[-1] and "338.85" in plan.warnings[-1]
    assert all(line.product_number != "AFRUND" for line in plan.invoice.lines)


def test_b2b_with_cvr_from_order_meta():
    doc = normalise_order(
        kaffe_order(meta=[("_billing_vat_number", "DK13585628")], company="Firma ApS"), SETTINGS
    )
    assert doc.customer.type == "b2b" and doc.customer.name == "Firma ApS"
    plan = plan_for(doc, SETTINGS)
    assert plan.decision.zone == "domestic" and plan.totals.gross == D("338.85") and plan.can_book
    assert (plan.match.field, plan.match.value) == ("vat_number", "13585628")
    assert plan.customer.vat_number == "13585628" and plan.customer.is_company


def test_vat_meta_keys_are_configurable():
    order = kaffe_order(meta=[("momsnummer", "DK13585628")])
    assert normalise_order(order, SETTINGS).customer.type == "b2c"
    custom = SourceLinkSettings(shop_id="12", vat_meta_keys=("momsnummer",))
    assert normalise_order(order, custom).customer.vat_number == "DK13585628"


def test_ean_customer():
    meta = [("_billing_ean", "5798000416604"), ("_billing_vat_number", "13585628")]
    doc = normalise_order(kaffe_order(meta=meta, company="Aarhus Kommune"), SETTINGS)
    plan = plan_for(doc, SETTINGS)
    assert doc.customer.type == "ean"
    assert (plan.match.field, plan.match.value, plan.match.customer_type) == ("ean", "5798000416604", "ean")
    assert plan.customer.ean == "5798000416604" and plan.decision.zone == "domestic" and plan.can_book


def test_eu_b2c_sweden_without_oss_is_danish_vat():
    doc = normalise_order(kaffe_order(country="SE"), SETTINGS)
    plan = plan_for(doc, SETTINGS)
    assert (plan.decision.zone, plan.decision.rate) == ("domestic", 25)
    assert (
        lines_of(plan)[0] == ("KRUS-1", 3, D("79.96")) and plan.totals.gross == D("338.85") and plan.can_book
    )


def test_eu_b2c_sweden_with_oss_books_on_the_oss_products():
    doc = normalise_order(kaffe_order(country="SE"), OSS)
    plan = plan_for(doc, OSS)
    assert (plan.decision.zone, plan.decision.rate, plan.decision.oss_country) == ("eu", 25, "SE")
    assert lines_of(plan) == [("OSS-SE", 3, D("79.96")), ("OSS-SE-FRAGT", 1, D("31.20"))]
    assert plan.invoice.lines[0].description == "KRUS-1 Kaffekrus"  # the SKU stays visible
    assert {p.number: p.product_group for p in plan.products} == {"OSS-SE": "21", "OSS-SE-FRAGT": "21"}
    assert plan.totals.gross == D("338.85") and plan.can_book


def test_eu_b2c_germany_with_oss_at_19():
    order = wc_order([("Kaffekrus", "KRUS-1", 1, "100.00", "19.00")], rate_percent=19, country="DE")
    plan = plan_for(normalise_order(order, OSS), OSS)
    assert plan.decision.rate == 19 and plan.line_rates == (19,)
    assert plan.totals == Totals(D("100.00"), D("19.00"), D("119.00")) and plan.can_book and not plan.warnings


@pytest.mark.parametrize(
    ("moment", "rate", "tax", "gross"),
    [("2024-08-31T21:30:00", 24, "24.00", "124.00"), ("2024-08-31T22:30:00", D("25.5"), "25.50", "125.50")],
)
def test_finland_oss_rate_follows_the_danish_invoice_date(moment, rate, tax, gross):
    order = wc_order(
        [("Kaffekrus", "KRUS-1", 1, "100.00", tax)], rate_percent=rate, country="FI", date_gmt=moment
    )
    plan = plan_for(normalise_order(order, OSS), OSS)
    assert (
        plan.decision.rate == rate and plan.totals.gross == D(gross) and plan.can_book and not plan.warnings
    )


def test_finland_shop_still_at_24_percent_is_drift_and_totals_differ():
    order = wc_order([("Kaffekrus", "KRUS-1", 1, "100.00", "24.00")], rate_percent=24, country="FI")
    plan = plan_for(normalise_order(order, OSS), OSS)
    assert plan.totals == Totals(D("100.00"), D("25.50"), D("125.50"))
    assert plan.totals_differ and not plan.can_book
    assert any("25.5 %" in w and "24 %" in w for w in plan.warnings)


def test_eu_b2b_reverse_charge_with_a_valid_vat_number():
    order = wc_order(
        [("Maskine", "M-1", 2, "2000.00", "0")], country="SE", meta=[("vat_number", "SE556703748501")]
    )
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS)
    assert plan.decision.reverse_charge and plan.invoice.zone == "eu" and plan.line_rates == (0,)
    assert plan.totals == Totals(D("2000.00"), D("0.00"), D("2000.00")) and plan.can_book
    assert (plan.match.field, plan.match.value) == ("vat_number", "SE556703748501")
    assert plan.customer.vat_number == "SE556703748501" and plan.customer.zone == "eu"


def test_eu_b2b_with_an_invalid_vat_number_is_treated_as_b2c_and_flagged():
    order = wc_order(
        [("Maskine", "M-1", 2, "2000.00", "0")], country="SE", meta=[("vat_number", "SE556703748502")]
    )
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS)
    assert not plan.decision.reverse_charge and plan.decision.rate == 25
    assert any("is not valid" in w for w in plan.warnings)
    # the shop exempted the VAT; the invoice would add 25 %: never booked silently
    assert plan.totals.gross == D("2500.00") and plan.totals_differ
    assert plan.match.field == "email" and plan.customer.vat_number is None


@pytest.mark.parametrize("country", ["NO", "US"])
def test_export(country):
    order = wc_order([("Kaffekrus", "KRUS-1", 3, "239.88", "0")], [("Fragt", "100.00", "0")], country=country)
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS)
    assert (plan.decision.zone, plan.invoice.zone, plan.line_rates) == ("world", "world", (0, 0))
    assert plan.totals == Totals(D("339.88"), D("0.00"), D("339.88")) and plan.can_book


def test_payment_method_decides_the_payment_terms():
    settings = SourceLinkSettings(shop_id="12", payment_terms_by_method={"quickpay": "5", "bacs": "2"})
    plan = plan_for(normalise_order(kaffe_order(), settings), settings)
    assert plan.invoice.payment_terms == "5" and plan.customer.payment_terms == "5"


# --- refunds ----------------------------------------------------------------------------------------


@pytest.fixture
def order():
    return wc_order(
        [("Kaffekrus", "KRUS-1", 3, "239.88", "59.97"), ("Tekande", "KANDE", 1, "200.00", "50.00")],
        [("PostNord", "31.20", "7.80")],
    )


def credit(order, refund, settings=SETTINGS):
    doc = normalise_order(order, settings)
    decision = decide_zone(doc.customer, settings, TEST_RATES, doc.invoice_date)
    normalised = normalise_refund(order, refund, settings)
    return normalised, build_credit_note(
        normalised, doc, decision, ECONOMIC_SETUP, ECONOMIC, settings, TEST_RATES
    )


def test_full_refund(order):
    ids = [item["id"] for item in order["line_items"]]
    ship = order["shipping_lines"][0]["id"]
    payload = wc_refund(
        31,
        "588.85",
        items=[(ids[0], 3, "239.88", "59.97"), (ids[1], 1, "200.00", "50.00")],
        shipping=[(ship, 1, "31.20", "7.80")],
    )
    refund, plan = credit(order, payload)
    assert refund.reference == "WC-12-1001-R31" and refund.kind == "lines"
    assert lines_of(plan) == [("KRUS-1", 3, D("79.96")), ("KANDE", 1, D("200.00")), ("FRAGT", 1, D("31.20"))]
    assert plan.totals == Totals(D("471.08"), D("117.77"), D("588.85")) and plan.can_book
    assert plan.invoice.reference == "WC-12-1001-R31" and plan.invoice.text == "Kreditnota for ordre #1001"
    assert plan.invoice.date == date(2025, 3, 20)


def test_partial_refund_of_specific_lines(order):
    payload = wc_refund(32, "99.95", items=[(order["line_items"][0]["id"], 1, "79.96", "19.99")])
    refund, plan = credit(order, payload)
    (line,) = refund.lines
    assert (line.sku, line.description, line.quantity) == (
        "KRUS-1",
        "Kaffekrus",
        1,
    )  # filled from the order line
    assert lines_of(plan) == [("KRUS-1", 1, D("79.96"))]
    assert plan.totals == Totals(D("79.96"), D("19.99"), D("99.95")) and plan.can_book


def test_shipping_only_refund(order):
    payload = wc_refund(33, "39.00", shipping=[(order["shipping_lines"][0]["id"], 1, "31.20", "7.80")])
    _, plan = credit(order, payload)
    assert lines_of(plan) == [("FRAGT", 1, D("31.20"))] and plan.totals.gross == D("39.00") and plan.can_book


def test_amount_only_refund_goes_on_the_refund_product(order):
    refund, plan = credit(order, wc_refund(34, "100.00", reason="Ridse i glasuren"))
    assert refund.kind == "amount" and refund.unallocated == D("100.00")
    assert lines_of(plan) == [("REFUSION", 1, D("80.00"))]
    assert plan.invoice.lines[0].description == "Refusion: Ridse i glasuren"
    assert plan.totals == Totals(D("80.00"), D("20.00"), D("100.00")) and plan.can_book


def test_amount_only_refund_that_needs_a_rounding_line(order):
    _, plan = credit(order, wc_refund(35, "99.99"))
    # 99.99 / 1.25 = 79.992 → 79.99; VAT 20.00 (19.9975); 99.99 exactly: no rounding needed
    assert plan.totals.gross == D("99.99") and plan.reconciliation.rounding_line is None
    _, plan = credit(order, wc_refund(36, "0.03"))
    # 0.03 / 1.25 = 0.024 → 0.02; VAT 0.01 (0.005 half-up) → 0.03
    assert plan.totals.gross == D("0.03")


def test_mixed_refund_lines_and_an_extra_amount(order):
    payload = wc_refund(37, "149.95", items=[(order["line_items"][0]["id"], 1, "79.96", "19.99")])
    refund, plan = credit(order, payload)
    assert refund.kind == "mixed" and refund.unallocated == D("50.00")
    assert lines_of(plan) == [("KRUS-1", 1, D("79.96")), ("REFUSION", 1, D("40.00"))]
    assert plan.totals.gross == D("149.95") and plan.can_book


def without_tax_split(payload):
    """The refund as WooCommerce stores it when `refund_total` was given without `refund_tax`."""
    for item in payload["line_items"]:
        item.update(total_tax="0.00", taxes=[])
    return payload


@pytest.mark.parametrize("system", ["e-conomic", "dinero", "dynaccount"])
@pytest.mark.parametrize("stated", ["400.00", "500.00"])  # refund_total ex tax (as documented), or gross
def test_refund_of_500_without_tax_split_is_a_credit_note_of_500(system, stated):
    # Issue 13: one line (400 + 100 VAT) refunded with 500,00 kr.; the line came without its tax and the
    # credit note said 600,00 kr. (400 + 25 % VAT on top, plus the "unexplained" 100 as a refund line).
    order = wc_order(
        [("Kaffekværn", "KVAERN", 1, "400.00", "100.00"), ("Filter", "FILTER", 1, "80.00", "20.00")]
    )
    payload = without_tax_split(
        wc_refund(60, "500.00", items=[(order["line_items"][0]["id"], 1, stated, "0")])
    )
    doc = normalise_order(order, SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    refund = normalise_refund(order, payload, SETTINGS)
    capabilities, setup = SYSTEMS[system]
    plan = build_credit_note(refund, doc, decision, setup, capabilities, SETTINGS, TEST_RATES)
    assert plan.totals == Totals(D("400.00"), D("100.00"), D("500.00")) and plan.can_book
    assert [(line.quantity, line.unit_net_price) for line in plan.invoice.lines] == [(1, D("400.00"))]
    assert not refund.vat_stated and refund.shop_vat is None and not plan.warnings


def test_lines_worth_more_than_the_money_are_reduced_explicitly(order):
    # 2 mugs (199.90) refunded, 150.00 paid back: the 49.90 kept is deducted on its own line at 25 %.
    payload = wc_refund(61, "150.00", items=[(order["line_items"][0]["id"], 2, "159.92", "39.98")])
    _, plan = credit(order, payload)
    assert lines_of(plan) == [("KRUS-1", 2, D("79.96")), ("REFUSION", 1, D("-39.92"))]
    assert plan.totals == Totals(D("120.00"), D("30.00"), D("150.00")) and plan.can_book
    assert any("not paid back" in warning for warning in plan.warnings)


def test_refund_above_the_order_total_is_not_booked(order):
    _, plan = credit(order, wc_refund(62, "1000.00"))
    assert plan.totals.gross == D("1000.00") and not plan.can_book and plan.totals_differ
    assert "exceeds the order's total DKK\xa0588.85" in plan.reconciliation.message


def test_refund_that_credits_nothing_is_refused(order):
    with pytest.raises(ValueError):
        credit(order, wc_refund(38, "0.00"))
