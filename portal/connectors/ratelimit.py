"""A token bucket in Redis, shared by every worker that talks to the same remote organisation.

Dinero allows 100 requests a minute per organisation; e-conomic asks for fair use. Many RQ workers on
many machines must stay under that together, so the bucket lives in Redis and is updated atomically by
a Lua script that uses Redis' own clock.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from portal.connectors import metrics
from portal.connectors.errors import TransientError

if TYPE_CHECKING:
    from portal.connectors import ConnectorContext

# Take `count` tokens now, or reserve the next free ones: the bucket may go below zero by what waiting callers
# have reserved, so each caller sleeps once per token and goes (no second round trip after the wait). Returns
# each token's wait in ms; a first token further off than max_wait reserves nothing ({-wait}), a later one is
# left for its own round trip.
_TAKE = """
local capacity = tonumber(ARGV[1])
local refill_per_ms = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * refill_per_ms)
local waits = {}
for k = 1, count do
  local wait = 0
  if tokens < k then
    wait = math.ceil((k - tokens) / refill_per_ms)
  end
  if wait > max_wait then
    if k == 1 then
      return {-wait}
    end
    break
  end
  waits[k] = wait
end
tokens = tokens - #waits
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / refill_per_ms) + 1000)
return waits
"""


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_seconds: float

    @property
    def refill_per_ms(self) -> float:
        return self.requests / (self.per_seconds * 1000)


class RateLimiter:
    def __init__(
        self, client: redis.Redis, key: str, limit: RateLimit, *, max_wait: float = 30.0, sleep=time.sleep
    ):
        self.client = client
        self.key = f"bogbro:ratelimit:{key}"
        self.limit = limit
        self.max_wait = max_wait
        self.sleep = sleep
        self._take = client.register_script(_TAKE)
        self._reserved: list[float] = []  # turns taken ahead (queue_turns): when each is due (time.monotonic)

    def queue_turns(self, pipe, calls: int) -> None:
        """Take the turns of the next `calls` requests in the caller's round trip (a run's cache read:
        portal.pipeline.ensure.cache_entries), last in its pipeline, with the API counts waiting in this
        job; the answer goes to turns_taken(). Each is used by a request when it goes (acquire), waiting
        until the bucket would have given it: never more than the limit; one left unused is a turn given
        up."""
        pending = metrics.pending_for(self.client)
        if pending is not None:
            pending.queue(pipe)
        # EVAL, not the registered script's EVALSHA: a pipeline would ask SCRIPT EXISTS first (a round trip)
        pipe.eval(_TAKE, 1, self.key, *self._args(calls))

    def turns_taken(self, waits) -> None:
        """queue_turns' answer (the last of the pipeline's)."""
        if isinstance(waits, Exception):
            raise waits
        self._reserved = self._due(waits)

    def acquire(self) -> float:
        """Take one request from the bucket (or use a turn taken ahead), waiting for it if need be; returns
        the seconds waited. The API counts waiting in this job (metrics.batched) go in the same round trip."""
        if not self._reserved:
            if metrics.pending_for(self.client) is None:
                self._reserved = self._due(self._take(keys=[self.key], args=self._args(1)))
            else:
                pipe = self.client.pipeline(transaction=False)
                self.queue_turns(pipe, 1)
                # a failed count fails nothing; a failed take fails as it would alone
                self.turns_taken(pipe.execute(raise_on_error=False)[-1])
        wait = max(0.0, self._reserved.pop(0) - time.monotonic())
        if wait:
            self.sleep(wait)
        return wait

    def _args(self, calls: int) -> list:
        return [self.limit.requests, self.limit.refill_per_ms, int(self.max_wait * 1000), calls]

    def _due(self, waits: list) -> list[float]:
        """When each turn taken is due (time.monotonic); the first one beyond max_wait: TransientError."""
        first = int(waits[0])
        if first < 0:
            raise TransientError(
                "our own rate limit for this organisation is used up", retry_after=-first / 1000
            )
        now = time.monotonic()
        return [now + int(wait) / 1000 for wait in waits]


# --- how connectors build their limiter ---------------------------------------------------------------------


def limiter_for(context: "ConnectorContext", key: str, limit: RateLimit) -> RateLimiter | None:
    """The bucket shared by every worker that talks to one remote organisation or shop (`key`, e.g.
    "dinero:<organisation id>"), waiting with the context's sleep; None when the context has no Redis."""
    if context.redis is None:
        return None
    return RateLimiter(context.redis, key, limit, sleep=context.sleep)


def configured_limit(settings: dict, default: RateLimit) -> RateLimit:
    """`rate_limit_requests` per `rate_limit_seconds` from a system's settings, else `default`."""
    return RateLimit(
        int(settings.get("rate_limit_requests", default.requests)),
        float(settings.get("rate_limit_seconds", default.per_seconds)),
    )


def per_second(rate: float, burst: int = 1) -> RateLimit:
    """`rate` requests a second on average, at most `burst` of them at once."""
    return RateLimit(burst, burst / rate)
