"""In headless chromium (strict CSP): the filters swap the table in and push the address; a queued row
updates itself while the worker runs the transfer and stops polling once it is done."""

import pytest
from playwright.sync_api import expect

from portal.pipeline import posting
from tests.conftest import PASSWORD, make_user
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, queued_behind_a_lock

pytestmark = pytest.mark.browser


def test_filters_and_live_rows(page, db, account, run_jobs, redis):
    make_user("ejer@kunde.dk", account, role="owner")
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    skipped = order(number="5002")
    skipped["status"] = "pending"
    feed(source_link, skipped)
    run_jobs()
    with queued_behind_a_lock(db, redis, source_link, order()) as queued:
        page.goto("/login")
        page.get_by_label("E-mail").fill("ejer@kunde.dk")
        page.get_by_label("Adgangskode").fill(PASSWORD)
        page.get_by_role("button", name="Log ind").click()
        page.wait_for_url("**/dashboard")
        page.goto("/transfers")
        row = page.locator(f"#transfer-{queued.id}")
        assert "I kø" in row.inner_text() and row.get_attribute("class") == "live"
    posting.run_transfer(queued.id)  # the worker finishes it; the row notices by itself
    expect(row).to_contain_text("Færdig", timeout=10_000)
    expect(row).not_to_have_class("live")

    page.get_by_label("Status").select_option("skipped")  # the form submits itself on change
    page.wait_for_url("**/transfers?status=skipped*")
    table = page.locator("#transfer-table")
    expect(table).not_to_contain_text("#5001")
    expect(table).to_contain_text("#5002")
