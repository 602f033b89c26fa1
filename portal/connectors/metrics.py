"""What every outbound API request cost, counted in Redis so that `/metrics` (any web process, any machine)
reports the requests of every worker on every machine: per system, the latency histogram, the errors by
kind, and the waits for our own shared rate limit.

Redis rather than per-process counters: RQ workers serve no HTTP and run anywhere, and Redis is already
the shared state every worker talks to. Outside a job, a request's counts are one pipelined round trip after
it. Inside an RQ job (`batched`, workers.jobs) they cost no round trip of their own: they go with the next
request's rate-limiter round trip (ratelimit.RateLimiter.acquire), the last ones when the job ends — so a
worker that dies mid-job loses at most its last request's counts. Counting never fails a request: a Redis
error is logged and forgotten.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY = "bogbro:metrics:api"  # hash: "<system>|<field>" -> number
# seconds; a request slower than the last falls in +Inf
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ERROR_KINDS = ("rate_limited", "server_error", "client_error", "timeout", "unreachable")


def outcome_of(status: int | None, failure: str | None = None) -> str | None:
    """The error kind of one request (None: it succeeded): an HTTP status, or a failure before one."""
    if failure is not None:
        return failure
    if status is None or status < 400:
        return None
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


class _Pending:
    """Counts made inside a `batched` block, not in Redis yet."""

    def __init__(self):
        self.redis: Redis | None = None
        self.counts: dict[str, int] = {}
        self.sums: dict[str, float] = {}

    def add(self, redis: Redis, counts: dict[str, int], sums: dict[str, float]) -> None:
        self.redis = redis
        for field, n in counts.items():
            self.counts[field] = self.counts.get(field, 0) + n
        for field, value in sums.items():
            self.sums[field] = self.sums.get(field, 0.0) + value

    def queue(self, pipe: Pipeline) -> None:
        """Add the counts to `pipe`'s commands and forget them."""
        _queue(pipe, self.counts, self.sums)
        self.counts, self.sums = {}, {}


_batch: ContextVar[_Pending | None] = ContextVar("bogbro_api_metrics_batch", default=None)


@contextmanager
def batched() -> Iterator[None]:
    """Within the block (an RQ job), counts wait in the process for the next rate-limiter round trip
    (`pending_for`), and what is left is sent when the block ends."""
    pending = _Pending()
    token = _batch.set(pending)
    try:
        yield
    finally:
        _batch.reset(token)
        if pending.redis is not None and pending.counts:
            _send(pending.redis, pending.queue)


def pending_for(redis: Redis) -> _Pending | None:
    """The counts waiting to go to `redis` with another round trip (queue them into its pipeline)."""
    pending = _batch.get()
    return pending if pending is not None and pending.counts and pending.redis is redis else None


class ApiMetrics:
    def __init__(self, redis: Redis):
        self.redis = redis

    def request(self, system: str, seconds: float, error: str | None) -> None:
        """One HTTP request to `system` that took `seconds`; `error` one of ERROR_KINDS, or None."""
        bucket = next((str(b) for b in BUCKETS if seconds <= b), "+Inf")
        fields = {f"{system}|le={bucket}": 1, f"{system}|count": 1}
        if error:
            fields[f"{system}|error={error}"] = 1
        self._add(fields, {f"{system}|seconds": seconds})

    def rate_limit_wait(self, system: str, seconds: float) -> None:
        """A request held back `seconds` for our own per-organisation pace (connectors.ratelimit)."""
        self._add({f"{system}|waits": 1}, {f"{system}|wait_seconds": seconds})

    def _add(self, counts: dict[str, int], sums: dict[str, float]) -> None:
        pending = _batch.get()
        if pending is not None:
            pending.add(self.redis, counts, sums)
        else:
            _send(self.redis, lambda pipe: _queue(pipe, counts, sums))


def _queue(pipe: Pipeline, counts: dict[str, int], sums: dict[str, float]) -> None:
    for field, n in counts.items():
        pipe.hincrby(KEY, field, n)
    for field, value in sums.items():
        pipe.hincrbyfloat(KEY, field, value)


def _send(redis: Redis, queue) -> None:
    try:
        pipe = redis.pipeline(transaction=False)
        queue(pipe)
        pipe.execute()
    except RedisError as exc:
        log.warning("API metrics not counted: %s", exc)


def read(redis: Redis) -> dict[str, dict[str, float]]:
    """{system: {field: value}} as counted so far (for the /metrics collector)."""
    systems: dict[str, dict[str, float]] = {}
    for key, value in redis.hgetall(KEY).items():
        system, _, field = key.decode().partition("|")
        systems.setdefault(system, {})[field] = float(value)
    return systems
