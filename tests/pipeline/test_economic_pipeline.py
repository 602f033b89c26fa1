"""Orders through the whole pipeline into the e-conomic sandbox: record → process → run_transfer on a real RQ
worker, checking the documents in the sandbox itself."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.models import SourceEvent, Transfer, TransferLog
from portal.pipeline import intake, locks, messages, posting, preview, retries, scheduling, steps
from tests.pipeline.conftest import (
    faults,
    feed,
    lose_first_answer,
    make_setup,
    make_source_link,
    order,
    queued_behind_a_lock,
    release_scheduled,
    remote,
    shop_order,
)

REF = "WC-12-5001"


def only_transfer(db):
    transfers = db.session.scalars(select(Transfer)).all()
    assert len(transfers) == 1, [(t.kind, t.source_ref, t.status) for t in transfers]
    return transfers[0]


@pytest.fixture
def setup_draft(account):
    return make_setup(account, "e-conomic", auto_book=False)


@pytest.fixture
def setup_booked(account):
    return make_setup(account, "e-conomic", auto_book=True)


def test_domestic_b2c_order_becomes_a_draft_with_our_reference(db, account, setup_draft, run_jobs):
    source_link = make_source_link(db, account, setup_draft)
    assert feed(source_link, order()) is not None
    run_jobs()

    found = remote(setup_draft).find_invoice(REF)
    assert found is not None and not found.booked
    assert found.totals.gross == Decimal("549.00")
    assert found.totals.vat == Decimal("109.80")
    lines = found.raw.get("lines") or []
    assert {line["product"]["productNumber"] for line in lines} >= {"KRUS-01", "TE-02", "FRAGT"}
    transfer = only_transfer(db)
    assert (transfer.status, transfer.kind, transfer.reference) == ("done", "invoice", REF)
    assert transfer.draft_id == found.id and transfer.booked_number is None
    assert transfer.shop_gross == transfer.computed_gross == Decimal("549.00")
    assert [log.step for log in transfer.logs][:3] == ["customer", "products", "draft"]


def test_auto_book_books_the_invoice(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, order())
    run_jobs()

    found = remote(setup_booked).find_invoice(REF)
    assert found.booked and found.number
    assert found.totals.gross == Decimal("549.00")
    transfer = only_transfer(db)
    assert transfer.status == "done" and transfer.booked_number == found.number


def test_a_draft_state_makes_a_draft_even_with_auto_book(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    payload["status"] = "on-hold"
    feed(source_link, payload)
    run_jobs()
    assert not remote(setup_booked).find_invoice(REF).booked
    # later the order is paid: the same draft is booked, no second document
    payload["status"] = "processing"
    feed(source_link, payload)
    run_jobs()
    found = remote(setup_booked).find_invoice(REF)
    assert found.booked
    assert only_transfer(db).booked_number == found.number
    drafts = remote(setup_booked)._all("/invoices/drafts", f"references.other$eq:{REF}")
    assert drafts == []


def test_replays_and_second_deliveries_make_exactly_one_document(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    assert feed(source_link, payload, delivery_id="d-1") is not None
    assert feed(source_link, payload, delivery_id="d-1") is None  # a replay: not even stored
    assert feed(source_link, payload, delivery_id="d-2") is not None  # the same order, delivered again
    run_jobs()
    feed(source_link, payload, delivery_id="d-3")  # and once more after it was booked
    run_jobs()

    assert db.session.scalar(select(func.count(SourceEvent.id))) == 3
    transfer = only_transfer(db)
    assert transfer.status == "done"
    connector = remote(setup_booked)
    booked = connector._all("/invoices/booked", f"references.other$eq:{REF}")
    drafts = connector._all("/invoices/drafts", f"references.other$eq:{REF}")
    assert len(booked) == 1 and drafts == []


def test_a_state_that_does_not_transfer_is_skipped_with_a_reason(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    payload["status"] = "pending"
    feed(source_link, payload)
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "skipped"
    assert "Pending payment" in transfer.reason and "not set to transfer" in transfer.reason
    assert remote(setup_booked).find_invoice(REF) is None


def test_an_order_before_the_activation_date_is_skipped(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked, activation_date="2026-11-21")
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "skipped" and "activation date 21 Nov 2026" in transfer.reason
    assert remote(setup_booked).find_invoice(REF) is None

    # imported on purpose: transferred after all, once
    payload = order()
    assert intake.import_order(source_link, payload) is not None
    assert intake.import_order(source_link, payload) is None
    run_jobs()
    db.session.expire_all()
    assert transfer.status == "done" and remote(setup_booked).find_invoice(REF).booked


def test_a_500_on_the_draft_is_looked_up_and_retried_into_one_document(
    app, db, account, setup_booked, run_jobs, redis, fast_retries
):
    source_link = make_source_link(db, account, setup_booked)
    # Warm the caches so the next request the sandbox sees from the transfer is the draft POST.
    feed(source_link, order(number="4999"))
    run_jobs()
    # The first request is the draft POST (no lookup before a first create): it answers 500, carried
    # out or not.
    faults(app, "e-conomic", next=["500"])
    feed(source_link, order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == "5001"))
    assert transfer.status == "pending" and transfer.error_kind == "transient"
    assert transfer.draft_requested and "may or may not" in transfer.error_message
    assert release_scheduled(redis) == 1
    run_jobs()

    db.session.expire_all()
    assert transfer.status == "done" and transfer.attempts == 2
    connector = remote(setup_booked)
    assert len(connector._all("/invoices/booked", f"references.other$eq:{REF}")) == 1
    assert connector._all("/invoices/drafts", f"references.other$eq:{REF}") == []


def test_429_is_retried(app, db, account, setup_booked, run_jobs, redis, fast_retries):
    source_link = make_source_link(db, account, setup_booked)
    app.config["CONNECTOR_RETRIES"] = 0  # the connector gives up at once: the pipeline retries
    faults(app, "e-conomic", next=["429", "429"], retry_after=0)
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "pending" and "busy" in transfer.error_message
    while release_scheduled(redis):
        run_jobs()
    db.session.expire_all()
    assert transfer.status == "done" and transfer.attempts == 3
    assert remote(setup_booked).find_invoice(REF).booked


def test_transient_errors_give_up_after_the_limit(
    app, db, account, setup_booked, run_jobs, redis, fast_retries
):
    source_link = make_source_link(db, account, setup_booked)
    app.config["CONNECTOR_RETRIES"] = 0
    saved = app.config["PIPELINE_MAX_ATTEMPTS"]
    app.config["PIPELINE_MAX_ATTEMPTS"] = 2
    try:
        faults(app, "e-conomic", rate_429=1.0, retry_after=0)
        feed(source_link, order())
        run_jobs()
        while release_scheduled(redis):
            run_jobs()
    finally:
        app.config["PIPELINE_MAX_ATTEMPTS"] = saved
        faults(app, "e-conomic")
    transfer = only_transfer(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "transient"
    assert "Gave up after 2 attempts" in transfer.error_message
    assert remote(setup_booked).find_invoice(REF) is None  # every attempt was refused: nothing in e-conomic


def test_a_deleted_product_group_needs_attention_with_the_message(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    goods = setup_booked.template("goods")
    goods.values = {"product_group": "999"}  # deleted in e-conomic since it was chosen
    db.session.commit()
    feed(source_link, order())
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "e-conomic refused" in transfer.error_message and "templates" in transfer.error_message
    error = next(log for log in transfer.logs if log.step == "error")
    assert error.details["system"] == "e-conomic" and error.details["status"] in (400, 422)
    assert remote(setup_booked).find_invoice(REF) is None


def test_totals_beyond_the_tolerance_leave_a_draft_and_need_attention(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, order(total="560.00"))  # the shop says 560.00; the lines make 549.00
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "totals_differ"
    assert "560.00" in transfer.error_message and "549.00" in transfer.error_message
    assert (transfer.shop_gross, transfer.computed_gross) == (Decimal("560.00"), Decimal("549.00"))
    found = remote(setup_booked).find_invoice(REF)
    assert found is not None and not found.booked


def refund_event(payload, refund_id=77, amount="300.00", items=()):
    from tests.engine.factories import wc_item

    lines = []
    for name, sku, qty, total, tax, original_id in items:
        line = wc_item(name, f"-{total}", f"-{tax}", -qty, sku)
        line["meta_data"] = [{"key": "_refunded_item_id", "value": str(original_id)}]
        lines.append(line)
    refund = {
        "id": refund_id,
        "date_created_gmt": "2026-11-22T09:00:00",
        "amount": amount,
        "reason": "Knust",
        "line_items": lines,
    }
    return {"order": payload, "refund": refund}


def feed_refund(source_link, body, delivery_id=None):
    import json
    import uuid

    return intake.record_event(
        source_link,
        "poll",
        delivery_id or str(uuid.uuid4()),
        intake.REFUND_TOPIC,
        str(body["refund"]["id"]),
        json.dumps(body),
    )


def test_a_refund_becomes_a_credit_note_for_the_booked_invoice(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    feed(source_link, payload)
    run_jobs()
    tekande_id = payload["line_items"][1]["id"]
    feed_refund(
        source_link, refund_event(payload, items=[("Tekande", "TE-02", 1, "240.00", "60.00", tekande_id)])
    )
    run_jobs()

    credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
    assert credit.status == "done", (credit.status, credit.error_message)
    assert credit.reference == f"{REF}-R77"
    found = remote(setup_booked).find_invoice(f"{REF}-R77")
    assert found is not None and found.totals.gross == Decimal("-300.00")


def test_a_refund_waits_until_the_invoice_is_booked(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    payload["status"] = "on-hold"  # a draft only, for now
    feed(source_link, payload)
    run_jobs()
    tekande_id = payload["line_items"][1]["id"]
    feed_refund(
        source_link, refund_event(payload, items=[("Tekande", "TE-02", 1, "240.00", "60.00", tekande_id)])
    )
    run_jobs()
    credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
    assert credit.status == "waiting" and "waits" in credit.reason
    assert remote(setup_booked).find_invoice(f"{REF}-R77") is None

    payload["status"] = "processing"  # paid: the invoice is booked, the credit note follows
    feed(source_link, payload)
    run_jobs()
    db.session.expire_all()
    assert credit.status == "done"
    assert remote(setup_booked).find_invoice(f"{REF}-R77").totals.gross == Decimal("-300.00")


def test_the_watchdog_requeues_transfers_left_running(db, account, setup_booked, run_jobs):
    from datetime import UTC, datetime, timedelta

    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, order())
    # The worker "died" after marking it running: nothing happened remotely yet.
    from rq import Queue

    from portal.redis_client import get_redis

    Queue("default", connection=get_redis()).empty()
    intake.process_event(db.session.scalar(select(SourceEvent.id)))
    Queue("default", connection=get_redis()).empty()
    transfer = only_transfer(db)
    transfer.status, transfer.started_at = "running", datetime.now(UTC) - timedelta(hours=1)
    db.session.commit()

    assert scheduling.requeue_stuck(timedelta(minutes=10)) == [transfer.id]
    run_jobs()
    db.session.expire_all()
    assert transfer.status == "done"
    assert remote(setup_booked).find_invoice(REF).booked


def test_a_paid_order_gets_its_payment_registered_once(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "done" and transfer.payment_id
    journal = setup_booked.template("payments").values["journal"]
    from datetime import date

    found = remote(setup_booked)._find_entry(int(journal), f"{REF}-P", date(2026, 11, 20))
    assert found is not None and found[1] is True  # booked in the accounting year
    assert transfer.payment_id == f"{journal}:{found[0]}"


def test_a_payment_whose_answer_was_lost_is_found_on_the_retry_not_registered_twice(
    db, account, setup_booked, run_jobs, redis, monkeypatch, fast_retries
):
    """The first payment is sent without a look-up (nothing can have sent it); its answer is lost, so the
    retry (payment_requested) looks for its reference, finds the voucher and books it: one payment."""
    source_link = make_source_link(db, account, setup_booked, paid_methods=["quickpay"])
    lost = lose_first_answer(monkeypatch, "/vouchers")
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "pending" and transfer.payment_requested and not transfer.payment_id
    assert release_scheduled(redis) == 1
    run_jobs()

    assert lost == [201]  # e-conomic made the voucher
    db.session.expire_all()
    assert transfer.status == "done" and transfer.attempts == 2, transfer.error_message
    journal = int(setup_booked.template("payments").values["journal"])
    connector = remote(setup_booked)
    found = connector._find_entry(journal, f"{REF}-P", date(2026, 11, 20))
    assert found is not None and found[1] is True  # booked
    year = found[0].split("-")[0]
    entries = connector._all(f"/accounting-years/{year}/entries", f"text$like:{REF}-P*")
    assert {e["voucherNumber"] for e in entries} == {int(found[0].split("-")[1])}  # one voucher
    assert connector._draft_entries(f"journalNumber$eq:{journal}") == []  # nothing left unbooked
    assert transfer.payment_id == f"{journal}:{found[0]}"


def test_b2b_customers_are_matched_by_cvr(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    meta = [("_billing_vat_number", "DK 13 58 56 28")]
    feed(source_link, order(company="Firma ApS", meta=meta, email="indkob@firma.dk"))
    feed(source_link, order(number="5002", company="Firma ApS", meta=meta, email="bogholderi@firma.dk"))
    run_jobs()

    transfers = db.session.scalars(select(Transfer).order_by(Transfer.id)).all()
    assert [t.status for t in transfers] == ["done", "done"]
    assert transfers[0].remote_customer_id == transfers[1].remote_customer_id  # one customer, by CVR
    customer = remote(setup_booked).find_customer("vat_number", "13585628")
    assert customer is not None and customer.id == transfers[0].remote_customer_id
    invoice = remote(setup_booked).find_invoice("WC-12-5002")
    assert invoice.booked and int(invoice.raw["customer"]["customerNumber"]) == int(customer.id)


def test_a_transfer_held_by_another_worker_is_left_alone(db, account, setup_booked, run_jobs, redis):
    source_link = make_source_link(db, account, setup_booked)
    with queued_behind_a_lock(db, redis, source_link, order()) as transfer:
        run_jobs()  # the worker's run_transfer finds the lock taken and leaves the transfer alone
        db.session.expire_all()
        assert transfer.status == "pending" and transfer.attempts == 0
        assert remote(setup_booked).find_invoice(REF) is None
    posting.run_transfer(transfer.id)
    db.session.expire_all()
    assert transfer.status == "done"


def test_the_watchdog_picks_up_events_whose_job_was_lost(db, account, setup_booked, run_jobs, redis):
    from datetime import timedelta

    from rq import Queue

    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, order())
    Queue("default", connection=redis).empty()  # the job vanished (Redis restarted without persistence)
    run_jobs()
    assert db.session.scalar(select(Transfer)) is None

    scheduling.requeue_stuck(timedelta(0))
    run_jobs()
    assert only_transfer(db).status == "done"
    assert remote(setup_booked).find_invoice(REF).booked


def test_an_inactive_source_link_keeps_the_event_but_transfers_nothing(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    source_link.active = False
    db.session.commit()
    event = feed(source_link, order())
    run_jobs()
    db.session.expire_all()
    assert event.processed_at is not None and "not active" in event.outcome
    assert db.session.scalar(select(Transfer)) is None
    assert remote(setup_booked).find_invoice(REF) is None


def test_an_unreadable_order_needs_attention(db, account, setup_booked, run_jobs):
    source_link = make_source_link(db, account, setup_booked)
    payload = order()
    payload["total"] = "not a number"
    feed(source_link, payload)
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "needs_attention" and "could not be read" in transfer.error_message
    assert remote(setup_booked).find_invoice(REF) is None


def test_refunds_listed_on_an_updated_order_are_fetched_and_credited(
    db, account, setup_booked, run_jobs, shop
):
    """WooCommerce's order.updated lists a refund by id only: the pipeline reads its lines from the shop
    (the WooCommerce sandbox) and credits exactly them, once, however often the order is delivered."""
    source_link = make_source_link(db, account, setup_booked)
    placed = shop_order(shop)  # two bags of espresso at 129,95 kr.
    feed(source_link, placed)
    run_jobs()

    espresso = placed["line_items"][0]
    refund = {
        "reason": "Én pose var knust",
        "line_items": [
            {
                "id": espresso["id"],
                "quantity": 1,
                "refund_total": str(Decimal(espresso["total"]) / 2),
                "refund_tax": [{"id": 1, "refund_total": str(Decimal(espresso["total_tax"]) / 2)}],
            }
        ],
    }
    created = shop.post(f"/orders/{placed['id']}/refunds", json=refund)
    assert created.status_code == 201, created.text
    updated = shop.get(f"/orders/{placed['id']}").json()
    assert [r["id"] for r in updated["refunds"]] == [created.json()["id"]]
    feed(source_link, updated)  # order.updated after the refund
    feed(source_link, updated)  # and again: the refund is fetched and credited once
    run_jobs()

    refund_id = str(created.json()["id"])
    credits = db.session.scalars(select(Transfer).where(Transfer.kind == "credit_note")).all()
    assert [(c.source_ref, c.status) for c in credits] == [(refund_id, "done")]
    found = remote(setup_booked).find_invoice(f"WC-12-{placed['number']}-R{refund_id}")
    assert found.booked and found.totals.gross == -Decimal(created.json()["amount"])
    refund_events = db.session.scalars(
        select(SourceEvent).where(SourceEvent.topic == intake.REFUND_TOPIC)
    ).all()
    assert [e.delivery_id for e in refund_events] == [f"refund:{refund_id}"]


def test_a_concurrent_delivery_creating_the_same_transfer_is_harmless(
    db, account, setup_booked, run_jobs, monkeypatch
):
    """Another worker inserts the transfer between our lookup and our insert: the unique constraint
    refuses ours, and we carry on with theirs."""
    from sqlalchemy import insert

    source_link = make_source_link(db, account, setup_booked)
    event = feed(source_link, order())
    original = db.session.scalar
    raced = []

    def racing(statement, *args, **kwargs):
        found = original(statement, *args, **kwargs)
        if found is None and not raced and "FROM transfers" in str(statement):
            raced.append(True)
            with db.engine.begin() as other_worker:
                other_worker.execute(
                    insert(Transfer.__table__).values(
                        account_id=account.id,
                        source_link_id=source_link.id,
                        kind="invoice",
                        source_ref="5001",
                        order_ref="5001",
                        order_number="5001",
                        event_id=event.id,
                        status="pending",
                    )
                )
        return found

    monkeypatch.setattr(db.session, "scalar", racing)
    intake.process_event(event.id)
    monkeypatch.undo()
    assert raced
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "done"
    booked = remote(setup_booked)._all("/invoices/booked", f"references.other$eq:{REF}")
    assert len(booked) == 1


def test_a_draft_created_but_its_answer_lost_is_found_not_made_again(
    db, account, setup_booked, run_jobs, monkeypatch
):
    """The worst case: e-conomic did create the draft, but the answer never came back (a read timeout).
    The pipeline looks it up by reference and carries on with it."""
    source_link = make_source_link(db, account, setup_booked)
    lost = lose_first_answer(monkeypatch, "/invoices/drafts")
    feed(source_link, order())
    run_jobs()

    assert lost == [201]  # the draft was made
    transfer = only_transfer(db)
    assert transfer.status == "done" and transfer.attempts == 1
    assert any(log.outcome == "reused" and "answer was lost" in log.message for log in transfer.logs)
    connector = remote(setup_booked)
    assert len(connector._all("/invoices/booked", f"references.other$eq:{REF}")) == 1
    assert connector._all("/invoices/drafts", f"references.other$eq:{REF}") == []


def test_the_log_redacts_secrets():
    redacted = steps.redact(
        {"Authorization": "Bearer x", "body": [{"api_secret": "y", "grant_token": "z", "amount": "1.00"}]}
    )
    assert redacted == {
        "Authorization": "[redacted]",
        "body": [{"api_secret": "[redacted]", "grant_token": "[redacted]", "amount": "1.00"}],
    }


def test_a_dry_run_preview_writes_nothing(db, account, setup_booked, monkeypatch):
    from portal.sandbox.transport import SandboxTransport

    source_link = make_source_link(db, account, setup_booked)
    calls = []
    monkeypatch.setattr(SandboxTransport, "handle_request", lambda self, request: calls.append(request))
    plan = preview.preview(source_link, order())
    assert calls == [] and db.session.scalar(select(Transfer)) is None
    assert plan.invoice.reference == REF and plan.decision.zone == "domestic" and plan.can_book
    assert [line.product_number for line in plan.invoice.lines] == ["KRUS-01", "TE-02", "FRAGT"]
    assert (plan.totals.net, plan.totals.vat, plan.totals.gross) == (
        Decimal("439.20"),
        Decimal("109.80"),
        Decimal("549.00"),
    )
    assert plan.match.field == "email" and plan.match.value == "anna@example.dk"


def test_a_worker_that_lost_its_lock_stops_before_the_next_remote_step(
    db, account, setup_booked, run_jobs, redis, monkeypatch
):
    """The lock expired while this worker was slow, and another worker took it: this one must not go on
    to create the draft."""
    source_link = make_source_link(db, account, setup_booked)
    event = feed(source_link, order())
    original = posting.ensure_products
    keys = []

    def slow_products(transfer, *args):
        original(transfer, *args)
        keys.append(f"bogbro:lock:transfer:{transfer.id}")
        locks._held_lock.get().renewed -= locks.LOCK_SECONDS  # time passed: it expired …
        redis.set(keys[0], "another-worker")  # … and someone else holds it now

    monkeypatch.setattr(posting, "ensure_products", slow_products)
    intake.process_event(event.id)  # decides, then posts the transfer in the same job
    transfer = only_transfer(db)
    key = keys[0]
    db.session.expire_all()
    assert transfer.status == "running" and transfer.products_ensured and transfer.draft_id is None
    assert remote(setup_booked).find_invoice(REF) is None
    assert redis.get(key) == b"another-worker"  # and we did not release their lock


def test_a_shop_linked_again_finds_its_earlier_invoice_instead_of_booking_twice(
    db, account, setup_booked, run_jobs
):
    """A first create skips the look-up only while the reference is this source link's alone; a second
    source_link writing the same shop id (the shop linked again) looks first and reuses what it finds."""
    first = make_source_link(db, account, setup_booked)
    feed(first, order())
    run_jobs()
    second = make_source_link(db, account, setup_booked)  # the same shop id, "12"
    feed(second, order())
    run_jobs()

    connector = remote(setup_booked)
    assert len(connector._all("/invoices/booked", f"references.other$eq:{REF}")) == 1
    transfer = db.session.scalar(select(Transfer).where(Transfer.source_link_id == second.id))
    assert transfer.status == "done"
    assert any(log.step == "draft" and log.outcome == "reused" for log in transfer.logs)


def test_after_a_restore_every_first_create_looks_first(app, db, account, setup_booked, run_jobs):
    """A database restored from a backup forgets transfers made since; PIPELINE_LOOKUP_BEFORE_CREATE makes
    every create look its reference up, so those orders are found, not booked again."""
    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, order())
    run_jobs()
    for table in (TransferLog.__table__, Transfer.__table__):
        db.session.execute(table.delete())
    db.session.commit()  # the restore: our record of the transfer is gone, the invoice is not
    app.config["PIPELINE_LOOKUP_BEFORE_CREATE"] = True
    try:
        feed(source_link, order())  # the poll brings the order again
        run_jobs()
    finally:
        app.config["PIPELINE_LOOKUP_BEFORE_CREATE"] = False
    assert len(remote(setup_booked)._all("/invoices/booked", f"references.other$eq:{REF}")) == 1
    assert only_transfer(db).status == "done"


def test_customers_and_products_are_created_only_when_the_settings_allow_it(
    db, account, setup_booked, run_jobs
):
    source_link = make_source_link(db, account, setup_booked, customers={"create": False, "update": False})
    feed(source_link, order())
    run_jobs()
    transfer = only_transfer(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "anna@example.dk" in transfer.error_message and "create customers" in transfer.error_message
    connector = remote(setup_booked)
    assert connector.find_customer("email", "anna@example.dk") is None
    assert connector.find_invoice(REF) is None

    source_link.settings = {**source_link.settings, "customers": {}, "products": {"create": False}}
    db.session.commit()
    retries.retry(transfer)
    run_jobs()
    db.session.expire_all()
    assert transfer.status == "needs_attention" and "create products" in transfer.error_message
    missing = transfer.error_message.split("The product ")[1].split(" ")[0]  # KRUS-01 is in e-conomic
    assert missing in ("TE-02", "FRAGT") and connector.find_product(missing) is None
    assert connector.find_invoice(REF) is None


def test_a_customer_found_is_updated_from_the_order_when_allowed(db, account, setup_booked, run_jobs):
    from portal.engine.ledger_documents import CustomerData

    connector = remote(setup_booked)
    before = connector.create_customer(
        CustomerData(
            name="Anna Old", country="DK", zone="domestic", email="anna@example.dk", address="Gl. Vej 1"
        )
    )
    source_link = make_source_link(db, account, setup_booked, customers={"create": True, "update": True})
    feed(source_link, order())
    run_jobs()
    assert only_transfer(db).status == "done"
    after = connector.find_customer("email", "anna@example.dk")
    assert after.id == before.id  # the same customer, not a new one …
    assert after.raw["address"] == "Vestergade 1" and after.raw["name"] != "Anna Old"  # … brought up to date


def test_two_workers_with_the_same_new_customer_and_products_make_each_once(app, db, account, setup_booked):
    """Two orders from the same new customer, with the same new products, processed at the same moment by
    two workers (threads here, each with its own session): both would find nothing and both create — a
    second customer, and a product e-conomic refuses as a duplicate. One creates; the other waits for it
    and uses what it made."""
    import threading

    source_link = make_source_link(db, account, setup_booked)
    events = [feed(source_link, order(number=number)).id for number in ("5001", "5002")]
    faults(app, "e-conomic", latency_ms=150)  # every call takes a while: the two runs overlap
    start, errors = threading.Barrier(2), []

    def worker(event_id):
        try:
            with app.app_context():
                start.wait()
                intake.process_event(event_id)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(event_id,)) for event_id in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    faults(app, "e-conomic")
    assert not errors, errors

    db.session.expire_all()
    transfers = db.session.scalars(select(Transfer)).all()
    assert [t.status for t in transfers] == ["done", "done"], [t.error_message for t in transfers]
    connector = remote(setup_booked)
    assert len(connector._all("/customers", "email$eq:anna@example.dk")) == 1
    for number in ("KRUS-01", "TE-02", "FRAGT"):
        assert len(connector._all("/products", f"productNumber$eq:{number}")) == 1
    assert {t.remote_customer_id for t in transfers} == {transfers[0].remote_customer_id}
    for reference in ("WC-12-5001", "WC-12-5002"):
        assert len(connector._all("/invoices/booked", f"references.other$eq:{reference}")) == 1


# --- the payments journal is shared with the bookkeeper ----------------------------------------------------


def _bookkeeper_entry(connector, journal, text, voucher_number=None):
    """An unfinished entry the bookkeeper typed into the kassekladde in e-conomic (no contra: unbalanced)."""
    voucher = {
        "accountingYear": {"year": connector._accounting_year(date.today())},
        "journal": {"journalNumber": journal},
        "entries": {
            "financeVouchers": [
                {
                    "account": {"accountNumber": 5820},
                    "amount": 1000,
                    "date": date.today().isoformat(),
                    "text": text,
                }
            ]
        },
    }
    if voucher_number is not None:
        voucher["voucherNumber"] = voucher_number
    connector._send("POST", f"/journals/{journal}/vouchers", voucher)


def _drafts(connector, journal):
    return {e["text"]: e for e in connector._draft_entries(f"journalNumber$eq:{journal}")}


def test_a_payment_never_books_the_bookkeepers_unbalanced_entry(db, account, setup_booked, run_jobs):
    journal = int(setup_booked.template("payments").values["journal"])
    connector = remote(setup_booked)
    _bookkeeper_entry(connector, journal, "Husleje, mangler modpost")
    source_link = make_source_link(db, account, setup_booked, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()

    transfer = only_transfer(db)
    assert transfer.status == "done" and transfer.payment_id
    assert connector.find_invoice(REF).raw["remainder"] == 0  # the payment is booked
    assert list(_drafts(connector, journal)) == ["Husleje, mangler modpost"]  # theirs still a draft


def test_a_payment_voucher_shared_with_the_bookkeeper_needs_attention_in_danish(
    app, db, account, setup_booked, run_jobs, redis, fast_retries
):
    journal = int(setup_booked.template("payments").values["journal"])
    connector = remote(setup_booked)
    source_link = make_source_link(db, account, setup_booked, paid_methods=["quickpay"])
    # The payment entry is posted, then the booking's connection drops (the look-up before it answers).
    faults(app, "e-conomic-apis", next=["ok", "drop", "drop", "drop", "drop"])
    feed(source_link, order())
    run_jobs()
    faults(app, "e-conomic-apis")
    transfer = only_transfer(db)
    assert transfer.status == "pending" and not transfer.payment_id
    ours = next(e for text, e in _drafts(connector, journal).items() if text.startswith(f"{REF}-P "))
    # Meanwhile the bookkeeper typed an entry on the same voucher number.
    _bookkeeper_entry(connector, journal, "Kassedifference", voucher_number=ours["voucherNumber"])
    while release_scheduled(redis):
        run_jobs()

    db.session.expire_all()
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert not transfer.payment_id
    assert set(_drafts(connector, journal)) == {ours["text"], "Kassedifference"}  # nothing booked
    with app.test_request_context(headers={"Accept-Language": "da"}):
        shown = messages.shown(transfer)
    assert f"bilag {ours['voucherNumber']}" in shown and f"kassekladde {journal}" in shown
    assert "som Bogbro ikke har lavet" in shown and "skabelonen Betalinger" in shown
