"""Login throttling in Redis, per e-mail address and per client IP, shared by every web process."""

import hashlib

from flask import current_app

from portal.redis_client import get_redis


def _keys(email: str, ip: str) -> tuple[str, str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"bogbro:login-failures:email:{digest}", f"bogbro:login-failures:ip:{ip}"


def seconds_blocked(email: str, ip: str) -> int:
    """How long this address or IP must wait before trying again (0: go ahead)."""
    config = current_app.config
    email_key, ip_key = _keys(email, ip)
    redis = get_redis()
    pipe = redis.pipeline()
    pipe.get(email_key)
    pipe.ttl(email_key)
    pipe.get(ip_key)
    pipe.ttl(ip_key)
    email_count, email_ttl, ip_count, ip_ttl = pipe.execute()
    waits = [0]
    if int(email_count or 0) >= config["LOGIN_MAX_FAILURES_PER_EMAIL"]:
        waits.append(max(email_ttl, 1))
    if int(ip_count or 0) >= config["LOGIN_MAX_FAILURES_PER_IP"]:
        waits.append(max(ip_ttl, 1))
    return max(waits)


def record_failure(email: str, ip: str) -> None:
    window = current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"]
    pipe = get_redis().pipeline()
    for key in _keys(email, ip):
        pipe.incr(key)
        pipe.expire(key, window)  # the window restarts with every failure
    pipe.execute()


def record_success(email: str, ip: str) -> None:
    email_key, _ = _keys(email, ip)
    get_redis().delete(email_key)
