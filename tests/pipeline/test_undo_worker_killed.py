"""A worker killed in the middle of an undo — after the credit note was made in e-conomic, before it was
booked and the order transferred again — and the production watchdog (`rq cron` running
workers.jobs.recover_lost_work) has another worker finish it: one credit note, one new invoice."""

import time
from decimal import Decimal

from sqlalchemy import select

from portal.models import SandboxRecord, TransferUndo
from portal.pipeline.locks import transfer_lock_key
from tests.conftest import start_rq_cron, start_rq_worker, wait_for
from tests.pipeline.conftest import faults, feed, make_setup, make_source_link, order
from tests.pipeline.test_economic_pipeline import REF
from tests.pipeline.test_undo import economic_documents, the_transfer
from tests.pipeline.test_worker_killed import RECOVERY_BOUND, _kill, _stop


def test_a_worker_killed_between_credit_note_and_retransfer(
    app, db, account, owner_client, run_jobs, redis, database_url, tmp_path
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    first_number = transfer.booked_number
    assert transfer.status == "done" and first_number

    # The undo's requests: the invoice looked up (drafts, booked) twice, the credit note made; booking hangs.
    faults(app, "e-conomic", latency_ms=60_000, next=["ok"] * 5 + ["slow"])
    assert (
        owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"}).status_code
        == 302
    )
    victim = start_rq_worker(app, database_url, tmp_path, "--burst")
    survivor = cron = None
    try:

        def credited():
            db.session.expire_all()
            undo = db.session.scalar(select(TransferUndo))
            drafts = db.session.scalars(
                select(SandboxRecord.document).where(
                    SandboxRecord.system == "e-conomic", SandboxRecord.collection == "drafts"
                )
            ).all()
            return undo.credit_requested and any(
                d.get("references", {}).get("other") == f"{REF}-F" for d in drafts
            )

        assert wait_for(credited), "the worker never made the credit note"
        survivor = start_rq_worker(app, database_url, tmp_path)
        cron = start_rq_cron(app, database_url, tmp_path)
        time.sleep(3)  # the victim's lease is kept alive by its heartbeat meanwhile
        assert victim.poll() is None and redis.exists(transfer_lock_key(transfer.id))
        _kill(victim)
        died = time.monotonic()
        faults(app, "e-conomic")

        def retransferred():
            done = the_transfer(db)
            return done.status == "done" and done.undone == 1 and done.booked_number is not None

        assert wait_for(retransferred, RECOVERY_BOUND), f"not done {RECOVERY_BOUND} s after the worker died"
        recovered = time.monotonic() - died
    finally:
        _kill(victim) if victim.poll() is None else None
        _stop(*(p for p in (survivor, cron) if p is not None))
        faults(app, "e-conomic")

    print(f"undo finished {recovered:.1f} s after the worker died")
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "done" and undo.attempts == 2
    booked, drafts = economic_documents(setup, REF)
    assert len(booked) == 1 and str(booked[0]["bookedInvoiceNumber"]) == first_number and drafts == []
    credits, drafts = economic_documents(setup, f"{REF}-F")
    assert (
        len(credits) == 1 and Decimal(str(credits[0]["grossAmount"])) == Decimal("-549.00") and drafts == []
    )
    again, drafts = economic_documents(setup, f"{REF}-V2")
    assert len(again) == 1 and drafts == []
    assert str(again[0]["bookedInvoiceNumber"]) == the_transfer(db).booked_number
