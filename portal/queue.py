"""Background jobs on RQ, enqueued only once the database transaction that needs them has committed.

A job that runs before its rows are visible (or after they were rolled back) is how work gets lost or
done on phantom data, so views and operations never enqueue directly: they call enqueue_after_commit.
"""

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
    session = db.session()
    session.info.setdefault(PENDING_KEY, []).append(
        (current_app._get_current_object(), queue, func, args, kwargs)
    )


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session):
    for app, queue, func, args, kwargs in session.info.pop(PENDING_KEY, []):
        with app.app_context():
            get_queue(queue).enqueue(func, *args, **kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session, previous_transaction):
    session.info.pop(PENDING_KEY, None)
