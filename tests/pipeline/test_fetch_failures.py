"""A notification that only names its sale (Frisbii's webhooks name the invoice's handle) whose sale cannot be
read: through the real path — a signed webhook, RQ, the Frisbii sandbox with faults injected on its API — the
notification is never lost. A transient failure is retried with the pipeline's back-off (the event stays
unprocessed meanwhile); a final one (401, 404, or giving up) leaves a transfer needing attention with what
to do, whose retry button reads the invoice again; and still one document per invoice."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.models import SourceEvent, Transfer, utcnow
from portal.pipeline import polls
from portal.sandbox.frisbii import billing
from tests.pipeline import test_frisbii_pipeline as frisbii_tests
from tests.pipeline.conftest import faults, release_scheduled, remote
from tests.pipeline.test_frisbii_pipeline import link_frisbii, settle

# the Frisbii tests' fixtures: the sandbox's API as its user, and an e-conomic setup that books
frisbii = frisbii_tests.frisbii
setup = frisbii_tests.setup


@pytest.fixture
def no_inline_retries(app, fast_retries):
    """The HTTP client's own retries off, so each injected fault reaches the pipeline."""
    saved = app.config["CONNECTOR_RETRIES"]
    app.config["CONNECTOR_RETRIES"] = 0
    yield app
    app.config["CONNECTOR_RETRIES"] = saved


def renew_faulty(app, client, run_jobs, **fault):
    """Renew the demo subscription; its webhooks are delivered while the Frisbii API has `fault`."""
    answer = client.post("/_subscriptions/sub-demo-0001/renew", json={"outcome": "settled"})
    assert answer.status_code == 200, answer.text
    faults(app, "frisbii", **fault)
    try:
        settle(run_jobs)
    finally:
        faults(app, "frisbii")
    return answer.json()


def transfers(db):
    db.session.expire_all()
    return db.session.scalars(select(Transfer).order_by(Transfer.id)).all()


def notification(db, topic="invoice_settled") -> SourceEvent:
    db.session.expire_all()
    return db.session.scalar(select(SourceEvent).where(SourceEvent.topic == topic))


def test_a_transient_failure_is_retried_and_the_invoice_booked_once(
    app, db, redis, account, setup, frisbii, run_jobs, no_inline_retries
):
    source_link = link_frisbii(db, account, setup)
    app.config["PIPELINE_RETRY_SECONDS"] = 30  # the back-off as in production: the retry waits
    invoice = renew_faulty(app, frisbii, run_jobs, next=["500"])
    event = notification(db)
    assert event.processed_at is None and "attempt 1" in event.outcome  # kept, not lost, not done
    assert transfers(db) == []
    settle(run_jobs)  # another drain of the link before the retry is due does not read it early
    assert notification(db).processed_at is None

    assert release_scheduled(redis) == 1  # its time has come
    settle(run_jobs)
    (transfer,) = transfers(db)
    assert transfer.status == "done", transfer.error_message
    assert transfer.source_ref == invoice["id"] and notification(db).outcome.startswith("fetched")
    assert remote(setup).find_invoice(transfer.reference).booked
    # replayed three times: still one document
    client = app.test_client()
    for _ in range(3):
        client.post(
            f"/webhooks/frisbii/{source_link.webhook_token}",
            data=notification(db).raw_body,
            content_type="application/json",
        )
    settle(run_jobs)
    assert len(transfers(db)) == 1


def test_a_revoked_key_needs_attention_and_its_retry_books_the_invoice(
    app, db, owner_client, account, setup, frisbii, run_jobs, no_inline_retries
):
    source_link = link_frisbii(db, account, setup)
    connection = source_link.connection
    connection.credentials = {"private_key": "priv_revoked_key"}  # Frisbii answers 401 to it
    db.session.commit()
    answer = frisbii.post("/_subscriptions/sub-demo-0001/renew", json={"outcome": "settled"})
    invoice = answer.json()
    settle(run_jobs)

    (transfer,) = transfers(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert notification(db).processed_at is not None  # ended visibly, not left for the watchdog
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert f"Bogbro kunne ikke hente faktura {invoice['handle']} fra Frisbii" in page
    assert "Forbind Frisbii igen" in page
    assert "kræver handling" in owner_client.get("/dashboard").get_data(as_text=True).lower()

    connection.credentials = {"private_key": "priv_bogbro_demo"}  # reconnected
    db.session.commit()
    assert owner_client.post(f"/transfers/{transfer.id}/retry").status_code == 302
    settle(run_jobs)
    (done,) = transfers(db)  # the same transfer, now keyed by the invoice's id
    assert done.id == transfer.id and done.status == "done", done.error_message
    assert done.source_ref == invoice["id"] and done.order_number == invoice["handle"]
    assert remote(setup).find_invoice(done.reference).booked
    assert any(log.step == "error" for log in done.logs)  # the story is kept


def test_an_invoice_frisbii_does_not_know_needs_attention_and_can_be_left_out(
    app, db, owner_client, account, setup, frisbii, run_jobs
):
    source_link = link_frisbii(db, account, setup)
    secret = frisbii.get("/v1/account/webhook_settings").json()["secret"]
    stamp = "2026-12-07T08:10:00.640Z"
    body = {
        "id": "wh-gone",
        "event_id": "ev-gone",
        "event_type": "invoice_settled",
        "timestamp": stamp,
        "invoice": "inv-999",
        "signature": billing.sign(secret, stamp, "wh-gone"),
    }
    url = f"/webhooks/frisbii/{source_link.webhook_token}"
    assert app.test_client().post(url, json=body).status_code == 200
    settle(run_jobs)

    (transfer,) = transfers(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "order"
    assert transfer.order_number == "inv-999"
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Bogbro kunne ikke hente faktura inv-999 fra Frisbii" in page and "ikke fundet" in page
    assert owner_client.post(f"/transfers/{transfer.id}/leave-out").status_code in (200, 302)
    assert transfers(db)[0].status == "skipped"


def test_giving_up_needs_attention_and_the_retry_makes_one_document(
    app, db, owner_client, account, setup, frisbii, run_jobs, no_inline_retries
):
    link_frisbii(db, account, setup)
    invoice = renew_faulty(app, frisbii, run_jobs, rate_500=1.0)
    (transfer,) = transfers(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "transient"
    assert "Gave up after 5 attempts" in transfer.error_message
    owner_client.post(f"/transfers/{transfer.id}/retry")
    owner_client.post(f"/transfers/{transfer.id}/retry")  # pressed twice
    settle(run_jobs)
    (done,) = transfers(db)
    assert done.status == "done" and done.source_ref == invoice["id"]
    assert remote(setup).find_invoice(done.reference).booked


def test_a_stand_in_gives_way_to_the_transfer_the_poll_made(
    app, db, owner_client, account, setup, frisbii, run_jobs, no_inline_retries
):
    source_link = link_frisbii(db, account, setup)
    invoice = renew_faulty(app, frisbii, run_jobs, next=["500"] * 5)
    assert [t.status for t in transfers(db)] == ["needs_attention"]
    assert polls.poll_orders(source_link.id) >= 1  # the poll reads the invoice meanwhile
    settle(run_jobs)
    mine = [t for t in transfers(db) if t.order_number == invoice["handle"]]
    stand_in, own = mine  # the stand-in keyed by the handle, the poll's by the invoice's id
    assert stand_in.source_ref == invoice["handle"] and stand_in.status == "needs_attention"
    assert own.status == "done" and own.source_ref == invoice["id"]
    owner_client.post(f"/transfers/{stand_in.id}/retry")
    settle(run_jobs)
    (only,) = [t for t in transfers(db) if t.order_number == invoice["handle"]]
    assert only.id == own.id and any(log.step == "error" for log in only.logs)
    assert remote(setup).find_invoice(only.reference).booked


def test_the_poll_finds_an_invoice_created_before_it_and_settled_after(
    app, db, account, setup, frisbii, run_jobs
):
    source_link = link_frisbii(db, account, setup)
    frisbii.put("/v1/account/webhook_settings", json={"disabled": True})  # no webhook arrives
    invoice = frisbii.post("/_subscriptions/sub-demo-0001/renew", json={"outcome": "authorized"}).json()
    # created an hour ago, before the last poll
    stored = billing.store()
    record = stored.get("invoices", invoice["id"])
    record["created"] = (utcnow() - timedelta(hours=1)).isoformat(timespec="milliseconds")
    stored.put("invoices", invoice["id"], record)
    db.session.commit()
    source_link.last_polled_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert frisbii.post(f"/v1/invoice/{invoice['id']}/settle", json={}).status_code == 200

    since = (source_link.last_polled_at - polls.POLL_OVERLAP).strftime("%Y-%m-%dT%H:%M:%S")
    by_created = frisbii.get("/v1/list/invoice", params={"from": since, "size": 100}).json()["content"]
    assert invoice["id"] not in [i["id"] for i in by_created]  # the blind spot of a poll by `created`

    assert polls.poll_orders(source_link.id) >= 1
    settle(run_jobs)
    (transfer,) = [t for t in transfers(db) if t.source_ref == invoice["id"]]
    assert transfer.status == "done", transfer.error_message
    assert remote(setup).find_invoice(transfer.reference).booked
    assert polls.poll_orders(source_link.id) == 0  # listed once per version, recorded once
