"""A worker killed mid-transfer: real `rq worker` processes are SIGKILLed — one between draft and book, one
in the middle of a drain — and the real periodic machinery (`rq cron` running the production schedule's
watchdog, workers.jobs.recover_lost_work) has another worker finish the work within 30 s: one booked
invoice each, no stray draft. Nothing deletes the dead worker's lock: it is a lease that expires."""

import os
import signal
import time

from sqlalchemy import select

from portal.models import SandboxRecord, SourceEvent, Transfer
from portal.pipeline.locks import transfer_lock_key
from tests.conftest import start_rq_cron, start_rq_worker, wait_for
from tests.pipeline.conftest import faults, feed, make_setup, make_source_link, order, remote
from tests.pipeline.test_economic_pipeline import REF

RECOVERY_BOUND = 30  # seconds from a worker's death until its work is done by another


def _kill(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _stop(*processes):
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except Exception:
            _kill(process)


def _drafts(db):
    return db.session.scalars(
        select(SandboxRecord.document).where(
            SandboxRecord.system == "e-conomic", SandboxRecord.collection == "drafts"
        )
    ).all()


def test_a_worker_killed_between_draft_and_book(app, db, account, run_jobs, redis, database_url, tmp_path):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="4999"))  # warms the customer and product caches
    run_jobs()

    # The transfer's requests: the draft POST passes; the booking's request hangs.
    faults(app, "e-conomic", latency_ms=60_000, next=["ok", "slow"])
    feed(source_link, order())
    # The production worker class: the job runs in the worker process itself, so SIGKILL ends it.
    victim = start_rq_worker(app, database_url, tmp_path, "--burst")
    survivor = cron = None
    try:

        def drafted():
            # The draft is in e-conomic (read from the sandbox's records: a request would take the fault).
            # Its id is not committed on our side yet: the checkpoint is `draft_requested`, before the create.
            db.session.expire_all()
            transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == "5001"))
            return (
                transfer is not None
                and transfer.draft_requested
                and any(d.get("references", {}).get("other") == REF for d in _drafts(db))
            )

        assert wait_for(drafted), "the worker never created the draft"
        # Another worker and the watchdog's schedule, running as in production before the death.
        survivor = start_rq_worker(app, database_url, tmp_path)
        cron = start_rq_cron(app, database_url, tmp_path)
        time.sleep(3)  # the worker's lease outlived several heartbeats: it is kept alive, not just young
        transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == "5001"))
        assert victim.poll() is None and redis.exists(transfer_lock_key(transfer.id))
        _kill(victim)
        died = time.monotonic()
        faults(app, "e-conomic")

        db.session.expire_all()
        assert transfer.status == "running" and transfer.booked_number is None
        found = remote(setup).find_invoice(REF)
        assert found is not None and not found.booked  # the draft exists, unbooked

        def done():
            db.session.expire_all()
            return transfer.status == "done"

        assert wait_for(done, RECOVERY_BOUND), f"not done {RECOVERY_BOUND} s after the worker died"
        recovered = time.monotonic() - died
    finally:
        _kill(victim) if victim.poll() is None else None
        _stop(*(p for p in (survivor, cron) if p is not None))
        faults(app, "e-conomic")

    print(f"recovered {recovered:.1f} s after the worker died")
    assert transfer.attempts == 2
    connector = remote(setup)
    booked = connector._all("/invoices/booked", f"references.other$eq:{REF}")
    assert len(booked) == 1 and str(booked[0]["bookedInvoiceNumber"]) == transfer.booked_number
    assert connector._all("/invoices/drafts", f"references.other$eq:{REF}") == []


def test_a_worker_killed_mid_drain_leaves_no_event_behind(
    app, db, account, run_jobs, redis, database_url, tmp_path
):
    """The drain job dies with events still waiting: its flag (a lease) expires and the watchdog queues a
    new drain for them — without waiting for another webhook."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="4999"))
    run_jobs()

    faults(app, "e-conomic", latency_ms=60_000, next=["slow"])  # the first order's draft request hangs
    for number in ("5001", "5002", "5003"):
        feed(source_link, order(number=number))
    victim = start_rq_worker(app, database_url, tmp_path, "--burst")
    survivor = cron = None
    try:
        assert wait_for(lambda: redis.get(f"bogbro:drain:{source_link.id}") not in (None, b"1")), "no drain"
        survivor = start_rq_worker(app, database_url, tmp_path)
        cron = start_rq_cron(app, database_url, tmp_path)
        time.sleep(3)
        _kill(victim)
        died = time.monotonic()
        faults(app, "e-conomic")

        def all_done():
            db.session.expire_all()
            statuses = db.session.scalars(
                select(Transfer.status).where(Transfer.order_number != "4999")
            ).all()
            waiting = db.session.scalar(select(SourceEvent.id).where(SourceEvent.processed_at.is_(None)))
            return len(statuses) == 3 and set(statuses) == {"done"} and waiting is None

        assert wait_for(all_done, RECOVERY_BOUND), f"not done {RECOVERY_BOUND} s after the worker died"
        recovered = time.monotonic() - died
    finally:
        _kill(victim) if victim.poll() is None else None
        _stop(*(p for p in (survivor, cron) if p is not None))
        faults(app, "e-conomic")

    print(f"recovered {recovered:.1f} s after the worker died")
    connector = remote(setup)
    for number in ("5001", "5002", "5003"):
        reference = REF.replace("5001", number)
        assert len(connector._all("/invoices/booked", f"references.other$eq:{reference}")) == 1
        assert connector._all("/invoices/drafts", f"references.other$eq:{reference}") == []
