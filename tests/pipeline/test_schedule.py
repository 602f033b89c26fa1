"""The periodic jobs are data that `rq cron workers.schedule` loads; each names a real job."""

from workers import jobs, schedule


def test_every_periodic_job_is_a_job_with_an_interval():
    assert schedule.PERIODIC
    for path, interval in schedule.PERIODIC:
        assert path.startswith("workers.jobs.") and interval > 0
        assert schedule._resolve(path) is getattr(jobs, path.rsplit(".", 1)[1])


def test_the_watchdog_job_runs(db, run_jobs):
    assert jobs.requeue_stuck_transfers() == []
