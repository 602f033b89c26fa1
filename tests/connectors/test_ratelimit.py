"""The shared token bucket in a real Redis: many clients of one organisation stay under its limit together."""

import threading
import time

import pytest

from portal.connectors import ConnectorContext, StaticCredentials
from portal.connectors.errors import TransientError
from portal.connectors.ratelimit import RateLimit, RateLimiter, configured_limit, limiter_for, per_second


def test_burst_up_to_capacity_then_waits(redis):
    waits = []
    limiter = RateLimiter(redis, "dinero:org-1", RateLimit(5, 1.0), sleep=waits.append)
    for _ in range(5):
        assert limiter.acquire() == 0
    # The sixth request has to wait about 1/5 s for a token.
    limiter.sleep = time.sleep
    started = time.monotonic()
    waited = limiter.acquire()
    assert 0 < waited <= 0.25  # less if the first five took a while (a busy machine)
    assert time.monotonic() - started < 1


def test_separate_organisations_have_separate_buckets(redis):
    first = RateLimiter(redis, "dinero:a", RateLimit(1, 60), sleep=lambda s: None, max_wait=0.01)
    second = RateLimiter(redis, "dinero:b", RateLimit(1, 60), sleep=lambda s: None, max_wait=0.01)
    first.acquire()
    second.acquire()
    with pytest.raises(TransientError) as error:
        first.acquire()
    assert 0 < error.value.retry_after <= 60


def test_many_workers_together_stay_under_the_limit(redis):
    """Four threads (think: four RQ workers) share 10 requests per second for one organisation."""
    granted = []
    lock = threading.Lock()

    def worker():
        limiter = RateLimiter(redis, "e-conomic:123", RateLimit(10, 1.0))
        for _ in range(6):
            limiter.acquire()
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(granted) == 24
    # 10 at once, then 10 per second: 24 requests need at least 1.4 s.
    assert elapsed >= 1.3
    # A token bucket admits at most capacity + rate × T in any window of T seconds.
    for index in range(len(granted)):
        window = [t for t in granted if granted[index] - 0.5 < t <= granted[index]]
        assert len(window) <= 10 + 10 * 0.5 + 1


def test_how_connectors_build_their_limiter(redis):
    waits = []
    context = ConnectorContext(
        base_url="", credentials=StaticCredentials({}), redis=redis, sleep=waits.append
    )
    limiter = limiter_for(context, "shopify:a.myshopify.com", per_second(2.0))
    assert limiter.key == "bogbro:ratelimit:shopify:a.myshopify.com" and limiter.sleep == waits.append
    assert (
        limiter_for(ConnectorContext(base_url="", credentials=StaticCredentials({})), "x", RateLimit(1, 1))
        is None
    )
    # e-conomic: one request per 1/rate seconds; WooCommerce: a burst of the whole rate
    assert per_second(4.0) == RateLimit(1, 0.25) and per_second(4.0, burst=4) == RateLimit(4, 1.0)
    default = RateLimit(36, 20.0)
    assert configured_limit({}, default) == default
    assert configured_limit({"rate_limit_requests": "3", "rate_limit_seconds": 1}, default) == RateLimit(
        3, 1.0
    )


def take_turns(redis, limiter, calls):
    """As a run's cache read takes them (portal.pipeline.ensure.cache_entries): in the caller's pipeline."""
    with redis.pipeline(transaction=False) as pipe:
        pipe.get("something else")
        limiter.queue_turns(pipe, calls)
        limiter.turns_taken(pipe.execute()[-1])


def test_turns_taken_ahead_in_one_round_trip(redis):
    """A draft and its booking: both turns in the cache read's round trip, the second due when the bucket
    would have given it — so another worker of the organisation still waits behind both."""
    waits, others = [], []
    limiter = RateLimiter(redis, "e-conomic:9", RateLimit(1, 1.0), sleep=waits.append)
    take_turns(redis, limiter, 2)
    assert float(redis.hget("bogbro:ratelimit:e-conomic:9", "tokens")) == -1  # both taken at once
    assert limiter.acquire() == 0  # the first: due now
    started = time.monotonic()
    second = limiter.acquire()  # no round trip: due about 1 s after the first
    assert 0.9 - (time.monotonic() - started) <= second <= 1.0 and waits == [second]
    other = RateLimiter(redis, "e-conomic:9", RateLimit(1, 1.0), sleep=others.append)
    assert 1.5 <= other.acquire() <= 2.0  # the third turn
    assert limiter.acquire() >= 2.5  # two were taken ahead: the next one asks the bucket again


def test_turns_beyond_max_wait_are_left_to_their_own_round_trip(redis):
    limiter = RateLimiter(redis, "dinero:c", RateLimit(1, 60), sleep=lambda s: None, max_wait=1)
    take_turns(redis, limiter, 2)
    assert float(redis.hget("bogbro:ratelimit:dinero:c", "tokens")) == 0  # the second was not reserved
    assert limiter.acquire() == 0
    with pytest.raises(TransientError):
        limiter.acquire()


def test_a_first_turn_beyond_max_wait_fails_the_cache_read(redis):
    limiter = RateLimiter(redis, "dinero:d", RateLimit(1, 60), sleep=lambda s: None, max_wait=1)
    assert limiter.acquire() == 0
    with pytest.raises(TransientError):
        take_turns(redis, limiter, 2)
    assert float(redis.hget("bogbro:ratelimit:dinero:d", "tokens")) == 0  # nothing reserved
