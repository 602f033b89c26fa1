"""Customer matching per customer type, and the customer data passed to the accounting system."""

from datetime import date

import pytest

from portal.engine.customers import customer_data, decide_match, valid_ean
from portal.engine.documents import Party
from portal.engine.settings import EngineConfigError, SourceLinkSettings
from portal.engine.vat import TEST_RATES, decide_zone

DEFAULT = SourceLinkSettings()


def party(type_="b2c", email="Anna@Example.dk", vat=None, ean=None, country="DK", company=None):
    return Party(
        type_, company or "Anna Jensen", country, email=email, vat_number=vat, ean=ean, company=company
    )


def test_b2c_matches_on_email_lowercased():
    match = decide_match(party(), DEFAULT)
    assert (match.kind, match.field, match.value, match.customer_type) == (
        "lookup",
        "email",
        "anna@example.dk",
        "b2c",
    )


def test_b2c_collective_customer():
    match = decide_match(party(), SourceLinkSettings(collective_customer="99999"))
    assert (match.kind, match.customer_number, match.field) == ("collective", "99999", None)


def test_b2b_matches_on_cvr_and_never_uses_the_collective_customer():
    match = decide_match(party("b2b", vat="DK 13 58 56 28"), SourceLinkSettings(collective_customer="99999"))
    assert (match.kind, match.field, match.value, match.customer_type) == (
        "lookup",
        "vat_number",
        "13585628",
        "b2b",
    )


def test_b2b_eu_vat_number_keeps_its_prefix():
    match = decide_match(party("b2b", vat="se 5567 0374 8501", country="SE"), DEFAULT)
    assert match.value == "SE556703748501"


def test_b2b_with_an_invalid_number_falls_back_to_b2c_with_a_reason():
    match = decide_match(party("b2b", vat="12345678"), SourceLinkSettings(collective_customer="99999"))
    assert match.kind == "collective" and match.customer_type == "b2c"
    assert any("not valid" in w for w in match.warnings)


def test_ean_customer_matches_on_a_valid_gln():
    match = decide_match(party("ean", vat="13585628", ean="579800041660 4"), DEFAULT)
    assert (match.field, match.value, match.customer_type) == ("ean", "5798000416604", "ean")


def test_invalid_ean_falls_back_to_cvr():
    match = decide_match(party("ean", vat="13585628", ean="5798000416605"), DEFAULT)
    assert (match.field, match.value) == ("vat_number", "13585628")
    assert any("EAN" in w for w in match.warnings)


def test_match_fields_are_configurable():
    settings = SourceLinkSettings(match_b2b="email")
    assert decide_match(party("b2b", vat="13585628"), settings).field == "email"
    with pytest.raises(EngineConfigError):
        decide_match(party(), SourceLinkSettings(match_b2c="phone"))


def test_nothing_to_match_on_creates_a_customer():
    match = decide_match(party(email=None), DEFAULT)
    assert match.kind == "create" and match.warnings


def test_ean_validation():
    assert valid_ean("5798000416604") == "5798000416604"
    assert valid_ean("5798000416605") is None
    assert valid_ean("96385074") is None  # a valid EAN-8, but not a 13-digit location number
    assert valid_ean(None) is None


def test_customer_data_carries_only_valid_identifiers():
    buyer = party("b2b", vat="SE556703748501", country="SE", company="Svensk AB")
    decision = decide_zone(buyer, DEFAULT, TEST_RATES, date(2025, 3, 10))
    data = customer_data(buyer, decision, "SEK", "3")
    assert (data.name, data.country, data.zone, data.vat_number, data.is_company) == (
        "Svensk AB",
        "SE",
        "eu",
        "SE556703748501",
        True,
    )
    assert (data.currency, data.payment_terms) == ("SEK", "3")
    bad = party("b2b", vat="SE556703748502", country="SE")
    assert (
        customer_data(bad, decide_zone(bad, DEFAULT, TEST_RATES, date(2025, 3, 10)), "DKK").vat_number is None
    )
