"""One Redis connection per app (the embedded one in development, REDIS_URL elsewhere)."""

import redis
from flask import current_app


def get_redis() -> redis.Redis:
    client = current_app.extensions.get("bogbro.redis")
    if client is None:
        # A Redis that does not answer must fail fast (the dashboard shows the queue as unknown), not hang a
        # request; no read timeout: RQ's blocking dequeue waits on this client.
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=5)
        current_app.extensions["bogbro.redis"] = client
    return client


def window_hit(key: str, limit: int, window_seconds: int) -> int:
    """Count one hit on `key` in a fixed window that starts with the first hit; 0 while within `limit`,
    else the seconds until the window ends (shared by every web process)."""
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=window_seconds, nx=True)
    pipe.incr(key)  # keeps the expiry
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    return max(int(ttl), 1) if count > limit else 0
