"""Quote requests per client IP, counted in Redis (shared by every web process) over a fixed hour."""

from flask import current_app

from portal.redis_client import window_hit

WINDOW_SECONDS = 3600


def _key(ip: str) -> str:
    return f"bogbro:quote-requests:ip:{ip}"


def hit(ip: str) -> int:
    """Count one request from `ip`; return 0 if it is within the limit, else the seconds to wait."""
    return window_hit(_key(ip), current_app.config["QUOTE_REQUESTS_PER_IP_PER_HOUR"], WINDOW_SECONDS)
