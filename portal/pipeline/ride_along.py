"""Redis work a run leaves for the next round trip: its transfer's lease to release, and the flags of the
once-jobs its commits queued (its setup's payment batch: portal.queue.enqueue_once_after_commit).

Inside a drain batch the next run's cache read carries them (ensure.cache_entries), and the batch's end
what is left; a run of its own sends them as it ends — one Redis round trip a sale less either way. Until
then the lease stays held (and renewed). Only a run that ended done, or waiting for its payment batch, leaves
it here (posting.run_transfer): nothing runs such a transfer again at once, and
- a run of the same transfer again in the batch takes it over (take_over), never waiting for itself;
- a payment batch job already running passes a transfer whose lease is still held, and looks again shortly
  (payment_batches.run); the job a flag queues cannot: the flag is set in the round trip that releases;
- an undo started in that moment looks again shortly (undo.run).
A worker dying in between loses nothing: its leases expire, and the watchdog queues a lost payment batch
(payment_batches.requeue_lost), as when it died between a commit and the flag.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from portal.pipeline.locks import Lease
from portal.queue import get_queue
from portal.redis_client import get_redis

log = logging.getLogger(__name__)


class RideAlong:
    def __init__(self):
        self.leases: list[Lease] = []
        self.jobs: list[tuple] = []  # (queue, func, args, kwargs, (flag, seconds)): portal.queue
        self._queued: list[tuple] = []

    def queue(self, pipe) -> int:
        """Queue it all on the caller's pipeline, first; returns how many answers are its (to answered())."""
        queued = []
        for lease in self.leases:
            if lease.queue_release(pipe) is None:
                queued.append(("lease", lease))
        for job in self.jobs:
            flag, seconds = job[-1]
            pipe.set(flag, "1", nx=True, ex=seconds)
            queued.append(("job", job))
        # emptied in place: portal.queue holds the jobs list while a run is on (hold_back_once_jobs)
        self.leases.clear()
        self.jobs.clear()
        self._queued = queued
        return len(queued)

    def answered(self, answers: list) -> None:
        for (kind, item), answer in zip(self._queued, answers, strict=True):
            if kind == "lease" and not answer:
                log.warning("%s: lost before it was released", item.key)
            elif kind == "job" and answer and not isinstance(answer, Exception):
                queue, func, args, kwargs, _once = item
                get_queue(queue).enqueue(func, *args, **kwargs)  # its flag was free: nobody queued it yet
        self._queued = []

    def send(self) -> None:
        """In a round trip of its own (the batch's end, a run of its own), if anything is left."""
        if not self.leases and not self.jobs:
            return
        with get_redis().pipeline(transaction=False) as pipe:
            self.queue(pipe)
            answers = pipe.execute(raise_on_error=False)
        self.answered(answers)

    def take_over(self, key: str) -> Lease | None:
        for lease in self.leases:
            if lease.key == key:
                self.leases.remove(lease)
                return lease
        return None


_current: ContextVar[RideAlong | None] = ContextVar("bogbro_ride_along", default=None)


def current() -> RideAlong | None:
    return _current.get()


@contextmanager
def batch() -> Iterator[RideAlong]:
    """A drain batch's (or a run of its own's) ride-along: sent at the end with what is left."""
    outer = _current.get()
    if outer is not None:  # a run inside a drain batch: the batch's
        yield outer
        return
    ride = RideAlong()
    token = _current.set(ride)
    try:
        yield ride
    finally:
        _current.reset(token)
        ride.send()


def take_over(key: str) -> Lease | None:
    """A lease this batch let go of and has not released yet: held still, so its holder may go on."""
    ride = _current.get()
    return ride.take_over(key) if ride is not None else None
