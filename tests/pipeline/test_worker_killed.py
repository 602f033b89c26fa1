"""A worker killed between draft and book: a real `rq worker` process is SIGKILLed while the booking request
is in flight; the watchdog requeues the transfer and another worker finishes it — one booked invoice, no
stray draft."""

import os
import signal
import time
from datetime import timedelta

from sqlalchemy import select

from portal.models import SandboxRecord, Transfer
from portal.pipeline import scheduling
from tests.conftest import start_rq_worker, wait_for
from tests.pipeline.conftest import faults, feed, make_integration, make_setup, order, remote
from tests.pipeline.test_economic_pipeline import REF


def test_a_worker_killed_between_draft_and_book(app, db, account, run_jobs, redis, database_url, tmp_path):
    setup = make_setup(account, "e-conomic", auto_book=True)
    integration = make_integration(db, account, setup)
    feed(integration, order(number="4999"))  # warms the customer and product caches
    run_jobs()

    # The transfer's requests: the draft POST passes; the booking's request hangs.
    faults(app, "e-conomic", latency_ms=60_000, next=["ok", "slow"])
    feed(integration, order())
    # SimpleWorker: the job runs in the worker process itself. (RQ's default worker forks a "work horse"
    # that calls setsid(): killing the worker would leave the horse running on its own.)
    worker = start_rq_worker(app, database_url, tmp_path, "--burst", worker_class="rq.worker.SimpleWorker")
    try:

        def drafted():
            # The draft is in e-conomic (read from the sandbox's records: a request would take the fault).
            # Its id is not committed on our side yet: the checkpoint is `draft_requested`, before the create.
            db.session.expire_all()
            transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == "5001"))
            drafts = db.session.scalars(
                select(SandboxRecord.document).where(
                    SandboxRecord.system == "e-conomic", SandboxRecord.collection == "drafts"
                )
            )
            return (
                transfer is not None
                and transfer.draft_requested
                and any(d.get("references", {}).get("other") == REF for d in drafts)
            )

        assert wait_for(drafted), "the worker never created the draft"
        time.sleep(0.5)  # inside the slow booking request now
        assert worker.poll() is None
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        faults(app, "e-conomic")

    transfer = db.session.scalar(select(Transfer).where(Transfer.source_ref == "5001"))
    assert transfer.status == "running" and transfer.booked_number is None
    found = remote(setup).find_invoice(REF)
    assert found is not None and not found.booked  # the draft exists, unbooked

    # The watchdog requeues it; while the dead worker's lock lives, a second worker leaves it alone …
    assert scheduling.requeue_stuck(timedelta(0)) == [transfer.id]
    run_jobs()
    db.session.expire_all()
    assert transfer.status == "running"
    # … and once the lock's TTL has passed (simulated: deleted), the next round finishes the transfer.
    redis.delete(f"bogbro:lock:transfer:{transfer.id}")
    assert scheduling.requeue_stuck(timedelta(0)) == [transfer.id]
    run_jobs()

    db.session.expire_all()
    assert transfer.status == "done" and transfer.attempts == 2
    connector = remote(setup)
    booked = connector._all("/invoices/booked", f"references.other$eq:{REF}")
    assert len(booked) == 1 and str(booked[0]["bookedInvoiceNumber"]) == transfer.booked_number
    assert connector._all("/invoices/drafts", f"references.other$eq:{REF}") == []
