"""Stripe in the portal, like a webshop: the restricted key checked against the Stripe sandbox and stored
encrypted, linked to an accounting setup (the webhook endpoint registered at Stripe and its whsec_
secret stored on the link), and the settings that are Stripe's own (which invoices transfer)."""

from sqlalchemy import func, select

from portal.models import Connection, SourceLink
from portal.sandbox.stripe import DEMO_ACCOUNT, Call
from tests.pipeline.conftest import make_setup


def body(response) -> str:
    return response.get_data(as_text=True)


def test_connect_link_and_settings(owner_client, db, account):
    setup = make_setup(account, "e-conomic", auto_book=True)
    page = owner_client.get("/shops/connect/stripe?sandbox=1")
    assert page.status_code == 200 and "rk_test_bogbro_demo" in body(page)

    wrong = owner_client.post("/shops/connect/stripe", data={"sandbox": "1", "api_key": "hemmelig"})
    refused = owner_client.post("/shops/connect/stripe", data={"sandbox": "1", "api_key": "rk_test_forkert"})
    assert (wrong.status_code, refused.status_code) == (400, 400)
    assert "rk_" in body(wrong) and "Stripe" in body(refused)
    assert db.session.scalar(select(func.count(Connection.id)).where(Connection.system == "stripe")) == 0

    made = owner_client.post("/shops/connect/stripe", data={"sandbox": "1", "api_key": "rk_test_bogbro_demo"})
    assert made.status_code == 302, body(made)
    connection = db.session.scalar(select(Connection).where(Connection.system == "stripe"))
    assert connection.role == "subscription" and connection.credentials == {"api_key": "rk_test_bogbro_demo"}
    assert "Stripe" in body(owner_client.get("/shops"))

    linked = owner_client.post(
        f"/shops/{connection.id}/link", data={"setup": str(setup.id), "name": "Abonnementer"}
    )
    assert linked.status_code == 302, body(linked)
    source_link = db.session.scalar(select(SourceLink))
    assert source_link.webhook_secret["secret"].startswith("whsec_")
    assert source_link.settings["states"] == {"paid": "booked"}
    assert source_link.settings["paid_methods"] == ["stripe"]
    endpoints = Call(DEMO_ACCOUNT, {}).store.all("webhook_endpoints")
    assert [e["url"].split("/webhooks/")[1] for e in endpoints] == [f"stripe/{source_link.webhook_token}"]

    settings = body(owner_client.get(f"/shops/source_links/{source_link.id}"))
    for name in ("sale_kinds", "transfer_zero", "state_payment_failed"):
        assert f'name="{name}"' in settings, name
    assert "Betaling mislykkedes" in settings

    # renewals only, invoices for 0 too; card payments registered as paid, bank transfers with their terms
    from tests.shops.test_shops import settings_form, source_link_terms

    terms = source_link_terms(source_link)
    form = settings_form(db, source_link, sale_kinds="renewals", transfer_zero="y")
    form = {k: v for k, v in form.items() if not k.startswith(("state_", "payments-"))}
    form.update(
        {
            "state_paid": "booked",
            "state_open": "booked",
            "payments-0-method": "stripe",
            "payments-0-paid": "y",
            "payments-1-method": "bank_transfer",
            "payments-1-terms": terms[0],
        }
    )
    saved = owner_client.post(f"/shops/source_links/{source_link.id}", data=form)
    assert saved.status_code == 302, body(saved)
    db.session.expire_all()
    stored = source_link.settings
    assert stored["sale_kinds"] == ["renewals"]
    assert stored["zero_amount"] == "transfer" and stored["paid_methods"] == ["stripe"]
    assert stored["payment_terms_by_method"] == {"bank_transfer": terms[0]}
    assert stored["states"]["paid"] == stored["states"]["open"] == "booked"
    assert stored["states"]["payment_failed"] == "none"
