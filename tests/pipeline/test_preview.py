"""The dry-run preview: a real order read from the WooCommerce sandbox becomes the exact invoice a
transfer would post — lines, zone, rounding line, totals — and nothing is written anywhere: no Transfer, no
SourceEvent, not one request to the accounting system."""

import httpx
import pytest
from flask import request_started
from sqlalchemy import func, select

from portal.models import SandboxRecord, SourceEvent, Transfer
from portal.pipeline.settings import template_names
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import login
from tests.engine.factories import wc_order
from tests.engine.test_invoice import rounding_order
from tests.pipeline.conftest import feed, make_setup, make_source_link, order


def shop_order(app, payload: dict, number: str) -> dict:
    """Create the order in the WooCommerce sandbox, as the shop would have it."""
    body = {
        k: payload[k] for k in ("line_items", "shipping_lines", "billing", "status", "total", "total_tax")
    }
    body.update(number=number, meta_data=payload.get("meta_data", []))
    for item in body["line_items"]:
        item.pop("id", None)
        item.pop("price", None)
        item["sku"] = item["sku"] or "DIV"
    for item in body["shipping_lines"]:
        item.pop("id", None)
    with httpx.Client(
        transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN, auth=("ck_demo", "cs_demo")
    ) as client:
        response = client.post("/sandbox/woocommerce/wp-json/wc/v3/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def sandbox_requests(app):
    """Every request that reaches a sandbox while the test runs: (method, path)."""
    seen = []

    def record(sender, **extra):
        from flask import request

        if request.path.startswith("/sandbox/"):
            seen.append((request.method, request.path))

    request_started.connect(record, app)
    yield seen
    request_started.disconnect(record, app)


@pytest.fixture
def source_link(db, account):
    setup = make_setup(account, "e-conomic", auto_book=True)
    return make_source_link(db, account, setup)


def economic_records(db) -> int:
    return db.session.scalar(select(func.count()).where(SandboxRecord.system == "e-conomic"))


def test_the_preview_of_a_sandbox_order_shows_the_exact_invoice_and_writes_nothing(
    app, owner_client, db, source_link, sandbox_requests
):
    created = shop_order(app, rounding_order(), "7001")
    records = economic_records(db)
    sandbox_requests.clear()

    response = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order=7001")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ordre #7001" in page and "en bogført faktura" in page and "WC-12-7001" in page
    # the customer and how it is matched
    assert "Anna Jensen" in page and "Slås op på e-mailadressen anna@example.dk" in page
    # the zone and its reason
    assert "Danmark" in page and "25 %" in page and "Dansk moms" in page and "Indenlandsk salg (DK)." in page
    assert "Domestic sale" not in page and "Private customer" not in page  # the engine's reasons, in Danish
    # layout, payment terms and product groups by the names chosen in the wizard, never their numbers
    names = template_names(source_link.setup)
    layout, terms = source_link.setup.template("invoice").values["layout"], names["payment_terms"]
    assert f"<dd>{names['layout'][layout]}</dd>" in page
    assert any(f"<dd>{name}</dd>" in page for name in terms.values())
    # every line: kind, product, quantity, unit price ex. VAT, VAT rate, where it is booked
    rows = page[page.index('<table class="plan-lines">') : page.index("</table>", page.index("plan-lines"))]
    assert rows.count('<tr class="line-goods">') == 4 and rows.count('<tr class="line-freight">') == 1
    groups = names["product_group"]
    assert "<code>V0</code>" in rows and "7,99\xa0kr." in rows and groups["1"] in rows
    assert "<code>FRAGT</code>" in rows and "31,20\xa0kr." in rows and groups["2"] in rows
    assert "varegruppe" not in rows
    rounding = rows[rows.index('<tr class="line-rounding">') :]
    assert "Øreafrunding" in rounding and "<code>AFRUND</code>" in rounding and "0,01\xa0kr." in rounding
    assert "0 %" in rounding and groups["4"] in rounding  # the VAT-free group the setup chose
    assert "En øreafrundingslinje på 0,01\xa0kr. med 0 % moms" in page
    # the totals against the shop's, and that it can be booked
    totals = page[page.index('<table class="totals">') :]
    assert totals.count("168,97\xa0kr.") == 2 and "135,17\xa0kr." in totals and "135,18\xa0kr." in totals
    assert "Kan bogføres</dt>" in page and '<span class="tag ok">Ja</span>' in page

    # nothing written: no transfer, no event, nothing in e-conomic — not even a read there
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 0
    assert db.session.scalar(select(func.count()).select_from(SourceEvent)) == 0
    assert economic_records(db) == records
    assert not [r for r in sandbox_requests if not r[1].startswith("/sandbox/woocommerce/")]
    assert {method for method, _ in sandbox_requests} == {"GET"}
    assert created["id"] != 7001  # found by its number, not its id


def test_an_eu_business_is_reverse_charge(app, owner_client, source_link):
    payload = wc_order(
        [("Krus", "KRUS", 2, "160.00", "0")],
        country="SE",
        company="Svensk AB",
        meta=[("vat_number", "SE556703748501")],
    )
    created = shop_order(app, payload, "7002")
    page = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order={created['id']}")
    page = page.get_data(as_text=True)  # by the shop's id this time
    assert "Ordre #7002" in page and "EU" in page and "Omvendt betalingspligt" in page
    assert "Slås op på momsnummeret SE556703748501" in page
    assert "80,00\xa0kr." in page and "0 %" in page


def test_problems_are_clear_messages(app, owner_client, db, source_link):
    page = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order=99999").get_data(
        as_text=True
    )
    assert "Butikken har ingen ordre med nummeret eller id&#39;et 99999." in page

    source_link.setup.template("no_vat").values = {}  # the optional template left empty
    db.session.commit()
    shop_order(app, rounding_order(), "7003")
    page = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order=7003").get_data(
        as_text=True
    )
    assert "Udfyld bogføringsopsætningens skabeloner under Opsætning" in page  # as the transfer says it
    # the template named as the wizard shows it, in Danish
    assert "Skabelonen “Momsfri linjer (gavekort, afrunding)” er tom" in page

    db.session.delete(source_link.setup.template("no_vat"))  # a setup from before the template existed
    db.session.commit()
    page = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order=7003").get_data(
        as_text=True
    )
    assert "Skabelonen “Momsfri linjer (gavekort, afrunding)” er tom" in page

    page = owner_client.get(f"/transfers/preview?source_link={source_link.id}&order=").get_data(as_text=True)
    assert "Udfyld dette felt." in page


def test_a_transfer_is_previewed_from_its_stored_payload(owner_client, db, source_link, run_jobs):
    feed(source_link, order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    events = db.session.scalar(select(func.count()).select_from(SourceEvent))
    page = owner_client.get(f"/transfers/{transfer.id}/preview").get_data(as_text=True)
    assert "Forhåndsvisning af ordre #5001" in page and "WC-12-5001" in page
    assert "<code>KRUS-01</code>" in page and "<code>TE-02</code>" in page and "549,00\xa0kr." in page
    assert db.session.scalar(select(func.count()).select_from(SourceEvent)) == events


def test_another_accounts_source_link_is_not_found(client, db, account, other_account, source_link, run_jobs):
    feed(source_link, order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    login(client, "owner@anden.dk")
    assert client.get(f"/transfers/preview?source_link={source_link.id}&order=5001").status_code == 404
    assert client.get(f"/transfers/{transfer.id}/preview").status_code == 404
    page = client.get("/transfers/preview").get_data(as_text=True)
    assert "Testbutikken" not in page
