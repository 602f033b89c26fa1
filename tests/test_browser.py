"""In headless chromium: a support agent logs in, impersonates with a reason, sees the banner, stops."""

import pytest

from tests.conftest import PASSWORD, make_account, make_user

pytestmark = pytest.mark.browser


def test_support_agent_impersonates_and_stops(page, db):
    account = make_account("Cykelbutikken ApS", "35000046")
    make_user("ejer@cykelbutikken.dk", account, role="owner")
    make_user("agent@bogbro.dk", staff=True, name="Agnes Agent")

    page.goto("/login")
    page.get_by_label("E-mail").fill("agent@bogbro.dk")
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url("**/support")

    # Live search through HTMX: type, and the results swap in without a reload.
    page.get_by_label("Find en konto").fill("cykel")
    page.get_by_role("link", name="Cykelbutikken ApS").click()
    page.wait_for_url("**/support/accounts/*")

    page.get_by_role("button", name="Start supportadgang").click()
    assert page.locator(".field.has-error").count() == 1  # no reason, no access
    page.get_by_label("Årsag").fill("Kunden kan ikke se sine fakturaer")
    page.get_by_role("button", name="Start supportadgang").click()
    page.wait_for_url("**/dashboard")

    banner = page.locator("#impersonation-banner")
    assert banner.is_visible()
    assert "agent@bogbro.dk" in banner.inner_text()
    assert "Cykelbutikken ApS" in banner.inner_text()
    assert "Kunden kan ikke se sine fakturaer" in banner.inner_text()

    page.get_by_role("link", name="Indstillinger").click()
    assert page.locator("#impersonation-banner").is_visible()

    page.get_by_role("button", name="Stop supportadgang").click()
    page.wait_for_url("**/support/accounts/*")
    assert page.locator("#impersonation-banner").count() == 0


def test_customer_logs_in_and_switches_to_english(page, db):
    account = make_account("Cykelbutikken ApS", "35000046")
    make_user("ejer@cykelbutikken.dk", account, role="owner")
    page.goto("/")
    page.get_by_label("E-mail").fill("ejer@cykelbutikken.dk")
    page.get_by_label("Adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Log ind").click()
    page.wait_for_url("**/dashboard")
    assert "Ingen bogføringsopsætning endnu" in page.content()
    page.get_by_role("button", name="English").click()
    page.wait_for_url("**/dashboard")
    assert "No accounting setup yet" in page.content()
