"""OSS on e-conomic through the whole pipeline, checked in the e-conomic sandbox: EU sales to private
customers booked on the destination's product OSS-<country> in the country's OSS group (created there by
Bogbro), the VAT at the destination's rate on the country's OSS VAT account, and the IEX failure — the
ledger's rate differs from the destination's — caught before booking, naming both rates.

The sandbox agreement has OSS groups for Sweden, Germany, Finland and France (portal.sandbox.economic
OSS_SETUP); tests/pipeline/conftest.py chooses them in the setup's OSS template. The scenario matrix
(test_scenarios.py) covers the lines and totals per country and the refusal on Dinero and Dynaccount.
"""

from decimal import Decimal

from sqlalchemy import select

from portal.models import Transfer
from portal.pipeline import source_links
from portal.sandbox.economic import Agreement
from tests.pipeline.conftest import feed, make_setup, make_source_link, remote
from tests.pipeline.test_economic_pipeline import feed_refund, refund_event
from tests.pipeline.test_scenarios import SHIPPING, oss_order


def oss_source_link(db, account, auto_book=True):
    setup = make_setup(account, "e-conomic", auto_book=auto_book)
    source_link = make_source_link(db, account, setup)
    source_links.update_settings(source_link, {**source_link.settings, "oss": True})
    return setup, source_link


def ledger(connector, booked_number: str) -> dict[int, Decimal]:
    """The booked invoice's entries in e-conomic's ledger, summed per account."""
    day = connector._get(f"/invoices/booked/{booked_number}")["date"]
    totals: dict[int, Decimal] = {}
    for entry in connector._all(f"/accounting-years/{day[:4]}/entries"):
        if str(entry["voucherNumber"]) == booked_number:
            account = entry["account"]["accountNumber"]
            totals[account] = totals.get(account, Decimal(0)) + Decimal(str(entry["amount"]))
    return totals


def test_a_swedish_consumer_is_booked_on_oss_se_with_swedish_vat_on_its_oss_account(db, account, run_jobs):
    setup, source_link = oss_source_link(db, account)
    feed(source_link, oss_order(7101, "SE", 25, "160.00", "40.00", shipping=SHIPPING))
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message

    connector = remote(setup)
    # Bogbro made the country's product in the country's OSS group, under its Danish name.
    product = connector._get("/products/OSS-SE")
    assert (product["name"], product["productGroup"]["productGroupNumber"]) == ("OSS-salg Sverige", 11)
    found = connector.find_invoice("WC-12-7101")
    assert found.booked and (found.totals.net, found.totals.vat, found.totals.gross) == (
        Decimal("199.20"),
        Decimal("49.80"),
        Decimal("249.00"),
    )
    booked = connector._get(f"/invoices/booked/{found.number}")
    assert booked["recipient"]["vatZone"]["vatZoneNumber"] == 2  # EU: the OSS group's EU account applies
    assert {line["product"]["productNumber"] for line in booked["lines"]} == {"OSS-SE"}
    # The ledger: net on the Swedish OSS sales account, the VAT on the Swedish OSS VAT account.
    entries = ledger(connector, found.number)
    assert entries[1210] == Decimal("-199.20")  # Salg OSS Sverige
    assert entries[6941] == Decimal("-49.80")  # Skyldig OSS-moms Sverige
    assert 6910 not in entries  # no Danish VAT

    # The next Swedish order finds the product cached: nothing is created twice.
    feed(source_link, oss_order(7102, "SE", 25, "80.00", "20.00"))
    run_jobs()
    second = db.session.scalar(select(Transfer).where(Transfer.source_ref != transfer.source_ref))
    assert second.status == "done" and "products" not in [log.step for log in second.logs]


def test_a_refund_to_a_german_consumer_is_credited_on_oss_de_at_19_percent(db, account, run_jobs):
    """The credit note mirrors the invoice's OSS treatment: the same product, group and rate."""
    setup, source_link = oss_source_link(db, account)
    payload = oss_order(7106, "DE", 19, "160.00", "30.40")
    feed(source_link, payload)
    run_jobs()
    mugs = payload["line_items"][0]["id"]
    items = [("Keramikkrus", "KRUS-01", 1, "80.00", "15.20", mugs)]
    feed_refund(source_link, refund_event(payload, amount="95.20", items=items))
    run_jobs()
    credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
    assert credit.status == "done", credit.error_message
    connector = remote(setup)
    found = connector.find_invoice(credit.reference)
    assert found.booked and found.is_credit_note
    assert (found.totals.vat, found.totals.gross) == (Decimal("-15.20"), Decimal("-95.20"))
    booked = connector._get(f"/invoices/booked/{found.number}")
    assert {line["product"]["productNumber"] for line in booked["lines"]} == {"OSS-DE"}
    assert ledger(connector, found.number)[6942] == Decimal("15.20")  # Skyldig OSS-moms Tyskland, reversed


def test_finland_at_24_percent_in_e_conomic_leaves_a_draft_that_names_both_rates(
    owner_client, db, account, run_jobs
):
    """IEX's top failure: the shop charges Finland's 25.5 % (since 2024-09-01), the ledger's group still
    carries 24 %. The engine's plan matches the shop, so only e-conomic's own totals show it: the draft is
    made, never booked, and the transfer says which rate e-conomic applied and which it should be."""
    setup, source_link = oss_source_link(db, account)
    agreement = Agreement(int(setup.external_id))
    finnish = agreement.get("vat-accounts", "FI255")
    agreement.put("vat-accounts", "FI255", {**finnish, "ratePercentage": Decimal("24.00")})
    db.session.commit()

    feed(source_link, oss_order(7103, "FI", 25.5, "160.00", "40.80"))
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "totals_differ")
    assert transfer.error_message.startswith(
        "e-conomic computed VAT of DKK\xa038.40 for the draft 1, 24 % of its taxed lines, but a sale to a "
        "private customer in Finland carries Finland's VAT rate of 25.5 % under OSS: the order comes to "
        "DKK\xa0200.80 with VAT DKK\xa040.80."
    ), transfer.error_message
    found = remote(setup).find_invoice("WC-12-7103")
    assert found is not None and not found.booked  # a draft only
    assert (found.totals.vat, found.totals.gross) == (Decimal("38.40"), Decimal("198.40"))

    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "24 % af dens momspligtige linjer" in page and "momssatsen for Finland på 25.5 %" in page
    assert "skabelonen “EU-salg til forbrugere (OSS)”" in page
    assert "moms på 38,40\xa0kr." in page and "lyder på 200,80\xa0kr. med moms 40,80\xa0kr." in page


def test_a_country_without_a_group_is_named_in_danish_on_the_transfer_page(
    owner_client, db, account, run_jobs
):
    setup, source_link = oss_source_link(db, account)
    feed(source_link, oss_order(7104, "NL", 21, "160.00", "33.60"))
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "configuration")
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert (
        "Der er ikke valgt en varegruppe for Nederlandene i skabelonen “EU-salg til forbrugere (OSS)”: "
        "OSS-salg til Nederlandene bogføres med momssatsen for Nederlandene på 21 %."
    ) in page
    assert remote(setup).find_invoice("WC-12-7104") is None  # nothing was sent


def test_a_reduced_rate_of_the_destination_stops_with_what_to_do(db, account, run_jobs):
    """The wizard maps each country's standard rate; a line at a reduced rate (books to Sweden at 6 %) has
    no group, and Bogbro says so instead of booking it at the wrong rate."""
    setup, source_link = oss_source_link(db, account)
    feed(source_link, oss_order(7105, "SE", 6, "100.00", "6.00"))
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "configuration")
    assert "Sweden's reduced VAT rate of 6 %" in transfer.error_message
    assert "create this invoice by hand" in transfer.error_message
    assert remote(setup).find_invoice("WC-12-7105") is None
