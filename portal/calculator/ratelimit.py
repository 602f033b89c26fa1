"""Quote requests per client IP, counted in Redis (shared by every web process) over a fixed hour."""

from flask import current_app

from portal.redis_client import get_redis

WINDOW_SECONDS = 3600


def _key(ip: str) -> str:
    return f"bogbro:quote-requests:ip:{ip}"


def hit(ip: str) -> int:
    """Count one request from `ip`; return 0 if it is within the limit, else the seconds to wait."""
    key = _key(ip)
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)  # the hour starts with the first request
    pipe.incr(key)  # keeps the expiry
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    if count > current_app.config["QUOTE_REQUESTS_PER_IP_PER_HOUR"]:
        return max(int(ttl), 1)
    return 0
