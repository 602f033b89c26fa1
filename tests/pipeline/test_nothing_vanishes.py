"""Nothing vanishes: whatever goes wrong while an order is decided, planned or posted, it ends as a transfer
that needs attention, with a Danish message, on the dashboard and in the error digest — never a job that
crashes and is retried in silence, never a preview that answers 500.

The unexpected exceptions are injected (monkeypatch) into the steps' own calls — the engine's functions and
the e-conomic connector's methods — because no real system can be made to raise a RuntimeError on cue.
"""

import pytest
from sqlalchemy import select

from portal.connectors.economic import EconomicConnector
from portal.engine.sources import woocommerce as wc_source
from portal.models import SourceEvent, Transfer
from portal.pipeline import notifications, preview, retries
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.overview import account_overview
from portal.sources.woocommerce import WooCommerce
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote


class Boom(RuntimeError):
    pass


def boom(*args, **kwargs):
    raise Boom("injected")


# (where, object, attribute): every step a transfer takes, in order
STEPS = [
    ("decide", WooCommerce, "sale_state"),
    ("normalise", wc_source, "normalise_order"),
    ("zone", preview, "decide_zone"),
    ("customer", EconomicConnector, "create_customer"),
    ("products", EconomicConnector, "create_product"),
    ("draft", EconomicConnector, "create_draft_invoice"),
    ("book", EconomicConnector, "book_invoice"),
    ("payment", EconomicConnector, "register_payments"),  # the setup's batch (payment_batches)
]


def only(db, model):
    rows = db.session.scalars(select(model).execution_options(populate_existing=True)).all()
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize(("step", "target", "name"), STEPS, ids=[s[0] for s in STEPS])
def test_an_unexpected_error_at_any_step_needs_attention_visibly(
    owner_client, db, account, owner, run_jobs, mailbox, monkeypatch, step, target, name
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    monkeypatch.setattr(target, name, boom)
    feed(source_link, order(number="5101"))
    run_jobs()  # would fail on a job that crashed

    transfer = only(db, Transfer)
    assert transfer.status == "needs_attention", (step, transfer.status, transfer.error_message)
    assert transfer.error_kind == "unexpected"
    assert "Boom" in transfer.error_message
    event = only(db, SourceEvent)
    assert event.processed_at is not None  # done with: the watchdog will not replay the crash

    # On the dashboard and the transfer's page, in Danish; in the error digest.
    assert account_overview(account).attention_count == 1
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "En uventet fejl stoppede overførslen" in page
    mailbox.clear()
    assert notifications.send_error_digests() == [source_link.id]
    assert "5101" in mailbox.messages[0].get_body(("plain",)).get_content()

    # Once the cause is gone, a retry finishes it — exactly once.
    monkeypatch.undo()
    retries.retry(transfer)
    run_jobs()
    transfer = only(db, Transfer)
    assert transfer.status == "done", transfer.error_message
    assert len(remote(setup)._all("/invoices/booked", f"references.other$eq:{transfer.reference}")) == 1


def test_an_oss_order_to_a_country_missing_from_the_rate_table_needs_attention(
    owner_client, db, account, run_jobs
):
    """Italy is not in the built-in rate table: the worker crashed five times on UnknownRate, left no
    transfer, and the preview answered 500."""
    assert "IT" not in pipeline_settings.vat_rates().countries
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, oss=True)
    feed(source_link, order(number="5102", country="IT", rate_percent=22))
    run_jobs()

    transfer = only(db, Transfer)
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "configuration")
    assert "No VAT rate for IT" in transfer.error_message
    assert remote(setup)._all("/invoices/drafts", "references.other$eq:WC-12-5102") == []

    page = owner_client.get(f"/transfers/{transfer.id}/preview")
    assert page.status_code == 200
    assert "Bogbro kender ingen momssats" in page.get_data(as_text=True)


@pytest.mark.parametrize("country", ["ZZ", "XX", "D1"])
def test_a_country_code_that_is_no_country_is_refused_before_anything_is_posted(
    owner_client, db, account, run_jobs, country
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    calls_before = len(remote(setup)._all("/customers"))
    feed(source_link, order(number="5103", country=country))
    run_jobs()

    transfer = only(db, Transfer)
    assert (transfer.status, transfer.error_kind) == ("needs_attention", "order")
    assert f"“{country}” is not a country" in transfer.error_message
    assert len(remote(setup)._all("/customers")) == calls_before  # no customer made either
    assert not transfer.draft_requested
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert f"Landekoden “{country}” i ordren er ikke et land" in page


def test_our_database_going_away_is_left_to_the_watchdog_not_blamed_on_the_order(db, account, monkeypatch):
    """An OperationalError is our database restarting, not the order's fault: the transfer is not marked as
    needing attention (nothing could be written anyway); it stays `running` without its lease, and the
    watchdog resumes it from its checkpoint."""
    from datetime import timedelta

    from rq import SimpleWorker
    from sqlalchemy.exc import OperationalError

    from portal.pipeline import scheduling
    from portal.queue import get_queue

    def database_gone(*args, **kwargs):
        raise OperationalError("UPDATE transfers …", {}, Exception("server closed the connection"))

    scheduling.recover(timedelta(minutes=10))  # this Redis is known
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    monkeypatch.setattr(EconomicConnector, "book_invoice", database_gone)
    feed(source_link, order(number="5104"))
    queue = get_queue()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    transfer = only(db, Transfer)
    assert transfer.status == "running" and transfer.error_kind is None  # not blamed on the order

    monkeypatch.undo()
    assert scheduling.recover(timedelta(minutes=10))["transfers"] == [transfer.id]
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    transfer = only(db, Transfer)
    assert transfer.status == "done", transfer.error_message
    assert len(remote(setup)._all("/invoices/booked", f"references.other$eq:{transfer.reference}")) == 1
