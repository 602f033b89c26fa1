"""`rq cron tests.pipeline.recovery_cron`: the production schedule's watchdog alone (workers/schedule.py's
recover job, at its interval), without the shops' polls, which would import the sandbox shop's orders."""

from rq import cron

from portal.pipeline.locks import RECOVER_SECONDS
from workers.jobs import recover_lost_work

cron.register(recover_lost_work, queue_name="default", interval=RECOVER_SECONDS)
