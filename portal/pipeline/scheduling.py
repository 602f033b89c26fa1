"""Scheduling the pipeline's work: one drain job per order integration, and the watchdog that queues again
what lost its worker."""

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import OrderIntegration, SourceEvent, Transfer
from portal.pipeline.locks import DRAIN_FLAG_SECONDS, _drain_flag
from portal.pipeline.operations import INTEGRATION_GRAPH, _batch_memo, _log, process_event
from portal.queue import enqueue_after_commit, get_queue
from portal.redis_client import get_redis

log = logging.getLogger(__name__)

DRAIN_BATCH = 50  # events read at a time by a drain job
DRAIN_SECONDS = 30  # a drain job's share of a worker before it queues the rest behind other work


def drain(integration_id: int) -> int:
    """Process an integration's unprocessed events, oldest first, in one job; returns how many.

    A job per event cost as much again as the order's own work (RQ's dequeue, heartbeats, registries,
    result): under load one job now posts many orders, and an integration's orders go one at a time — as
    its accounting system's rate limit lets them go anyway. A job takes DRAIN_SECONDS at most, then queues
    itself behind other integrations' work.

    The flag (set when this job was queued: enqueue_once_after_commit) keeps a second job from being queued
    meanwhile. It is cleared before a last look, so an event committed after that look queues a new job,
    and one committed before it is found. Each event is tried once per job: one left unprocessed on purpose
    (a later state waiting for a running transfer: process_event looks again later) or whose processing
    failed is left to its own job or the watchdog (requeue_stuck)."""
    redis, flag = get_redis(), _drain_flag(integration_id)
    deadline = time.monotonic() + DRAIN_SECONDS
    tried: set[int] = set()
    session = db.session()
    expire_on_commit = session.expire_on_commit
    try:
        # The integration, its setup and connections are read once per batch, not per event (each event's
        # commits would expire them): a settings change reaches the next batch, seconds later at most.
        session.expire_on_commit = False
        while True:
            batch = _unprocessed(integration_id, tried)
            if not batch:
                redis.delete(flag)
                batch = _unprocessed(integration_id, tried)
                if not batch or not redis.set(flag, "1", nx=True, ex=DRAIN_FLAG_SECONDS):
                    return len(tried)  # nothing left, or a job queued meanwhile takes it
            redis.expire(flag, DRAIN_FLAG_SECONDS)  # still draining
            integration = db.session.get(
                OrderIntegration, integration_id, populate_existing=True, options=INTEGRATION_GRAPH
            )
            _batch_memo.set({})
            for event_id in batch:
                tried.add(event_id)
                try:
                    process_event(event_id, integration)
                except Exception:
                    db.session.rollback()
                    log.exception("integration %s: event %s could not be processed", integration_id, event_id)
                if time.monotonic() > deadline:
                    get_queue().enqueue("workers.jobs.drain_events", integration_id)  # the flag stays ours
                    return len(tried)
    finally:
        session.expire_on_commit = expire_on_commit
        _batch_memo.set(None)


def _unprocessed(integration_id: int, skip: set[int]) -> list[int]:
    query = select(SourceEvent.id).where(
        SourceEvent.integration_id == integration_id, SourceEvent.processed_at.is_(None)
    )
    if skip:
        query = query.where(SourceEvent.id.not_in(skip))
    ids = db.session.scalars(query.order_by(SourceEvent.id).limit(DRAIN_BATCH)).all()
    db.session.rollback()  # end the read: each event's processing is a transaction of its own
    return list(ids)


# --- the watchdog ---------------------------------------------------------------------------------------


def requeue_stuck(older_than: timedelta) -> list[int]:
    """The watchdog: transfers `running` since before `older_than` ago lost their worker; queue them again.
    (A live worker still holding the lock makes the requeued job return at once.) Pending transfers whose
    job went missing (a retry due long ago, or never queued) and events never processed are queued too."""
    cutoff = datetime.now(UTC) - older_than
    stuck = db.session.scalars(
        select(Transfer).where(Transfer.status == "running", Transfer.started_at < cutoff)
    ).all()
    for transfer in stuck:
        _log(transfer, "watchdog", "error", f"running since {transfer.started_at.isoformat()}: requeued")
        enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
    lost = db.session.scalars(
        select(Transfer).where(
            Transfer.status == "pending",
            ((Transfer.next_attempt_at.is_(None)) & (Transfer.updated_at < cutoff))
            | (Transfer.next_attempt_at < cutoff),
        )
    ).all()
    for transfer in lost:
        enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
    unprocessed = db.session.scalars(
        select(SourceEvent.id).where(SourceEvent.processed_at.is_(None), SourceEvent.received_at < cutoff)
    ).all()
    for event_id in unprocessed:
        enqueue_after_commit("workers.jobs.process_event", event_id)
    db.session.commit()
    return [transfer.id for transfer in stuck]
