"""The pipeline's Redis leases: one worker per transfer (and per customer or product being created), one drain
job per sales source.

A lease is short (LOCK_SECONDS) and kept alive by its process: one heartbeat thread per process renews every
lease the process holds each HEARTBEAT_SECONDS, however long the job's current step (a slow remote call)
takes. When the process dies (SIGKILL, OOM, a lost machine) its heartbeat stops with it and its leases
expire within LOCK_SECONDS; the watchdog (scheduling.recover) then queues the work again, and the next
worker resumes it from its checkpoint. A lease found gone (Redis restarted empty) is taken back by its live
holder's heartbeat; one another worker holds now is lost for good (LockLost before the next remote step).
"""

import logging
import os
import threading
import time
import uuid
from contextvars import ContextVar

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LOCK_SECONDS = 10  # a lease outlives its holder's death by this much at most
HEARTBEAT_SECONDS = LOCK_SECONDS / 4  # how often a live process renews its leases
RENEW_AFTER_SECONDS = LOCK_SECONDS / 2  # a step renews the lease itself when the heartbeat is this late
# How often the watchdog (scheduling.recover, workers/schedule.py) looks for work whose lease expired: a
# dead worker's work is queued again LOCK_SECONDS + RECOVER_SECONDS after its death at most.
RECOVER_SECONDS = 10
DRAIN_FLAG_SECONDS = 120  # a queued drain job's flag (a running job's is a lease: LOCK_SECONDS)

# Renew if still ours, or take back if gone (Redis lost it; nobody else can hold it then); 0: another's.
_RENEW = """
local value = redis.call('get', KEYS[1])
if value == ARGV[1] or not value then
    redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _drain_flag(source_link_id: int) -> str:
    return f"bogbro:drain:{source_link_id}"


def transfer_lock_key(transfer_id: int) -> str:
    return f"bogbro:lock:transfer:{transfer_id}"


class LockLost(Exception):
    """This worker's lease expired and another worker holds it now: stop posting."""


class Lease:
    """A Redis key holding this holder's random token, with a TTL of LOCK_SECONDS while held."""

    def __init__(self, redis: Redis, key: str):
        self.redis, self.key, self.token = redis, key, uuid.uuid4().hex
        self.renewed = 0.0  # time.monotonic() of the last acquire or renewal
        self.lost = False  # the heartbeat found another holder
        self._held = False
        self.deferred = False  # to be taken with the holder's next Redis read (defer)
        self._mutex = threading.Lock()  # a renewal never runs after (or during) the release

    def acquire(self, wait_seconds: float = 0) -> bool:
        deadline = time.monotonic() + wait_seconds
        while not self.redis.set(self.key, self.token, nx=True, px=int(LOCK_SECONDS * 1000)):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        self._start()
        return True

    def defer(self) -> None:
        """Take it with the holder's first Redis read (queue_acquire), not in a round trip of its own: for a
        transfer this job's uncommitted transaction created, which no other worker can see yet. Taken
        before any commit or remote step all the same: ensure() takes it if nothing did."""
        self.deferred = True

    def queue_acquire(self, pipe) -> None:
        """The deferred acquire, queued on the caller's pipeline; its answer goes to acquired()."""
        pipe.set(self.key, self.token, nx=True, px=int(LOCK_SECONDS * 1000))

    def acquired(self, answer) -> None:
        """The deferred acquire's answer: held from now on, or LockLost (a key left by an earlier holder)."""
        self.deferred = False
        if not answer:
            raise LockLost(f"{self.key} is held by another worker")
        self._start()

    def take(self) -> None:
        """Hold it whatever its value: the flag set when this drain job was queued is this job's."""
        self.redis.set(self.key, self.token, px=int(LOCK_SECONDS * 1000))
        self._start()

    def _start(self) -> None:
        self.renewed, self.lost, self._held = time.monotonic(), False, True
        _heartbeat.add(self)

    def renew(self) -> bool:
        """False when another holder has it (then it stays lost)."""
        with self._mutex:
            if not self._held:
                return True
            if self.lost:
                return False
            renewed = self.redis.eval(_RENEW, 1, self.key, self.token, int(LOCK_SECONDS * 1000))
            if renewed:
                self.renewed = time.monotonic()
            else:
                self.lost = True
            return bool(renewed)

    def ensure(self) -> None:
        """Before a remote step: raise LockLost if another worker holds the lease now. The heartbeat keeps
        it; only when the heartbeat fell behind (RENEW_AFTER_SECONDS) is it renewed here, so a normal step
        costs no Redis round trip."""
        if self.deferred:
            self.deferred = False
            if not self.acquire():
                raise LockLost(f"{self.key} is held by another worker")
            return
        if self.lost or (time.monotonic() - self.renewed >= RENEW_AFTER_SECONDS and not self.renew()):
            raise LockLost(f"{self.key} is held by another worker")

    def release(self) -> bool:
        """Stop renewing and delete the key if it is still ours; False when it was not."""
        if self.deferred:  # never taken: nothing to give back
            self.deferred = False
            return True
        if not self._let_go():
            return False
        return bool(self.redis.eval(_RELEASE, 1, self.key, self.token))

    def queue_release(self, pipe) -> bool | None:
        """As release(), its round trip queued on the caller's pipeline: None when queued (the answer is
        release()'s outcome), else that outcome at once (never taken: True; no longer held: False)."""
        if self.deferred:
            self.deferred = False
            return True
        if not self._let_go():
            return False
        pipe.eval(_RELEASE, 1, self.key, self.token)
        return None

    def _let_go(self) -> bool:
        """Stop renewing; whether it was held (then its key is to be deleted if still ours: _RELEASE)."""
        _heartbeat.remove(self)
        with self._mutex:
            held, self._held = self._held, False
        return held

    def stop_renewing(self) -> None:
        """Leave the key as it is (handed over to a queued job) and forget it."""
        _heartbeat.remove(self)
        with self._mutex:
            self._held = False


class _Heartbeat:
    """One daemon thread per process renews every lease the process holds."""

    def __init__(self):
        self._leases: dict[int, Lease] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, lease: Lease) -> None:
        with self._mutex:
            self._leases[id(lease)] = lease
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._leases = {id(lease): lease}  # a forked child holds none of its parent's leases
                self._thread = threading.Thread(target=self._run, name="bogbro-lease-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, lease: Lease) -> None:
        with self._mutex:
            self._leases.pop(id(lease), None)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self._mutex:
                leases = list(self._leases.values())
            for lease in leases:
                try:
                    if not lease.renew():
                        log.warning("%s: held by another worker now", lease.key)
                except RedisError as exc:  # Redis away: try again next beat; the step renews or stops
                    log.warning("%s: not renewed: %s", lease.key, exc)


_heartbeat = _Heartbeat()

# The lease of the transfer this context (job) is posting: _keep_lock checks it before each remote step.
_held_lock: ContextVar[Lease | None] = ContextVar("bogbro_transfer_lock", default=None)


def _keep_lock() -> None:
    """Before each remote step: stop (LockLost) if another worker holds this transfer now."""
    held = _held_lock.get()
    if held is not None:
        held.ensure()
