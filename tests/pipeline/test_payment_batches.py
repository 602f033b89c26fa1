"""Paid sales on e-conomic: their payments registered together by the setup's batch job (payment_batches),
through the real intake, RQ and the e-conomic sandbox — and never twice, never lost."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.models import Transfer, TransferLog, utcnow
from portal.pipeline import messages, payment_batches, scheduling
from portal.sandbox.transport import SandboxTransport
from tests.pipeline.conftest import (
    faults,
    feed,
    make_setup,
    make_source_link,
    order,
    release_scheduled,
    remote,
)
from tests.pipeline.test_economic_pipeline import _bookkeeper_entry, _drafts

NUMBERS = ("6001", "6002", "6003")


class Killed(BaseException):
    """The worker dies here (nothing after this line of the job runs)."""


@pytest.fixture
def setup(account):
    return make_setup(account, "e-conomic", auto_book=True)


def paid(db, account, setup):
    return make_source_link(db, account, setup, paid_methods=["quickpay"])


def transfers(db):
    rows = db.session.scalars(
        select(Transfer).order_by(Transfer.id).execution_options(populate_existing=True)
    )
    return rows.all()


def parked(db, redis, source_link, setup, run_jobs):
    """The orders booked, their payments waiting: a batch job counts as queued (its flag is set)."""
    redis.set(payment_batches.flag_key(setup.id), "1")
    for number in NUMBERS:
        feed(source_link, order(number=number))
    run_jobs()
    rows = transfers(db)
    assert {(t.status, bool(t.booked_number), t.payment_requested) for t in rows} == {
        ("waiting", True, False)
    }
    return rows


def after_post(monkeypatch, action):
    """Run `action()` once, right after the first voucher POST reached the sandbox."""
    original, seen = SandboxTransport.handle_request, []

    def hooked(self, request):
        response = original(self, request)
        if request.method == "POST" and request.url.path.endswith("/vouchers") and not seen:
            seen.append(request)
            action()
        return response

    monkeypatch.setattr(SandboxTransport, "handle_request", hooked)
    return seen


def test_waiting_payments_show_in_danish_and_one_batch_registers_them(
    app, db, account, setup, run_jobs, redis
):
    source_link = paid(db, account, setup)
    rows = parked(db, redis, source_link, setup, run_jobs)
    with app.test_request_context(headers={"Accept-Language": "da"}):
        assert messages.shown(rows[0]) == "Betalingen registreres sammen med andre."
    logged = db.session.scalars(
        select(TransferLog).where(TransferLog.transfer_id == rows[0].id).order_by(TransferLog.id)
    ).all()
    assert [(e.step, e.outcome) for e in logged][-1] == ("payment", "waiting")

    with app.app_context():
        assert payment_batches.run(setup.id) == 3
    rows = transfers(db)
    assert {t.status for t in rows} == {"done"}
    assert all(t.payment_id and t.pending_payment is None and not t.reason for t in rows)
    journal = int(setup.template("payments").values["journal"])
    assert _drafts(remote(setup), journal) == {}  # all booked


def test_a_voucher_holding_foreign_entries_needs_attention_and_the_others_are_booked(
    app, db, account, setup, run_jobs, redis, monkeypatch
):
    source_link = paid(db, account, setup)
    rows = parked(db, redis, source_link, setup, run_jobs)
    journal = int(setup.template("payments").values["journal"])
    connector = remote(setup)

    def bookkeeper_types_into_the_second_voucher():
        second = next(e for t, e in _drafts(connector, journal).items() if t.startswith(rows[1].reference))
        _bookkeeper_entry(connector, journal, "Kassedifference", voucher_number=second["voucherNumber"])

    after_post(monkeypatch, bookkeeper_types_into_the_second_voucher)
    run_batch = payment_batches.run(setup.id)
    monkeypatch.undo()
    assert run_batch == 3

    first, second, third = transfers(db)
    assert (first.status, third.status) == ("done", "done")
    assert (second.status, second.error_kind) == ("needs_attention", "configuration")
    assert not second.payment_id and second.payment_requested
    with app.test_request_context(headers={"Accept-Language": "da"}):
        assert "som Bogbro ikke har lavet" in messages.shown(second)
    left = _drafts(connector, journal)
    assert {text.split(" ")[0] for text in left} == {second.reference + "-P", "Kassedifference"}


def test_a_batch_killed_after_its_post_is_resumed_with_one_voucher_each(
    app, db, account, setup, run_jobs, redis, monkeypatch
):
    source_link = paid(db, account, setup)
    parked(db, redis, source_link, setup, run_jobs)

    def die():
        raise Killed

    after_post(monkeypatch, die)
    with pytest.raises(Killed):
        payment_batches.run(setup.id)
    monkeypatch.undo()
    rows = transfers(db)
    # Claimed and checkpointed before the POST: running, payment_requested, no payment id yet.
    assert {(t.status, t.payment_requested, t.payment_id) for t in rows} == {("running", True, None)}

    # The watchdog finds them running without their lease: each resumes alone and finds its voucher.
    redis.set(scheduling.EPOCH_KEY, "known")  # the same Redis as before
    recovered = scheduling.recover(timedelta(minutes=5))
    assert sorted(recovered["transfers"]) == [t.id for t in rows]
    run_jobs()
    rows = transfers(db)
    assert {t.status for t in rows} == {"done"}, [t.error_message for t in rows]
    connector = remote(setup)
    journal = int(setup.template("payments").values["journal"])
    year = connector._accounting_year(rows[0].created_at.date())
    for transfer in rows:
        entries = connector._all(f"/accounting-years/{year}/entries", f"text$like:{transfer.reference}-P*")
        assert len({e["voucherNumber"] for e in entries}) == 1, entries  # one voucher, booked
        assert transfer.payment_id == f"{journal}:{year}-{entries[0]['voucherNumber']}"
    assert _drafts(connector, journal) == {}


def test_a_batch_job_that_never_ran_is_queued_again_by_the_watchdog(app, db, account, setup, run_jobs, redis):
    source_link = paid(db, account, setup)
    rows = parked(db, redis, source_link, setup, run_jobs)  # its flag set, but no job: lost
    assert payment_batches.requeue_lost() == []  # the flag says a job is queued
    redis.delete(payment_batches.flag_key(setup.id))  # ... until its TTL ran out
    db.session.execute(
        update(Transfer)
        .where(Transfer.id.in_([t.id for t in rows]))
        .values(updated_at=utcnow() - timedelta(1))
    )
    db.session.commit()
    assert payment_batches.requeue_lost() == [setup.id]
    assert payment_batches.requeue_lost() == []  # queued once
    run_jobs()
    assert {t.status for t in transfers(db)} == {"done"}


def test_replays_make_one_payment(app, db, account, setup, run_jobs):
    source_link = paid(db, account, setup)
    payload = order(number="6010")
    for _ in range(3):
        feed(source_link, payload)
    run_jobs()
    for _ in range(3):  # and again after it is done
        feed(source_link, payload)
    run_jobs()
    [transfer] = transfers(db)
    assert transfer.status == "done" and transfer.payment_id
    connector = remote(setup)
    year = connector._accounting_year(transfer.created_at.date())
    entries = connector._all(f"/accounting-years/{year}/entries", f"text$like:{transfer.reference}-P*")
    assert len({e["voucherNumber"] for e in entries}) == 1  # one voucher (its debit and credit)


def test_a_refused_batch_sends_each_payment_on_its_own(app, db, account, setup, run_jobs, redis):
    """A call refused for the whole batch (here: one payment names an account e-conomic does not have)
    hands every transfer to the single path: each sent alone gets its own outcome — with the template's
    account as it is now, all three are registered, once each."""
    source_link = paid(db, account, setup)
    rows = parked(db, redis, source_link, setup, run_jobs)
    rows[1].pending_payment = {**rows[1].pending_payment, "account": "99999"}
    db.session.commit()
    assert payment_batches.run(setup.id) == 3
    assert {t.status for t in transfers(db)} == {"pending"}
    run_jobs()
    rows = transfers(db)
    assert {t.status for t in rows} == {"done"}, [t.error_message for t in rows]
    logged = db.session.scalars(select(TransferLog.message).where(TransferLog.step == "payment")).all()
    assert sum("Not registered with the others" in text for text in logged) == 3
    connector = remote(setup)
    year = connector._accounting_year(rows[0].created_at.date())
    for transfer in rows:
        entries = connector._all(f"/accounting-years/{year}/entries", f"text$like:{transfer.reference}-P*")
        assert len({e["voucherNumber"] for e in entries}) == 1  # one voucher (its debit and credit)


def test_a_500_on_the_batch_is_retried_per_transfer_into_one_voucher_each(
    app, db, account, setup, run_jobs, redis, fast_retries
):
    """The batch's POST answers 500 (carried out or not): each transfer is retried by the usual rules, alone,
    looking its reference up first."""
    source_link = paid(db, account, setup)
    parked(db, redis, source_link, setup, run_jobs)
    faults(app, "e-conomic", next=["500"])  # the batch's first request is its voucher POST
    payment_batches.run(setup.id)
    rows = transfers(db)
    assert {(t.status, t.error_kind, t.payment_requested) for t in rows} == {("pending", "transient", True)}
    assert release_scheduled(redis) == 3
    run_jobs()
    rows = transfers(db)
    assert {t.status for t in rows} == {"done"}, [t.error_message for t in rows]
    connector = remote(setup)
    year = connector._accounting_year(rows[0].created_at.date())
    for transfer in rows:
        entries = connector._all(f"/accounting-years/{year}/entries", f"text$like:{transfer.reference}-P*")
        assert len({e["voucherNumber"] for e in entries}) == 1


def test_two_batch_jobs_never_claim_one_payment(app, db, account, setup, run_jobs, redis):
    """A second job (queued by a payment parked after the first one looked) finds each transfer either
    leased or no longer waiting: claimed once."""
    source_link = paid(db, account, setup)
    ids = [t.id for t in parked(db, redis, source_link, setup, run_jobs)]
    first = payment_batches._take_leases(redis, ids)
    assert payment_batches._take_leases(redis, ids) == {}  # the other job gets no lease
    assert payment_batches._claim(list(first)) == ids
    for lease in first.values():
        lease.release()
    assert payment_batches._claim(ids) == []  # and, leased or not, no row still waiting
