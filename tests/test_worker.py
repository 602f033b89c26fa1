"""RQ workers stop promptly: a burst worker after its job, a running worker on SIGTERM after its current job.

Regression guard for redis-py 8.2.0, whose PubSubWorkerThread.stop() joins the thread. RQ leaves that thread
in get_message(timeout=60) and counts on the UNSUBSCRIBE reply to wake it; when the thread reads that reply
before stop() clears its flag (by chance in production, always in `SlowToUnsubscribe`), the join waits the
full 60 s — every worker's shutdown, and every burst run in this suite. pyproject.toml excludes redis 8.2.
"""

import signal
import time

from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from tests.conftest import start_rq_worker, wait_for


class SlowToUnsubscribe(SimpleWorker):
    """Gives the pub/sub thread time to read the UNSUBSCRIBE reply before the worker stops that thread."""

    def subscribe(self):
        super().subscribe()
        unsubscribe = self.pubsub.unsubscribe

        def unsubscribe_then_wait(*args, **kwargs):
            result = unsubscribe(*args, **kwargs)
            time.sleep(0.5)
            return result

        self.pubsub.unsubscribe = unsubscribe_then_wait


def test_a_burst_worker_finishes_one_job_in_seconds(redis):
    queue = Queue("worker-test", connection=redis)
    for worker_class in (SimpleWorker, SlowToUnsubscribe):
        job = queue.enqueue("builtins.len", "abc")
        started = time.monotonic()
        worker_class([queue], connection=redis).work(burst=True)
        took = time.monotonic() - started
        assert job.get_status(refresh=True) == JobStatus.FINISHED and job.return_value() == 3
        assert took < 10, f"{worker_class.__name__} took {took:.1f} s to run one job and stop"


def test_a_worker_stops_promptly_on_sigterm_after_its_current_job(app, db, redis, database_url, tmp_path):
    queue = Queue("default", connection=redis)
    job = queue.enqueue("time.sleep", 2)
    worker = start_rq_worker(app, database_url, tmp_path, "default")
    try:
        started = wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, 60)
        assert started, "the job never started"
        worker.send_signal(signal.SIGTERM)  # a warm shutdown: finish the job, then stop
        signalled = time.monotonic()
        exit_code = worker.wait(30)
        took = time.monotonic() - signalled
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert exit_code == 0
    assert Job.fetch(job.id, connection=redis).get_status() == JobStatus.FINISHED  # not cut short
    assert took < 2 + 5, f"the worker took {took:.1f} s to stop after SIGTERM (its job needed 2 s)"


def test_the_app_worker_prints_one_line_per_job(app, redis, caplog):
    from workers.worker import AppWorker

    queue = Queue("worker-lines", connection=redis)
    jobs = [queue.enqueue("builtins.len", "abc"), queue.enqueue("builtins.len", "abcd")]
    with caplog.at_level("INFO", logger="rq.worker"):
        AppWorker([queue], connection=redis).work(burst=True)
    assert [job.return_value() for job in jobs] == [3, 4]
    per_job = [r.getMessage() for r in caplog.records if any(job.id in r.getMessage() for job in jobs)]
    per_job += [r.getMessage() for r in caplog.records if "builtins.len" in r.getMessage()]
    lines = sorted(set(per_job))
    assert len(lines) == 2 and all(line.startswith("Successfully completed builtins.len(") for line in lines)
