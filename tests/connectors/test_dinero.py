"""The Dinero connector against the Dinero sandbox, over real HTTP (in-process WSGI, or loopback)."""

import base64
import hashlib
import threading
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portal.connectors import ConnectorContext, StaticCredentials, get_system
from portal.connectors.dinero import (
    CONNECTOR,
    SYSTEM,
    finish_connect,
    new_code_verifier,
    sandbox_settings,
    start_connect,
)
from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
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
from portal.models import Connection
from portal.sandbox import dinero as sandbox
from portal.sandbox.faults import clear_faults, set_faults
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from portal.setups.connections import connector_for

ORG = str(sandbox.PRO_ORG)
FREE_ORG = str(sandbox.FREE_ORG)
SETTINGS = sandbox_settings(IN_PROCESS_ORIGIN)


def credentials_from(tokens: dict, expires_at=None) -> dict:
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": expires_at if expires_at is not None else int(time.time()) + 3600,
    }


def make_connector(app, redis, credentials, org=ORG, *, transport="sandbox", base_url=None, **settings):
    context = ConnectorContext(
        base_url=base_url or SETTINGS["api_url"],
        credentials=credentials if hasattr(credentials, "refresh") else StaticCredentials(credentials),
        external_id=org,
        transport=SandboxTransport(app) if transport == "sandbox" else transport,
        redis=redis,
        settings={**SETTINGS, **settings},
        sleep=lambda seconds: None,
        backoff=0.0,
    )
    return CONNECTOR(context)


@pytest.fixture
def tokens(db):
    return sandbox.issue_demo_tokens()


@pytest.fixture
def dinero(app, redis, tokens):
    return make_connector(app, redis, credentials_from(tokens))


def raw_client(app, token) -> httpx.Client:
    """Straight to the sandbox, as any HTTP client of Dinero would talk to it."""
    return httpx.Client(
        base_url=SETTINGS["api_url"],
        transport=SandboxTransport(app),
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


def customer(dinero, **kwargs):
    data = {"name": "Jens Hansen", "country": "DK", "zone": "domestic", "email": "jens@example.dk"}
    return dinero.create_customer(CustomerData(**{**data, **kwargs}))


def line(text="Kaffekrus", quantity="1", price="100.00", account="1000", discount="0"):
    return InvoiceLine(
        description=text,
        quantity=Decimal(quantity),
        unit_net_price=Decimal(price),
        account=account,
        discount_percent=Decimal(discount),
    )


def draft(remote_customer, reference="WC-1001", lines=None, **kwargs):
    return DraftInvoice(
        reference=reference,
        customer=remote_customer,
        date=date.today(),
        lines=lines or [line()],
        **kwargs,
    )


# --- the system ---------------------------------------------------------------------------------------------


def test_system_is_registered_with_honest_capabilities():
    assert get_system("dinero") is SYSTEM
    capabilities = SYSTEM.capabilities
    assert capabilities.vat_model == "account"
    assert (capabilities.orders, capabilities.stock, capabilities.oss) == (False, False, False)
    assert (capabilities.email_invoice, capabilities.payment_endpoint) == (True, True)
    assert capabilities.credit_note == "endpoint"
    assert "customer_number" not in capabilities.customer_match_fields  # Dinero has no customer numbers
    assert [(t.kind, t.zone) for t in SYSTEM.templates] == [
        ("invoice", ""),
        ("goods", "domestic"),
        ("goods", "eu"),
        ("goods", "world"),
        ("freight", "domestic"),
        ("freight", "eu"),
        ("freight", "world"),
        ("no_vat", ""),
        ("payments", ""),
    ]
    no_vat = SYSTEM.templates[-2]  # gift cards and the rounding line: optional
    assert [(f.name, f.required) for f in no_vat.fields] == [("account", False)]
    payments = SYSTEM.templates[-1]  # the deposit account of paid orders' payments: optional
    assert [(f.name, f.choices, f.required) for f in payments.fields] == [
        ("account", "deposit_accounts", False)
    ]
    invoice = SYSTEM.templates[0]
    assert [(f.name, f.choices) for f in invoice.fields] == [
        ("layout", "layouts"),
        ("payment_terms", "payment_terms"),
    ]
    assert all(
        [(f.name, f.choices) for f in t.fields] == [("account", "accounts")] for t in SYSTEM.templates[1:-1]
    )
    assert any("OSS" in note for note in SYSTEM.notes)


# --- connecting ---------------------------------------------------------------------------------------------


def test_connect_through_the_sandbox_consent_page(app, client, redis):
    callback = "http://localhost/integrations/dinero/callback"
    url = start_connect(SETTINGS, callback, "state-123")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == "/sandbox/dinero/connect/authorize"
    assert query["client_id"] == ["isv_bogbro_sandbox"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [callback]
    assert query["state"] == ["state-123"]
    assert query["scope"] == ["dineropublicapi:read dineropublicapi:write offline_access"]

    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SANDKASSE" in html and "Dorthe Demo" in html and "Hobbyklubben" in html
    answer = client.post(url, data={**{k: v[0] for k, v in query.items()}, "answer": "accept"})
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == callback
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert params["state"] == "state-123"

    credentials = finish_connect(SETTINGS, params, callback, transport=SandboxTransport(app))
    assert set(credentials) == {"access_token", "refresh_token", "expires_at"}
    assert credentials["expires_at"] > time.time() + 3000
    organisations = make_connector(app, redis, credentials, org=None).list_organisations()
    assert [(o.name, o.usable) for o in organisations] == [
        ("Demo Webshop ApS", True),
        ("Hobbyklubben", False),
    ]

    # A code works once.
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        finish_connect(SETTINGS, params, callback, transport=SandboxTransport(app))


def test_connect_refusals(app, client, db):
    callback = "http://localhost/integrations/dinero/callback"
    url = start_connect(SETTINGS, callback, "s")
    declined = client.post(
        url, data={**{k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}, "answer": "no"}
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(declined.headers["Location"]).query).items()}
    assert params == {"error": "access_denied", "state": "s"}
    with pytest.raises(ConfigurationError, match="declined"):
        finish_connect(SETTINGS, params, callback, transport=SandboxTransport(app))
    with pytest.raises(ConfigurationError, match="no authorisation code"):
        finish_connect(SETTINGS, {"state": "s"}, callback, transport=SandboxTransport(app))
    with pytest.raises(ConfigurationError, match="invalid_client"):
        finish_connect(
            {**SETTINGS, "client_secret": "wrong"}, {"code": "x"}, callback, transport=SandboxTransport(app)
        )

    unknown = client.get(start_connect({**SETTINGS, "client_id": "isv_somebody"}, callback, "s"))
    assert unknown.status_code == 400
    assert "ikke registreret" in unknown.get_data(as_text=True)  # the page speaks Danish by default
    elsewhere = client.get(start_connect(SETTINGS, "https://evil.example/cb", "s"))
    assert elsewhere.status_code == 400


def _consent(client, url) -> dict:
    """Accept on the sandbox's consent page; the callback's query parameters."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    answer = client.post(urlsplit(url).path, data={**query, "answer": "accept"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def test_pkce_s256_is_sent_and_the_sandbox_refuses_a_wrong_verifier(app, client, redis):
    callback = "http://localhost/integrations/dinero/callback"
    verifier = new_code_verifier()
    assert 43 <= len(verifier) <= 128
    url = start_connect(SETTINGS, callback, "state-pkce", code_verifier=verifier)
    query = parse_qs(urlsplit(url).query)
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).rstrip(b"=").decode()]
    assert query["code_challenge_method"] == ["S256"]

    # The token endpoint as Visma Connect answers it (RFC 7636 §4.6): invalid_grant, and the code is spent.
    params = _consent(client, url)
    token_form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": callback,
        "client_id": SETTINGS["client_id"],
        "client_secret": SETTINGS["client_secret"],
    }
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as http:
        for wrong in ({}, {"code_verifier": new_code_verifier()}):
            refused = http.post("/sandbox/dinero/connect/token", data={**token_form, **wrong})
            assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        finish_connect(SETTINGS, params, callback, SandboxTransport(app), code_verifier=verifier)

    # A fresh attempt with the right verifier gets its tokens; a wrong one through Authlib is invalid_grant.
    params = _consent(client, start_connect(SETTINGS, callback, "state-2", code_verifier=verifier))
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        finish_connect(SETTINGS, params, callback, SandboxTransport(app), code_verifier=new_code_verifier())
    params = _consent(client, start_connect(SETTINGS, callback, "state-3", code_verifier=verifier))
    credentials = finish_connect(
        SETTINGS, params, callback, SandboxTransport(app), state="state-3", code_verifier=verifier
    )
    assert set(credentials) == {"access_token", "refresh_token", "expires_at"}


def test_the_sandbox_refuses_a_plain_or_malformed_challenge(client):
    callback = "http://localhost/integrations/dinero/callback"
    url = start_connect(SETTINGS, callback, "s")
    for extra in ("&code_challenge=" + "a" * 43 + "&code_challenge_method=plain", "&code_challenge=short"):
        page = client.get(url + extra)
        assert page.status_code == 400 and "ikke gyldig" in page.get_data(as_text=True)


def test_finish_connect_with_a_state_refuses_a_callback_without_it_or_with_another(app, client):
    callback = "http://localhost/integrations/dinero/callback"
    for given in (None, "forged"):
        params = _consent(client, start_connect(SETTINGS, callback, "ours"))
        params.pop("state")
        if given:
            params["state"] = given
        with pytest.raises(ConfigurationError, match="does not belong"):
            finish_connect(SETTINGS, params, callback, SandboxTransport(app), state="ours")
        # nothing was exchanged: the code still works for the attempt that owns it
        assert finish_connect(SETTINGS, params, callback, SandboxTransport(app))["refresh_token"]


def test_organisations_without_pro_are_listed_but_refused(app, redis, dinero, tokens):
    organisations = dinero.list_organisations()
    free = next(o for o in organisations if o.external_id == FREE_ORG)
    assert not free.usable and "Dinero Pro" in free.reason
    assert dinero.verify().name == "Demo Webshop ApS"

    hobby = make_connector(app, redis, credentials_from(tokens), org=FREE_ORG)
    assert hobby.verify().usable is False
    with pytest.raises(AuthenticationError) as refused:
        hobby.list_choices("layouts")
    assert refused.value.status == 403
    assert refused.value.details["code"] == 90
    assert "Pro subscription" in refused.value.message


# --- master data --------------------------------------------------------------------------------------------


def test_master_data_choices(dinero):
    layouts = dinero.list_choices("layouts")
    assert [c.label for c in layouts] == ["Standard", "Webshop (engelsk)"]  # the default first
    assert layouts[0].details == {"default": True}

    terms = {c.value: c.label for c in dinero.list_choices("payment_terms")}
    assert terms["Netto:8"] == "Netto 8 dage" and "NettoCash" in terms and "Paid" in terms

    accounts = {c.value: c for c in dinero.list_choices("accounts")}
    assert accounts["1000"].label == "1000 Salg af varer/ydelser m/moms"
    assert accounts["1000"].details["vat_code"] == "U25" and accounts["1000"].details["vat_rate"] == "25"
    assert accounts["1100"].details["vat_code"] == "UEUV" and accounts["1100"].details["vat_rate"] == "0"
    assert "55000" not in accounts and "2000" not in accounts  # revenue accounts only

    deposits = {c.value: c for c in dinero.list_choices("deposit_accounts")}
    assert deposits["55000"].details == {"default": True, "type": "BALANCE"} and "55010" in deposits

    vat = {c.value: c for c in dinero.list_choices("vat_codes")}
    assert vat["U25"].details == {"rate": "25"} and "none" in vat  # percent, as the other systems

    with pytest.raises(UnsupportedOperation):
        dinero.list_choices("product_groups")


# --- customers and products ---------------------------------------------------------------------------------


def test_customers_by_each_match_field(dinero):
    company = customer(
        dinero,
        name="Kaffe & Kage ApS",
        email="Bogholderi@KaffeKage.dk",
        is_company=True,
        vat_number="DK29403473",
        ean="5798000012345",
        phone="+45 70 12 34 56",
        address="Nørregade 1",
        postcode="1165",
        city="København K",
        external_reference="wc-customer-77",
        payment_terms="Netto:14",
    )
    for field, value in [
        ("email", "bogholderi@kaffekage.dk"),  # e-mail matches case-insensitively
        ("vat_number", "DK29403473"),
        ("ean", "5798000012345"),
        ("phone", "+45 70 12 34 56"),
        ("external_reference", "wc-customer-77"),
    ]:
        found = dinero.find_customer(field, value)
        assert found is not None and found.id == company.id, field
    assert dinero.find_customer("email", "nobody@example.dk") is None
    assert dinero.find_customer("vat_number", "DK2940347") is None  # eq, not contains
    with pytest.raises(UnsupportedOperation):
        dinero.find_customer("customer_number", "1")

    # A replay of the same create (after an ambiguous failure) gives the same contact, not a second one.
    again = customer(dinero, name="Kaffe & Kage ApS", is_company=True, external_reference="wc-customer-77")
    assert again.id == company.id

    updated = dinero.update_customer(
        company,
        CustomerData(
            name="Kaffe og Kage ApS", country="DE", zone="eu", email="ny@kaffekage.de", is_company=True
        ),
    )
    assert updated.id == company.id
    found = dinero.find_customer("email", "ny@kaffekage.de")
    assert found.name == "Kaffe og Kage ApS" and found.raw["CountryKey"] == "DE"


AWKWARD_SKUS = ["MUG-1", "mug-1", "A'B", "X;Y eq 'z'", "sku with spaces", "Æble/1.5_x", "50%-rabat", "a,b"]


def test_products_with_awkward_numbers(dinero):
    created = {}
    for number in AWKWARD_SKUS:
        created[number] = dinero.create_product(
            ProductData(number=number, name=f"Vare {number}", unit_net_price=Decimal("79.20"), account="1000")
        )
    for number in AWKWARD_SKUS:
        found = dinero.find_product(number)
        assert found is not None and found.id == created[number].id and found.number == number
        assert found.stock is None
    assert dinero.find_product("MUG") is None

    dinero.update_product(
        created["A'B"], ProductData(number="A'B", name="Ny", unit_net_price=Decimal("10.5"), account="1300")
    )
    found = dinero.find_product("A'B")
    assert found.name == "Ny" and found.raw["BaseAmountValue"] == Decimal("10.5")
    assert found.raw["AccountNumber"] == 1300

    with pytest.raises(UnsupportedOperation):
        dinero.get_stock("MUG-1")
    with pytest.raises(ConfigurationError):  # Dinero needs a revenue account on a product
        dinero.create_product(ProductData(number="X", name="X", unit_net_price=Decimal(1)))


# --- invoices -----------------------------------------------------------------------------------------------


def test_invoice_lifecycle(app, dinero, tokens):
    buyer = customer(dinero, email="jens@example.dk")
    invoice = draft(
        buyer,
        lines=[line("Kaffekrus", "2", "79.20"), line("Fragt", "1", "39.20", account="1300")],
        payment_terms="Netto:14",
        heading="Ordre 1001",
    )
    created = dinero.create_draft_invoice(invoice)
    assert not created.booked and created.reference == "WC-1001"
    # The create's answer (CreatedResponseModel) is Guid + TimeStamp only: no totals until read or booked.
    assert created.totals is None and created.raw["TimeStamp"]

    found = dinero.find_invoice("WC-1001")
    assert found.id == created.id and not found.booked
    assert found.totals.net == Decimal("197.60") and found.totals.gross == Decimal("247.00")
    assert dinero.find_invoice("WC-9999") is None

    booked = dinero.book_invoice(found)
    assert booked.booked and booked.number == "1"
    assert dinero.book_invoice(found).number == "1"  # booking again changes nothing
    found = dinero.find_invoice("WC-1001")
    assert found.booked and found.number == "1" and found.totals.gross == Decimal("247.00")

    payment = PaymentData(
        invoice=booked, amount=Decimal("247.00"), date=date.today(), reference="pay-1001", account="55010"
    )
    payment_id = dinero.register_payment(payment)
    assert dinero.register_payment(payment) == payment_id  # never twice
    with raw_client(app, tokens["access_token"]) as http:
        payments = http.get(f"/v2/{ORG}/invoices/{booked.id}/payments").json()
    assert len(payments["Payments"]) == 1 and payments["RemainingAmount"] == 0
    assert dinero.find_invoice("WC-1001").raw["Status"] == "Paid"

    dinero.send_invoice_email(booked, "jens@example.dk", "Faktura 1", "Tak for din ordre.")
    mail = sandbox.sent_mail(sandbox.PRO_ORG, booked.id)
    assert mail[0]["Receivers"] == ["jens@example.dk"] and "[link-to-pdf]" in mail[0]["Message"]

    # Credit exactly what was refunded: one of the two mugs.
    credit = dinero.create_credit_note(
        draft(buyer, reference="WC-1001-refund-1", lines=[line("Kaffekrus", "1", "79.20")], credit_for=booked)
    )
    assert credit.is_credit_note and not credit.booked
    found_credit = dinero.find_invoice("WC-1001-refund-1")
    assert found_credit.is_credit_note and found_credit.id == credit.id
    assert found_credit.totals.gross == Decimal("99.00")
    with raw_client(app, tokens["access_token"]) as http:
        assert http.get(f"/v1/{ORG}/sales/creditnotes/{credit.id}").json()["CreditNoteFor"] == booked.id
    booked_credit = dinero.book_invoice(found_credit)
    assert booked_credit.booked and booked_credit.is_credit_note and booked_credit.number == "1"
    refund = PaymentData(
        invoice=booked_credit,
        amount=Decimal("99.00"),
        date=date.today(),
        reference="refund-1",
        account="55010",
    )
    assert dinero.register_payment(refund)
    dinero.send_invoice_email(
        booked_credit, "jens@example.dk", "Kreditnota", "Vi har refunderet [link-to-pdf]"
    )
    assert (
        sandbox.sent_mail(sandbox.PRO_ORG, booked_credit.id)[0]["Message"]
        == "Vi har refunderet [link-to-pdf]"
    )


def test_payments_refuse_what_dinero_refuses_and_settle_the_state_of_account(app, dinero, tokens):
    """DIN-OAPI PaymentCreateModel: `DepositAccountNumber` is "Account number of an deposit account",
    `Amount` "Has to be different from 0"; payments only on booked vouchers. Overpaying is allowed
    (InvoicePaymentsModel: `RemainingAmount` "Might be negative if the invoice is overpaid")."""
    buyer = customer(dinero, email="saldo@example.dk")
    invoice = dinero.create_draft_invoice(
        draft(buyer, reference="WC-3003", lines=[line("Krus", "1", "80.00")])
    )
    pay = PaymentData(
        invoice=invoice, amount=Decimal("100.00"), date=date.today(), reference="p", account="55000"
    )
    with pytest.raises(ValidationError) as draft_error:
        dinero.register_payment(pay)  # a draft
    assert "Status" in draft_error.value.details["fields"]
    booked = dinero.book_invoice(dinero.find_invoice("WC-3003"))
    assert booked.totals.gross == Decimal("100.00")

    for account, amount, field in (("1000", "100.00", "DepositAccountNumber"), ("55000", "0", "Amount")):
        with pytest.raises(ValidationError) as refused:
            dinero.register_payment(
                PaymentData(
                    invoice=booked, amount=Decimal(amount), date=date.today(), reference="p", account=account
                )
            )
        assert refused.value.details["code"] == 42 and field in refused.value.details["fields"]
    with pytest.raises(ConfigurationError):  # no deposit account chosen: nothing is sent
        dinero.register_payment(
            PaymentData(invoice=booked, amount=Decimal("1"), date=date.today(), reference="p", account=None)
        )

    paid = dinero.register_payment(
        PaymentData(
            invoice=booked,
            amount=Decimal("120.00"),
            date=date.today(),
            reference="WC-3003-P",
            account="55100",
        )
    )
    with raw_client(app, tokens["access_token"]) as http:
        listing = http.get(f"/v2/{ORG}/invoices/{booked.id}/payments").json()
    assert [p["Guid"] for p in listing["Payments"]] == [paid] and listing["RemainingAmount"] == -20
    assert dinero.find_invoice("WC-3003").raw["Status"] == "OverPaid"
    assert dinero.customer_balance(buyer.id) == Decimal("-20.00")

    # The refund's payout on its booked credit note (DIN-OAPI "Add payment to creditnote") evens it out.
    note = dinero.create_credit_note(
        draft(buyer, reference="WC-3003-R", lines=[line("Krus", "1", "80.00")], credit_for=booked)
    )
    note = dinero.book_invoice(dinero.find_invoice("WC-3003-R"))
    payout = PaymentData(
        invoice=note, amount=Decimal("100.00"), date=date.today(), reference="WC-3003-R-P", account="55100"
    )
    with pytest.raises(ValidationError):
        dinero.register_refund_payment(replace(payout, invoice=booked))  # not a credit note
    first = dinero.register_refund_payment(payout)
    assert dinero.register_refund_payment(payout) == first  # looked up by ExternalReference: never twice
    assert dinero.customer_balance(buyer.id) == Decimal("-20.00")  # 100 - 120 - 100 + 100


def test_a_replayed_create_does_not_duplicate(app, dinero, tokens):
    buyer = customer(dinero)
    first = dinero.create_draft_invoice(draft(buyer, reference="WC-2002"))
    second = dinero.create_draft_invoice(draft(buyer, reference="WC-2002"))
    assert second.id == first.id
    with raw_client(app, tokens["access_token"]) as http:
        listed = http.get(
            f"/v1/{ORG}/invoices", params={"queryFilter": "ExternalReference eq 'WC-2002'"}
        ).json()
    assert listed["Pagination"]["Result"] == 1


def test_booking_needs_a_contact_and_says_so(dinero):
    created = dinero.create_draft_invoice(draft(None, reference="WC-3003"))
    with pytest.raises(ValidationError, match="contact is required"):
        dinero.book_invoice(created)


def test_manual_voucher(app, dinero, tokens):
    voucher = Voucher(
        reference="payout:po_123",
        date=date.today(),
        text="Stripe-udbetaling",
        lines=[
            VoucherLine(
                account="55000", amount=Decimal("9850.00"), text="Udbetaling", contra_account="55010"
            ),
            VoucherLine(
                account="3650",
                amount=Decimal("150.00"),
                text="Gebyr",
                contra_account="55010",
                vat_code="none",
            ),
        ],
    )
    guid = dinero.post_voucher(voucher)
    with raw_client(app, tokens["access_token"]) as http:
        posted = http.get(f"/v1/{ORG}/vouchers/manuel/{guid}").json()
    assert posted["Status"] == "Booked" and posted["VoucherNumber"] == 1
    assert posted["ExternalReference"] == "payout:po_123"
    assert [line["AmountInclVatValue"] for line in posted["Lines"]] == [9850.0, 150.0]
    assert "(payout:po_123)" in posted["Lines"][0]["Description"]

    unbalanced = Voucher(
        reference="payout:po_124",
        date=date.today(),
        text="x",
        lines=[VoucherLine("55000", Decimal("1"), "x")],
    )
    with pytest.raises(ValidationError, match="does not balance"):
        dinero.post_voucher(unbalanced)


# --- totals -------------------------------------------------------------------------------------------------


def test_totals_follow_dinero_rounding(dinero):
    buyer = customer(dinero)
    # Three lines of 33,333 kr.: each line rounds to 33,33; VAT is 25 % of the VAT-able sum (99,99 ->
    # 24,9975 -> 25,00), not the sum of per-line VAT (3 x 8,33 = 24,99).
    thirds = [line("Tredjedel", "1", "33.333") for _ in range(3)]
    totals = dinero.preview_totals(draft(buyer, lines=thirds))
    assert (totals.net, totals.vat, totals.gross) == (Decimal("99.99"), Decimal("25.00"), Decimal("124.99"))

    # A 12.5 % line discount (3 x 19,99 x 0,875 = 52,47375 -> 52,47) and an EU line without VAT.
    mixed = [
        *thirds,
        line("Te", "3", "19.99", discount="12.5"),
        line("Eksport", "2", "10.005", account="1100"),
    ]
    totals = dinero.preview_totals(draft(buyer, lines=mixed))
    assert totals.net == Decimal("99.99") + Decimal("52.47") + Decimal("20.01")
    assert totals.vat == Decimal("38.12")  # (99,99 + 52,47) x 25 % = 38,115 -> 38,12
    assert totals.gross == totals.net + totals.vat

    dinero.create_draft_invoice(draft(buyer, reference="WC-4004", lines=mixed))
    assert dinero.find_invoice("WC-4004").totals == totals  # the saved draft has the previewed totals


def test_lines_incl_vat_are_computed_from_the_gross_side(app, tokens):
    body = {
        "ShowLinesInclVat": True,
        "ProductLines": [
            {"BaseAmountValue": 49.99, "Quantity": 1, "AccountNumber": 1000, "Discount": 0,
             "Description": "Krus", "Unit": "parts"}
            for _ in range(3)
        ],
    }  # fmt: skip
    with raw_client(app, tokens["access_token"]) as http:
        totals = http.post(f"/v1/{ORG}/invoices/fetch", json=body).json()
    # 149,97 incl. VAT; VAT = 149,97 x 25/125 = 29,994 -> 29,99; excl. = 119,98.
    assert (totals["TotalInclVat"], totals["TotalVat"], totals["TotalExclVat"]) == (149.97, 29.99, 119.98)
    assert totals["ProductLines"][0]["BaseAmountValue"] == 39.99  # 49,99 / 1,25 = 39,992


# --- failures -----------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried(dinero):
    set_faults("dinero", {"retry_after": 0, "next": ["429", "429"]})
    assert dinero.list_choices("layouts")


def test_500_on_a_read_is_retried(dinero):
    set_faults("dinero", {"next": ["500"]})
    assert dinero.find_invoice("WC-1") is None


def test_500_on_a_create_is_ambiguous(dinero):
    buyer = customer(dinero)
    set_faults("dinero", {"next": ["500"]})
    with pytest.raises(AmbiguousWriteError):
        dinero.create_draft_invoice(draft(buyer, reference="WC-5005"))


def test_dropped_connection_on_a_create_is_ambiguous_and_on_a_read_retried(dinero):
    buyer = customer(dinero)
    set_faults("dinero", {"next": ["drop"]})
    with pytest.raises(AmbiguousWriteError):
        dinero.create_draft_invoice(draft(buyer, reference="WC-6006"))
    set_faults("dinero", {"next": ["drop"]})
    assert dinero.find_invoice("WC-6006") is None  # the drop came before Dinero did anything


def test_read_timeout_on_a_create_over_loopback_is_ambiguous_and_the_invoice_exists(
    app, redis, tokens, live_server
):
    dinero = make_connector(
        app,
        redis,
        credentials_from(tokens),
        transport=None,
        base_url=f"{live_server}/sandbox/dinero",
        timeout=0.4,
    )
    buyer = customer(dinero)
    set_faults("dinero", {"latency_ms": 1200})
    try:
        with pytest.raises(AmbiguousWriteError, match="timed out"):
            dinero.create_draft_invoice(draft(buyer, reference="WC-7007"))
    finally:
        clear_faults("dinero")
    # Look up after an ambiguous failure: the slow request did create it.
    deadline = time.monotonic() + 5
    found = None
    while found is None and time.monotonic() < deadline:
        time.sleep(0.2)
        found = dinero.find_invoice("WC-7007")
    assert found is not None and found.reference == "WC-7007"
    # And creating it again (the replay) gives the same invoice.
    assert dinero.create_draft_invoice(draft(buyer, reference="WC-7007")).id == found.id


def test_validation_errors_carry_dinero_message(dinero):
    with pytest.raises(ValidationError) as error:
        dinero.create_product(ProductData(number="X", name="X", unit_net_price=Decimal(1), account="9999"))
    assert "The account 9999 does not exist" in error.value.message
    assert error.value.details["code"] == 42 and "AccountNumber" in error.value.details["fields"]


def test_outdated_timestamp_is_reread_once(app, redis, tokens):
    dinero = make_connector(app, redis, credentials_from(tokens))
    buyer = customer(dinero)
    created = dinero.create_draft_invoice(draft(buyer, reference="WC-8008"))
    sent = []

    def someone_edits_first(request):
        # Just before our first booking request leaves, somebody changes the draft in Dinero.
        if request.method == "POST" and request.url.path.endswith("/book"):
            sent.append(request.url.path)
            if len(sent) == 1:
                with raw_client(app, tokens["access_token"]) as http:
                    current = http.get(f"/v1/{ORG}/invoices/{created.id}").json()
                    body = {
                        "Timestamp": current["TimeStamp"],
                        "ContactGuid": buyer.id,
                        "Comment": "Rettet af bogholderen",
                        "ProductLines": [{"BaseAmountValue": 100, "Quantity": 1, "AccountNumber": 1000,
                                          "Discount": 0, "Description": "Kaffekrus", "Unit": "parts"}],
                    }  # fmt: skip
                    assert http.put(f"/v1.2/{ORG}/invoices/{created.id}", json=body).status_code == 200

    dinero.api.http.event_hooks["request"].append(someone_edits_first)
    booked = dinero.book_invoice(created)
    assert booked.booked and len(sent) == 2
    assert booked.raw["Comment"] == "Rettet af bogholderen"


# --- credentials --------------------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_once_on_401(app, redis, tokens):
    store = StaticCredentials(credentials_from(tokens))  # we still believe it is valid
    dinero = make_connector(app, redis, store)
    sandbox.expire_access_tokens()
    assert dinero.list_choices("layouts")
    assert store.credentials["access_token"] != tokens["access_token"]
    assert sandbox.refresh_token_state(tokens["refresh_token"]) == "used"
    assert sandbox.refresh_token_state(store.credentials["refresh_token"]) == "valid"


def test_stale_credentials_are_refreshed_before_the_call(app, redis, tokens):
    store = StaticCredentials(credentials_from(tokens, expires_at=int(time.time()) - 5))
    assert make_connector(app, redis, store).find_invoice("WC-1") is None
    assert store.credentials["refresh_token"] != tokens["refresh_token"]


def test_revoked_grant_is_an_authentication_error(app, redis, tokens):
    dinero = make_connector(app, redis, credentials_from(tokens))
    sandbox.revoke_grants()
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        dinero.list_choices("layouts")


def test_wrong_token_is_an_authentication_error_with_dinero_message(app, redis, db):
    dinero = make_connector(
        app, redis, {"access_token": "nope", "refresh_token": "nope", "expires_at": 2**31}
    )
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        dinero.list_organisations()
    with raw_client(app, "nope") as http:
        refused = http.get("/v1/organizations")
    assert refused.status_code == 401
    assert 'error_description="The access token is not valid"' in refused.headers["WWW-Authenticate"]


def test_two_workers_refreshing_at_once_keep_one_working_refresh_token(app, redis, account, tokens):
    connection = Connection(
        account_id=account.id,
        system="dinero",
        label="Dinero (sandbox)",
        credentials=credentials_from(tokens, expires_at=int(time.time()) - 10),  # due for renewal
        sandbox=True,
    )
    _db.session.add(connection)
    _db.session.commit()
    connection_id = connection.id
    results, errors, start = [], [], threading.Barrier(2)

    def worker():
        try:
            with app.app_context():
                dinero = connector_for(_db.session.get(Connection, connection_id), ORG)
                start.wait()
                results.append(len(dinero.list_choices("layouts")))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and results == [2, 2]

    _db.session.expire_all()
    stored = _db.session.get(Connection, connection_id).credentials
    assert sandbox.refresh_token_state(tokens["refresh_token"]) == "used"
    assert sandbox.refresh_token_state(stored["refresh_token"]) == "valid"  # exactly one rotation happened
    assert [t for t in _auth_refresh_tokens() if t == "valid"] == ["valid"]


def _auth_refresh_tokens():
    return ["used" if t["Used"] else "valid" for t in sandbox._auth_store().all("refresh_tokens")]


# --- rate limit ---------------------------------------------------------------------------------------------


def test_shared_rate_limiter_keeps_two_connectors_under_dinero_limit(app, redis, tokens):
    app.config["SANDBOX_DINERO_RATE_LIMIT"] = (8, 1)  # the sandbox: 8 requests per 1 s window
    statuses = []
    try:
        workers = []
        for _ in range(2):
            # Bucket of 2, refilled 6/s: at most 2 + 6 = 8 requests in any second, for both together.
            dinero = make_connector(
                app, redis, credentials_from(tokens), rate_limit_requests=2, rate_limit_seconds=1 / 3
            )
            dinero.context.sleep = time.sleep
            dinero.api.limiter.sleep = time.sleep
            dinero.api.http.event_hooks["response"].append(
                lambda response: statuses.append(response.status_code)
            )
            workers.append(dinero)
        started = time.monotonic()
        threads = [
            threading.Thread(target=lambda d=d: [d.list_choices("layouts") for _ in range(6)])
            for d in workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        elapsed = time.monotonic() - started
    finally:
        app.config.pop("SANDBOX_DINERO_RATE_LIMIT")
    assert statuses == [200] * 12  # Dinero never had to say 429
    assert elapsed >= (12 - 2) / 6 * 0.9  # they waited for each other


def test_the_sandbox_enforces_dinero_rate_limit(app, tokens):
    app.config["SANDBOX_DINERO_RATE_LIMIT"] = (3, 60)
    try:
        with raw_client(app, tokens["access_token"]) as http:
            answers = [http.get(f"/v1/{ORG}/vatTypes") for _ in range(4)]
            other_org_or_list = http.get("/v1/organizations")  # not counted per organisation
    finally:
        app.config.pop("SANDBOX_DINERO_RATE_LIMIT")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].text == "API calls quota exceeded! maximum admitted 3 per 1m."
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert other_org_or_list.status_code == 200


# --- sandbox conventions ------------------------------------------------------------------------------------


def test_sandbox_list_conventions(app, dinero, tokens):
    for number in range(5):
        customer(dinero, name=f"Kunde {number}", email=f"k{number}@example.dk")
    with raw_client(app, tokens["access_token"]) as http:
        default = http.get(f"/v1/{ORG}/contacts").json()
        assert set(default["Collection"][0]) == {"Name", "ContactGuid"}  # minimal defaults
        paged = http.get(
            f"/v1/{ORG}/contacts", params={"pageSize": 2, "page": 2, "fields": "NAME,email"}
        ).json()
        assert paged["Collection"] == [{"NAME": "Kunde 4", "email": "k4@example.dk"}]
        assert paged["Pagination"] == {
            "MaxPageSizeAllowed": 1000, "PageSize": 2, "Result": 1, "ResultWithoutFilter": 5, "Page": 2,
        }  # fmt: skip
        both = http.get(
            f"/v1/{ORG}/contacts", params={"queryFilter": "Name contains 'kunde';Email eq 'K3@EXAMPLE.DK'"}
        ).json()
        assert [c["Name"] for c in both["Collection"]] == ["Kunde 3"]
        refused = http.get(f"/v1/{ORG}/contacts", params={"queryFilter": "City eq 'Aarhus'"})
        assert refused.status_code == 400
        assert refused.json()["code"] == 42 and "queryFilter" in refused.json()["validationErrors"]
        since = http.get(f"/v1/{ORG}/contacts", params={"changesSince": "2999-01-01T00:00:00Z"}).json()
        assert since["Collection"] == []
        assert http.get(f"/v1/{ORG}/contacts", params={"changesSince": "yesterday"}).status_code == 400
        missing = http.get(f"/v1/{ORG}/invoices/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["code"] == 40
        assert http.get(f"/v1/{FREE_ORG}/contacts").json()["code"] == 90
    with raw_client(app, None) as http:
        assert http.get(f"/v1/{ORG}/contacts").status_code == 401


def test_seed_is_idempotent(db):
    sandbox.seed(sandbox.PRO_ORG)
    sandbox.seed(sandbox.PRO_ORG)
    store = sandbox.SandboxStore("dinero", sandbox.PRO_ORG)
    assert store.count("accounts") == len(sandbox.ENTRY_ACCOUNTS)
    assert store.count("templates") == 2
