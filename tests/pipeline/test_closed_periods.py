"""An order dated in a closed accounting year, through the real path into all three ledgers' sandboxes: held
as "needs attention" with what to do (the default), or dated on the first open day with the order date in
the text — and the sandboxes refuse such a document the way the ledgers do when Bogbro is not asked."""

from datetime import date

import pytest
from sqlalchemy import select

from portal.connectors.errors import ConfigurationError
from portal.extensions import db as _db
from portal.models import Transfer
from portal.pipeline import periods, preview, retries
from portal.redis_client import get_redis
from portal.sandbox.economic_periods import close_year
from portal.sandbox.store import SandboxStore
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote

SYSTEMS = ["e-conomic", "dinero", "dynaccount"]
THIS_YEAR = date.today().year
LAST_YEAR = THIS_YEAR - 1
ORDER_DAY = date(LAST_YEAR, 11, 20)
FIRST_OPEN = date(THIS_YEAR, 1, 1)
REF = "WC-12-5001"


def close_last_year(setup) -> None:
    """Last year closed in the ledger, as a bookkeeper does after the annual accounts. Dinero's API shows no
    closed year: there the first accounting year is this one (nothing can be booked before it)."""
    store = SandboxStore(setup.system, setup.external_id)
    if setup.system == "e-conomic":
        close_year(setup.external_id, str(LAST_YEAR))  # the demo's way (README)
    elif setup.system == "dinero":
        assert store.delete("years", LAST_YEAR)
    else:
        key, year = next((k, y) for k, y in store.items("year") if y["name"] == str(LAST_YEAR))
        store.put("year", key, {**year, "is_closed": "YES"})
    _db.session.commit()


def reopen_last_year(setup) -> None:
    store = SandboxStore(setup.system, setup.external_id)
    if setup.system == "e-conomic":
        close_year(setup.external_id, str(LAST_YEAR), closed=False)
    elif setup.system == "dinero":
        store.put(
            "years",
            LAST_YEAR,
            {"Name": str(LAST_YEAR), "FromDate": f"{LAST_YEAR}-01-01", "ToDate": f"{LAST_YEAR}-12-31"},
        )
    else:
        key, year = next((k, y) for k, y in store.items("year") if y["name"] == str(LAST_YEAR))
        store.put("year", key, {**year, "is_closed": "NO"})
    _db.session.commit()


def posted(setup) -> tuple[date, str]:
    """The date and text of the sale as it stands in the ledger (read from the sandbox's own state)."""
    store = SandboxStore(setup.system, setup.external_id)
    if setup.system == "e-conomic":
        document = remote(setup).find_invoice(REF).raw
        return date.fromisoformat(document["date"]), document["notes"]["textLine1"]
    if setup.system == "dinero":
        document = next(v for _, v in store.items("invoices") if v.get("ExternalReference") == REF)
        return date.fromisoformat(document["Date"][:10]), document["Comment"]
    from portal.sandbox.dynaccount import day

    enclosure = next(row for _, row in store.items("enclosure") if row.get("note") == REF)
    return day(enclosure["time"]), enclosure["txt"]


def old_order():
    return order(date_gmt=f"{ORDER_DAY.isoformat()}T10:00:00")


@pytest.mark.parametrize("system", SYSTEMS)
def test_held_by_default_with_what_to_do_then_posted_once_the_year_is_open(db, account, run_jobs, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    assert "closed_period" not in source_link.settings  # the default holds
    close_last_year(setup)
    feed(source_link, old_order())
    run_jobs()

    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "closed accounting period" in transfer.error_message, transfer.error_message
    assert "Date it on the first open day" in transfer.error_message
    assert remote(setup).find_invoice(REF) is None  # nothing was sent

    reopen_last_year(setup)  # the cache still says closed: a closed verdict is always read afresh
    retries.retry(transfer)
    db.session.commit()
    run_jobs()
    db.session.refresh(transfer)
    assert transfer.status == "done", transfer.error_message
    day, _ = posted(setup)
    assert day == ORDER_DAY


@pytest.mark.parametrize("system", SYSTEMS)
def test_dated_on_the_first_open_day_with_the_order_date_in_the_text(db, account, run_jobs, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup, closed_period="first_open_day")
    close_last_year(setup)
    feed(source_link, old_order())
    run_jobs()

    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    day, text = posted(setup)
    assert day == FIRST_OPEN
    assert f"ordredato {ORDER_DAY:%d.%m.%Y}" in text
    assert "Ordre #5001" in text
    said = [entry.message for entry in transfer.logs if entry.step == "decide"]
    assert any("closed accounting period" in line for line in said), said


@pytest.mark.parametrize("system", SYSTEMS)
def test_an_order_in_an_open_period_is_untouched_and_the_periods_are_cached(db, account, run_jobs, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup, closed_period="first_open_day")
    feed(source_link, old_order())
    run_jobs()
    assert db.session.scalar(select(Transfer)).status == "done"
    assert posted(setup)[0] == ORDER_DAY
    assert get_redis().get(f"bogbro:periods:{setup.id}") is not None
    shown = periods.open_periods(remote(setup), setup.id)
    assert periods.first_open_day(shown, ORDER_DAY) == ORDER_DAY


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_sandboxes_refuse_a_document_in_a_closed_year(db, account, run_jobs, system):
    """Without Bogbro's check the ledger itself says no (e-conomic at the draft, Dinero at booking,
    Dynaccount at the voucher), as the real systems do; and each connector shows the year closed."""
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="5000", date_gmt=f"{THIS_YEAR}-01-05T10:00:00"))  # makes the customer
    run_jobs()
    assert db.session.scalar(select(Transfer)).status == "done"
    plan = preview.preview(source_link, old_order())
    connector = remote(setup)
    customer = connector.find_customer("email", plan.customer.email)
    document = plan.for_customer(customer)
    close_last_year(setup)

    shown = connector.open_periods()
    assert periods.first_open_day(shown, ORDER_DAY) == FIRST_OPEN
    assert periods.first_open_day(shown, FIRST_OPEN) == FIRST_OPEN
    with pytest.raises(ConfigurationError) as refused:
        draft = connector.create_draft_invoice(document)
        connector.book_invoice(draft)  # Dinero keeps drafts outside the ledger: it refuses the booking
    assert str(LAST_YEAR) in str(refused.value) or "year" in str(refused.value).lower(), refused.value


def test_a_closed_period_inside_an_open_e_conomic_year(db, account, run_jobs):
    """e-conomic closes periods one by one too: November closed, the sale is dated 1 December."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, closed_period="first_open_day")
    store = SandboxStore("e-conomic", setup.external_id)
    year = store.get("accounting-years", str(LAST_YEAR))
    store.put("accounting-years", str(LAST_YEAR), {**year, "_closedPeriods": [ORDER_DAY.month]})
    db.session.commit()
    feed(source_link, old_order())
    run_jobs()

    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    assert posted(setup)[0] == date(LAST_YEAR, ORDER_DAY.month + 1, 1)
