"""The draft plan per accounting system: lines, accounts/VAT codes, products, references, config errors."""

import uuid
from decimal import Decimal as D

import pytest

from portal.connectors.base import NO_VAT_LABEL, OSS_LABEL, RemoteCustomer, RemoteInvoice
from portal.engine.invoice import build_credit_note, build_draft, dinero_guid
from portal.engine.ledger_documents import Totals
from portal.engine.settings import EngineConfigError, FixedProducts, SourceLinkSettings
from portal.engine.sources.woocommerce import normalise_order, normalise_refund
from portal.engine.vat import TEST_RATES, decide_zone
from tests.engine.factories import (
    DINERO,
    DINERO_SETUP,
    DYNACCOUNT,
    DYNACCOUNT_SETUP,
    ECONOMIC,
    ECONOMIC_SETUP,
    SYSTEMS,
    lines_of,
    plan_for,
    wc_order,
    wc_refund,
)

SETTINGS = SourceLinkSettings(shop_id="12")
OSS = SourceLinkSettings(shop_id="12", oss=True)


def rounding_order(country="DK", meta=()):
    """Three items at 9.99 incl. VAT (tax 1.998 each, rounded per line by the shop), a SKU-less line and
    shipping: shop VAT 33.80, total 168.97."""
    return wc_order(
        [(f"Vare {i}", f"V{i}", 1, "7.99", "1.998") for i in range(3)]
        + [("Diverse", "", 1, "80.00", "20.00")],
        [("PostNord", "31.20", "7.80")],
        total="168.97",
        total_tax="33.80",
        country=country,
        meta=meta,
    )


def test_dinero_lines_carry_revenue_accounts_and_a_deterministic_guid():
    doc = normalise_order(
        wc_order([("Krus", "KRUS", 3, "239.88", "59.97")], [("Fragt", "31.20", "7.80")]), SETTINGS
    )
    plan = plan_for(doc, SETTINGS, "dinero")
    assert [(li.product_number, li.account, li.vat_code) for li in plan.invoice.lines] == [
        ("KRUS", "1000", None),
        ("FRAGT", "1010", None),
    ]
    assert plan.system == "dinero" and plan.totals.gross == D("338.85") and plan.can_book
    assert plan.invoice.guid == dinero_guid("WC-12-1001") == str(uuid.UUID(plan.invoice.guid))
    assert plan_for(doc, SETTINGS, "dinero").invoice.guid == plan.invoice.guid  # same order, same Guid
    assert dinero_guid("WC-12-1001", "org-a") != dinero_guid("WC-12-1001", "org-b")
    assert plan_for(doc, SETTINGS, "e-conomic").invoice.guid is None


def test_dinero_export_uses_the_world_accounts():
    doc = normalise_order(wc_order([("Krus", "KRUS", 1, "80.00", "0")], country="NO"), SETTINGS)
    plan = plan_for(doc, SETTINGS, "dinero")
    assert [li.account for li in plan.invoice.lines] == ["1200"] and plan.invoice.zone == "world"


def test_dynaccount_lines_carry_account_and_vat_rate_and_no_products():
    """Dynaccount's sale is a voucher of account rows (Webshop.php): each line names its account and the
    VAT rate the connector posts to the VAT account; no products are made."""
    doc = normalise_order(
        wc_order([("Krus", "KRUS", 1, "80.00", "0")], country="SE", meta=[("vat_number", "SE556703748501")]),
        SETTINGS,
    )
    plan = plan_for(doc, SETTINGS, "dynaccount")
    assert [(li.account, li.vat_rate, li.product_number) for li in plan.invoice.lines] == [
        ("1100", D("0"), None)
    ]
    assert plan.products == ()
    assert plan.invoice.sales_voucher == DYNACCOUNT_SETUP["invoice"]


@pytest.mark.parametrize("system", ["e-conomic", "dinero", "dynaccount"])
def test_each_system_reaches_the_shop_total(system):
    doc = normalise_order(rounding_order(), SETTINGS)
    plan = plan_for(doc, SETTINGS, system)
    assert plan.totals.gross == D("168.97") and plan.can_book
    rounding = [
        li for li in plan.invoice.lines if plan.line_kinds[plan.invoice.lines.index(li)] == "rounding"
    ]
    # e-conomic: 25 % of 135.17 = 33.7925 → 33.79, one øre short; per line (Dinero, Dynaccount): 33.80
    expected = {"e-conomic": [D("0.01")], "dinero": [], "dynaccount": []}[system]
    assert [li.unit_net_price for li in rounding] == expected


def test_the_plan_names_each_lines_kind():
    order = wc_order(
        [("Krus", "K", 1, "7.99", "1.998"), ("Kande", "T", 3, "100.00", "25.00")],
        [("PostNord", "31.20", "7.80")],
        fees=[("Gavekort ABC", "-50.00", "0")],
        total="124.00",
        total_tax="34.80",
    )
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS, "e-conomic")
    assert len(plan.line_kinds) == len(plan.invoice.lines) == len(plan.line_rates)
    # 3 × 33.333… is split over two cent prices: two lines, both goods
    assert plan.line_kinds == ("goods", "goods", "goods", "freight", "gift_card", "rounding")
    assert [li.product_number for li in plan.invoice.lines] == ["K", "T", "T", "FRAGT", "GAVEKORT", "AFRUND"]


def test_gift_card_and_rounding_book_on_the_no_vat_target():
    order = wc_order([("Krus", "K", 1, "80.00", "20.00")], fees=[("Gavekort ABC", "-50.00", "0")])
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS, "dinero")
    assert [(li.product_number, li.account) for li in plan.invoice.lines] == [
        ("K", "1000"),
        ("GAVEKORT", "1900"),
    ]
    assert plan.totals == Totals(D("30.00"), D("20.00"), D("50.00")) and plan.can_book
    plan = plan_for(normalise_order(rounding_order(), SETTINGS), SETTINGS, "e-conomic")
    afrund = next(p for p in plan.products if p.number == "AFRUND")
    assert (afrund.name, afrund.product_group, afrund.unit_net_price) == ("Øreafrunding", "9", 0)


def test_goods_without_sku_use_the_default_product_and_fixed_products_can_be_overridden():
    doc = normalise_order(rounding_order(), SETTINGS)
    settings = SourceLinkSettings(
        shop_id="12", fixed_products=FixedProducts(default="DIVERSE", shipping="SHIP")
    )
    decision = decide_zone(doc.customer, settings, TEST_RATES, doc.invoice_date)
    setup = {**ECONOMIC_SETUP, "fixed_products": {"rounding": "ØRE"}}
    plan = build_draft(doc, decision, setup, ECONOMIC, settings, TEST_RATES)
    assert [li.product_number for li in plan.invoice.lines] == ["V0", "V1", "V2", "DIVERSE", "SHIP", "ØRE"]
    with pytest.raises(EngineConfigError):
        build_draft(doc, decision, {**ECONOMIC_SETUP, "fixed_products": {"porto": "X"}}, ECONOMIC, settings)


def test_products_to_ensure_are_unique_with_their_group_and_price():
    order = wc_order([("Krus", "KRUS", 3, "100.00", "25.00"), ("Krus igen", "KRUS", 1, "33.33", "8.33")])
    plan = plan_for(normalise_order(order, SETTINGS), SETTINGS)
    assert [li.product_number for li in plan.invoice.lines] == ["KRUS", "KRUS", "KRUS"]
    (product,) = [p for p in plan.products if p.number == "KRUS"]
    assert (product.name, product.unit_net_price, product.product_group) == ("Krus", D("33.33"), "1")


def test_placeholder_customer_and_for_customer():
    plan = plan_for(normalise_order(rounding_order(), SETTINGS), SETTINGS)
    assert plan.invoice.customer.id == "" and plan.invoice.customer.name == "Anna Jensen"
    remote = RemoteCustomer(id="1234", number="1234", name="Anna Jensen")
    assert plan.for_customer(remote).customer == remote and plan.invoice.customer.id == ""
    collective = SourceLinkSettings(shop_id="12", collective_customer="99999")
    plan = plan_for(normalise_order(rounding_order(), collective), collective)
    assert plan.match.kind == "collective" and plan.invoice.customer.number == "99999"


def test_oss_on_a_system_without_oss_is_a_configuration_error():
    doc = normalise_order(rounding_order(country="SE"), OSS)
    with pytest.raises(EngineConfigError, match="OSS"):
        plan_for(doc, OSS, "dinero")


def test_oss_without_a_target_for_the_country_is_a_configuration_error():
    """Named for the reader: the country and the template as msgids (translated where shown), the rate."""
    doc = normalise_order(wc_order([("Krus", "K", 1, "100.00", "21.00")], country="NL", rate_percent=21), OSS)
    with pytest.raises(EngineConfigError) as error:
        plan_for(doc, OSS, "e-conomic")
    assert str(error.value) == (
        "No product group is chosen for Netherlands in the template “EU sales to consumers (OSS)”: OSS sales "
        "to Netherlands are booked at its VAT rate of 21 %."
    )
    assert error.value.params == {
        "country": "Netherlands",
        "template": OSS_LABEL,
        "rate": "21",
    } and set(error.value.labels) == {"country", "template"}


def test_oss_reduced_rate_needs_its_own_target():
    order = wc_order([("Bog", "BOG", 1, "100.00", "6.00")], country="SE", rate_percent=6)
    doc = normalise_order(order, OSS)
    with pytest.raises(EngineConfigError) as error:
        plan_for(doc, OSS, "e-conomic")
    assert "Sweden's reduced VAT rate of 6 %" in str(error.value)
    assert "at its standard rate (25 %) only: create this invoice by hand" in str(error.value)
    goods = {
        **ECONOMIC_SETUP["goods"],
        "oss": {**ECONOMIC_SETUP["goods"]["oss"], "SE-6": {"product_group": "24", "product": "OSS-SE-6"}},
    }
    decision = decide_zone(doc.customer, OSS, TEST_RATES, doc.invoice_date)
    plan = build_draft(doc, decision, {**ECONOMIC_SETUP, "goods": goods}, ECONOMIC, OSS, TEST_RATES)
    assert lines_of(plan) == [("OSS-SE-6", 1, D("100.00"))] and plan.line_rates == (6,)
    assert plan.totals == Totals(D("100.00"), D("6.00"), D("106.00")) and plan.can_book


def test_oss_goods_and_freight_share_the_country_product_created_with_its_name():
    """As the app's setup gives it (portal.pipeline.settings.setup_values): one product per country for
    goods and freight, created in the country's group under its Danish name; the SKU stays in the text."""
    order = wc_order([("Krus", "KRUS", 2, "160.00", "40.00")], [("PostNord", "40.00", "10.00")], country="SE")
    doc = normalise_order(order, OSS)
    target = {"product_group": "11", "product": "OSS-SE", "product_name": "OSS-salg Sverige"}
    setup = {
        **ECONOMIC_SETUP,
        "goods": {"product_group": "1", "oss": {"SE": target}},
        "freight": {"product_group": "2", "oss": {"SE": target}},
    }
    decision = decide_zone(doc.customer, OSS, TEST_RATES, doc.invoice_date)
    plan = build_draft(doc, decision, setup, ECONOMIC, OSS, TEST_RATES)
    assert [(li.product_number, li.description) for li in plan.invoice.lines] == [
        ("OSS-SE", "KRUS Krus"),
        ("OSS-SE", "PostNord"),
    ]
    assert [(p.number, p.name, p.product_group) for p in plan.products] == [
        ("OSS-SE", "OSS-salg Sverige", "11")
    ]
    assert plan.invoice.zone == "eu" and plan.line_rates == (25, 25) and plan.can_book


def test_economic_oss_target_must_name_a_product():
    doc = normalise_order(rounding_order(country="SE"), OSS)
    decision = decide_zone(doc.customer, OSS, TEST_RATES, doc.invoice_date)
    setup = {**ECONOMIC_SETUP, "goods": {"product_group": "1", "oss": {"SE": {"product_group": "21"}}}}
    with pytest.raises(EngineConfigError, match="product"):
        build_draft(doc, decision, setup, ECONOMIC, OSS, TEST_RATES)


def test_missing_templates_are_configuration_errors():
    doc = normalise_order(rounding_order(), SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    with pytest.raises(EngineConfigError, match="“Goods” is empty"):
        build_draft(doc, decision, {"invoice": {}}, ECONOMIC, SETTINGS)
    no_zone = {**DINERO_SETUP, "goods": {"eu": {"account": "1100"}}, "freight": None}
    with pytest.raises(EngineConfigError, match="domestic"):
        build_draft(doc, decision, no_zone, DINERO, SETTINGS)
    with pytest.raises(EngineConfigError, match="account"):
        build_draft(doc, decision, {**DYNACCOUNT_SETUP, "goods": {"vat_code": "U25"}}, DYNACCOUNT, SETTINGS)


def test_credit_note_for_dinero_points_at_the_invoice_and_has_its_own_guid():
    order = wc_order([("Krus", "KRUS", 3, "239.88", "59.97")])
    doc = normalise_order(order, SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    refund = normalise_refund(
        order, wc_refund(41, "99.95", items=[(order["line_items"][0]["id"], 1, "79.96", "19.99")]), SETTINGS
    )
    booked = RemoteInvoice(id="g-1", reference="WC-12-1001", booked=True, totals=Totals(D(0), D(0), D(0)))
    plan = build_credit_note(
        refund, doc, decision, DINERO_SETUP, DINERO, SETTINGS, TEST_RATES, credit_for=booked
    )
    assert plan.invoice.credit_for is booked
    assert plan.invoice.guid == dinero_guid("WC-12-1001-R41") != dinero_guid("WC-12-1001")
    assert [(li.quantity, li.unit_net_price, li.account) for li in plan.invoice.lines] == [
        (1, D("79.96"), "1000")
    ]
    assert plan.totals.gross == D("99.95") and plan.can_book


def test_amount_only_refund_on_an_order_with_several_rates_warns():
    order = wc_order([("Krus", "K", 1, "80.00", "20.00")], fees=[("Gavekort", "-50.00", "0")])
    doc = normalise_order(order, SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    refund = normalise_refund(order, wc_refund(42, "50.00"), SETTINGS)
    plan = build_credit_note(refund, doc, decision, ECONOMIC_SETUP, ECONOMIC, SETTINGS, TEST_RATES)
    assert lines_of(plan) == [("REFUSION", 1, D("40.00"))] and plan.totals.gross == D("50.00")
    assert any("amount-only refund" in w and "0 %, 25 %" in w for w in plan.warnings)


@pytest.mark.parametrize("system", ["e-conomic", "dinero", "dynaccount"])
def test_an_empty_vat_free_template_is_named_as_the_wizard_shows_it(system):
    """The wizard offers the VAT-free template as optional: a rounding line with it left empty stops with
    the template's name (a msgid, translated where the message is shown), not an internal key."""
    capabilities, setup = SYSTEMS[system]
    gift_card = wc_order([("Krus", "KRUS", 1, "200.00", "50.00")], fees=[("Gavekort", "-100.00", "0")])
    doc = normalise_order(gift_card, SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    for empty in ({**setup, "no_vat": {}}, {k: v for k, v in setup.items() if k != "no_vat"}):
        with pytest.raises(EngineConfigError) as refused:
            build_draft(doc, decision, empty, capabilities, SETTINGS)
        assert str(refused.value).startswith(
            "The template “VAT-free lines (gift cards, rounding)” is empty: choose its values under Setup."
        )
        assert refused.value.params == {"template": NO_VAT_LABEL} and refused.value.labels == ("template",)
        assert refused.value.msgid % refused.value.params == str(refused.value)


def test_dynaccount_books_vat_free_lines_on_their_account_at_0_percent():
    """The VAT-free template names the account alone; its lines carry 0 % (the connector posts no VAT)."""
    setup = {**DYNACCOUNT_SETUP, "no_vat": {"account": "1070"}}
    gift_card = wc_order([("Krus", "KRUS", 1, "200.00", "50.00")], fees=[("Gavekort", "-100.00", "0")])
    doc = normalise_order(gift_card, SETTINGS)
    decision = decide_zone(doc.customer, SETTINGS, TEST_RATES, doc.invoice_date)
    plan = build_draft(doc, decision, setup, DYNACCOUNT, SETTINGS)
    line = plan.invoice.lines[plan.line_kinds.index("gift_card")]
    assert (line.account, line.vat_rate, line.unit_net_price) == ("1070", D("0"), D("-100.00"))
    assert plan.totals.gross == D("150.00") and plan.can_book
    assert line.product_number is None and not plan.products
    off = wc_order([("Krus", "KRUS", 1, "200.00", "50.00")], total="250.03")  # 3 øre off
    rounded = build_draft(
        normalise_order(off, SETTINGS), decision, setup, DYNACCOUNT, SETTINGS
    ).invoice.lines[-1]
    assert (rounded.description, rounded.product_number, rounded.account) == ("Øreafrunding", None, "1070")
    # taxed lines need their account
    with pytest.raises(EngineConfigError, match="account"):
        build_draft(doc, decision, {**setup, "goods": {"vat_code": "U25"}}, DYNACCOUNT, SETTINGS)
