"""One Redis connection per app (the embedded one in development, REDIS_URL elsewhere)."""

import redis
from flask import current_app


def get_redis() -> redis.Redis:
    client = current_app.extensions.get("bogbro.redis")
    if client is None:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["bogbro.redis"] = client
    return client
