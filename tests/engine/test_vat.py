"""Rate table, VAT zone decision and the VAT-rate drift check."""

import json
from datetime import date
from decimal import Decimal as D

import pytest

from portal.engine.documents import Party, SalesLine
from portal.engine.settings import SourceLinkSettings
from portal.engine.vat import (
    TEST_RATES,
    UnknownRate,
    check_rates,
    compare_tables,
    decide_zone,
    expected_line_rate,
    load_ibericode,
    load_vatnode,
    parse_vat_id,
)
from tests.engine.factories import spec_path

DAY = date(2025, 3, 10)
OSS = SourceLinkSettings(oss=True)
NO_OSS = SourceLinkSettings(oss=False)


@pytest.fixture(scope="module")
def ibericode():
    return load_ibericode(json.loads(spec_path("vat", "ibericode-vat-rates.json").read_text()))


@pytest.fixture(scope="module")
def vatnode_data():
    return json.loads(spec_path("vat", "vatnode-eu_vat_rates_data-2026.9.29.json").read_text())


def party(country, type_="b2c", vat=None, ship=None, postcode=None, ean=None):
    return Party(
        type_,
        "Kunde",
        country,
        postcode=postcode,
        vat_number=vat,
        ship_to_country=ship,
        ship_to_postcode=postcode,
        ean=ean,
    )


# --- the rate table -----------------------------------------------------------------------------------


def test_finland_changes_to_25_5_on_2024_09_01(ibericode):
    assert ibericode.rate_on("FI", date(2024, 8, 31)) == D("24")
    assert ibericode.rate_on("FI", date(2024, 9, 1)) == D("25.5")


def test_dataset_rates_for_the_worked_examples(ibericode):
    assert ibericode.rate_on("DK", DAY) == 25
    assert ibericode.rate_on("SE", DAY) == 25
    assert ibericode.rate_on("DE", DAY) == 19
    assert ibericode.rate_on("DE", date(2020, 10, 1)) == 16  # the COVID cut, 2020-07-01 … 2020-12-31
    assert ibericode.rate_on("EE", date(2025, 7, 1)) == 24
    assert ibericode.rate_on("EL", DAY) == ibericode.rate_on("GR", DAY) == 24  # VAT-number spelling of Greece
    assert D("6") in ibericode.period_on("SE", DAY).reduced
    with pytest.raises(UnknownRate):
        ibericode.rate_on("NO", DAY)


def test_rows_round_trip_for_seeding_a_table(ibericode):
    rows = ibericode.rows()
    fi = sorted((r for r in rows if r["country"] == "FI"), key=lambda r: r["effective_from"])
    assert [(r["effective_from"], r["standard"]) for r in fi] == [
        (date.min, D("24")),
        (date(2024, 9, 1), D("25.5")),
    ]
    assert any(r["exceptions"] for r in rows if r["country"] == "ES")


def test_ibericode_and_vatnode_agree_on_every_standard_rate(ibericode, vatnode_data):
    vatnode = load_vatnode(vatnode_data)
    assert len(vatnode.countries) == 27
    assert compare_tables(ibericode, vatnode, date(2026, 9, 29), reduced=False) == []
    # the full comparison surfaces what the older ibericode snapshot lacks (FI reduced 14 → 13.5 %)
    assert any(p.startswith("FI: reduced") for p in compare_tables(ibericode, vatnode, date(2026, 9, 29)))


def test_the_in_code_table_matches_the_dataset(ibericode):
    for country in TEST_RATES.countries:
        for day in (date(2020, 10, 1), date(2024, 8, 31), date(2024, 9, 1), DAY):
            assert TEST_RATES.rate_on(country, day) == ibericode.rate_on(country, day), (country, day)


# --- identifiers ---------------------------------------------------------------------------------------


def test_vat_ids_are_read_with_stdnum():
    assert parse_vat_id("DK 13 58 56 28").compact == "13585628"
    assert parse_vat_id("13585628", "DK").valid
    assert not parse_vat_id("12345678", "DK").valid
    se = parse_vat_id("556703748501", "SE")
    assert (se.compact, se.country, se.valid) == ("SE556703748501", "SE", True)
    assert parse_vat_id("EL094259216").country == "GR"
    assert not parse_vat_id("SE556703748502").valid
    assert parse_vat_id("  ") is None


# --- the zone decision ---------------------------------------------------------------------------------


def test_domestic_b2c():
    decision = decide_zone(party("DK"), NO_OSS, TEST_RATES, DAY)
    assert (decision.zone, decision.rate, decision.reverse_charge, decision.oss_country) == (
        "domestic",
        25,
        False,
        None,
    )


def test_domestic_b2b_with_cvr_and_ean_customer_are_domestic():
    assert decide_zone(party("DK", "b2b", "DK13585628"), OSS, TEST_RATES, DAY).zone == "domestic"
    ean = decide_zone(party("DK", "ean", "13585628", ean="5798000416604"), OSS, TEST_RATES, DAY)
    assert (ean.zone, ean.rate) == ("domestic", 25)


def test_eu_b2c_without_oss_pays_danish_vat():
    decision = decide_zone(party("SE"), NO_OSS, TEST_RATES, DAY)
    assert (decision.zone, decision.rate, decision.oss_country) == ("domestic", 25, None)
    assert "without OSS" in decision.reason


@pytest.mark.parametrize(
    ("country", "day", "rate"),
    [
        ("SE", DAY, D("25")),
        ("DE", DAY, D("19")),
        ("FI", date(2024, 8, 31), D("24")),
        ("FI", date(2024, 9, 1), D("25.5")),
    ],
)
def test_eu_b2c_with_oss_pays_the_destination_rate_of_the_day(country, day, rate):
    decision = decide_zone(party(country), OSS, TEST_RATES, day)
    assert (decision.zone, decision.rate, decision.oss_country) == ("eu", rate, country)


def test_shipping_country_decides_the_destination():
    decision = decide_zone(party("DK", ship="DE"), OSS, TEST_RATES, DAY)
    assert (decision.country, decision.rate) == ("DE", 19)


def test_eu_b2b_with_a_valid_vat_number_is_reverse_charge():
    decision = decide_zone(party("SE", "b2b", "SE556703748501"), OSS, TEST_RATES, DAY)
    assert (decision.zone, decision.rate, decision.reverse_charge) == ("eu", 0, True)
    assert "SE556703748501" in decision.reason


def test_eu_b2b_with_an_invalid_vat_number_falls_back_to_b2c_with_a_reason():
    decision = decide_zone(party("SE", "b2b", "SE556703748502"), NO_OSS, TEST_RATES, DAY)
    assert (decision.zone, decision.rate, decision.reverse_charge) == ("domestic", 25, False)
    assert decision.customer_type == "b2c"
    assert any("not valid" in w for w in decision.warnings)
    with_oss = decide_zone(party("SE", "b2b", "SE556703748502"), OSS, TEST_RATES, DAY)
    assert (with_oss.zone, with_oss.rate, with_oss.oss_country) == ("eu", 25, "SE")


def test_a_danish_vat_number_on_an_eu_delivery_is_no_reverse_charge():
    decision = decide_zone(party("DK", "b2b", "DK13585628", ship="SE"), NO_OSS, TEST_RATES, DAY)
    assert not decision.reverse_charge and decision.rate == 25


@pytest.mark.parametrize("country", ["NO", "US", "GB", "CH"])
def test_outside_the_eu_is_export(country):
    decision = decide_zone(party(country), OSS, TEST_RATES, DAY)
    assert (decision.zone, decision.rate, decision.export) == ("world", 0, True)


def test_eu_territory_outside_the_vat_area_is_export():
    decision = decide_zone(party("ES", postcode="35001"), OSS, TEST_RATES, DAY)  # Las Palmas
    assert (decision.zone, decision.rate) == ("world", 0)
    assert "Canary Islands" in decision.reason
    assert decide_zone(party("ES", postcode="28001"), OSS, TEST_RATES, DAY).rate == 21  # Madrid


def test_missing_country_is_domestic_with_a_warning():
    decision = decide_zone(party(""), OSS, TEST_RATES, DAY)
    assert decision.zone == "domestic" and decision.warnings


# --- drift --------------------------------------------------------------------------------------------


def line(net, vat, rate=None, exact=True, kind="goods", qty=1):
    return SalesLine(kind, "Vare", D(qty), D(net), D(vat), None if rate is None else D(rate), exact)


def test_finland_at_24_after_the_change_is_drift():
    decision = decide_zone(party("FI"), OSS, TEST_RATES, date(2024, 10, 1))
    warnings = check_rates([line("100.00", "24.00", "24")], decision, TEST_RATES)
    assert len(warnings) == 1
    assert "24 %" in warnings[0] and "25.5 %" in warnings[0] and "2024-09-01" in warnings[0]
    assert check_rates([line("100.00", "25.50", "25.5")], decision, TEST_RATES) == []


def test_reduced_rate_of_the_oss_country_is_accepted():
    decision = decide_zone(party("SE"), OSS, TEST_RATES, DAY)
    books = line("100.00", "6.00", "6")
    assert expected_line_rate(books, decision, TEST_RATES) == 6
    assert check_rates([books], decision, TEST_RATES) == []
    assert check_rates([line("100.00", "7.00", "7")], decision, TEST_RATES) != []


def test_drift_from_amounts_when_the_shop_states_no_rate():
    decision = decide_zone(party("DK"), NO_OSS, TEST_RATES, DAY)
    assert check_rates([line("7.99", "1.998", exact=False)], decision, TEST_RATES) == []
    assert check_rates([line("100.00", "0.00", exact=False)], decision, TEST_RATES) != []


def test_vat_charged_to_a_reverse_charge_customer_is_drift():
    decision = decide_zone(party("SE", "b2b", "SE556703748501"), OSS, TEST_RATES, DAY)
    (warning,) = check_rates([line("100.00", "25.00", "25")], decision, TEST_RATES)
    assert "reverse charge" in warning


def test_gift_cards_carry_no_vat():
    decision = decide_zone(party("DK"), NO_OSS, TEST_RATES, DAY)
    card = line("-100.00", "0", "0", kind="gift_card")
    assert expected_line_rate(card, decision) == 0
    assert check_rates([card], decision) == []
