"""Login throttling in Redis, shared by every web process — aimed at the one guessing, not at the owner.

Failures are counted per (e-mail, client IP) and per client IP: the guesser is stopped, while the owner,
from a client that has not been failing, still logs in. Failures at one e-mail from every client together
only slow the failing clients down (a pause after each of their failures), never a client that has not
failed, so a stranger cannot lock the owner out.
"""

import hashlib

from flask import current_app

from portal.redis_client import get_redis, window_hit

# Past the per-e-mail limit a client that fails at that address waits this long before its next try.
SLOWDOWN_SECONDS = 5


def _digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _keys(email: str, ip: str) -> tuple[str, str, str]:
    digest = _digest(email)
    return (
        f"bogbro:login-failures:pair:{digest}:{ip}",
        f"bogbro:login-failures:ip:{ip}",
        f"bogbro:login-failures:email:{digest}",
    )


def _slowdown_key(email: str, ip: str) -> str:
    return f"bogbro:login-slowdown:{_digest(email)}:{ip}"


def seconds_blocked(email: str, ip: str) -> int:
    """How long this client must wait before trying this address again (0: go ahead)."""
    config = current_app.config
    pair_key, ip_key, _ = _keys(email, ip)
    redis = get_redis()
    pipe = redis.pipeline()
    for key in (pair_key, ip_key):
        pipe.get(key)
        pipe.ttl(key)
    pipe.ttl(_slowdown_key(email, ip))
    pair_count, pair_ttl, ip_count, ip_ttl, slowdown_ttl = pipe.execute()
    waits = [0, slowdown_ttl]  # ttl is -2 when there is no pause
    if int(pair_count or 0) >= config["LOGIN_MAX_FAILURES_PER_EMAIL"]:
        waits.append(max(pair_ttl, 1))
    if int(ip_count or 0) >= config["LOGIN_MAX_FAILURES_PER_IP"]:
        waits.append(max(ip_ttl, 1))
    return max(waits)


def record_failure(email: str, ip: str) -> None:
    config = current_app.config
    window = config["LOGIN_FAILURE_WINDOW_SECONDS"]
    pipe = get_redis().pipeline()
    for key in _keys(email, ip):
        pipe.incr(key)
        pipe.expire(key, window)  # the window restarts with every failure
    counts = pipe.execute()[::2]
    if counts[2] >= config["LOGIN_MAX_FAILURES_PER_EMAIL"]:  # many failures at this address, from anywhere
        get_redis().set(_slowdown_key(email, ip), 1, ex=SLOWDOWN_SECONDS)


def record_success(email: str, ip: str) -> None:
    pair_key, _, _ = _keys(email, ip)
    get_redis().delete(pair_key)


# --- sign-up: attempts per client IP over a fixed hour (spam and CVR/e-mail probing) --------------------

SIGNUP_WINDOW_SECONDS = 3600
RESEND_PAUSE_SECONDS = 60


def signup_hit(ip: str) -> int:
    """Count one sign-up attempt from `ip`; 0 if it is within the limit, else the seconds to wait."""
    limit = current_app.config["SIGNUPS_PER_IP_PER_HOUR"]
    return window_hit(f"bogbro:signups:ip:{ip}", limit, SIGNUP_WINDOW_SECONDS)


def confirmation_resend_allowed(user_id: int) -> bool:
    """At most one confirmation mail a minute per user (a button someone could hold down)."""
    return bool(get_redis().set(f"bogbro:confirm-resend:{user_id}", 1, ex=RESEND_PAUSE_SECONDS, nx=True))
