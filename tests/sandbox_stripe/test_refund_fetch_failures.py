"""A Stripe refund made in the Dashboard names only the PaymentIntent: its invoice and refunds are read
before anything is credited. When Stripe does not answer that read, the refund is not lost: the read is
retried with the pipeline's back-off, then needs attention, and its retry makes the one credit note."""

from decimal import Decimal

from sqlalchemy import select

from portal.models import SourceEvent, Transfer
from tests.pipeline.conftest import faults
from tests.sandbox_stripe.conftest import subscribe
from tests.sandbox_stripe.test_into_the_ledger import link, renew
from tests.sandbox_stripe.test_into_the_ledger import setup_booked as setup_booked  # the fixture
from tests.sandbox_stripe.test_refunds_into_the_ledger import credited, paid_intent


def test_a_refund_whose_read_fails_needs_attention_and_its_retry_credits_it_once(
    app, db, owner_client, account, setup_booked, api, clock, plan, run_jobs, monkeypatch
):
    monkeypatch.setitem(app.config, "CONNECTOR_RETRIES", 0)  # each failure reaches the pipeline
    monkeypatch.setitem(app.config, "PIPELINE_RETRY_SECONDS", 0)
    link(app, db, account, setup_booked)
    _customer, subscription = subscribe(api, clock, plan)
    renewal = renew(api, clock, subscription)
    run_jobs()
    refund = api.v1.refunds.create({"payment_intent": paid_intent(api, renewal.id), "amount": 3000})
    faults(app, "stripe", rate_500=1.0)  # Stripe fails every read from now on
    try:
        run_jobs()
    finally:
        faults(app, "stripe")

    stand_ins = credit_notes(db)
    # refund.created names the refund, charge.refunded the charge: each stands in until read
    assert {t.source_ref for t in stand_ins} == {refund.id, refund.charge}
    assert all(t.status == "needs_attention" for t in stand_ins)
    assert all("Gave up after 5 attempts" in t.error_message for t in stand_ins)
    page = owner_client.get(f"/transfers/{stand_ins[0].id}").get_data(as_text=True)
    assert "Bogbro kunne ikke hente refunderingerne af" in page
    assert db.session.query(SourceEvent).filter(SourceEvent.processed_at.is_(None)).count() == 0

    owner_client.post(f"/transfers/{stand_ins[-1].id}/retry")
    run_jobs()
    (note,) = credit_notes(db)  # the other stand-in gave way: one credit note for the one refund
    assert (note.status, note.source_ref) == ("done", refund.id), note.error_message
    assert credited(setup_booked, note) == Decimal("30.00")


def credit_notes(db) -> list[Transfer]:
    db.session.expire_all()
    return db.session.scalars(
        select(Transfer).where(Transfer.kind == "credit_note").order_by(Transfer.id)
    ).all()
