"""The daily drift check against the real e-conomic sandbox: what someone changes in the ledger itself (an
account barred, a VAT code's rate changed), a future change in the VAT rate table, and a ledger that does
not answer — each found by the check, stored, and shown in Danish on the setup page, the dashboard and in
the daily report; a good setup yields nothing."""

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from portal.engine.documents import COPENHAGEN
from portal.models import AccountingSetup, SandboxRecord, Template
from portal.pipeline import notifications
from portal.queue import get_queue
from portal.sandbox.economic import Agreement
from portal.setups import drift
from tests.pipeline.conftest import make_setup, make_source_link

HTMX = {"HX-Request": "true"}


@pytest.fixture
def setup(account):
    return make_setup(account, "e-conomic")


def check(db, setup):
    result = drift.check_setup(setup.id)
    db.session.expire_all()
    return result


def card(client, setup, kind, zone=""):
    template = setup.template(kind, zone)
    return client.get(f"/setup/{setup.id}/templates/{template.id}", headers=HTMX).get_data(as_text=True)


def dashboard(client):
    return client.get("/dashboard").get_data(as_text=True)


def at_copenhagen(day, hour):
    return datetime.combine(day, time(hour, 5), COPENHAGEN).astimezone(UTC)


def test_a_good_setup_yields_nothing(owner_client, db, setup):
    result = check(db, setup)
    assert (result["state"], result["findings"]) == ("ok", [])
    assert db.session.get(AccountingSetup, setup.id).drift_checked_on == drift.copenhagen_today()
    assert "daglige kontrol" not in dashboard(owner_client)
    assert "daglige kontrol" not in card(owner_client, setup, "goods")


def test_an_account_barred_in_the_ledger_is_found_and_named_in_danish(owner_client, db, setup):
    chosen = setup.template("payments").values["account"]
    agreement = Agreement(int(setup.external_id))
    account = agreement.get("accounts", int(chosen))
    assert account is not None
    agreement.put("accounts", int(chosen), {**account, "barred": True})
    db.session.commit()

    result = check(db, setup)
    assert result["state"] == "attention"
    [finding] = result["findings"]
    payments = setup.template("payments")
    assert (finding["template"], finding["field"], finding["level"]) == (payments.id, "account", "refuse")
    assert finding["message"]["da"].startswith(
        "5830 Betalingsformidler (clearing) findes ikke længere i e-conomic eller er spærret dér"
    ), finding["message"]["da"]
    assert "no longer exists in e-conomic, or is barred there" in finding["message"]["en"]

    # The card's live checks say it already (the check refreshed the choices): said once, not twice.
    shown = card(owner_client, setup, "payments")
    assert "findes ikke længere i e-conomic; vælg en anden." in shown
    assert "Fundet ved den daglige kontrol" not in shown
    page = dashboard(owner_client)
    assert (
        "Den daglige kontrol af" in page and "fandt skabeloner, der ikke længere passer til e-conomic" in page
    )
    assert f'href="/setup/{setup.id}#template-{payments.id}"' in page
    assert "eller er spærret dér" in page

    # Opened again in e-conomic: the next check clears it.
    agreement.put("accounts", int(chosen), account)
    db.session.commit()
    assert check(db, setup)["state"] == "ok"
    assert "daglige kontrol" not in dashboard(owner_client)


def test_a_product_group_deleted_in_e_conomic_is_found(db, setup):
    freight = setup.template("freight")
    Agreement(int(setup.external_id)).delete("product-groups", int(freight.values["product_group"]))
    db.session.commit()
    [finding] = check(db, setup)["findings"]
    assert (finding["template"], finding["field"], finding["level"]) == (
        freight.id,
        "product_group",
        "refuse",
    )
    assert finding["message"]["da"].startswith("Fragt findes ikke længere i e-conomic"), finding


def test_an_account_deleted_in_dynaccount_is_found(db, account):
    setup = make_setup(account, "dynaccount")
    assert check(db, setup)["state"] == "ok"
    goods = setup.template("goods", "domestic")
    record = db.session.scalar(
        select(SandboxRecord)
        .where(SandboxRecord.system == "dynaccount", SandboxRecord.collection == "account")
        .where(SandboxRecord.document["account_id_"].as_string() == goods.values["account"])
    )
    db.session.delete(record)
    db.session.commit()
    found = {(f["template"], f["field"]): f["message"]["da"] for f in check(db, setup)["findings"]}
    assert (goods.id, "account") in found  # and every other template that chose the same account
    for template_id, field in found:
        template = db.session.get(Template, template_id)
        assert template.values[field] == goods.values["account"]
        assert "findes ikke længere i Dynaccount eller er spærret dér" in found[(template_id, field)]


def test_a_vat_code_whose_rate_changed_in_the_ledger_is_found(owner_client, db, setup):
    agreement = Agreement(int(setup.external_id))
    code = agreement.get("vat-accounts", "U25")
    agreement.put("vat-accounts", "U25", {**code, "ratePercentage": Decimal("20.00")})
    db.session.commit()

    result = check(db, setup)
    goods = setup.template("goods")
    found = {(f["template"], f["field"]): f for f in result["findings"]}
    finding = found[(goods.id, "product_group")]
    assert finding["level"] == "refuse"
    assert "U25 med 20 %; salg i Danmark skal have 25 % salgsmoms" in finding["message"]["da"], finding
    assert "U25 med 20 %" in card(owner_client, setup, "goods")


def test_an_oss_group_still_at_finlands_old_rate_is_found(db, setup):
    """IEX's most common failure: the ledger's Finnish OSS VAT code still at 24 %, the law at 25.5 %."""
    agreement = Agreement(int(setup.external_id))
    finnish = agreement.get("vat-accounts", "FI255")
    agreement.put("vat-accounts", "FI255", {**finnish, "ratePercentage": Decimal("24.00")})
    db.session.commit()
    [finding] = check(db, setup)["findings"]
    assert (finding["template"], finding["field"], finding["level"]) == (
        setup.template("oss").id,
        "FI",
        "warn",
    )
    assert "24 % moms" in finding["message"]["da"] and "25,5 %" in finding["message"]["da"], finding


def test_a_known_future_rate_change_is_warned_about_before_it_takes_effect(
    app, owner_client, db, setup, tmp_path
):
    """Finland's rate goes up in 30 days in the rate table; the ledger's OSS Finland group still carries
    today's 25.5 %: warned now, with the day, in Danish. Today's rates all fit, so nothing else is said."""
    change = drift.copenhagen_today() + timedelta(days=30)
    rates = {
        "items": {
            "DK": [{"effective_from": "0000-01-01", "rates": {"standard": 25}}],
            "SE": [
                {"effective_from": "0000-01-01", "rates": {"standard": 25, "reduced1": 6, "reduced2": 12}}
            ],
            "DE": [{"effective_from": "0000-01-01", "rates": {"standard": 19, "reduced": 7}}],
            "FR": [{"effective_from": "0000-01-01", "rates": {"standard": 20, "reduced": 5.5}}],
            "FI": [
                {"effective_from": change.isoformat(), "rates": {"standard": 27, "reduced": 14}},
                {"effective_from": "2024-09-01", "rates": {"standard": 25.5, "reduced": 14}},
                {"effective_from": "0000-01-01", "rates": {"standard": 24, "reduced": 14}},
            ],
        }
    }
    path = tmp_path / "vat-rates.json"
    path.write_text(json.dumps(rates))
    app.config["VAT_RATES_FILE"] = str(path)
    try:
        result = check(db, setup)
    finally:
        app.config.pop("VAT_RATES_FILE")
    oss = setup.template("oss")
    [finding] = result["findings"]
    assert (finding["template"], finding["field"], finding["level"]) == (oss.id, "FI", "warn")
    danish = finding["message"]["da"]
    assert danish.startswith(f"Fra {change.day}. "), danish
    assert "er momssatsen i Finland 27 %" in danish and "25,5 %" in danish
    assert "Ret momskoden i e-conomic den dag." in danish
    shown = card(owner_client, setup, "oss")
    assert "Fundet ved den daglige kontrol" in shown and "er momssatsen i Finland 27 %" in shown

    # Choosing again in the template drops what the check said about it (the wizard judges the new value).
    template = setup.template("oss")
    owner_client.post(f"/setup/{setup.id}/templates/{template.id}", data={**template.values, "FI": ""})
    db.session.expire_all()
    assert setup.drift["findings"] == [] and setup.drift["state"] == "ok"


def test_an_unreachable_ledger_is_reported_as_such_not_as_wrong_accounts(owner_client, db, setup, redis):
    owner_client.put("/sandbox/e-conomic/_faults", json={"next": ["500"] * 20}, csrf=False)
    try:
        result = check(db, setup)
    finally:
        owner_client.delete("/sandbox/e-conomic/_faults", csrf=False)
    assert (result["state"], result["findings"]) == ("unreachable", [])
    assert "e-conomic svarede ikke på den daglige kontrol" in result["message"]["da"], result["message"]
    page = dashboard(owner_client)
    assert "e-conomic svarede ikke på den daglige kontrol" in page
    assert "fandt skabeloner" not in page


def test_the_check_is_queued_once_a_day_on_the_low_queue_and_run_by_a_worker(db, setup):
    today = drift.copenhagen_today()
    assert drift.queue_due_checks(now=at_copenhagen(today, 4)) == []  # before 05:00
    assert drift.queue_due_checks(now=at_copenhagen(today, 5)) == [setup.id]
    assert drift.queue_due_checks(now=at_copenhagen(today, 9)) == []  # claimed today
    low = get_queue("low")
    assert low.count == 1
    SimpleWorker([low], connection=low.connection).work(burst=True)
    assert not low.failed_job_registry.get_job_ids()
    db.session.expire_all()
    assert db.session.get(AccountingSetup, setup.id).drift["state"] == "ok"


def test_the_owner_can_run_the_check_now(owner_client, db, setup, run_jobs):
    page = owner_client.get(f"/setup/{setup.id}").get_data(as_text=True)
    assert "Kontrolleres mod e-conomic og momssatserne hver morgen." in page
    assert owner_client.post(f"/setup/{setup.id}/check").status_code == 302
    run_jobs()
    db.session.expire_all()
    assert setup.drift["state"] == "ok"
    page = owner_client.get(f"/setup/{setup.id}").get_data(as_text=True)
    assert "Kontrolleres mod e-conomic og momssatserne hver morgen, senest " in page


def test_a_member_cannot_run_the_check(member_client, db, account):
    setup = make_setup(account, "e-conomic")
    assert member_client.post(f"/setup/{setup.id}/check").status_code == 403
    assert get_queue().count == 0


def test_the_daily_report_tells_what_the_check_found(db, account, owner, setup, mailbox):
    source_link = make_source_link(db, account, setup, notify={"daily_report": True})
    agreement = Agreement(int(setup.external_id))
    chosen = setup.template("payments").values["account"]
    account_document = agreement.get("accounts", int(chosen))
    agreement.put("accounts", int(chosen), {**account_document, "barred": True})
    db.session.commit()
    check(db, setup)
    mailbox.clear()

    today = drift.copenhagen_today() + timedelta(days=1)
    assert notifications.send_daily_reports(now=at_copenhagen(today, 7)) == [source_link.id]
    message = mailbox.messages[0]
    text = message.get_body(("plain",)).get_content()
    assert "Den daglige kontrol af" in text
    assert "- Betalinger: 5830 Betalingsformidler (clearing) findes ikke længere i e-conomic" in text, text
    assert "eller er spærret dér" in message.get_body(("html",)).get_content()


def test_an_inactive_setup_is_not_checked(db, setup):
    setup.active = False
    db.session.commit()
    assert drift.check_setup(setup.id) is None
    assert drift.queue_due_checks(now=at_copenhagen(date.today(), 6)) == []
