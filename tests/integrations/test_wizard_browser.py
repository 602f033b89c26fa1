"""In headless chromium: a customer walks the whole wizard against each sandbox, connect to activation."""

import re

import pytest
from playwright.sync_api import expect

from portal.connectors.dynaccount import sandbox_settings as dynaccount_settings
from tests.conftest import PASSWORD, make_account, make_user

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

    # Step 2: tick "Activate integration" for the organisation; HTMX posts it and moves on.
    row = page.locator("tr", has_text=organisation)
    row.get_by_label("Aktivér integration").check()
    page.wait_for_url(re.compile(r".*/setup/\d+$"))

    # Step 3: every card loads its dropdowns live from the system (HTMX); choose until none is empty.
    expect(page.locator(".template-card select").first).to_be_visible()
    expect(page.locator(".template-card[hx-get]")).to_have_count(0)
    busy = page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")
    page.wait_for_load_state("networkidle")
    expect(busy).to_have_count(0)  # every card swapped in and processed before the first choice
    # The OSS template (e-conomic: one optional group per country) stays folded away and empty.
    cards = page.locator(".template-card")
    folded = page.locator(".template-card:has(details.compact-template)")
    expect(folded).to_have_count(1 if system == "e-conomic" else 0)
    for _ in range(40):
        empty = page.locator(".template-card select:visible").filter(
            has=page.locator("option[value='']:checked")
        )
        if empty.count() == 0:
            break
        with page.expect_response(lambda r: "/templates/" in r.url and r.request.method == "POST") as saved:
            empty.first.select_option(index=1)
        assert saved.value.status == 200
        expect(busy).to_have_count(0)
    expect(page.locator(".template-card .tag.ok")).to_have_count(cards.count() - folded.count())
    expect(folded.locator(".tag")).to_have_text(["valgfri"] * folded.count())

    page.reload()
    page.get_by_role("button", name="Aktivér integrationen").click()
    page.wait_for_load_state("networkidle")
    assert "Integrationen er aktiv." in page.content()
