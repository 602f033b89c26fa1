"""The periodic jobs are data that `rq cron workers.schedule` loads; each names a real job."""

from workers import jobs, schedule


def test_every_periodic_job_is_a_job_with_an_interval():
    assert schedule.PERIODIC
    for path, interval in schedule.PERIODIC:
        assert path.startswith("workers.jobs.") and interval > 0
        assert schedule._resolve(path) is getattr(jobs, path.rsplit(".", 1)[1])


def test_the_watchdog_job_runs(db, run_jobs):
    assert jobs.requeue_stuck_transfers() == []


def test_an_overdue_retry_is_queued_again_once(db, account, redis, run_jobs):
    """A retry scheduled in RQ whose scheduler died with its worker (the next one waits out the dead one's
    lock for a minute) is queued by the fast watchdog instead — and only once a minute."""
    from datetime import timedelta

    from sqlalchemy import select

    from portal.models import SourceEvent, Transfer, utcnow
    from portal.pipeline import intake, scheduling
    from portal.queue import get_queue
    from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote

    scheduling.recover(timedelta(minutes=10))  # this Redis is known (not "new": everything is requeued then)
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    get_queue().empty()
    intake.process_event(db.session.scalar(select(SourceEvent.id)))  # booked
    # As if its last attempt had failed and scheduled a retry 20 s ago, which nobody started:
    transfer = db.session.scalar(select(Transfer))
    transfer.status, transfer.next_attempt_at = "pending", utcnow() - timedelta(seconds=20)
    db.session.commit()

    assert scheduling.recover(timedelta(minutes=10))["pending"] == [transfer.id]
    assert scheduling.recover(timedelta(minutes=10))["pending"] == []  # not again within the minute
    assert [job.func_name for job in get_queue().jobs] == ["workers.jobs.run_transfer"]
    run_jobs()
    db.session.expire_all()
    assert transfer.status == "done"  # resumed: the booked invoice found by its reference, not made again
    assert len(remote(setup)._all("/invoices/booked", f"references.other$eq:{transfer.reference}")) == 1
