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
