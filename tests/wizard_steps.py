"""Browser steps the wizard's Playwright tests share (tests/setups/test_wizard_browser.py,
tests/test_signup_browser.py)."""

from playwright.sync_api import expect

BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def fill_every_template(page):
    """Choose in every empty template dropdown the first option the wizard accepts: a refused one says why,
    is not saved, and the next is tried. Every card must have swapped in before the first choice."""
    busy = page.locator(BUSY)
    expect(page.locator(".template-card select").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    expect(busy).to_have_count(0)
    for _ in range(40):
        empty = page.locator(".template-card select:visible").filter(
            has=page.locator("option[value='']:checked")
        )
        if empty.count() == 0:
            return
        select = page.locator(f"#{empty.first.get_attribute('id')}")
        for index in range(1, select.locator("option").count()):
            with page.expect_response(
                lambda r: "/templates/" in r.url and r.request.method == "POST"
            ) as saved:
                select.select_option(index=index)
            assert saved.value.status == 200
            expect(busy).to_have_count(0)
            if 'class="error"' not in saved.value.text():
                break
    raise AssertionError("the templates never filled")
