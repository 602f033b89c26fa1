"""The completeness report through the real path: orders placed in the WooCommerce sandbox shop, transferred
by the pipeline into the ledger sandboxes, then both read back through their APIs and compared."""

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.connectors import dynaccount as dynaccount_connector
from portal.connectors import economic as economic_connector
from portal.engine.documents import COPENHAGEN
from portal.models import CompletenessReport, Transfer
from portal.pipeline import completeness, completeness_fixes
from portal.sandbox import shopify as sandbox
from tests.pipeline.conftest import faults, feed, make_setup, make_source_link, remote, shop_order
from tests.pipeline.test_shopify_graphql_only import in_the_shop, install, paid_order
from tests.shops.test_shops import link


def today():
    return datetime.now(COPENHAGEN).date()


def report_of(db, source_link, run_jobs):
    report = completeness.request(source_link, today(), today())
    run_jobs()
    db.session.expire_all()
    report = db.session.get(CompletenessReport, report.id)
    assert report.status == "done", report.error
    return report


def by_kind(report):
    found = {}
    for line in completeness.open_findings(report):
        found.setdefault(line["kind"], []).append(line)
    return found


def typed_in(document: dict, quantity_factor: int = 1) -> dict:
    """An invoice draft's body as a person types it into e-conomic, from a draft or booked invoice."""
    body = {
        key: document[key]
        for key in ("date", "currency", "paymentTerms", "customer", "recipient", "references", "layout")
    }
    body["lines"] = [
        {
            "lineNumber": n,
            "description": line["description"],
            "product": {"productNumber": line["product"]["productNumber"]},
            "quantity": line["quantity"] * (quantity_factor if n == 1 else 1),
            "unitNetPrice": line["unitNetPrice"],
        }
        for n, line in enumerate(document["lines"], start=1)
    ]
    return body


def test_a_lost_order_a_duplicate_and_a_totals_difference_are_reported_and_transfer_now_closes_the_gap(
    db, account, run_jobs, shop
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    booked, lost, drafted = shop_order(shop), shop_order(shop), shop_order(shop, status="on-hold")
    feed(source_link, booked)
    feed(source_link, drafted)  # on-hold: a draft
    run_jobs()  # the lost order's webhook never came, and no poll ran

    economic = remote(setup)
    (original,) = economic._all("/invoices/booked", f"references.other$eq:WC-12-{booked['number']}")
    economic._send("POST", "/invoices/drafts", typed_in(original))  # a second one, typed in by hand
    (draft,) = economic._all("/invoices/drafts", f"references.other$eq:WC-12-{drafted['number']}")
    number = draft["draftInvoiceNumber"]
    # changed by hand in e-conomic: 6 bags where the shop sold 2
    economic._send("PUT", f"/invoices/drafts/{number}", typed_in(draft, quantity_factor=3))

    report = report_of(db, source_link, run_jobs)
    found = by_kind(report)
    assert set(found) == {"missing", "duplicate", "totals_differ"}, found
    (missing,) = found["missing"]
    assert (missing["order_number"], missing["fix"]) == (str(lost["number"]), "transfer")
    assert Decimal(missing["shop"]) == Decimal(lost["total"])
    (duplicate,) = found["duplicate"]
    assert duplicate["order_number"] == str(booked["number"])
    assert sorted(d["booked"] for d in duplicate["documents"]) == [False, True]
    (differs,) = found["totals_differ"]
    assert differs["order_number"] == str(drafted["number"])
    assert Decimal(differs["ledger"]) == Decimal(drafted["total"]) * 3  # its one line, 2 bags → 6
    assert report.result["sales"] == 3 and report.calls.get("e-conomic") and report.calls.get("WooCommerce")

    # "Overfør nu": through the pipeline's front door, then the gap is gone
    index = report.findings.index(missing)
    completeness_fixes.apply(report, index)
    run_jobs()
    again = by_kind(report_of(db, source_link, run_jobs))
    assert "missing" not in again and set(again) == {"duplicate", "totals_differ"}
    assert len(economic._all("/invoices/booked", f"references.other$eq:WC-12-{lost['number']}")) == 1
    with pytest.raises(completeness_fixes.FixRefused):
        completeness_fixes.apply(report, index)  # fixed already


def test_a_document_matching_no_sale_and_a_period_with_everything_in_place(app, db, account, run_jobs, shop):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    placed = shop_order(shop)
    feed(source_link, placed)
    run_jobs()
    report = report_of(db, source_link, run_jobs)
    assert completeness.open_findings(report) == []
    with app.test_request_context(headers={"Accept-Language": "da"}):
        assert completeness.summary(report)["text"].startswith("Alt stemmer for ")

    stray = dict(placed, number="99999", id=99999)  # an order this shop never had
    feed(source_link, stray)
    run_jobs()
    report = report_of(db, source_link, run_jobs)
    found = by_kind(report)
    assert [line["reference"] for line in found["unmatched"]] == ["WC-12-99999"]
    with app.test_request_context(headers={"Accept-Language": "da"}):
        assert completeness.summary(report)["text"].startswith("1 dokument passer ikke til nogen ordre")


@pytest.mark.parametrize("system", ["e-conomic", "dinero", "dynaccount"])
def test_each_ledger_lists_our_documents_page_by_page(db, account, run_jobs, shop, system, monkeypatch):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    orders = [shop_order(shop) for _ in range(3)]
    for placed in orders:
        feed(source_link, placed)
    run_jobs()
    monkeypatch.setattr(economic_connector, "PAGE_SIZE", 2)
    monkeypatch.setattr(dynaccount_connector, "PAGE_SIZE", 2)

    documents = completeness.read_documents(source_link, today(), today())
    assert sorted(d.reference for d in documents) == sorted(f"WC-12-{o['number']}" for o in orders)
    assert {d.gross for d in documents} == {Decimal(orders[0]["total"])}
    assert {d.kind for d in documents} == {"invoice"}
    report = report_of(db, source_link, run_jobs)
    assert completeness.open_findings(report) == [], report.findings


def test_a_document_made_while_its_transfer_was_skipped_is_linked_once_read_again(
    db, account, run_jobs, shop
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    first, unpaid = shop_order(shop), shop_order(shop, status="pending")
    feed(source_link, first)
    feed(source_link, unpaid)  # not a transferring state: skipped
    run_jobs()
    economic = remote(setup)
    (original,) = economic._all("/invoices/booked", f"references.other$eq:WC-12-{first['number']}")
    typed = typed_in(original)
    typed["references"] = {"other": f"WC-12-{unpaid['number']}"}  # the bookkeeper invoiced it by hand
    economic._send("POST", "/invoices/drafts", typed)

    report = report_of(db, source_link, run_jobs)
    (line,) = completeness.open_findings(report)
    assert (line["kind"], line["fix"], line["status"]) == ("unlinked", "link", "skipped")
    assert "not set to transfer" in line["reason"]["msgid"]
    said = completeness_fixes.apply(report, report.findings.index(line))
    assert "Linked to document" in said.english()
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == str(unpaid["number"])))
    assert transfer.status == "done" and transfer.draft_id and transfer.logs[-1].step == "done"
    assert completeness.open_findings(report_of(db, source_link, run_jobs)) == []


def test_a_ledger_that_does_not_answer_fails_the_report_with_what_it_said(db, account, run_jobs, shop, app):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    feed(source_link, shop_order(shop))
    run_jobs()
    app.config["CONNECTOR_RETRIES"], retries = 0, app.config["CONNECTOR_RETRIES"]
    faults(app, "e-conomic", rate_500=1.0)
    try:
        report = completeness.request(source_link, today(), today())
        run_jobs()
    finally:
        faults(app, "e-conomic")
        app.config["CONNECTOR_RETRIES"] = retries
    db.session.expire_all()
    report = db.session.get(CompletenessReport, report.id)
    assert report.status == "failed" and report.result is None
    assert report.error["msgid"] == "The report could not be made: %(error)s"


def test_a_refund_without_its_credit_note_is_fetched_by_transfer_now(db, account, run_jobs, shop):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat())
    placed = shop_order(shop)
    feed(source_link, placed)
    run_jobs()
    refund = shop.post(f"/orders/{placed['id']}/refunds", json={"amount": "50.00", "api_refund": False})
    assert refund.status_code == 201, refund.text  # its webhook never reached Bogbro

    report = report_of(db, source_link, run_jobs)
    (line,) = completeness.open_findings(report)
    assert (line["kind"], line["fix"], Decimal(line["refund"])) == (
        "refund_missing",
        "refunds",
        Decimal("50.00"),
    )
    completeness_fixes.apply(report, report.findings.index(line))
    run_jobs()
    assert completeness.open_findings(report_of(db, source_link, run_jobs)) == []
    credit_notes = remote(setup)._all(
        "/invoices/booked", f"references.other$eq:WC-12-{placed['number']}-R{refund.json()['id']}"
    )
    assert len(credit_notes) == 1


def test_a_shopify_shop_is_read_through_its_graphql_api_refunds_included(
    app, owner_client, db, account, run_jobs
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    sandbox.seed(sandbox.DEMO_SHOP)
    db.session.commit()
    source_link = link(owner_client, db, install(owner_client, db), setup, name="Shopify-butikken")
    owner_client.post(f"/shops/source_links/{source_link.id}/activate")
    seeded = {line["order_id"] for line in by_kind(report_of(db, source_link, run_jobs)).get("missing", [])}

    delivered = paid_order()
    run_jobs()
    lost = paid_order(fire=False)  # its webhook never came, and no poll ran
    line = delivered["line_items"][0]
    in_the_shop(
        sandbox._create_refund,
        delivered["id"],
        {
            "refund_line_items": [{"line_item_id": line["id"], "quantity": 1, "restock_type": "no_restock"}],
            "transactions": [{"kind": "refund", "amount": delivered["total_price"]}],
        },
    )
    for _ in range(3):
        run_jobs()

    report = report_of(db, source_link, run_jobs)
    found = by_kind(report)
    assert {line["order_id"] for line in found.pop("missing")} - seeded == {str(lost["id"])}
    assert found == {}, found  # the delivered order and its refund's credit note are both in e-conomic
    assert report.calls.get("Shopify")
