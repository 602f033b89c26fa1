"""Background jobs on RQ, enqueued only once the database transaction that needs them has committed.

A job that runs before its rows are visible (or after they were rolled back) is how work gets lost or
done on phantom data, so views and operations never enqueue directly: they call enqueue_after_commit.
"""

from contextvars import ContextVar, Token

from flask import current_app
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.redis_client import get_redis

PENDING_KEY = "bogbro.pending_jobs"


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_redis())


def enqueue_after_commit(func: str, *args, queue: str = "default", **kwargs) -> None:
    """Queue `func` (a dotted path into workers.jobs) with plain-data arguments after the next commit."""
    _pending(queue, func, args, kwargs, None)


def enqueue_once_after_commit(func: str, *args, flag: str, flag_seconds: int, queue: str = "default") -> None:
    """As enqueue_after_commit, unless the Redis key `flag` is set: then a job queued earlier (or running)
    does this work. The flag is set when the job is queued, expires after `flag_seconds` (a worker that
    died holding it), and the job clears it once it finds no more work (portal.pipeline.scheduling.drain)."""
    _pending(queue, func, args, {}, (flag, flag_seconds))


def _pending(queue, func, args, kwargs, once) -> None:
    session = db.session()
    session.info.setdefault(PENDING_KEY, []).append(
        (current_app._get_current_object(), queue, func, args, kwargs, once)
    )


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session):
    held_back = _held_back.get()
    for app, queue, func, args, kwargs, once in session.info.pop(PENDING_KEY, []):
        if once is not None and held_back is not None:
            held_back.append((queue, func, args, kwargs, once))
            continue
        with app.app_context():
            if once is not None and not get_redis().set(once[0], "1", nx=True, ex=once[1]):
                continue
            get_queue(queue).enqueue(func, *args, **kwargs)


# Inside a transfer's run, the once-jobs its commits queue (its setup's payment batch) are held back: their
# flags are set in the round trip that releases the transfer's lease (portal.pipeline.ride_along).
_held_back: ContextVar[list | None] = ContextVar("bogbro_held_back_jobs", default=None)


def hold_back_once_jobs(into: list) -> Token:
    """Once-jobs go to `into` after their commit from now on: (queue, func, args, kwargs, (flag, seconds))."""
    return _held_back.set(into)


def stop_holding_back(token: Token) -> None:
    _held_back.reset(token)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, previous_transaction):
    session.info.pop(PENDING_KEY, None)
