"""The RQ worker class to run: `rq worker --worker-class workers.worker.AppWorker`.

RQ's default worker forks a work horse for every job, and each horse built the Flask app (configuration,
extensions, blueprints) again: on this project's machines a no-op job cost ~30 ms that way, against ~5 ms
in-process (`make bench` prints both yardsticks' figures). This worker creates the app once and runs every
job in it, each job in its own app context (workers.jobs.job), so no state is carried between jobs.

What the fork bought is not needed here: job timeouts still apply (RQ's signal death penalty), and a worker
that dies mid-job loses nothing — transfers are checkpointed, locked and requeued by the watchdog. Any
process forked from a worker (RQ's scheduler) starts with a fresh database pool (SQLAlchemy's advice for
os.fork: drop the inherited pool without closing the parent's connections).
"""

import gc
import logging
import os

from rq.worker import SimpleWorker

# RQ says three things per job (taken, "Job OK", how long its result is kept); its
# "Successfully completed <job> in <time>" line says all of it. A failure is still logged in full.
_PER_JOB_CHATTER = frozenset({"Worker %s: %s: %s (%s)", "Worker %s: %s: %s"})


def _one_line_per_job(record: logging.LogRecord) -> bool:
    return not (record.levelno == logging.INFO and record.msg in _PER_JOB_CHATTER)


class AppWorker(SimpleWorker):
    log_result_lifespan = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if _one_line_per_job not in self.log.filters:
            self.log.addFilter(_one_line_per_job)
        from portal.extensions import db
        from workers.jobs import _app

        with _app().app_context():
            engine = db.engine
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        # The app, its models and the imported modules live as long as the worker: out of the collector's
        # sight, so that a full collection walks only what the jobs made (on this project's machines one
        # walked ~180,000 objects, ~50 ms, every few hundred orders).
        gc.collect()
        gc.freeze()
