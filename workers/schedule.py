"""Periodic jobs, as data: (job path in workers.jobs, interval in seconds).

Run by RQ's cron scheduler, which enqueues each job on the default queue every interval (the workers run
it like any other job):

    .venv/bin/rq cron workers.schedule --url "$REDIS_URL"

Production runs that one process next to the workers (a single scheduler is enough; RQ registers it in
Redis); `make run` (portal/devserver.py) starts it next to its worker.
"""

from rq.utils import import_attribute

from portal.pipeline.locks import RECOVER_SECONDS

PERIODIC: list[tuple[str, int]] = [
    # Work Redis does not know about (a transfer whose worker died, a drain job that died, everything after
    # Redis restarted empty) is queued again from the database (portal.pipeline.scheduling.recover).
    ("workers.jobs.recover_lost_work", RECOVER_SECONDS),
    # Transfers left `running` by a worker that died are queued again (threshold: PIPELINE_STUCK_SECONDS).
    ("workers.jobs.requeue_stuck_transfers", 120),
    # The reconciliation poll: every minute, queue a poll of each source link whose interval has passed.
    ("workers.jobs.queue_due_polls", 60),
    # One mail per sales source listing its transfers that newly need attention.
    ("workers.jobs.send_error_digests", 600),
    # The daily status report (source_links that want one): sent once a day, from 07:00 Copenhagen time.
    ("workers.jobs.send_daily_reports", 3600),
    # The drift guards: each active accounting setup's templates checked against the ledger and the VAT
    # rate table once a day from 05:00 Copenhagen time, on the `low` queue (portal.setups.drift).
    ("workers.jobs.queue_drift_checks", 3600),
    # The completeness report: the last 30 days of each active shop link, shop against ledger, once a day
    # from 06:00 Copenhagen time, on the `low` queue (portal.pipeline.completeness).
    ("workers.jobs.queue_completeness_reports", 3600),
]


_resolve = import_attribute  # "workers.jobs.name" → the function


def register_all() -> None:
    from rq import cron

    for path, interval in PERIODIC:
        cron.register(_resolve(path), queue_name="default", interval=interval)


register_all()  # `rq cron` loads this module and collects what it registers
