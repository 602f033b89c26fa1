"""In headless chromium: a customer walks the whole wizard against each sandbox, connect to activation."""

import re

import pytest
from playwright.sync_api import expect

from portal.connectors.dynaccount import sandbox_settings as dynaccount_settings
from tests.conftest import PASSWORD, make_account, make_user
from tests.wizard_steps import fill_every_template

pytestmark = pytest.mark.browser


def log_in(page):
    account = make_account("Cykelbutikken ApS", "35000046")
    make_user("ejer@cykelbutikken.dk", account, role="owner")
    page.goto("/login")
    page.get_by_label("E-mail").fill("ejer@cykelbutikken.dk")
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url("**/dashboard")


def grant_access(page, system):
    if system == "e-conomic":
        page.wait_for_url("**/sandbox/e-conomic/**")
        page.get_by_role("button", name="Godkend").click()
    elif system == "dinero":
        page.wait_for_url("**/sandbox/dinero/connect/authorize**")
        page.get_by_role("button", name="Giv adgang").click()
    else:
        keys = dynaccount_settings("")
        page.get_by_label("API-id").fill(keys["demo_api_id"])
        page.get_by_label("API-nøgle").fill(keys["demo_api_key"])
        page.get_by_label("API-hemmelighed").fill(keys["demo_api_secret"])
        page.get_by_role("button", name="Forbind").click()
    page.wait_for_url("**/setup/connections/*")


@pytest.mark.parametrize(("system", "name", "organisation"), [
    ("e-conomic", "e-conomic", "Nordlys Webshop ApS"),
    ("dinero", "Dinero", "Demo Webshop ApS"),
    ("dynaccount", "Dynaccount", "Dynaccount 1000"),
])  # fmt: skip
def test_walk_the_wizard(page, db, system, name, organisation):
    log_in(page)
    page.get_by_role("link", name="Opsætning").click()
    page.get_by_role("link", name=f"Prøv med {name}-sandkassen").click()
    grant_access(page, system)

    # Step 2: tick "Use this organisation"; HTMX posts it and moves on.
    row = page.locator("tr", has_text=organisation)
    row.get_by_label("Brug denne organisation").click()  # not check(): the page moves on at once
    page.wait_for_url(re.compile(r".*/setup/\d+$"))

    # Step 3: every card loads its dropdowns live from the system (HTMX); choose until none is empty.
    expect(page.locator(".template-card[hx-get]")).to_have_count(0)
    # The OSS template (e-conomic: one optional group per country) stays folded away and empty.
    cards = page.locator(".template-card")
    folded = page.locator(".template-card:has(details.compact-template)")
    expect(folded).to_have_count(1 if system == "e-conomic" else 0)
    fill_every_template(page)
    done = page.locator(".template-card [id$='-status'] .tag.ok")  # not the "Gemt" beside it
    expect(done).to_have_count(cards.count() - folded.count())
    expect(folded.locator(".tag")).to_have_text(["valgfri"] * folded.count())

    page.reload()
    page.get_by_role("button", name="Aktivér bogføringsopsætningen").click()
    page.wait_for_load_state("networkidle")
    assert "Bogføringsopsætningen er aktiv." in page.content()


def open_setup(page, system, name, organisation):
    page.goto("/setup")
    page.get_by_role("link", name=f"Prøv med {name}-sandkassen").click()
    grant_access(page, system)
    page.locator("tr", has_text=organisation).get_by_label("Brug denne organisation").click()
    page.wait_for_url(re.compile(r".*/setup/\d+$"))
    expect(page.locator(".template-card[hx-get]")).to_have_count(0)
    page.wait_for_load_state("networkidle")


def choose(page, card, value, field="select"):
    with page.expect_response(lambda r: "/templates/" in r.url and r.request.method == "POST") as saved:
        card.locator(field).select_option(value)
    assert saved.value.status == 200
    page.wait_for_load_state("networkidle")


def test_the_wrong_accounts_from_issue_14_are_refused_with_the_reason(page, db):
    """Dinero "Varer, Danmark" with the EU-business account, Dinero "Momsfri linjer" with a sales account
    with VAT, Dynaccount "Varesalg i Danmark" with 5800 Bank or a purchase account (K25): each is refused,
    says why, and is not saved; the right account is saved with a visible "Gemt"."""
    log_in(page)
    open_setup(page, "dinero", "Dinero", "Demo Webshop ApS")
    goods = page.locator(".template-card", has=page.locator("h3", has_text="Varer, Danmark"))
    expect(goods.locator("option[value='1000']")).to_contain_text("Moms U25 25 %")  # the VAT code beside it
    choose(page, goods, "1100")
    expect(goods.locator(".feedback .error")).to_contain_text("UEUV")
    expect(goods.locator(".save-state")).to_have_text("Ikke gemt")
    choose(page, goods, "1000")
    expect(goods.locator(".feedback .error")).to_have_count(0)
    expect(goods.locator(".save-state")).to_have_text("Gemt")
    expect(goods.locator("[id$='-status'] .tag.ok")).to_have_text("udfyldt")

    vat_free = page.locator(".template-card", has=page.locator("h3", has_text="Momsfri linjer"))
    choose(page, vat_free, "1000")
    expect(vat_free.locator(".feedback .error")).to_contain_text("gavekort")
    page.reload()
    page.wait_for_load_state("networkidle")
    vat_free = page.locator(".template-card", has=page.locator("h3", has_text="Momsfri linjer"))
    expect(vat_free.locator("select")).to_have_value("")  # the refused account was not saved

    open_setup(page, "dynaccount", "Dynaccount", "Dynaccount 1000")
    card = page.locator(".template-card", has=page.locator("h3", has_text="Varesalg i Danmark"))
    choose(page, card, "5800", "select[name='account']")
    expect(card.locator(".feedback .error")).to_contain_text("statuskonto")
    choose(page, card, "1310", "select[name='account']")  # Varekøb, K25
    expect(card.locator(".feedback .error")).to_contain_text("købsmoms")
    expect(card.locator(".save-state")).to_have_text("Ikke gemt")
    choose(page, card, "1010", "select[name='account']")
    expect(card.locator(".save-state")).to_have_text("Gemt")
    expect(card.locator("[id$='-status'] .tag.ok")).to_have_text("udfyldt")
