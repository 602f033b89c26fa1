"""The Dynaccount connector against Bogbro's Dynaccount sandbox, over real HTTP: in-process (WSGI) for the
business operations and injected faults, over loopback for a real read timeout. Nothing of ours is mocked."""

import hashlib
import time
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from portal.connectors import ConnectorContext, StaticCredentials, evidence, get_system
from portal.connectors.dynaccount import (
    CONFIG_PREFIX,
    CONNECTOR,
    SYSTEM,
    finish_connect,
    sandbox_settings,
    start_connect,
)
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    TransientError,
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
from portal.extensions import db as _db
from portal.models import Connection, SandboxRecord
from portal.sandbox import dynaccount as sandbox
from portal.sandbox.faults import clear_faults, set_faults
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.conftest import connect_sandbox

SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)
DEMO = {
    "api_id": SETTINGS["demo_api_id"],
    "api_key": SETTINGS["demo_api_key"],
    "api_secret": SETTINGS["demo_api_secret"],
}
TODAY = date.today()


def make_connector(app, redis, credentials=None, *, sleeps=None, transport=None, **settings):
    sleeps = [] if sleeps is None else sleeps
    return CONNECTOR(
        ConnectorContext(
            base_url=settings.pop("api_url", SETTINGS["api_url"]),
            credentials=StaticCredentials(dict(credentials or DEMO)),
            transport=transport or SandboxTransport(app),
            redis=redis,
            # a roomy shared bucket: sleeps are recorded, not slept (the rate-limit test sets its own)
            settings={**SETTINGS, "rate_limit_requests": 1000, **settings},
            sleep=sleeps.append,
            backoff=0.001,
        )
    )


@pytest.fixture
def dyn(app, db, redis):
    sandbox.seed(DEMO["api_id"])  # before any fault is queued
    connector = make_connector(app, redis)
    yield connector
    connector.api.close()


def sandbox_rows(table, tenant=DEMO["api_id"]):
    _db.session.rollback()  # a fresh read of what the vendor holds
    return [
        r.document
        for r in _db.session.scalars(
            select(SandboxRecord)
            .where(SandboxRecord.system == "dynaccount", SandboxRecord.tenant == tenant)
            .where(SandboxRecord.collection == table)
            .order_by(SandboxRecord.id)
        )
    ]


def customer_data(**overrides):
    values = {
        "name": "Kunde ApS",
        "country": "DK",
        "zone": "domestic",
        "email": "ordre@kunde.dk",
        "is_company": True,
        "vat_number": "35000011",
        "address": "Vestergade 1",
        "postcode": "8000",
        "city": "Aarhus C",
        "payment_terms": "Netto 14 dage",
    }
    values.update(overrides)
    return CustomerData(**values)


VAT25 = Decimal("25")
# the demo company's kladde "Bogbro" (id 1), receivable 5600 Debitorer, output VAT 6910 Salgsmoms
SALES_VOUCHER = {"journal": "1", "receivable": "5600", "vat_account": "6910"}


def line(text, qty, price, account, rate=VAT25, **extra):
    return InvoiceLine(text, Decimal(qty), Decimal(price), account=account, vat_rate=rate, **extra)


def draft(customer, reference="WC-1001", lines=None, **overrides):
    lines = lines or [line("Kaffebønner, 500 g", "2", "89.00", "1010"), line("Fragt", "1", "39.20", "1040")]
    overrides.setdefault("sales_voucher", SALES_VOUCHER)
    return DraftInvoice(reference=reference, customer=customer, date=TODAY, lines=lines, **overrides)


def voucher_rows(enclosure_id):
    return [
        (r["type"], r["account_id_"], r["amount"])
        for r in sandbox_rows("accounting")
        if r["enclosure_id"] == int(enclosure_id)
    ]


def recorded(connector):
    """The requests a connector sends, as (HTTP method, operation/table) — what the evidence table lists."""
    sent = []
    connector.api.http.event_hooks["request"].append(
        lambda request: sent.append((request.method, "/".join(request.url.path.split("/")[6:8])))
    )
    return sent


# --- the system and connecting ---


def test_the_system_describes_dynaccount_honestly():
    assert get_system("dynaccount") is SYSTEM
    assert CONFIG_PREFIX == "DYNACCOUNT_"
    caps = SYSTEM.capabilities
    # no documented call books or mails an invoice: sales are vouchers, nothing to mail
    assert (caps.vat_model, caps.orders, caps.stock, caps.email_invoice) == ("line_code", False, True, False)
    assert (caps.oss, caps.payment_endpoint) == (False, False)
    templates = {(t.kind, t.zone): [(f.name, f.choices) for f in t.fields] for t in SYSTEM.templates}
    assert templates[("invoice", "")] == [
        ("journal", "drafts"),
        ("receivable", "accounts"),
        ("vat_account", "accounts"),
        ("debtor_group", "debtor_groups"),
    ]
    for kind in ("goods", "freight"):
        for zone in ("domestic", "eu", "world"):
            assert templates[(kind, zone)] == [("account", "accounts")]
    assert templates[("no_vat", "")] == [("account", "accounts")]
    assert templates[("payments", "")] == [("journal", "drafts"), ("account", "accounts")]
    assert not any(f.required for t in SYSTEM.templates if t.kind == "no_vat" for f in t.fields)
    # the wizard says plainly that no invoice is made
    assert any("no way to book invoices" in note and "kladde" in note for note in SYSTEM.notes)
    assert any("OSS" in note for note in SYSTEM.notes)
    assert start_connect(SETTINGS, "https://bogbro.dk/callback", "state") is None
    assert SETTINGS["api_url"] == f"{IN_PROCESS_ORIGIN}/sandbox/dynaccount"


def test_finish_connect_checks_the_form_and_the_keys(app, db, redis):
    transport = SandboxTransport(app)
    assert finish_connect(SETTINGS, dict(DEMO), "", transport=transport) == DEMO
    # spaces around pasted keys and an upper-case key are fine
    pasted = {"api_id": " 1000 ", "api_key": DEMO["api_key"].upper(), "api_secret": DEMO["api_secret"] + " "}
    assert finish_connect(SETTINGS, pasted, "", transport=transport) == DEMO
    for field, value, fragment in (
        ("api_id", "abc", "API ID is a number"),
        ("api_key", "too-short", "40 characters"),
        ("api_secret", "", "API secret"),
    ):
        with pytest.raises(ConfigurationError, match=fragment) as caught:
            finish_connect(SETTINGS, {**DEMO, field: value}, "", transport=transport)
        assert caught.value.details == {"field": field}
    with pytest.raises(ConfigurationError, match="did not accept") as caught:
        finish_connect(SETTINGS, {**DEMO, "api_secret": "wrong"}, "", transport=transport)
    assert caught.value.details == {"dynaccount": "hash: Invalid X-Hash"}
    with pytest.raises(ConfigurationError, match="did not accept") as caught:
        finish_connect(SETTINGS, {**DEMO, "api_key": "0" * 40}, "", transport=transport)
    assert caught.value.details == {"dynaccount": "auth: Invalid API_ID or API_KEY"}


def test_verify_and_the_one_organisation(dyn):
    organisation = dyn.verify()
    assert (organisation.external_id, organisation.name, organisation.usable) == (
        "1000",
        "Dynaccount 1000",
        True,
    )
    assert dyn.list_organisations() == [organisation]


def test_connector_for_a_sandbox_connection(app, db, redis, account):
    from portal.setups.connections import connector_for

    connection = Connection(
        account_id=account.id, system="dynaccount", label="Dynaccount demo", credentials=DEMO, sandbox=True
    )
    db.session.add(connection)
    db.session.commit()
    connector = connector_for(connection, "1000")
    assert connector.verify().external_id == "1000"
    assert [c.label for c in connector.list_choices("drafts")] == ["Bogbro", "Kassekladde"]


# --- master data ---


def test_master_data_choices(dyn):
    accounts = {c.value: c for c in dyn.list_choices("accounts")}
    assert accounts["1010"].label == "1010 Salg af varer, indland"
    assert accounts["1010"].details["vat_code"] == "U25"
    assert accounts["5800"].details["vat_code"] is None
    assert "1000" not in accounts  # headings and sums cannot be posted to
    groups = dyn.list_choices("debtor_groups")
    assert [g.value for g in groups] == ["EU", "Indland", "Udland"]
    assert groups[1].details["payment_terms"] == "Netto 8 dage"
    # kladder by id (what put enclosure takes as draft_id), shown by name
    assert [(c.value, c.label) for c in dyn.list_choices("drafts")] == [("1", "Bogbro"), ("2", "Kassekladde")]
    for undocumented in ("product_groups", "vat_codes", "payment_terms"):
        with pytest.raises(UnsupportedOperation):
            dyn.list_choices(undocumented)


# --- customers and products ---


def test_customers_found_by_each_match_field_and_updated(dyn):
    created = dyn.create_customer(customer_data(ean="5790000123456", number="5000"), debtor_group="Indland")
    assert created.number == "5000"
    for field, value in (
        ("email", "ordre@kunde.dk"),
        ("email", "ORDRE@Kunde.dk"),  # MySQL-style case-insensitive equality
        ("vat_number", "35000011"),
        ("ean", "5790000123456"),
        ("customer_number", "5000"),
    ):
        found = dyn.find_customer(field, value)
        assert found is not None and found.id == created.id, field
    assert dyn.find_customer("email", "nobody@kunde.dk") is None
    assert dyn.find_customer("ean", "") is None
    with pytest.raises(UnsupportedOperation):
        dyn.find_customer("phone", "12345678")

    updated = dyn.update_customer(
        created, customer_data(name="Kunde & Søn ApS", city="Aabyhøj", postcode="8230")
    )
    assert (updated.id, updated.number, updated.name) == (created.id, "5000", "Kunde & Søn ApS")
    assert updated.raw["city"] == "Aabyhøj"
    assert updated.raw["payment_name"] == "Netto 14 dage"

    # no number: Dynaccount gives the next free one; no group: the setup's, else the first group
    auto = dyn.create_customer(customer_data(name="Privat Person", email="p@example.dk", vat_number=None))
    assert auto.number == "3"
    assert auto.raw["module_group_name"] == "Indland"
    eu = dyn.create_customer(
        customer_data(name="Kaffee GmbH", country="de", zone="eu", email="x@kaffee.de"), "EU"
    )
    assert (eu.raw["ref_country_name"], eu.raw["module_group_name"], eu.raw["lang"]) == ("DE", "EU", "en")


def test_products_are_read_never_written(dyn):
    assert dyn.find_product("KAFFE-500").number == "KAFFE-500"
    assert dyn.get_stock("KAFFE-500") == Decimal("42")
    assert dyn.get_stock("findes-ikke") is None
    # the product table's writable fields appear in no public source: not guessed
    with pytest.raises(UnsupportedOperation):
        dyn.create_product(ProductData(number="X", name="X", unit_net_price=Decimal("1")))


# --- sales, refunds and payments as vouchers in a kladde (Webshop.php put_enclosure) ---


def test_sale_refund_and_payments_are_vouchers_through_documented_calls(dyn):
    customer = dyn.create_customer(customer_data(), debtor_group="Indland")
    sent = recorded(dyn)
    sale = dyn.create_draft_invoice(draft(customer, text="Ordre #1001"))
    # look up by reference, the voucher, its rows: GET and POST only, 3 calls
    assert sent == [("GET", "get/enclosure"), ("POST", "put/enclosure"), ("POST", "insert_bulk/accounting")]
    assert (sale.reference, sale.booked, sale.is_credit_note) == ("WC-1001", True, False)
    assert (sale.totals.net, sale.totals.vat, sale.totals.gross) == (
        Decimal("217.20"),
        Decimal("54.30"),
        Decimal("271.50"),
    )
    [enclosure] = [e for e in sandbox_rows("enclosure") if str(e["id"]) == sale.id]
    assert (enclosure["draft_id"], enclosure["note"], enclosure["is_booked"]) == (1, "WC-1001", "NO")
    assert enclosure["txt"] == "Ordre #1001 · Kunde ApS" and enclosure["balance_amount"] == "0.00"
    assert voucher_rows(sale.id) == [
        ("LEDGER", 5600, "271.50"),  # the receivable is charged the total
        ("LEDGER", 1010, "-178.00"),
        ("LEDGER", 1040, "-39.20"),
        ("LEDGER", 6910, "-54.30"),  # VAT posted explicitly, as Webshop.php does
    ]
    sent.clear()
    assert dyn.create_draft_invoice(draft(customer)).id == sale.id  # never twice
    # the voucher, its rows, the balance-sheet accounts (which rows are VAT): reads only
    assert sent == [("GET", "get/enclosure"), ("GET", "get/accounting"), ("GET", "get/account")]
    assert dyn.book_invoice(sale) is sale  # no booking call exists: the bookkeeper books the kladde
    found = dyn.find_invoice("WC-1001")
    assert (found.id, found.booked, found.totals, found.is_credit_note) == (sale.id, True, sale.totals, False)
    assert dyn.find_invoice("WC-9999") is None
    sent.clear()
    unchecked = dyn.create_draft_invoice(
        draft(customer, "WC-1002"), lookup=False
    )  # the pipeline's steady state
    assert sent == [("POST", "put/enclosure"), ("POST", "insert_bulk/accounting")]
    assert unchecked.totals == sale.totals

    payment = PaymentData(sale, Decimal("271.50"), TODAY, "WC-1001-P", account="5800", journal="1")
    paid = dyn.register_payment(payment)
    assert dyn.register_payment(payment) == paid  # never twice
    assert voucher_rows(paid) == [("LEDGER", 5800, "271.50"), ("LEDGER", 5600, "-271.50")]

    credit = dyn.create_credit_note(
        draft(customer, "WC-1001-R1", [line("Kaffebønner, 500 g", "1", "89.00", "1010")], credit_for=found)
    )
    assert credit.is_credit_note and credit.booked
    assert (credit.totals.net, credit.totals.vat, credit.totals.gross) == (
        Decimal("89.00"),
        Decimal("22.25"),
        Decimal("111.25"),
    )
    assert voucher_rows(credit.id) == [
        ("LEDGER", 5600, "-111.25"),
        ("LEDGER", 1010, "89.00"),
        ("LEDGER", 6910, "22.25"),
    ]
    assert dyn.find_invoice("WC-1001-R1").totals == credit.totals
    assert dyn.find_invoice("WC-1001-R1").is_credit_note
    assert evidence.allowed("dynaccount", "register_refund_payment", {})  # documented rows: on by default
    payout = PaymentData(credit, Decimal("111.25"), TODAY, "WC-1001-R1-P", account="5800", journal="1")
    paid_back = dyn.register_refund_payment(payout)
    assert voucher_rows(paid_back) == [("LEDGER", 5800, "-111.25"), ("LEDGER", 5600, "111.25")]
    # what the order leaves on the receivable: 271.50 - 271.50 - 111.25 + 111.25
    order_vouchers = {sale.id, paid, credit.id, paid_back}
    on_receivable = [
        Decimal(amount)
        for voucher in order_vouchers
        for _, account, amount in voucher_rows(voucher)
        if account == 5600
    ]
    assert len(on_receivable) == 4 and sum(on_receivable) == 0
    with pytest.raises(ValidationError, match="credit note"):
        dyn.register_refund_payment(payment)
    with pytest.raises(UnsupportedOperation):
        dyn.send_invoice_email(sale, "ordre@kunde.dk", "Faktura", "Tak")
    with pytest.raises(UnsupportedOperation):
        dyn.invoice_pdf(sale)


def test_a_sale_needs_its_template_and_payments_a_bank_account(dyn):
    customer = dyn.create_customer(customer_data(), debtor_group="Indland")
    with pytest.raises(ConfigurationError, match="Sales vouchers"):
        dyn.create_draft_invoice(draft(customer, sales_voucher={"journal": "1", "receivable": "5600"}))
    sale = dyn.create_draft_invoice(draft(customer))
    with pytest.raises(ConfigurationError, match="bank account"):
        dyn.register_payment(PaymentData(sale, Decimal("10"), TODAY, "PAY-1"))
    with pytest.raises(ValidationError, match="Account does not exist"):
        dyn.register_payment(PaymentData(sale, Decimal("10"), TODAY, "PAY-1", account="9999", journal="1"))
    assert not [e for e in sandbox_rows("enclosure") if e["note"] == "PAY-1"]  # rolled back
    with pytest.raises(ConfigurationError, match="no journal"):
        dyn.register_payment(PaymentData(sale, Decimal("10"), TODAY, "PAY-1", account="5800", journal="Nope"))


def test_vouchers_post_balanced_rows_once(dyn):
    voucher = Voucher(
        reference="payout:po_123",
        date=TODAY,
        text="Udbetaling Stripe po_123",
        lines=[
            VoucherLine("5800", Decimal("9850.00"), "Udbetaling", contra_account="5830"),
            VoucherLine("2750", Decimal("150.004"), "Gebyr"),
            VoucherLine("5830", Decimal("-150.00"), "Gebyr"),
        ],
    )
    enclosure_id = dyn.post_voucher(voucher)
    assert dyn.post_voucher(voucher) == enclosure_id
    [enclosure] = [e for e in sandbox_rows("enclosure") if str(e["id"]) == enclosure_id]
    assert enclosure["draft_id"] == 1 and enclosure["balance_amount"] == "0.00"  # the "Bogbro" kladde
    assert voucher_rows(enclosure_id) == [
        ("LEDGER", 5800, "9850.00"),
        ("LEDGER", 5830, "-9850.00"),  # the contra account as its own row: no accountoff_id_ guess
        ("LEDGER", 2750, "150.00"),
        ("LEDGER", 5830, "-150.00"),
    ]
    unbalanced = Voucher("payout:po_124", TODAY, "x", [VoucherLine("2750", Decimal("1"), "x")])
    with pytest.raises(ValidationError, match="does not balance"):
        dyn.post_voucher(unbalanced)
    into_other = Voucher("payout:po_125", TODAY, "y", voucher.lines, journal="Kassekladde")
    other_id = dyn.post_voucher(into_other)
    assert [e["draft_id"] for e in sandbox_rows("enclosure") if str(e["id"]) == other_id] == [2]


def test_vat_is_rounded_per_line_as_the_engine_assumes(dyn):
    customer = dyn.create_customer(customer_data(), debtor_group="Indland")
    lines = [
        line("Tre à 33,333 kr.", "3", "33.333", "1010"),
        line("En à 33,333 kr.", "1", "33.333", "1010"),
        line("En à 33,333 kr.", "1", "33.333", "1010"),
        line("Rabat 10 %", "1", "33.335", "1010", discount_percent=Decimal("10")),
        line("Eksport", "7", "0.995", "1030", rate=Decimal("0")),
    ]
    sale = dyn.create_draft_invoice(draft(customer, "WC-ROUND", lines))
    # per line: 99.999 -> 100.00 (VAT 25.00); 33.333 -> 33.33 (VAT 8.3325 -> 8.33, twice);
    # 30.0015 -> 30.00 (VAT 7.50); 6.965 -> 6.97 (VAT 0). Whole-invoice VAT would be 49.165 -> 49.17.
    assert (sale.totals.net, sale.totals.vat, sale.totals.gross) == (
        Decimal("203.63"),
        Decimal("49.16"),
        Decimal("252.79"),
    )
    assert voucher_rows(sale.id) == [
        ("LEDGER", 5600, "252.79"),
        ("LEDGER", 1010, "-196.66"),
        ("LEDGER", 1030, "-6.97"),
        ("LEDGER", 6910, "-49.16"),
    ]


def test_refused_rows_roll_the_voucher_back(dyn):
    customer = dyn.create_customer(customer_data(), debtor_group="Indland")
    lines = [line("OK", "1", "10", "1010"), line("Ukendt konto", "1", "10", "1234")]
    with pytest.raises(ValidationError) as caught:
        dyn.create_draft_invoice(draft(customer, "WC-BAD", lines))
    assert caught.value.message == "line 2: account_id_: Account does not exist"
    assert caught.value.details == {"2": {"account_id_": "Account does not exist"}}
    assert caught.value.status == 400
    assert dyn.find_invoice("WC-BAD") is None
    assert not [e for e in sandbox_rows("enclosure") if e["note"] == "WC-BAD"]
    # a sale of 0.00 (a gift card paying it all): said so, nothing sent
    free = [line("Krus", "1", "200.00", "1010"), line("Gavekort", "1", "-250.00", "1070", rate=Decimal("0"))]
    with pytest.raises(ValidationError, match=r"total is 0\.00"):
        dyn.create_draft_invoice(draft(customer, "WC-FREE", free))
    assert not [e for e in sandbox_rows("enclosure") if e["note"] == "WC-FREE"]


def test_a_validation_error_carries_dynaccounts_message(dyn):
    with pytest.raises(ValidationError) as caught:
        dyn.create_customer(customer_data(email="not-an-email", name=""), debtor_group="Indland")
    assert caught.value.message == (
        "email: Invalid e-mail address; email_invoice: Invalid e-mail address; name: Field is required"
    )
    assert caught.value.details == {
        "email": "Invalid e-mail address",
        "email_invoice": "Invalid e-mail address",
        "name": "Field is required",
    }
    assert caught.value.status == 400
    with pytest.raises(ValidationError, match="module_group_name: Debtor group does not exist"):
        dyn.create_customer(customer_data(), debtor_group="Findes ikke")
    with pytest.raises(ValidationError, match="payment_name: Payment terms do not exist"):
        dyn.create_customer(customer_data(payment_terms="Netto 1000 dage"), debtor_group="Indland")


# --- authentication ---


def test_wrong_or_revoked_credentials(app, db, redis, dyn):
    sleeps = []
    for credentials, message in (
        ({**DEMO, "api_key": "f" * 40}, "auth: Invalid API_ID or API_KEY"),
        ({**DEMO, "api_id": "4711"}, "auth: Invalid API_ID or API_KEY"),
        ({**DEMO, "api_secret": "0" * 40}, "hash: Invalid X-Hash"),
    ):
        connector = make_connector(app, redis, credentials, sleeps=sleeps)
        with pytest.raises(AuthenticationError) as caught:
            connector.list_choices("accounts")
        assert (caught.value.message, caught.value.status) == (message, 401)
    assert sleeps == []  # never retried

    dyn.verify()
    sandbox.regenerate_key(DEMO["api_id"])  # the customer made a new key in Dynaccount
    with pytest.raises(AuthenticationError, match="Invalid API_ID or API_KEY"):
        dyn.verify()


def test_other_tenants_are_separate_companies(app, db, redis, dyn):
    sandbox.seed("4711")
    other = make_connector(app, redis, sandbox.credentials_for("4711"))
    other.create_customer(customer_data(number="77"), debtor_group="Indland")
    assert other.find_customer("customer_number", "77") is not None
    assert dyn.find_customer("customer_number", "77") is None


# --- faults ---


def test_429_is_retried_after_retry_after(app, db, redis):
    sandbox.seed(DEMO["api_id"])
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    set_faults("dynaccount", {"retry_after": 2, "next": ["429", "429"]})
    assert connector.verify().external_id == "1000"
    assert sleeps == [2.0, 2.0]
    # a create too: nothing reached the system, so even a POST is retried
    set_faults("dynaccount", {"retry_after": 1, "next": ["429"]})
    created = connector.create_customer(customer_data(), debtor_group="Indland")
    assert sleeps[-1] == 1.0 and connector.find_customer("customer_number", created.number) is not None


def test_500_on_a_read_is_retried(app, db, redis):
    sandbox.seed(DEMO["api_id"])
    sleeps = []
    connector = make_connector(app, redis, sleeps=sleeps)
    set_faults("dynaccount", {"next": ["500", "500"]})
    assert connector.find_product("KAFFE-500").number == "KAFFE-500"
    assert len(sleeps) == 2


def test_500_on_a_write_is_ambiguous(dyn):
    set_faults("dynaccount", {"next": ["500"]})
    with pytest.raises(AmbiguousWriteError) as caught:
        dyn.create_customer(customer_data(number="900"), debtor_group="Indland")
    assert caught.value.status == 500
    assert dyn.find_customer("customer_number", "900") is None  # the look-up decides; here: not created


def test_a_dropped_connection(dyn):
    set_faults("dynaccount", {"next": ["drop"]})
    with pytest.raises(AmbiguousWriteError, match="dropped the connection"):
        dyn.create_customer(customer_data(number="901"), debtor_group="Indland")
    set_faults("dynaccount", {"next": ["drop"]})
    assert dyn.find_product("KAFFE-500") is not None  # a read is retried


def test_a_read_timeout_over_loopback_is_ambiguous_and_the_lookup_decides(app, db, redis, live_server):
    sandbox.seed(DEMO["api_id"])
    setup = make_connector(app, redis)
    customer = setup.create_customer(customer_data(), debtor_group="Indland")
    db.session.rollback()  # hold no database transaction while the served app writes
    loopback = make_connector(
        app,
        redis,
        transport=httpx.HTTPTransport(),
        api_url=f"{live_server}/sandbox/dynaccount",
        timeout_seconds=0.4,
    )

    # 1. the rows' insert times out: the whole voucher is there once the slow request is done
    set_faults("dynaccount", {"latency_ms": 1200, "next": ["ok", "ok", "slow"]})
    with pytest.raises(AmbiguousWriteError, match="timed out"):
        loopback.create_draft_invoice(draft(customer, "WC-SLOW-1"))
    clear_faults("dynaccount")
    found = wait_for(lambda: loopback.find_invoice("WC-SLOW-1"))
    assert found.totals.gross == Decimal("271.50") and found.booked

    # 2. the voucher's insert times out: a voucher without rows is an unfinished post; the next completes it
    set_faults("dynaccount", {"latency_ms": 1200, "next": ["ok", "slow"]})
    with pytest.raises(AmbiguousWriteError):
        loopback.create_draft_invoice(draft(customer, "WC-SLOW-2"))
    clear_faults("dynaccount")
    wait_for(lambda: [e for e in sandbox_rows("enclosure") if e["note"] == "WC-SLOW-2"])
    _db.session.rollback()
    assert loopback.find_invoice("WC-SLOW-2") is None
    completed = loopback.create_draft_invoice(draft(customer, "WC-SLOW-2"))
    assert completed.totals.gross == Decimal("271.50")
    assert [e["id"] for e in sandbox_rows("enclosure") if e["note"] == "WC-SLOW-2"] == [int(completed.id)]
    _db.session.rollback()
    loopback.api.close()


def wait_for(probe, seconds=5.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = probe()
        except TransientError:  # the served app still busy with the slow request (a loaded machine)
            value = None
        _db.session.rollback()
        if value or time.monotonic() > deadline:
            assert value, "the slow request never completed"
            return value
        time.sleep(0.1)


# --- the shared rate limit ---


def test_two_connectors_share_one_rate_limit_per_company(app, db, redis):
    sandbox.seed(DEMO["api_id"])
    limit = {"rate_limit_requests": 2, "rate_limit_seconds": 0.2}  # a bucket of 2, refilled at 10/s

    def connector():
        c = make_connector(app, redis, **limit)
        c.api.limiter.sleep = time.sleep  # real waiting: the bucket refills with Redis' clock
        c.api.http.event_hooks["request"].append(lambda request: sent.append(time.monotonic()))
        return c

    sent = []
    first, second = connector(), connector()
    started = time.monotonic()
    for _ in range(6):
        first.find_product("KAFFE-500")
        second.find_product("KAFFE-500")
    elapsed = time.monotonic() - started
    assert len(sent) == 12
    assert elapsed >= 0.9  # (12 - 2) / 10 per second, shared; each alone would need only 0.4 s
    for i, at in enumerate(sent):  # in any 0.3 s window: at most the bucket + what refilled
        assert len([t for t in sent[i:] if t - at < 0.3]) <= 2 + 3 + 1


# --- the sandbox's query language ---


def signed(app, path, body=b"", credentials=DEMO):
    url = f"{IN_PROCESS_ORIGIN}/sandbox/dynaccount/v7/{credentials['api_id']}/{credentials['api_key']}/{path}"
    request = httpx.Request("POST" if body else "GET", url, content=body)
    digest = (request.url.netloc + request.url.raw_path + body + credentials["api_secret"].encode()).decode()
    headers = {"X-Hash": hashlib.sha1(digest.encode()).hexdigest()}  # noqa: S324
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    with httpx.Client(transport=SandboxTransport(app)) as client:
        return client.request(request.method, url, content=body, headers=headers)


def test_select_order_limit_and_where(app, dyn):
    response = signed(app, "get/payment/?select=name,days&order=days+desc,name&limit=1,2")
    assert response.status_code == 200
    assert response.json() == {
        "result": [{"name": "Netto 14 dage", "days": 14}, {"name": "Netto 8 dage", "days": 8}]
    }
    assert signed(app, "get/vatcode/?name=K25&select=id,name").json() == {
        "result": [{"id": 5, "name": "K25"}]
    }
    assert signed(app, "get/vatcode/5/?select=name").json() == {"result": [{"name": "K25"}]}
    assert signed(app, "get/vatcode/?limit=2").json()["result"][1]["name"] == "UEUV"
    unknown = signed(app, "get/vatcode/?colour=red&select=id,size")
    assert (unknown.status_code, unknown.json()) == (
        400,
        {"error": {"colour": "Unknown field", "select": "Unknown field: size"}},
    )
    assert signed(app, "get/nothing/").json() == {"error": {"table": "Unknown table"}}
    # dates may be sent as m-d-Y, as in the official library's example
    created = signed(app, "put/enclosure/", b"time=02-01-2026&draft_id=1&txt=x").json()["result"][0]
    assert (created["time"], created["is_booked"]) == (1769947200, "NO")
    bulk = signed(app, "insert_bulk/unit/", b"name%5B0%5D=pk.&name%5B1%5D=stk.")
    assert (bulk.status_code, bulk.json()) == (400, {"error": {"1": {"name": "Already exists"}}})
    assert signed(app, "put/vatcode/1/", b"id=9").json() == {"error": {"id": "Field is read-only"}}


# --- what the wizard says ---


def test_the_wizard_says_plainly_that_sales_become_vouchers(owner_client, account, owner, db):
    setup = next(s for s in connect_sandbox(account, "dynaccount").setups if not s.unusable_reason)
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    index = owner_client.get("/setup").get_data(as_text=True)
    assert "Dynaccounts offentlige API beskriver ingen måde at bogføre fakturaer" in index
    assert "der oprettes ingen faktura, og ingen sendes på e-mail" in index
    template = setup.template("invoice")
    card = owner_client.get(
        f"/setup/{setup.id}/templates/{template.id}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Salgsbilag" in card and "Tilgodehavendekonto" in card and "Konto for salgsmoms" in card
    assert "Din bogholder bogfører kassekladden i Dynaccount." in card
    assert ">Bogbro</option>" in card  # the kladde by its name, never its id
