"""Worked examples of the pricing rules (the pure function: no app, no database)."""

from decimal import Decimal

import pytest

from portal.calculator import pricing
from portal.calculator.pricing import Selection, money
from tests.calculator.conftest import make_catalogue

D = Decimal
CATALOGUE = make_catalogue()


def price(**selection):
    return pricing.price(CATALOGUE, Selection(**selection))


def amounts(lines):
    return [(line.kind, line.slug, line.amount) for line in lines]


def test_webshop_and_ledger_billed_monthly():
    b = price(systems=("shopify", "e-conomic"), orders=500)
    assert b.status == "priced"
    assert b.selection.systems == ("e-conomic", "shopify")  # catalogue order
    assert b.tier.name == "Standard"
    assert amounts(b.lines) == [
        ("volume", "500", D("299.00")),
        ("system", "e-conomic", D("99.00")),
        ("system", "shopify", D("99.00")),
    ]
    assert b.monthly_total == D("497.00")
    assert b.half_yearly_discount == D("49.70")
    assert b.half_yearly_per_month == D("447.30")
    assert b.per_month == D("497.00") and b.months == 1 and b.period_total == D("497.00")
    # Both systems can be set up by the customer: no set-up fee unless they ask for it.
    assert b.setup_lines == () and b.setup_total == D("0.00") and b.delivery_days is None
    assert b.first_invoice == D("497.00")
    assert b.vat(b.first_invoice) == D("124.25")
    assert b.incl_vat(b.first_invoice) == D("621.25")


def test_acquirer_with_paymatch_and_extra_connections_billed_half_yearly():
    b = price(
        systems=("e-conomic", "clearhaus"),
        orders=1500,
        addons=(("paymatch", 1), ("extra-economic", 2)),
        billing="half-yearly",
    )
    assert amounts(b.lines) == [
        ("volume", "2000", D("549.00")),
        ("system", "e-conomic", D("99.00")),
        ("system", "clearhaus", D("49.00")),
        ("addon", "paymatch", D("199.00")),
        ("addon", "extra-economic", D("200.00")),
    ]
    assert b.lines[-1].quantity == 2 and b.lines[-1].unit_price == D("100.00")
    assert b.monthly_total == D("1096.00")
    assert b.half_yearly_discount == D("109.60")
    assert b.per_month == D("986.40")
    assert b.months == 6 and b.period_total == D("5918.40")
    # Clearhaus and PayMatch are always set up by us; delivery is the slowest of the two.
    assert amounts(b.setup_lines) == [
        ("setup", "clearhaus", D("995.00")),
        ("addon_setup", "paymatch", D("1995.00")),
    ]
    assert b.setup_total == D("2990.00") and b.delivery_days == 10
    assert b.first_invoice == D("8908.40")
    assert b.vat(b.first_invoice) == D("2227.10")
    assert b.incl_vat(b.first_invoice) == D("11135.50")
    assert [f.slug for f in b.features] == ["invoices", "oss", "payouts"]


def test_set_it_up_for_me_adds_the_optional_set_ups():
    b = price(systems=("e-conomic", "shopify"), orders=50, setup=True)
    assert b.tier.name == "Start"
    assert amounts(b.setup_lines) == [("setup", "e-conomic", D("1495.00")), ("setup", "shopify", D("995.00"))]
    assert b.setup_total == D("2490.00") and b.delivery_days == 3
    assert b.first_invoice == D("149.00") + D("198.00") + D("2490.00")


def test_one_off_add_on_has_no_monthly_line():
    b = price(systems=("e-conomic", "shopify"), orders=50, addons=(("historic-import", 1),))
    assert [line.slug for line in b.lines] == ["100", "e-conomic", "shopify"]
    assert amounts(b.setup_lines) == [("addon_setup", "historic-import", D("1495.00"))]


def test_discount_is_rounded_half_up_to_whole_ore():
    catalogue = make_catalogue(half_yearly_discount_percent=D("12.5"))
    b = pricing.price(catalogue, Selection(systems=("e-conomic", "shopify"), orders=500))
    assert b.half_yearly_discount == D("62.13")  # 497 x 12,5 % = 62,125
    assert b.half_yearly_per_month == D("434.87")
    assert b.vat(D("0.02")) == D("0.01")  # 0,005 rounds up


@pytest.mark.parametrize(
    ("orders", "tier"),
    [(0, "Start"), (100, "Start"), (101, "Standard"), (500, "Standard"), (2001, "Pro"), (10000, "Pro")],
)
def test_the_price_follows_the_volume_tier(orders, tier):
    assert price(systems=("e-conomic", "shopify"), orders=orders).tier.name == tier


def test_more_orders_than_the_largest_tier_is_special():
    b = price(systems=("e-conomic", "shopify"), orders=10001)
    assert b.status == "special" and b.over_volume and b.reasons == ()
    assert b.monthly_total is None and b.per_month is None and b.first_invoice is None


def test_without_tiers_only_modules_are_priced():
    b = pricing.price(make_catalogue(tiers=()), Selection(systems=("e-conomic", "shopify"), orders=99999))
    assert b.status == "priced" and b.tier is None and b.monthly_total == D("198.00")


def test_fewer_than_two_systems_or_no_ledger_is_not_priced():
    assert price().status == "too_few"
    assert price(systems=("e-conomic",)).status == "too_few"
    assert price(systems=("e-conomic", "e-conomic")).status == "too_few"  # the same one twice
    assert price(systems=("shopify", "clearhaus")).status == "no_accounting"


def test_combination_rules():
    special = price(systems=("uniconta", "shopify"))
    assert (special.status, special.reasons) == ("special", ("Uniconta efter aftale",))
    assert special.features  # what you would get is still shown
    pair = price(systems=("dinero", "ongoing"))
    assert (pair.status, pair.reasons) == ("special", ("Lager uden lager",))
    assert price(systems=("e-conomic", "ongoing")).status == "priced"  # the rule needs both
    # Unavailable wins over special.
    both = price(systems=("billy", "uniconta", "shopify"))
    assert (both.status, both.reasons) == ("unavailable", ("Billy kommer snart",))


def test_add_on_that_needs_something_missing_is_left_out_and_explained():
    b = price(systems=("e-conomic", "shopify"), orders=100, addons=(("paymatch", 1),))
    assert b.status == "priced" and b.monthly_total == D("347.00")
    assert b.skipped_addons == (("paymatch", "needs_kind", "acquirer"),)
    assert "payouts" not in [f.slug for f in b.features]
    b = price(systems=("dinero", "shopify"), orders=100, addons=(("extra-economic", 3),))
    assert b.skipped_addons == (("extra-economic", "needs_system", "e-conomic"),)


def test_caveats_are_shown_for_the_chosen_systems_only():
    features = {f.slug: f for f in price(systems=("dinero", "shopify")).features}
    assert features["stock"].notes == (("Dinero", "Intet lager"),)
    assert features["oss"].notes == (("Dinero", "Ingen OSS"),)
    features = {f.slug: f for f in price(systems=("e-conomic", "shopify")).features}
    assert features["stock"].notes == ()
    assert "stock" not in {f.slug for f in price(systems=("e-conomic", "clearhaus")).features}


def test_unknown_choices_are_ignored_and_numbers_clamped():
    b = price(
        systems=("nope", "e-conomic", "shopify"),
        orders=-5,
        addons=(("nope", 1), ("extra-economic", 99), ("mapping", 0)),
        billing="weekly",
    )
    assert b.selection == Selection(
        systems=("e-conomic", "shopify"), orders=0, addons=(("extra-economic", 20),), billing="monthly"
    )


def test_money_is_decimal_from_strings_never_floats():
    assert money("1.005") == D("1.01") and money(3) == D("3.00") and money(D("2.345")) == D("2.35")
    with pytest.raises(TypeError):
        money(0.1)


def test_slider_stops_give_every_tier_room():
    stops = pricing.slider_stops(CATALOGUE.tiers)
    assert list(stops) == sorted(set(stops))
    assert {100, 500, 2000, 10000} <= set(stops) and stops[-1] == 20000
    assert stops[:3] == (10, 20, 30)
    per_tier = [
        len([s for s in stops if low < s <= high]) for low, high in [(0, 100), (100, 500), (500, 2000)]
    ]
    assert all(6 <= n <= 10 for n in per_tier), per_tier
    assert stops[pricing.slider_position(stops, 500)] == 500
    assert stops[pricing.slider_position(stops, 730)] == 800  # the next stop up: the same tier or above
    assert pricing.slider_position(stops, 10**6) == len(stops) - 1
    assert pricing.slider_stops(()) == pricing.slider_stops(
        tuple(pricing.Tier(n, D("1")) for n in (100, 500, 2000, 10000))
    )


def test_a_breakdown_freezes_into_json_and_back():
    b = price(
        systems=("e-conomic", "clearhaus"), orders=1500, addons=(("paymatch", 1),), billing="half-yearly"
    )
    data = pricing.breakdown_as_json(b)
    assert data["per_month"] == "806.40" and data["first_invoice"] == "7828.40"
    assert data["lines"][0] == {
        "kind": "volume", "slug": "2000", "label": "Plus", "quantity": 1,
        "unit_price": "0.00", "amount": "549.00", "delivery_days": 0,
    }  # fmt: skip
    assert pricing.selection_from_json(pricing.selection_as_json(b.selection)) == b.selection
