"""The e-conomic connector against the e-conomic sandbox, over real HTTP (in-process WSGI or loopback)."""

import time
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.economic import (
    CONFIG_PREFIX,
    CONNECTOR,
    SYSTEM,
    finish_connect,
    product_path,
    sandbox_settings,
    start_connect,
)
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    ForeignEntries,
    NotFound,
    UnsupportedOperation,
    ValidationError,
)
from portal.engine.ledger_documents import (
    CustomerData,
    DraftInvoice,
    InvoiceLine,
    PaymentData,
    ProductData,
    Voucher,
    VoucherLine,
)
from portal.engine.vat import EU_MEMBERS
from portal.models import Connection
from portal.sandbox.economic import DEMO_AGREEMENT
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from portal.setups.connections import connector_for

TODAY = date.today()


def make_connector(app, redis, token="demo", sleeps=None, **settings):  # noqa: S107
    context = ConnectorContext(
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/e-conomic",
        credentials=StaticCredentials({"agreement_grant_token": token}),
        external_id=str(DEMO_AGREEMENT),
        transport=SandboxTransport(app),
        redis=redis,
        settings={**sandbox_settings(IN_PROCESS_ORIGIN), **settings},
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        backoff=0.01,
    )
    connector = CONNECTOR(context)
    # The shared bucket refills on Redis' clock, so its waits are real; `sleeps` records the retries'.
    connector.rest.limiter.sleep = time.sleep
    return connector


@pytest.fixture
def eco(app, db, redis):
    connector = make_connector(app, redis)
    yield connector
    connector.close()


def faults(app, system="e-conomic", **settings):
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as client:
        if settings:
            response = client.put(f"/sandbox/{system}/_faults", json=settings)
        else:
            response = client.delete(f"/sandbox/{system}/_faults")
        assert response.status_code == 200, response.text


def customer_data(**overrides):
    values = {
        "name": "Jens Hansen",
        "country": "DK",
        "zone": "domestic",
        "email": "jens@example.dk",
        "address": "Nørregade 7",
        "postcode": "1165",
        "city": "København K",
        "payment_terms": "1",
    }
    return CustomerData(**{**values, **overrides})


def draft(customer, reference, lines, zone="domestic", **overrides):
    values = {"layout": "19", "payment_terms": "1", "heading": "Ordre 1001", "zone": zone}
    return DraftInvoice(
        reference=reference, customer=customer, date=TODAY, lines=lines, **{**values, **overrides}
    )


def krus(quantity="3", price="79.96", **kwargs):
    return InvoiceLine(
        "Keramikkrus, blå", Decimal(quantity), Decimal(price), product_number="KRUS-01", **kwargs
    )


# --- the system and connecting ------------------------------------------------------------------------------


def test_system_describes_e_conomic():
    assert SYSTEM.key == "e-conomic" and SYSTEM.connect == "grant_token"
    caps = SYSTEM.capabilities
    assert (caps.vat_model, caps.credit_note, caps.payment_endpoint, caps.oss) == (
        "product_group",
        "negative_draft",
        False,
        True,  # OSS: a product group per country (the "oss" template), products OSS-<country>
    )
    templates = {(t.kind, t.zone): [f.choices for f in t.fields] for t in SYSTEM.templates}
    assert templates == {
        ("invoice", ""): ["layouts", "payment_terms"],
        ("goods", ""): ["product_groups"],
        ("freight", ""): ["product_groups"],
        ("no_vat", ""): ["product_groups"],  # gift cards and the rounding line: optional
        ("oss", ""): ["product_groups"] * 26,  # one per EU country but Denmark: optional
        ("payments", ""): ["journals", "accounts"],
    }
    assert not any(f.required for t in SYSTEM.templates if t.kind in ("no_vat", "oss") for f in t.fields)
    oss = next(t for t in SYSTEM.templates if t.kind == "oss")
    assert {f.name for f in oss.fields} == EU_MEMBERS - {"DK"} and oss.compact
    assert dict((f.name, f.label) for f in oss.fields)["SE"] == "Sweden"
    assert CONFIG_PREFIX == "ECONOMIC_"
    settings = sandbox_settings("http://x")
    assert settings["api_url"] == "http://x/sandbox/e-conomic"
    assert settings["apis_url"] == "http://x/sandbox/e-conomic-apis"
    assert settings["connect_url"].startswith("/sandbox/e-conomic/")


def test_connect_flow_grants_a_token_for_the_chosen_agreement(app, client, redis):
    settings = sandbox_settings(IN_PROCESS_ORIGIN)
    callback = "http://localhost/setup/e-conomic/callback"
    url = start_connect(settings, callback, state="abc")
    query = parse_qs(urlsplit(url).query)
    assert query == {"appPublicToken": ["demo-public"], "redirectUrl": [callback], "locale": ["da-DK"]}

    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SANDKASSE" in html and "Nordlys Webshop ApS" in html  # Danish by default
    answer = client.post(
        urlsplit(url).path,
        data={**{k: v[0] for k, v in query.items()}, "agreement": "new", "action": "accept"},
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(callback + "?token=")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    credentials = finish_connect(settings, params, callback, transport=SandboxTransport(app))
    assert credentials == {"agreement_grant_token": params["token"]}
    connector = make_connector(app, redis, token=params["token"])
    organisation = connector.verify()
    assert organisation.external_id != str(DEMO_AGREEMENT) and organisation.usable
    assert connector.list_organisations() == [organisation]
    # a new agreement has the standard master data but no customers
    assert [c.value for c in connector.list_choices("layouts")] == ["19", "21", "22"]
    assert connector.find_customer("customer_number", "1") is None


def test_cancel_and_bad_tokens_are_refused_with_a_clear_message(app, client, redis):
    settings = sandbox_settings(IN_PROCESS_ORIGIN)
    callback = "http://localhost/cb"
    url = start_connect(settings, callback, state="s")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = client.post(urlsplit(url).path, data={**query, "action": "cancel"})
    assert answer.status_code == 302 and answer.headers["Location"] == callback
    with pytest.raises(ConfigurationError, match="did not grant access"):
        finish_connect(settings, {}, callback, transport=SandboxTransport(app))
    with pytest.raises(AuthenticationError, match="X-AgreementGrantToken is not valid") as caught:
        finish_connect(settings, {"token": "made-up"}, callback, transport=SandboxTransport(app))
    assert caught.value.status == 401
    assert client.get("/sandbox/e-conomic/_connect/requestaccess.aspx?appPublicToken=nope").status_code == 400
    elsewhere = start_connect(
        settings, "//evil.example/cb", state="s"
    )  # a known app, but no address of its own
    assert client.get(elsewhere).status_code == 400


def test_revoked_grant_and_wrong_app_secret_raise_authentication_error(app, client, db, redis):
    url = start_connect(sandbox_settings(IN_PROCESS_ORIGIN), "http://localhost/cb", state="s")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    location = client.post(
        urlsplit(url).path, data={**query, "agreement": "demo", "action": "accept"}
    ).headers["Location"]
    token = parse_qs(urlsplit(location).query)["token"][0]
    connector = make_connector(app, redis, token=token)
    assert connector.verify().external_id == str(DEMO_AGREEMENT)

    assert client.delete(f"/sandbox/e-conomic/_grants/{token}").status_code == 204
    with pytest.raises(AuthenticationError, match="revoked") as caught:
        connector.verify()
    assert caught.value.status == 401 and caught.value.details["httpStatusCode"] == 401

    wrong_app = make_connector(app, redis, app_secret_token="not-our-app")
    with pytest.raises(AuthenticationError, match="X-AppSecretToken is not valid"):
        wrong_app.verify()


def test_connector_for_a_sandbox_connection(app, db, redis, account):
    connection = Connection(
        account_id=account.id,
        system="e-conomic",
        label="e-conomic (sandbox)",
        credentials={"agreement_grant_token": "demo"},
        sandbox=True,
    )
    db.session.add(connection)
    db.session.commit()
    connector = connector_for(connection, str(DEMO_AGREEMENT))
    assert connector.verify().name == "Nordlys Webshop ApS"


# --- master data --------------------------------------------------------------------------------------------


def test_master_data_choices(eco):
    first = eco.list_choices("layouts")[0]
    assert (first.value, first.label) == ("19", "Standard faktura")
    terms = {c.label: c.details for c in eco.list_choices("payment_terms")}
    assert terms["Netto 8 dage"] == {"days": 8, "type": "net"}
    assert terms["Løbende måned + 30 dage"]["type"] == "invoiceMonth" and "Kontant" in terms
    groups = {c.label: c.details for c in eco.list_choices("product_groups")}
    assert groups["Varer"]["sales_accounts"] == {
        "domestic": "1010 Salg af varer, indland",
        "eu": "1020 Salg af varer, EU",
        "world": "1030 Salg af varer, udland",
    }
    assert groups["Fragt"]["sales_accounts"]["domestic"] == "1100 Fragt, indland"
    # each zone's VAT code and rate as its sales account carries it (none on a reverse-charge account)
    assert groups["Varer"]["vat_codes"] == {"domestic": "U25"}
    assert groups["Varer"]["vat_types"] == {"domestic": "Salgsmoms"}  # output VAT (the wizard's checks)
    assert Decimal(groups["Varer"]["vat_rates"]["domestic"]) == 25
    finland = groups["OSS Finland"]
    assert finland["sales_accounts"]["eu"] == "1230 Salg OSS Finland"
    assert finland["vat_codes"]["eu"] == "FI255" and Decimal(finland["vat_rates"]["eu"]) == Decimal("25.5")
    journals = {c.value: c.label for c in eco.list_choices("journals")}
    assert journals["2"] == "Indbetalinger fra webshop" and "3" in journals
    accounts = {c.value: c for c in eco.list_choices("accounts")}
    assert accounts["1010"].details == {"type": "profitAndLoss", "vat_code": "U25"}
    assert accounts["5820"].label == "5820 Bank" and "1000" not in accounts  # headings are not postable
    zones = {c.value: (c.label, c.details["zone"]) for c in eco.list_choices("vat_zones")}
    assert zones == {
        "1": ("Domestic", "domestic"),
        "2": ("EU", "eu"),
        "3": ("Abroad", "world"),
        "4": ("Domestic exempt VAT", None),
    }
    codes = {c.value: c.details for c in eco.list_choices("vat_codes")}
    assert codes["U25"]["rate"] in ("25.0", "25.00") and codes["U25"]["type"] == "Salgsmoms"
    assert codes["I25"]["type"] == "Købsmoms"
    with pytest.raises(UnsupportedOperation):
        eco.list_choices("departments")


# --- customers and products ---------------------------------------------------------------------------------


def test_customers_found_created_and_updated_by_each_match_field(eco):
    created = eco.create_customer(customer_data(email="Jens@Example.dk"))
    assert created.name == "Jens Hansen" and created.raw["country"] == "Danmark"
    assert eco.find_customer("email", "jens@example.dk").id == created.id  # e-conomic filters ignore case
    assert eco.find_customer("customer_number", created.id).id == created.id
    assert eco.find_customer("customer_number", "999999") is None
    assert eco.find_customer("email", "nobody@example.dk") is None

    company = eco.create_customer(
        customer_data(
            name="Tømrer Olsen ApS", email="bogholderi@olsen.dk", is_company=True, vat_number="DK29400008"
        )
    )
    assert company.raw["corporateIdentificationNumber"] == "29400008"
    assert eco.find_customer("vat_number", "29400008").id == company.id
    german = eco.create_customer(
        customer_data(
            name="Müller GmbH", country="DE", zone="eu", currency="EUR", vat_number="DE136695976", email=None
        )
    )
    assert german.raw["vatZone"]["vatZoneNumber"] == 2 and german.raw["country"] == "Tyskland"
    assert eco.find_customer("vat_number", "DE136695976").id == german.id
    public = eco.create_customer(customer_data(name="Aarhus Kommune", ean="5798000000001", number="9001"))
    assert public.id == "9001"
    assert eco.find_customer("ean", "5798000000001").id == "9001"
    with pytest.raises(UnsupportedOperation):
        eco.find_customer("phone", "12345678")

    updated = eco.update_customer(
        created, customer_data(name="Jens Hansen", city="Aarhus C", postcode="8000")
    )
    assert updated.id == created.id and updated.raw["city"] == "Aarhus C"
    assert eco.find_customer("customer_number", created.id).raw["zip"] == "8000"
    # a value with filter characters is escaped, not parsed
    assert eco.find_customer("email", "a,b(c)$d*@example.dk") is None


@pytest.mark.parametrize("sku", ["TS_01.blå/XL", "A B+C#1", "50%:rabat&mere?", "plain-SKU"])
def test_products_with_awkward_numbers(eco, sku):
    assert eco.find_product(sku) is None
    created = eco.create_product(ProductData(sku, "Test", Decimal("99.95"), product_group="1"))
    assert created.number == sku
    found = eco.find_product(sku)
    assert found.number == sku and found.raw["salesPrice"] == Decimal("99.95")
    updated = eco.update_product(found, ProductData(sku, "Ny tekst", Decimal("100.00"), product_group="3"))
    assert updated.name == "Ny tekst" and updated.raw["productGroup"]["productGroupNumber"] == 3
    assert eco.find_product(sku).raw["salesPrice"] == Decimal("100.00")


def test_product_numbers_are_encoded_for_self_links():
    assert product_path("TS_01.blå/XL") == "/products/TS_8_01_11_bl%C3%A5_6_XL"
    assert product_path("My Awesome Product_Discount5%") == "/products/My_9_Awesome_9_Product_8_Discount5_3_"


def test_product_errors_carry_e_conomic_messages(eco):
    with pytest.raises(ConfigurationError, match="product group"):
        eco.create_product(ProductData("NOGROUP", "x", Decimal("1.00")))
    with pytest.raises(ValidationError, match="productNumber cannot be longer than 25") as caught:
        eco.create_product(ProductData("X" * 26, "x", Decimal("1.00"), product_group="1"))
    assert caught.value.status == 400


# --- invoices -----------------------------------------------------------------------------------------------


def test_invoice_lifecycle_credit_note_payment_voucher_and_stock(eco):
    customer = eco.find_customer("customer_number", "1")
    assert eco.get_stock("KRUS-01") == Decimal("24")
    assert eco.find_invoice("WC-1001") is None

    created = eco.create_draft_invoice(draft(customer, "WC-1001", [krus()]))
    assert not created.booked and created.reference == "WC-1001"
    assert (created.totals.net, created.totals.vat, created.totals.gross) == (
        Decimal("239.88"),
        Decimal("59.97"),
        Decimal("299.85"),
    )
    assert eco.create_draft_invoice(draft(customer, "WC-1001", [krus()])).id == created.id  # never twice
    found = eco.find_invoice("WC-1001")
    assert found.id == created.id and not found.booked

    booked = eco.book_invoice(found)
    assert booked.booked and booked.number and booked.totals == created.totals
    assert eco.find_invoice("WC-1001").number == booked.number
    assert eco.book_invoice(found).number == booked.number  # booking again finds the booked invoice
    assert eco.get_stock("KRUS-01") == Decimal("21")  # booking moved stock

    credit = eco.create_credit_note(draft(customer, "CREDIT:WC-1001", [krus("1")], credit_for=booked))
    assert credit.is_credit_note and credit.totals.gross == Decimal("-99.95")
    assert credit.raw["notes"]["textLine1"] == f"Kreditnota for faktura {booked.number}"
    credit_booked = eco.book_invoice(credit)
    assert credit_booked.booked and credit_booked.is_credit_note
    assert eco.get_stock("KRUS-01") == Decimal("22")

    payment = PaymentData(booked, Decimal("299.85"), TODAY, "PAY-WC-1001", account="5820", journal="2")
    payment_id = eco.register_payment(payment)
    assert payment_id.startswith("2:")
    assert eco.find_invoice("WC-1001").raw["remainder"] == Decimal("0")
    assert eco.register_payment(payment) == payment_id  # found among booked entries: not twice
    assert eco.find_invoice("WC-1001").raw["remainder"] == Decimal("0")

    payout = Voucher(
        "PAYOUT-po_123",
        TODAY,
        "Udbetaling Stripe",
        [
            VoucherLine("5820", Decimal("9850.00"), "Udbetaling"),
            VoucherLine("7220", Decimal("150.00"), "Gebyrer"),
            VoucherLine("5830", Decimal("-10000.00"), "Clearing"),
        ],
        journal="3",
    )
    voucher_id = eco.post_voucher(payout)
    assert voucher_id.startswith("3:")
    assert eco.post_voucher(payout) == voucher_id  # still in the journal: found, not posted twice
    eco.book_journal(3)
    assert eco.post_voucher(payout) == voucher_id  # booked: found in the accounting year

    with pytest.raises(UnsupportedOperation):
        eco.send_invoice_email(booked, "jens@example.dk", "Faktura", "Tak for din ordre")
    assert eco.get_stock("GAVEINDP") is None  # not an inventory product group
    with pytest.raises(NotFound):
        eco.get_stock("NO-SUCH-SKU")


def stock(eco, number):
    """inStock, orderedByCustomers, available of an inventory product."""
    inventory = eco.find_product(number).raw["inventory"]
    return tuple(inventory[k] for k in ("inStock", "orderedByCustomers", "available"))


def test_an_order_reserves_stock_and_is_upgraded_to_the_invoice(eco):
    customer = eco.find_customer("customer_number", "1")
    assert eco.find_order("WC-2001") is None
    assert stock(eco, "KRUS-01") == (Decimal("24"), Decimal("0"), Decimal("24"))

    order = eco.create_order(draft(customer, "WC-2001", [krus()]))
    assert (order.state, order.reference, order.open) == ("draft", "WC-2001", True)
    assert order.totals.gross == Decimal("299.85")
    assert order.raw["templates"]["upgradeInstructions"].endswith(
        f"/orders/drafts/{order.id}/templates/upgrade-instructions/draftInvoice"
    )
    assert eco.create_order(draft(customer, "WC-2001", [krus()])).id == order.id  # never twice
    assert eco.find_order("WC-2001").id == order.id
    assert eco.find_invoice("WC-2001") is None  # an order is not an invoice
    assert stock(eco, "KRUS-01") == (Decimal("24"), Decimal("3"), Decimal("21"))  # reserved

    invoice_day = date(TODAY.year, 1, 2)
    wanted = draft(customer, "WC-2001", [])
    wanted.date = invoice_day
    invoice = eco.invoice_order(order, wanted)
    assert (invoice.reference, invoice.booked) == ("WC-2001", False)
    assert invoice.totals == order.totals
    assert invoice.raw["date"] == invoice_day.isoformat()
    assert [line["product"]["productNumber"] for line in invoice.raw["lines"]] == ["KRUS-01"]
    assert eco.find_order("WC-2001") is None  # the order is gone, its reservation with it
    assert stock(eco, "KRUS-01") == (Decimal("24"), Decimal("0"), Decimal("24"))
    booked = eco.book_invoice(eco.find_invoice("WC-2001"))
    assert booked.booked and stock(eco, "KRUS-01") == (Decimal("21"), Decimal("0"), Decimal("21"))
    eco.delete_order(order)  # already gone: nothing to do, no error


def test_a_sent_order_is_archived_when_upgraded(eco):
    customer = eco.find_customer("customer_number", "2")
    order = eco.create_order(draft(customer, "WC-2002", [krus("1")]))
    sent = eco.rest.post(
        "/orders/sent", json={"orderNumber": int(order.id)}, headers={"Content-Type": "application/json"}
    )
    assert sent.status_code == 201
    order = eco.find_order("WC-2002")
    assert (order.state, order.open) == ("sent", True)

    invoice = eco.invoice_order(order, draft(customer, "WC-2002", []))
    assert invoice.reference == "WC-2002"
    archived = eco.find_order("WC-2002")
    assert (archived.state, archived.open, archived.id) == ("archived", False, order.id)
    with pytest.raises(ConfigurationError, match="archived"):
        eco.invoice_order(archived, draft(customer, "WC-2002", []))
    assert stock(eco, "KRUS-01")[1] == Decimal("0")


def test_order_errors_carry_e_conomic_messages(eco):
    customer = eco.find_customer("customer_number", "1")
    with pytest.raises(ValidationError, match="unitNetPrice"):
        eco.create_order(draft(customer, "WC-2003", [krus(price="79.955")]))
    assert eco.find_order("WC-2003") is None


def test_a_500_on_the_order_post_is_ambiguous_and_looked_up(app, db, redis):
    connector = make_connector(app, redis)
    customer = connector.find_customer("customer_number", "2")
    faults(app, next=["500"])
    try:
        with pytest.raises(AmbiguousWriteError):
            connector.create_order(draft(customer, "WC-2004", [krus()]), lookup=False)
    finally:
        faults(app)
    assert connector.find_order("WC-2004") is None  # the 500 came before the work
    assert connector.create_order(draft(customer, "WC-2004", [krus()])).state == "draft"


def test_systems_without_orders_say_so():
    from portal.connectors.base import RemoteOrder
    from portal.connectors.dinero import CONNECTOR as DINERO
    from portal.engine.ledger_documents import Totals

    dinero = DINERO.__new__(DINERO)  # the defaults need no connection
    nothing = Totals(Decimal("0"), Decimal("0"), Decimal("0"))
    for call in (
        lambda: dinero.create_order(None),
        lambda: dinero.find_order("WC-1"),
        lambda: dinero.invoice_order(RemoteOrder("1", "WC-1", "draft", nothing), None),
        lambda: dinero.delete_order(RemoteOrder("1", "WC-1", "draft", nothing)),
    ):
        with pytest.raises(UnsupportedOperation, match="Dinero has no orders"):
            call()


def test_totals_round_each_line_then_vat_on_the_net_total(eco):
    customer = eco.find_customer("customer_number", "2")
    lines = [krus("1", "33.33") for _ in range(3)]
    lines.append(krus("3", "153.44", discount_percent=Decimal("10")))  # 414.288 → 414.29
    invoice = eco.create_draft_invoice(draft(customer, "WC-ROUND", lines))
    assert [line["totalNetAmount"] for line in invoice.raw["lines"]] == [
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("33.33"),
        Decimal("414.29"),
    ]
    # VAT on the net total 514.28 (128.57), not the sum of per-line VAT (3 * 8.33 + 103.57 = 128.56)
    assert (invoice.totals.net, invoice.totals.vat, invoice.totals.gross) == (
        Decimal("514.28"),
        Decimal("128.57"),
        Decimal("642.85"),
    )
    booked = eco.book_invoice(invoice)
    assert booked.totals.vat == Decimal("128.57")
    assert [line["vatAmount"] for line in booked.raw["lines"]][-1] == Decimal("103.57")


def test_eu_and_export_invoices_carry_no_danish_vat(eco):
    customer = eco.find_customer("customer_number", "3")
    freight = InvoiceLine("Fragt", Decimal("1"), Decimal("39.20"), product_number="FRAGT")
    for zone in ("eu", "world"):
        invoice = eco.create_draft_invoice(
            draft(customer, f"WC-{zone}", [krus(), freight], zone=zone, currency="EUR")
        )
        assert invoice.totals.vat == Decimal("0.00") and invoice.totals.gross == Decimal("279.08")
        assert invoice.raw["recipient"]["vatZone"]["vatZoneNumber"] == {"eu": 2, "world": 3}[zone]


def test_more_than_two_decimals_is_refused_with_e_conomic_message(eco):
    customer = eco.find_customer("customer_number", "2")
    with pytest.raises(ValidationError, match="E04740") as caught:
        eco.create_draft_invoice(draft(customer, "WC-DEC", [krus("1", "33.333")]))
    assert "unitNetPrice scale cannot be greater then two decimal places" in caught.value.message
    line_errors = caught.value.details["errors"]["lines"][0]
    assert (
        line_errors["arrayIndex"] == 0 and line_errors["unitNetPrice"]["errors"][0]["errorCode"] == "E04740"
    )
    assert eco.find_invoice("WC-DEC") is None


def test_validation_errors_carry_e_conomic_messages(eco):
    customer = eco.find_customer("customer_number", "2")
    with pytest.raises(ValidationError, match="layout does not exist") as caught:
        eco.create_draft_invoice(draft(customer, "WC-BAD", [krus()], layout="999"))
    assert (
        caught.value.status == 400
        and caught.value.details["errors"]["layout"]["errors"][0]["errorCode"] == "E06000"
    )
    with pytest.raises(ValidationError, match="product does not exist"):
        eco.create_draft_invoice(
            draft(
                customer, "WC-BAD", [InvoiceLine("?", Decimal("1"), Decimal("1.00"), product_number="NOPE")]
            )
        )
    with pytest.raises(ConfigurationError, match="layout and payment terms"):
        eco.create_draft_invoice(draft(customer, "WC-BAD", [krus()], layout=None))
    with pytest.raises(ConfigurationError, match="has no product"):
        eco.create_draft_invoice(
            draft(customer, "WC-BAD", [InvoiceLine("Tekst", Decimal("1"), Decimal("1.00"))])
        )


# --- faults -------------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried(app, db, redis):
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    faults(app, retry_after=2, next=["429"])
    try:
        assert connector.verify().external_id == str(DEMO_AGREEMENT)
    finally:
        faults(app)
    assert sleeps == [2.0]


def test_500_on_get_is_retried_and_on_post_is_ambiguous(app, db, redis):
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    customer = connector.find_customer("customer_number", "2")
    faults(app, next=["500"])
    assert connector.list_choices("layouts")
    assert len(sleeps) == 1
    faults(app, next=["ok", "ok", "500"])  # the two look-ups pass, the create fails
    try:
        with pytest.raises(AmbiguousWriteError):
            connector.create_draft_invoice(draft(customer, "WC-500", [krus()]))
    finally:
        faults(app)
    assert connector.find_invoice("WC-500") is None  # this 500 came before the work: safe to create again
    assert connector.create_draft_invoice(draft(customer, "WC-500", [krus()])).reference == "WC-500"


def test_dropped_connection_on_post_is_ambiguous_and_on_get_is_retried(app, db, redis):
    connector = make_connector(app, redis)
    customer = connector.find_customer("customer_number", "2")
    faults(app, next=["drop"])
    assert connector.find_customer("customer_number", "2").id == customer.id
    invoice = connector.create_draft_invoice(draft(customer, "WC-DROP", [krus()]))
    faults(app, next=["drop"])  # the booking hangs up before e-conomic sees it; the look-up after finds none
    try:
        with pytest.raises(AmbiguousWriteError):
            connector.book_invoice(invoice)
    finally:
        faults(app)
    assert not connector.find_invoice("WC-DROP").booked


def test_booking_a_draft_booked_meanwhile_returns_that_invoice(app, db, redis):
    """No look-up before booking: e-conomic refuses a draft that is gone, and the booked invoice carrying
    the reference is what happened (booked by an earlier attempt whose answer was lost, or by hand)."""
    connector = make_connector(app, redis)
    customer = connector.find_customer("customer_number", "2")
    invoice = connector.create_draft_invoice(draft(customer, "WC-TWICE", [krus()]))
    first = connector.book_invoice(invoice)
    again = connector.book_invoice(invoice)  # the stale draft object, as a retry would hold it
    assert again.booked and again.number == first.number
    assert len(connector._all("/invoices/booked", "references.other$eq:WC-TWICE")) == 1


def test_read_timeout_on_create_over_loopback_is_ambiguous_and_the_invoice_exists(
    app, db, redis, live_server
):
    settings = {**sandbox_settings(live_server), "timeout": 0.5}
    context = ConnectorContext(
        base_url=settings["api_url"],
        credentials=StaticCredentials({"agreement_grant_token": "demo"}),
        external_id=str(DEMO_AGREEMENT),
        redis=redis,
        settings=settings,
        sleep=lambda s: None,
    )
    connector = CONNECTOR(context)
    customer = connector.find_customer("customer_number", "2")
    with httpx.Client(base_url=live_server) as admin:
        admin.put("/sandbox/e-conomic/_faults", json={"latency_ms": 1500, "next": ["ok", "ok", "slow"]})
        try:
            with pytest.raises(AmbiguousWriteError, match="timed out"):
                connector.create_draft_invoice(draft(customer, "WC-SLOW", [krus()]))
        finally:
            admin.delete("/sandbox/e-conomic/_faults")
    # The rule after an ambiguous failure: look the document up by its reference before anything else.
    deadline = time.monotonic() + 10
    found = None
    while found is None and time.monotonic() < deadline:
        found = connector.find_invoice("WC-SLOW")
        if found is None:
            time.sleep(0.1)
    assert found is not None and not found.booked
    assert connector.create_draft_invoice(draft(customer, "WC-SLOW", [krus()])).id == found.id
    connector.close()


def test_the_shared_rate_limiter_keeps_two_connectors_under_the_limit(app, db, redis):
    rate = 20
    first = make_connector(app, redis, requests_per_second=rate)
    second = make_connector(app, redis, requests_per_second=rate)
    sent = []
    for connector in (first, second):
        connector.rest.http.event_hooks["request"].append(lambda request: sent.append(time.monotonic()))
    for _ in range(5):
        first.verify()
        second.verify()
    assert len(sent) == 10
    # one request per 1/rate seconds for the agreement, whichever connector sends it
    assert sent[-1] - sent[0] >= 9 / rate * 0.9
    assert all(sent[i + 4] - sent[i] >= 4 / rate * 0.8 for i in range(len(sent) - 4))


@pytest.mark.browser
def test_consent_page_in_a_browser(page, live_server):
    """The sandbox consent page works in a real browser under the strict CSP and redirects with a token."""
    url = start_connect(sandbox_settings(live_server), f"{live_server}/sandbox/", state="ignored")
    page.goto(url)
    assert "SANDKASSE" in page.content()
    page.get_by_label("En ny, tom aftale").check()
    page.get_by_role("button", name="Godkend").click()
    page.wait_for_url("**/sandbox/?token=*")


# --- journals: a payment books only its own voucher ---------------------------------------------------------


def bookkeeper_entry(eco, journal, text, amount="1000.00", voucher_number=None):
    """What the bookkeeper types into the kassekladde in e-conomic: an unfinished finance entry, no contra
    account (it does not balance)."""
    voucher = {
        "accountingYear": {"year": eco._accounting_year(TODAY)},
        "journal": {"journalNumber": journal},
        "entries": {
            "financeVouchers": [
                {
                    "account": {"accountNumber": 5820},
                    "amount": Decimal(amount),
                    "date": TODAY.isoformat(),
                    "text": text,
                }
            ]
        },
    }
    if voucher_number is not None:
        voucher["voucherNumber"] = voucher_number
    eco._send("POST", f"/journals/{journal}/vouchers", voucher)


def in_journal(eco, journal):
    return {e["text"]: e for e in eco._draft_entries(f"journalNumber$eq:{journal}")}


def booked_invoice(eco, reference):
    customer = eco.find_customer("customer_number", "1")
    return eco.book_invoice(eco.create_draft_invoice(draft(customer, reference, [krus()])))


def test_a_payment_books_its_own_voucher_and_never_the_bookkeepers_unfinished_entry(eco):
    bookkeeper_entry(eco, 2, "Husleje december, mangler modpost")
    journals = {c.value: c for c in eco.list_choices("journals")}
    assert journals["2"].details == {"foreign_entries": 1} and journals["3"].details == {"foreign_entries": 0}

    invoice = booked_invoice(eco, "WC-7001")
    payment = PaymentData(invoice, Decimal("299.85"), TODAY, "WC-7001-P", account="5820", journal="2")
    payment_id = eco.register_payment(payment)

    assert eco.find_invoice("WC-7001").raw["remainder"] == Decimal("0")  # ours is booked …
    assert eco._find_entry(2, "WC-7001-P", TODAY) == (payment_id.split(":")[1], True)
    assert list(in_journal(eco, 2)) == ["Husleje december, mangler modpost"]  # … theirs is untouched
    assert eco.register_payment(payment) == payment_id  # and never twice


def test_a_voucher_shared_with_someone_elses_entry_is_not_booked(eco):
    invoice = booked_invoice(eco, "WC-7002")
    customer = invoice.raw["customer"]["customerNumber"]
    ours = {
        "customer": {"customerNumber": customer},
        "customerInvoice": int(invoice.number),
        "amount": Decimal("-299.85"),
        "contraAccount": {"accountNumber": 5820},
        "currency": {"code": "DKK"},
        "date": TODAY.isoformat(),
        "text": f"WC-7002-P Betaling faktura {invoice.number}",
    }
    # Our entry reached the journal, but the booking's answer was lost; meanwhile the bookkeeper typed an
    # entry on the same voucher number.
    voucher = eco._post_entries(2, TODAY, {"customerPayments": [ours]})
    bookkeeper_entry(eco, 2, "Kassedifference", amount="12.50", voucher_number=int(voucher.split("-")[-1]))

    payment = PaymentData(invoice, Decimal("299.85"), TODAY, "WC-7002-P", account="5820", journal="2")
    with pytest.raises(ForeignEntries) as refused:
        eco.register_payment(payment)
    assert (refused.value.journal, refused.value.count) == (2, 1)
    assert set(in_journal(eco, 2)) == {ours["text"], "Kassedifference"}  # nothing was booked
    assert eco.find_invoice("WC-7002").raw["remainder"] == Decimal("299.85")


def test_the_journals_service_books_only_whole_balanced_vouchers_of_the_pinned_version(app, eco):
    bookkeeper_entry(eco, 2, "Ubalanceret")
    entry = in_journal(eco, 2)["Ubalanceret"]
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as client:
        headers = {"X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo"}
        base = "/sandbox/e-conomic-apis/journalsapi"
        unbalanced = client.post(
            f"{base}/v16.0.1/journals/2/bookdraftentries",
            json={"entryNumbers": [entry["entryNumber"]]},
            headers=headers,
        )
        assert unbalanced.status_code == 400 and unbalanced.json()["errorCode"] == "E01100"
        for body in ({}, {"entryNumbers": []}, {"entryNumbers": ["1"]}, {"entryNumbers": [999999]}):
            refused = client.post(f"{base}/v16.0.1/journals/2/bookdraftentries", json=body, headers=headers)
            assert refused.status_code == 400, body
        assert client.post(f"{base}/v5.0.0/journals/2/book", headers=headers).status_code == 404
        assert "Ubalanceret" in in_journal(eco, 2)


def test_payments_registered_together_post_one_array_read_once_and_book_once(app, eco, monkeypatch):
    invoices = [booked_invoice(eco, f"WC-71{n}") for n in range(3)]
    payments = [
        PaymentData(
            invoice, Decimal("299.85"), TODAY, f"WC-71{n}-P", account="5820", journal="2", lookup=False
        )
        for n, invoice in enumerate(invoices)
    ]
    years = eco.accounting_years or eco._fetch_years()
    eco.use_accounting_years(years)  # as the pipeline's cache gives them
    calls = []
    original = SandboxTransport.handle_request

    def counting(self, request):
        calls.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")
        if request.url.path.endswith("/bookdraftentries"):
            calls.append(request.headers.get("Idempotency-Key") is not None)
        return original(self, request)

    monkeypatch.setattr(SandboxTransport, "handle_request", counting)
    # The bookkeeper types into the second voucher number before we read the entries.
    post = eco._post_vouchers

    def posted_then_typed(journal, bodies):
        ids = post(journal, bodies)
        bookkeeper_entry(eco, 2, "Kassedifference", voucher_number=int(ids[1].split("-")[1]))
        return ids

    monkeypatch.setattr(eco, "_post_vouchers", posted_then_typed)
    results = eco.register_payments(payments)
    monkeypatch.undo()

    assert isinstance(results[1], ForeignEntries) and results[1].count == 1
    assert all(isinstance(results[n], str) for n in (0, 2))
    assert calls[0] == "POST vouchers" and calls.count("POST vouchers") == 2  # ours, then the bookkeeper's
    assert calls.count("GET draft-entries") == 1 and calls.count("POST bookdraftentries") == 1
    assert True in calls  # the booking carries an Idempotency-Key
    assert not any("accounting-years" in str(c) for c in calls)  # the year came from the given years
    for n in (0, 2):
        assert eco.find_invoice(f"WC-71{n}").raw["remainder"] == Decimal("0")
    assert eco.find_invoice("WC-711").raw["remainder"] == Decimal("299.85")  # not booked
    assert set(in_journal(eco, 2)) == {f"WC-711-P Betaling faktura {invoices[1].number}", "Kassedifference"}
    # Again, looking first (a resume): found, nothing sent twice.
    again = [PaymentData(**{**vars(p), "lookup": True}) for p in payments]
    assert eco.register_payments(again)[0] == results[0]


def test_cached_years_that_miss_a_date_are_read_again(eco):
    eco.use_accounting_years([{"year": "1999", "fromDate": "1999-01-01", "toDate": "1999-12-31"}])
    assert eco._accounting_year(TODAY) == str(TODAY.year)
    assert eco.years_fetched  # the pipeline caches the fresh ones


def test_an_empty_array_of_vouchers_is_refused(app):
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as client:
        headers = {"X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo"}
        refused = client.post("/sandbox/e-conomic/journals/2/vouchers", json=[], headers=headers)
    assert refused.status_code == 400
