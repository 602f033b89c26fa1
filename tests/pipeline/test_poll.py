"""The reconciliation poll catches what webhooks missed; polling again, or polling what a webhook already
delivered, makes no second document."""

from sqlalchemy import select

from portal.connectors import SYSTEM_MODULES
from portal.models import SourceEvent, Transfer
from portal.pipeline import operations
from tests.pipeline import signed_source
from tests.pipeline.conftest import feed, make_integration, make_setup, remote
from tests.pipeline.test_economic_pipeline import order


def test_the_poll_catches_a_missed_order_and_races_a_webhook_harmlessly(db, account, run_jobs, monkeypatch):
    monkeypatch.setitem(SYSTEM_MODULES, "woocommerce", "tests.pipeline.signed_source")
    setup = make_setup(account, "e-conomic", auto_book=True)
    integration = make_integration(db, account, setup)
    delivered = {**order(), "date_modified_gmt": "2026-11-20T10:05:00"}
    missed = {**order(number="5002"), "date_modified_gmt": "2026-11-20T11:00:00"}
    monkeypatch.setitem(signed_source.SHOP, "orders", {"5001": delivered, "5002": missed})
    monkeypatch.setitem(signed_source.SHOP, "polled_since", [])
    feed(integration, delivered)  # the webhook for 5001 arrives; 5002's never did

    assert operations.due_polls() == [integration.id]
    run_jobs()  # the webhook's event, the poll (two pages), the polled events, the transfers

    transfers = {t.order_number: t for t in db.session.scalars(select(Transfer))}
    assert {n: t.status for n, t in transfers.items()} == {"5001": "done", "5002": "done"}
    for reference in ("WC-12-5001", "WC-12-5002"):
        booked = remote(setup)._all("/invoices/booked", f"references.other$eq:{reference}")
        assert len(booked) == 1
    db.session.expire_all()
    assert integration.last_polled_at is not None
    assert operations.due_polls() == []  # not due again for five minutes

    assert operations.poll_orders(integration.id) == 0  # the same versions: nothing new
    polled = db.session.scalars(select(SourceEvent.delivery_id).where(SourceEvent.source == "poll")).all()
    assert sorted(polled) == ["poll:5001:2026-11-20T10:05:00", "poll:5002:2026-11-20T11:00:00"]
    since = signed_source.SHOP["polled_since"]
    assert since[-1] < integration.last_polled_at  # the next window overlaps the last one
