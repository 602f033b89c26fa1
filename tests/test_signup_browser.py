"""In headless chromium, in Danish: a company signs up, confirms its address, and follows the dashboard's
checklist through the wizard (Dynaccount, with the demo keys its connect form shows) and a WooCommerce
sandbox shop to its first transfer. Selectors are labels and roles, as a customer reads the page."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.models import Transfer
from tests.conftest import PASSWORD
from tests.pipeline.conftest import place_woocommerce_order, remote
from tests.wizard_steps import fill_every_template

pytestmark = pytest.mark.browser


def next_step(page):
    return page.locator("#onboarding li.next a")


def test_sign_up_and_follow_the_checklist_to_the_first_transfer(app, page, db, mailbox, run_jobs):
    page.goto("/login")
    page.get_by_role("link", name="Opret en konto").click()
    page.get_by_label("Virksomhedsnavn").fill("Cykelsmeden ApS")
    page.get_by_label("CVR-nummer").fill("35000039")  # a typo: the check digit fails
    page.get_by_label("Dit navn").fill("Carl Cykel")
    page.get_by_label("Din e-mail").fill("carl@cykelsmeden.dk")
    page.get_by_label("Ny adgangskode", exact=True).fill(PASSWORD)
    page.get_by_label("Gentag den nye adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Opret konto").click()
    expect(page.get_by_text("Dette er ikke et gyldigt CVR-nummer")).to_be_visible()
    page.get_by_label("CVR-nummer").fill("35000038")
    page.get_by_label("Ny adgangskode", exact=True).fill(PASSWORD)  # passwords are never sent back
    page.get_by_label("Gentag den nye adgangskode").fill(PASSWORD)
    page.get_by_role("button", name="Opret konto").click()
    page.wait_for_url("**/dashboard")
    expect(page.get_by_role("heading", name="Kom i gang")).to_be_visible()
    expect(page.locator("#confirm-email")).to_contain_text("Bekræft din e-mailadresse carl@cykelsmeden.dk")

    run_jobs()
    link = mailbox.link(mailbox.last("carl@cykelsmeden.dk"), "/signup/confirm/")
    page.goto(urlsplit(link).path)
    expect(page.get_by_text("Din e-mailadresse er bekræftet.")).to_be_visible()
    expect(page.locator("#confirm-email")).to_have_count(0)

    # 1. Connect the accounting system: the sandbox's demo keys are on its own form.
    expect(next_step(page)).to_have_text("Forbind dit regnskabsprogram")
    next_step(page).click()
    page.get_by_role("link", name="Prøv med Dynaccount-sandkassen").click()
    keys = page.locator("#demo-keys code").all_inner_texts()
    assert len(keys) == 3
    page.get_by_label("API-id").fill(keys[0])
    page.get_by_label("API-nøgle").fill(keys[1])
    page.get_by_label("API-hemmelighed").fill(keys[2])
    page.get_by_role("button", name="Forbind").click()
    page.wait_for_url("**/setup/connections/*")

    # 2. The templates, reached from the checklist.
    page.get_by_role("link", name="Overblik").click()
    expect(next_step(page)).to_have_text("Udfyld skabelonerne")
    next_step(page).click()
    page.get_by_label("Brug denne organisation").first.click()  # not check(): the page moves on at once
    page.wait_for_url(re.compile(r".*/setup/\d+$"))
    fill_every_template(page)

    # 3. Book automatically or not, and activate.
    page.get_by_role("link", name="Overblik").click()
    expect(next_step(page)).to_have_text("Bogfør automatisk eller ej, og aktivér")
    next_step(page).click()
    page.get_by_role("button", name="Aktivér bogføringsopsætningen").click()
    expect(page.get_by_role("status")).to_contain_text("Bogføringsopsætningen er aktiv.")

    # 4. Connect a webshop, link it and switch it on.
    page.get_by_role("link", name="Overblik").click()
    expect(next_step(page)).to_have_text("Forbind en salgskilde")
    next_step(page).click()
    page.get_by_role("link", name="Prøv med WooCommerce-sandkassen").click()
    page.get_by_label("Consumer key").fill("ck_demo")
    page.get_by_label("Consumer secret").fill("cs_demo")
    page.get_by_role("button", name="Forbind").click()
    page.get_by_role("button", name="Tilknyt").click()
    page.get_by_role("button", name="Aktivér salgskilden").click()
    run_jobs()  # WooCommerce's creation pings

    # 5. The first transfer: an order placed in the shop arrives as a draft in Dynaccount.
    page.get_by_role("link", name="Overblik").click()
    expect(next_step(page)).to_have_text("Din første overførsel")
    place_woocommerce_order(app)
    for _ in range(5):  # delivery → event → transfer
        run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer is not None and transfer.status == "done", transfer and transfer.error_message
    assert remote(transfer.source_link.setup).find_invoice(transfer.reference) is not None  # in Dynaccount
    page.reload()
    expect(page.locator("#onboarding")).to_have_count(0)  # all done: the checklist steps aside
