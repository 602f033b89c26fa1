"""The pipeline's Redis locks and flags: one worker per transfer (and per customer or product being created),
one drain job per order integration."""

import time
from contextvars import ContextVar
from dataclasses import dataclass

from redis.exceptions import LockError
from redis.lock import Lock

LOCK_SECONDS = 300  # longer than any transfer; the watchdog's threshold is larger still
DRAIN_FLAG_SECONDS = 120  # a drain job that died keeps a new one from being queued this long at most
RENEW_AFTER_SECONDS = LOCK_SECONDS / 3


def _drain_flag(integration_id: int) -> str:
    return f"bogbro:drain:{integration_id}"


class LockLost(Exception):
    """This worker's lock on the transfer expired (and may be another worker's now): stop posting."""


@dataclass
class _HeldLock:
    lock: Lock
    renewed: float  # time.monotonic() when it was taken or last renewed


_held_lock: ContextVar[_HeldLock | None] = ContextVar("bogbro_transfer_lock", default=None)


def _keep_lock() -> None:
    """Before each remote step: renew this worker's lock, so a slow transfer keeps it for as long as it
    is alive; if the lock was lost, stop before touching the accounting system again. A lock taken or
    renewed less than RENEW_AFTER_SECONDS ago cannot have expired: it is left as it is (renewing it before
    every step cost two Redis round trips an order)."""
    held = _held_lock.get()
    if held is None or time.monotonic() - held.renewed < RENEW_AFTER_SECONDS:
        return
    try:
        held.lock.reacquire()
    except LockError as exc:
        raise LockLost(str(exc)) from exc
    held.renewed = time.monotonic()
