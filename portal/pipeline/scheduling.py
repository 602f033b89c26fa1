"""Scheduling the pipeline's work: one drain job per sales source, and the watchdog that queues again
what lost its worker."""

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import SourceEvent, SourceLink, Transfer, utcnow
from portal.pipeline import ride_along
from portal.pipeline.intake import event_failed, process_event
from portal.pipeline.locks import DRAIN_FLAG_SECONDS, Lease, _drain_flag, transfer_lock_key
from portal.pipeline.messages import N_, message
from portal.pipeline.steps import SOURCE_LINK_GRAPH, batch_memo, log_step
from portal.queue import enqueue_after_commit, get_queue
from portal.redis_client import get_redis

log = logging.getLogger(__name__)

DRAIN_BATCH = 50  # events read at a time by a drain job
DRAIN_SECONDS = 30  # a drain job's share of a worker before it queues the rest behind other work


def drain(source_link_id: int) -> int:
    """Process a source link's unprocessed events, oldest first, in one job; returns how many.

    A job per event cost as much again as the order's own work (RQ's dequeue, heartbeats, registries,
    result): under load one job now posts many orders, and a source link's orders go one at a time — as
    its accounting system's rate limit lets them go anyway. A job takes DRAIN_SECONDS at most, then queues
    itself behind other source links' work.

    The flag (set when this job was queued: enqueue_once_after_commit) keeps a second job from being queued
    meanwhile. Once running, the job holds it as a lease (locks.Lease: seconds long, kept alive by the
    worker's heartbeat), so a job whose worker died lets the next event, or the watchdog (recover), queue a
    new one within seconds. It is cleared before a last look, so an event committed after that look queues
    a new job, and one committed before it is found. Each event is tried once per job: one left unprocessed
    on purpose (a later state waiting for a running transfer: process_event looks again later) is left to
    its own job or the watchdog; one whose processing failed needs attention (intake.event_failed)."""
    redis, flag = get_redis(), _drain_flag(source_link_id)
    lease = Lease(redis, flag)
    lease.take()
    deadline = time.monotonic() + DRAIN_SECONDS
    tried: set[int] = set()
    session = db.session()
    expire_on_commit = session.expire_on_commit
    try:
        # The source link, its setup and connections are read once per batch, not per event (each event's
        # commits would expire them): a settings change reaches the next batch, seconds later at most.
        session.expire_on_commit = False
        while True:
            batch = _unprocessed(source_link_id, tried)
            if not batch:
                lease.release()
                batch = _unprocessed(source_link_id, tried)
                if not batch or not lease.acquire():
                    return len(tried)  # nothing left, or a job queued meanwhile takes it
            source_link = db.session.get(
                SourceLink, source_link_id, populate_existing=True, options=SOURCE_LINK_GRAPH
            )
            batch_memo.set({})
            late = False
            with ride_along.batch():  # a run's lease goes with the next run's cache read
                for event_id in batch:
                    tried.add(event_id)
                    try:
                        process_event(event_id, source_link)
                    except Exception as exc:
                        db.session.rollback()
                        log.exception(
                            "source_link %s: event %s could not be processed", source_link_id, event_id
                        )
                        # visible, needing attention: never crashed again in silence
                        event_failed(event_id, exc)
                    late = time.monotonic() > deadline
                    if late:
                        break
            if late:
                # The rest behind other work: the flag, a queued job's again, goes with the job.
                lease.stop_renewing()
                with redis.pipeline() as pipe:
                    get_queue().enqueue("workers.jobs.drain_events", source_link_id, pipeline=pipe)
                    pipe.set(flag, "1", ex=DRAIN_FLAG_SECONDS)
                    pipe.execute()
                return len(tried)
    finally:
        lease.release()  # still held only when this job failed: then the watchdog queues a new one
        session.expire_on_commit = expire_on_commit
        batch_memo.set(None)


def _unprocessed(source_link_id: int, skip: set[int]) -> list[int]:
    query = select(SourceEvent.id).where(
        SourceEvent.source_link_id == source_link_id, SourceEvent.processed_at.is_(None)
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
        since = transfer.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        requeued = message(N_("Running since %(time)s UTC: queued again."), time=since)
        log_step(transfer, "watchdog", "error", requeued)
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


# Set once in a Redis: when `recover` finds it missing, that Redis is new (restarted empty, or flushed)
# and forgot every queued job, scheduled retry, lock and flag.
EPOCH_KEY = "bogbro:redis-epoch"
EVENT_GRACE = timedelta(seconds=5)  # an event this young may still be getting its drain job queued
# A retry this late was scheduled in RQ but not started: the worker whose RQ scheduler held it died (the next
# scheduler waits out the dead one's lock, a minute). Queued again once a minute at most.
OVERDUE = timedelta(seconds=15)
OVERDUE_FLAG_SECONDS = 60


def recover(stuck_after: timedelta) -> dict[str, list[int]]:
    """The fast watchdog (every few seconds: workers/schedule.py): what the database says is to be done and
    nothing in Redis is doing is queued again.

    - a transfer `running` without its lock: its worker died (the lock is a lease its heartbeat kept
      alive) or stopped on an error such as a database restart; it resumes from its checkpoint;
    - a source link with events waiting (received in the last `stuck_after`, older ones are
      requeue_stuck's) and no drain flag: its drain job died; a new one is queued;
    - a pending transfer whose retry is OVERDUE: the RQ scheduler that held its retry died with its worker;
    - Redis new (EPOCH_KEY missing): every pending transfer (at its retry time) and every source link with
      waiting events, whatever their age. Running transfers wait for the next round: a live worker's
      heartbeat takes its lock back within seconds, so only the dead ones are found without one then.

    Queuing twice is harmless: a job finds the transfer locked or done, or the events processed."""
    redis, now = get_redis(), utcnow()
    new_redis = bool(redis.set(EPOCH_KEY, now.isoformat(), nx=True))
    running = (
        [] if new_redis else db.session.scalars(select(Transfer.id).where(Transfer.status == "running")).all()
    )
    orphaned: list[int] = []
    if running:
        with redis.pipeline(transaction=False) as pipe:
            for transfer_id in running:
                pipe.exists(transfer_lock_key(transfer_id))
            orphaned = [t for t, held in zip(running, pipe.execute(), strict=True) if not held]
    for transfer in db.session.scalars(
        select(Transfer).where(Transfer.id.in_(orphaned), Transfer.status == "running")
    ):
        log_step(
            transfer, "watchdog", "error", message(N_("Its worker stopped before finishing: queued again."))
        )
    pending: list[Transfer] = []
    if new_redis:
        pending = db.session.scalars(select(Transfer).where(Transfer.status == "pending")).all()
    else:
        overdue = db.session.scalars(
            select(Transfer).where(Transfer.status == "pending", Transfer.next_attempt_at < now - OVERDUE)
        ).all()
        pending = [
            t for t in overdue if redis.set(f"bogbro:overdue:{t.id}", "1", nx=True, ex=OVERDUE_FLAG_SECONDS)
        ]
    waiting = select(SourceEvent.source_link_id).where(SourceEvent.processed_at.is_(None))
    if not new_redis:
        waiting = waiting.where(
            SourceEvent.received_at < now - EVENT_GRACE, SourceEvent.received_at > now - stuck_after
        )
    source_links = db.session.scalars(waiting.distinct()).all()
    retry_at = {t.id: t.next_attempt_at for t in pending if t.next_attempt_at and t.next_attempt_at > now}
    db.session.commit()

    queue = get_queue()
    for transfer_id in orphaned + [t.id for t in pending]:
        if transfer_id in retry_at:
            queue.enqueue_at(retry_at[transfer_id], "workers.jobs.run_transfer", transfer_id)
        else:
            queue.enqueue("workers.jobs.run_transfer", transfer_id)
    drained = []
    for source_link_id in source_links:
        if redis.set(_drain_flag(source_link_id), "1", nx=True, ex=DRAIN_FLAG_SECONDS):
            queue.enqueue("workers.jobs.drain_events", source_link_id)
            drained.append(source_link_id)
    if orphaned or pending or drained:
        log.warning(
            "recovered: transfers %s, pending %s, drains %s", orphaned, [t.id for t in pending], drained
        )
    return {"transfers": orphaned, "pending": [t.id for t in pending], "drains": drained}
