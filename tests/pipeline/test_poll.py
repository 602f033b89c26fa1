"""The reconciliation poll reads the WooCommerce sandbox shop and catches what webhooks missed; polling
again, or polling what a webhook already delivered, makes no second document."""

from datetime import datetime

from sqlalchemy import select

from portal.engine.documents import COPENHAGEN
from portal.models import SourceEvent, Transfer
from portal.pipeline import polls
from portal.sources.woocommerce import SOURCE as WOOCOMMERCE
from tests.pipeline.conftest import feed, make_setup, make_source_link, remote, shop_order


def test_the_poll_catches_a_missed_order_and_races_a_webhook_harmlessly(db, account, run_jobs, shop):
    setup = make_setup(account, "e-conomic", auto_book=True)
    today = datetime.now(COPENHAGEN).date().isoformat()  # the shop's seeded, older orders stay out
    source_link = make_source_link(db, account, setup, activation_date=today)
    delivered, missed = shop_order(shop), shop_order(shop)
    feed(source_link, delivered)  # the webhook for the first arrives; the second's never did

    assert polls.due_polls() == [source_link.id]
    run_jobs()  # the webhook's event, the poll, the polled events, the transfers

    transfers = {t.order_number: t for t in db.session.scalars(select(Transfer))}
    numbers = [str(delivered["number"]), str(missed["number"])]
    assert {n: t.status for n, t in transfers.items()} == dict.fromkeys(numbers, "done")
    for number in numbers:
        booked = remote(setup)._all("/invoices/booked", f"references.other$eq:WC-12-{number}")
        assert len(booked) == 1
    db.session.expire_all()
    assert source_link.last_polled_at is not None
    assert polls.due_polls() == []  # not due again for five minutes

    assert polls.poll_orders(source_link.id) == 0  # the same versions: nothing new
    polled = db.session.scalars(select(SourceEvent.delivery_id).where(SourceEvent.source == "poll")).all()
    assert sorted(polled) == sorted(polls.poll_delivery_id(o, WOOCOMMERCE) for o in (delivered, missed))
    assert all(
        f":{o['date_modified_gmt']}:" in polls.poll_delivery_id(o, WOOCOMMERCE) for o in (delivered, missed)
    )

    # A change in the shop is a new version: the next poll records it (and it books nothing twice).
    assert shop.put(f"/orders/{missed['id']}", json={"status": "completed"}).status_code == 200
    assert polls.poll_orders(source_link.id) == 1
    run_jobs()
    booked = remote(setup)._all("/invoices/booked", f"references.other$eq:WC-12-{missed['number']}")
    assert len(booked) == 1
