"""Frisbii renewals into the ledger through the real path: the Frisbii sandbox renews a subscription and sends
its body-signed webhooks (a real RQ job) to the portal's webhook endpoint; the pipeline fetches the invoice
the webhook names, normalises it and posts it to the e-conomic (or Dinero) sandbox. Nothing of ours is
mocked."""

import json
from decimal import Decimal

import httpx
import pytest
from flask import current_app
from sqlalchemy import func, select

from portal.models import Connection, SourceEvent, Transfer
from portal.pipeline import polls
from portal.sandbox import dinero as dinero_sandbox
from portal.sandbox import economic
from portal.sandbox.frisbii import billing
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from portal.shops import operations as shops
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote

BASE = f"{IN_PROCESS_ORIGIN}/sandbox/frisbii"


@pytest.fixture
def frisbii(app, db, redis):
    with httpx.Client(
        transport=SandboxTransport(app), base_url=BASE, auth=("priv_bogbro_demo", "")
    ) as client:
        client.get("/v1/account/webhook_settings")  # seeds the demo account
        yield client


def link_frisbii(db, account, setup, **settings):
    """A Frisbii connection linked to `setup` as the portal links it: its webhook url added to the account's
    list (the account's secret kept as the link's), active."""
    connection = Connection(
        account_id=account.id,
        system="frisbii",
        role="subscription",
        label="Frisbii",
        credentials={"private_key": "priv_bogbro_demo"},
        sandbox=True,
    )
    db.session.add(connection)
    db.session.commit()
    source_link = shops.link(connection, setup, "Kaffeabonnementer")
    assert "card" in source_link.settings["paid_methods"]  # settled by card: registered as paid by default
    source_link.settings = {**source_link.settings, **settings}
    db.session.commit()
    with current_app.test_request_context():  # the delivery url is built as the link page builds it
        shops.register_webhooks(source_link)
        source_link.delivery = shops.delivery_url(source_link)
    shops.set_active(source_link, True)
    return source_link


def renew(frisbii, run_jobs, handle="sub-demo-0001", outcome="settled") -> dict:
    answer = frisbii.post(f"/_subscriptions/{handle}/renew", json={"outcome": outcome})
    assert answer.status_code == 200, answer.text
    settle(run_jobs)
    return answer.json()


def settle(run_jobs):
    for _ in range(6):  # webhook delivery → event → fetch → invoice event → transfer
        run_jobs()


def transfer_of(db, invoice, kind="invoice") -> Transfer:
    db.session.expire_all()
    return db.session.scalar(
        select(Transfer).where(Transfer.kind == kind, Transfer.order_ref == str(invoice["id"]))
    )


@pytest.fixture
def setup(account):
    return make_setup(account, "e-conomic", auto_book=True)


def test_a_settled_renewal_is_booked_and_registered_as_paid(db, account, setup, frisbii, run_jobs):
    source_link = link_frisbii(db, account, setup)
    assert frisbii.get("/v1/account/webhook_settings").json()["urls"] == [source_link.delivery]
    invoice = renew(frisbii, run_jobs)

    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    assert transfer.reference == f"FR-{source_link.id}-{invoice['handle']}"
    found = remote(setup).find_invoice(transfer.reference)
    assert found.booked and found.totals.gross == Decimal("149.00")
    assert transfer.payment_id  # settled by card: registered as paid
    # the renewal is named; the subscription's own events are stored and ignored, nothing else transferred
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1
    outcomes = db.session.scalars(
        select(SourceEvent.outcome).where(SourceEvent.topic == "subscription_renewal")
    ).all()
    assert outcomes and all("abonnement" in outcome for outcome in outcomes)


def test_a_replayed_webhook_makes_one_document(app, db, account, setup, frisbii, run_jobs):
    source_link = link_frisbii(db, account, setup)
    invoice = renew(frisbii, run_jobs)
    settled = db.session.scalar(select(SourceEvent).where(SourceEvent.topic == "invoice_settled"))
    client = app.test_client()
    for _ in range(3):
        answer = client.post(
            f"/webhooks/frisbii/{source_link.webhook_token}",
            data=settled.raw_body,
            content_type="application/json",
        )
        assert answer.status_code == 200 and answer.json["message"] == "already received"
    webhook_ids = [json.loads(e.raw_body)["id"] for e in db.session.scalars(select(SourceEvent))]
    frisbii.post("/v1/webhook/resend", json={"webhooks": webhook_ids[:1]})
    settle(run_jobs)
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1
    assert remote(setup).find_invoice(transfer_of(db, invoice).reference).booked


def test_a_forged_signature_is_refused_and_nothing_is_stored(app, db, account, setup, frisbii):
    source_link = link_frisbii(db, account, setup)
    body = {
        "id": "abc",
        "event_type": "invoice_settled",
        "timestamp": "2026-12-07T08:10:00.640Z",
        "invoice": "inv-1",
        "signature": billing.sign("not-the-secret", "2026-12-07T08:10:00.640Z", "abc"),
    }
    client = app.test_client()
    url = f"/webhooks/frisbii/{source_link.webhook_token}"
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json={k: v for k, v in body.items() if k != "signature"}).status_code == 401
    assert client.post(url, data=b"not json", content_type="application/json").status_code == 401
    assert db.session.scalar(select(func.count()).select_from(SourceEvent)) == 0


def test_a_failed_renewal_is_skipped_with_the_reason(owner_client, db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    invoice = renew(frisbii, run_jobs, outcome="failed")
    transfer = transfer_of(db, invoice)
    assert transfer.status == "skipped" and remote(setup).find_invoice(transfer.reference) is None
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert (
        "Fornyelse af abonnement #sub-demo-0001" in page
        and "“Mislykket” er ikke sat til at blive overført" in page
    )


def test_a_discount_is_a_negative_line(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    discount = {"handle": "ti", "name": "10 % rabat", "percentage": 10, "apply_to": ["all"], "fixed_count": 1}
    assert frisbii.post("/v1/discount", json=discount).status_code == 200
    attached = frisbii.post("/v1/subscription/sub-demo-0001/discount", json={"handle": "v", "discount": "ti"})
    assert attached.status_code == 200, attached.text
    invoice = renew(frisbii, run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found.totals.gross == Decimal("134.10")
    lines = found.raw["lines"]
    assert any(Decimal(str(line["unitNetPrice"])) < 0 for line in lines)


def test_the_plan_is_the_product_and_an_additional_cost_goes_on_the_default_product(
    db, account, setup, frisbii, run_jobs
):
    """The plan's handle is a product in e-conomic, made once; a one-off cost (its handle is that charge's
    own) is booked on the default product with its text."""
    link_frisbii(db, account, setup)
    cost = {"handle": "kvaern-1", "ordertext": "Kaffekværn", "amount": 5000, "subscription": "sub-demo-0001"}
    assert frisbii.post("/v1/additional_cost", json=cost).status_code == 200
    invoice = renew(frisbii, run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    lines = remote(setup).find_invoice(transfer.reference).raw["lines"]
    assert [(line["product"]["productNumber"], line["description"]) for line in lines] == [
        ("kaffeabonnement", invoice["order_lines"][0]["ordertext"]),
        ("VARE", "Kaffekværn"),
    ]
    assert remote(setup).find_product("kaffeabonnement").name == invoice["order_lines"][0]["ordertext"]
    assert remote(setup).find_product("kvaern-1") is None


def test_a_refund_becomes_a_credit_note_for_exactly_the_amount(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    invoice = renew(frisbii, run_jobs)
    refund = frisbii.post("/v1/refund", json={"invoice": invoice["handle"], "amount": 4900})
    assert refund.status_code == 200, refund.text
    settle(run_jobs)
    credit = transfer_of(db, invoice, kind="credit_note")
    assert credit is not None and credit.status == "done", credit and credit.error_message
    found = remote(setup).find_invoice(credit.reference)
    assert found.totals.gross == Decimal("-49.00")


def test_an_eu_business_customer_is_reverse_charged(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    plan = {
        "handle": "erhverv",
        "name": "Kaffe til kontoret",
        "amount": 40000,
        "vat": 0,
        "currency": "DKK",
        "schedule_type": "month_startdate",
        "interval_length": 1,
    }
    assert frisbii.post("/v1/plan", json=plan).status_code == 200
    customer = {
        "handle": "cust-de",
        "company": "Kaffee GmbH",
        "vat": "DE136695976",
        "country": "DE",
        "email": "einkauf@kaffee.de",
        "address": "Hauptstr. 1",
        "city": "Berlin",
        "postal_code": "10115",
    }
    created = frisbii.post(
        "/v1/subscription",
        json={
            "handle": "sub-de",
            "plan": "erhverv",
            "create_customer": customer,
            "signup_method": "source",
            "source": "ca_test_visa",
        },
    )
    assert created.status_code == 200, created.text
    settle(run_jobs)
    invoice = frisbii.get("/v1/list/invoice", params={"subscription": "sub-de"}).json()["content"][0]
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found.totals.gross == Decimal("400.00") and found.totals.vat == Decimal("0.00")


def test_one_renewal_into_dinero(db, account, frisbii, run_jobs):
    dinero = make_setup(account, "dinero", auto_book=True)
    link_frisbii(db, account, dinero)
    invoice = renew(frisbii, run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(dinero).find_invoice(transfer.reference)
    assert found is not None and found.totals.gross == Decimal("149.00")


def test_connect_in_the_portal_link_and_disconnect(owner_client, db, account, setup, frisbii, run_jobs):
    """The portal's form: a wrong key is refused in Danish (nothing stored); the demo key connects; linking
    adds our url beside the customer's own; disconnecting removes only ours."""
    frisbii.put("/v1/account/webhook_settings", json={"urls": ["https://kunde.example/hook"]})
    page = owner_client.get("/shops/connect/frisbii?sandbox=1")
    assert page.status_code == 200 and "priv_bogbro_demo" in page.get_data(as_text=True)
    refused = owner_client.post(
        "/shops/connect/frisbii", data={"sandbox": "1", "private_key": "priv_forkert"}
    )
    assert refused.status_code == 400 and "Frisbii godtog ikke" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Connection)) == 1  # the setup's own
    connected = owner_client.post(
        "/shops/connect/frisbii", data={"sandbox": "1", "private_key": "priv_bogbro_demo"}
    )
    assert connected.status_code == 302, connected.get_data(as_text=True)
    connection = db.session.scalar(select(Connection).where(Connection.system == "frisbii"))
    assert connection.role == "subscription" and connection.credentials == {"private_key": "priv_bogbro_demo"}
    linked = owner_client.post(
        f"/shops/{connection.id}/link", data={"setup": str(setup.id), "name": "Abonnementer"}
    )
    assert linked.status_code == 302, linked.get_data(as_text=True)
    urls = frisbii.get("/v1/account/webhook_settings").json()["urls"]
    assert urls[0] == "https://kunde.example/hook" and len(urls) == 2 and "/webhooks/frisbii/" in urls[1]
    settings = owner_client.get(linked.headers["Location"]).get_data(as_text=True)
    assert "Hævet" in settings and "Hvilke salg overføres" in settings
    assert "Overfør fakturaer på 0" in settings  # every source selling invoices has the setting

    assert owner_client.post(f"/shops/{connection.id}/disconnect").status_code == 302
    assert frisbii.get("/v1/account/webhook_settings").json()["urls"] == ["https://kunde.example/hook"]


def test_authorized_renewals_transfer_as_the_setting_says(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup, states={"settled": "booked", "authorized": "draft"})
    invoice = renew(frisbii, run_jobs, outcome="authorized")
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done" and transfer.document == "draft", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found is not None and not found.booked and not transfer.payment_id  # not paid yet: a draft

    assert frisbii.post(f"/v1/invoice/{invoice['handle']}/settle", json={}).status_code == 200
    settle(run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done" and remote(setup).find_invoice(transfer.reference).booked


def test_the_poll_finds_a_renewal_whose_webhook_was_missed(db, account, setup, frisbii, run_jobs):
    source_link = link_frisbii(db, account, setup)
    frisbii.put("/v1/account/webhook_settings", json={"disabled": True})  # the webhook never arrives
    invoice = renew(frisbii, run_jobs)
    assert transfer_of(db, invoice) is None
    assert polls.poll_orders(source_link.id) >= 1
    settle(run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    assert remote(setup).find_invoice(transfer.reference).booked


def free_renewal(frisbii):
    """A 100 % discount on the demo subscription's next invoice: the renewal is for 0 kr."""
    discount = {"handle": "gratis", "name": "Gratis måned", "percentage": 100, "apply_to": ["all"]}
    assert frisbii.post("/v1/discount", json={**discount, "fixed_count": 1}).status_code == 200
    attached = frisbii.post(
        "/v1/subscription/sub-demo-0001/discount", json={"handle": "g", "discount": "gratis"}
    )
    assert attached.status_code == 200, attached.text


def test_a_renewal_for_0_is_skipped_with_the_reason(owner_client, db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    free_renewal(frisbii)
    invoice = renew(frisbii, run_jobs)
    assert invoice["amount"] == 0
    transfer = transfer_of(db, invoice)
    assert transfer.status == "skipped" and remote(setup).find_invoice(transfer.reference) is None
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Fakturaen er på 0" in page, page


def test_a_renewal_for_0_is_transferred_once_when_set_to(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup, zero_amount="transfer")
    free_renewal(frisbii)
    invoice = renew(frisbii, run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found.booked and found.totals.gross == Decimal("0.00")
    assert not transfer.payment_id  # no money moved: no payment of 0 registered
    assert any(Decimal(str(line["unitNetPrice"])) < 0 for line in found.raw["lines"])  # the discount shows
    webhook_ids = [json.loads(e.raw_body)["id"] for e in db.session.scalars(select(SourceEvent))]
    frisbii.post("/v1/webhook/resend", json={"webhooks": webhook_ids})  # every delivery again
    settle(run_jobs)
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1


# --- currencies: EUR booked in EUR; a currency the ledger lacks needs attention, nothing half-booked ---


def subscribe_in(frisbii, run_jobs, currency: str) -> dict:
    """A new subscription on a plan in `currency`, its first invoice settled by card."""
    plan = {
        "handle": f"plan-{currency.lower()}",
        "name": f"Kaffe i {currency}",
        "amount": 2000,
        "vat": 0.25,
        "currency": currency,
        "schedule_type": "month_startdate",
        "interval_length": 1,
    }
    assert frisbii.post("/v1/plan", json=plan).status_code == 200
    created = frisbii.post(
        "/v1/subscription",
        json={
            "handle": f"sub-{currency.lower()}",
            "plan": plan["handle"],
            "create_customer": {
                "handle": f"cust-{currency.lower()}",
                "email": "kunde@example.dk",
                "country": "DK",
            },
            "signup_method": "source",
            "source": "ca_test_visa",
        },
    )
    assert created.status_code == 200, created.text
    settle(run_jobs)
    listed = frisbii.get("/v1/list/invoice", params={"subscription": f"sub-{currency.lower()}"})
    return listed.json()["content"][0]


def test_a_eur_renewal_is_booked_in_eur(db, account, setup, frisbii, run_jobs):
    link_frisbii(db, account, setup)
    invoice = subscribe_in(frisbii, run_jobs, "EUR")
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found.booked and found.raw["currency"] == "EUR" and found.totals.gross == Decimal("20.00")


def test_a_currency_the_agreement_lacks_needs_attention(
    app, owner_client, db, account, setup, frisbii, run_jobs
):
    link_frisbii(db, account, setup)
    assert economic.Agreement(int(setup.external_id)).delete("currencies", "SEK")  # the agreement lacks it
    db.session.commit()
    invoice = subscribe_in(frisbii, run_jobs, "SEK")
    transfer = transfer_of(db, invoice)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert remote(setup).find_invoice(transfer.reference) is None  # nothing half-booked
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "e-conomic har ikke valutaen SEK" in page and "Tilføj SEK" in page, page
    assert "20,00\xa0SEK" in page and "20,00\xa0kr." not in page  # the totals in the sale's currency

    # SEK added to the agreement, as the message says: the retry books it, once
    economic.Agreement(int(setup.external_id)).put(
        "currencies", "SEK", {"code": "SEK", "name": "Svenske kroner", "isoNumber": "752"}
    )
    db.session.commit()
    assert owner_client.post(f"/transfers/{transfer.id}/retry").status_code == 302
    settle(run_jobs)
    transfer = transfer_of(db, invoice)
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice(transfer.reference)
    assert found.booked and found.raw["currency"] == "SEK"
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1


def test_a_renewal_in_a_currency_dinero_lacks_needs_attention(db, account, frisbii, run_jobs, monkeypatch):
    dinero = make_setup(account, "dinero", auto_book=True)
    link_frisbii(db, account, dinero)
    monkeypatch.delitem(dinero_sandbox.EXCHANGE_RATES, "SEK")  # this Dinero has no SEK
    invoice = subscribe_in(frisbii, run_jobs, "SEK")
    transfer = transfer_of(db, invoice)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "Dinero does not have the currency SEK" in transfer.error_message, transfer.error_message
    assert remote(dinero).find_invoice(transfer.reference) is None


def test_an_order_in_a_currency_the_agreement_lacks_needs_attention(db, account, setup, run_jobs):
    source_link = make_source_link(db, account, setup)
    assert economic.Agreement(int(setup.external_id)).delete("currencies", "SEK")
    db.session.commit()
    feed(source_link, {**order(number="7001"), "currency": "SEK"})
    run_jobs()
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_ref == "7001"))
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "does not have the currency SEK" in transfer.error_message, transfer.error_message
    assert remote(setup).find_invoice(transfer.reference) is None
    assert db.session.scalar(select(func.count()).select_from(Transfer)) == 1
