"""In headless chromium: a prospect prices a source link and requests a quote; staff see it."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.models import QuoteRequest
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_prospect_prices_an_source_link_and_requests_a_quote(page, db, catalogue, staff):
    page.goto("/login")
    page.get_by_role("link", name="Priser").click()
    page.wait_for_url("**/priser")
    result = page.locator("#result")
    expect(result).to_contain_text("Vælg mindst to systemer")

    # Pick two systems: the price appears without a reload.
    page.get_by_role("checkbox", name=re.compile(r"^e-conomic")).check()
    page.get_by_role("checkbox", name=re.compile(r"^Clearhaus")).check()
    expect(result).to_contain_text("Din pris")
    expect(result).to_contain_text("Abonnement Standard")  # 250 orders by default

    # Move the slider: the number beside it and the volume tier follow (position 22 is 1.400 orders).
    page.get_by_label("Ordrer pr. måned (skyder)").fill("22")
    expect(page.get_by_label("Ordrer pr. måned", exact=True)).to_have_value("1400")
    expect(result).to_contain_text("Abonnement Plus, op til 2.000 ordrer om måneden")

    # Add PayMatch, then switch to half-yearly billing.
    page.get_by_role("checkbox", name=re.compile(r"^PayMatch")).check()
    expect(result).to_contain_text("PayMatch, engangsbeløb")
    page.get_by_role("radio", name=re.compile(r"^Halvårlig")).check()
    expect(result.locator(".price")).to_have_text(re.compile(r"^806,40\s+kr\.$"))  # (549+99+49+199) x 90 %
    expect(result).to_contain_text("betalt halvårligt")
    expect(page).to_have_url(
        re.compile(
            r"/priser\?systems=e-conomic&systems=clearhaus&orders=1400&addons=paymatch&billing=half-yearly$"
        )
    )

    # Recompute with the button: the same price, and no CSP violation (the fixture fails on any console
    # error, "Refused to apply inline style" included).
    with page.expect_response(re.compile(r"/priser\?")) as recomputed:
        page.get_by_role("button", name="Opdater prisen").click()
    assert recomputed.value.ok
    expect(page.get_by_label("Ordrer pr. måned (skyder)")).to_have_value("22")
    expect(result.locator(".price")).to_have_text(re.compile(r"^806,40\s+kr\.$"))

    # Request a quote.
    page.get_by_role("link", name="Anmod om et uforpligtende tilbud").click()
    page.wait_for_url("**/priser/tilbud?**")
    page.get_by_label("Dit navn").fill("Mette Jensen")
    page.get_by_label("Virksomhed").fill("Cykelbutikken ApS")
    page.get_by_label("CVR-nummer").fill("35000046")
    page.get_by_label("E-mail").fill("mette@cykelbutikken.dk")
    page.get_by_label("Telefon").fill("12345678")
    page.get_by_label("Besked").fill("Vi vil gerne i gang i næste måned.")
    page.get_by_role("button", name="Send min forespørgsel").click()
    page.wait_for_url("**/priser/tak?kind=quote")
    expect(page.locator("main")).to_contain_text("Vi har modtaget din forespørgsel")

    quote = db.session.scalar(select(QuoteRequest))
    assert quote.selection == {
        "systems": ["e-conomic", "clearhaus"],
        "orders": 1400,
        "addons": {"paymatch": 1},
        "billing": "half-yearly",
        "setup": False,
    }
    assert quote.breakdown["per_month"] == "806.40"

    # The request is in the staff's inbox.
    page.get_by_role("link", name="Log ind").click()
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url("**/support")
    page.get_by_role("link", name=re.compile(r"^Tilbudsforespørgsler")).click()
    page.wait_for_url("**/support/quotes")
    row = page.locator("#quote-list tr", has_text="Cykelbutikken ApS")
    expect(row).to_contain_text("e-conomic, Clearhaus")
    expect(row).to_contain_text("Ny")
