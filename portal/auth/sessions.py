"""Login sessions kept server-side, in Redis: the session cookie only names one, so logging out (or changing
the password) ends it for every copy of the cookie, not just for the browser that clicked.

A login gets a random token; `bogbro:session:<token>` holds the user id and expires after
PERMANENT_SESSION_LIFETIME without use. `bogbro:user-sessions:<user id>` lists a user's tokens so a password
change or reset can end the others.
"""

import secrets

from flask import current_app

from portal.redis_client import get_redis


def _key(token: str) -> str:
    return f"bogbro:session:{token}"


def _index(user_id: int) -> str:
    return f"bogbro:user-sessions:{user_id}"


def _lifetime() -> int:
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return int(getattr(lifetime, "total_seconds", lambda: lifetime)())


def start(user_id: int) -> str:
    token = secrets.token_urlsafe(24)
    pipe = get_redis().pipeline()
    pipe.set(_key(token), user_id, ex=_lifetime())
    pipe.sadd(_index(user_id), token)
    pipe.expire(_index(user_id), _lifetime())
    pipe.execute()
    return token


def is_live(token: str, user_id: int) -> bool:
    """The token is a current session of this user; using it keeps it alive for another lifetime."""
    if not token:
        return False
    pipe = get_redis().pipeline()
    pipe.get(_key(token))
    pipe.expire(_key(token), _lifetime())
    pipe.expire(_index(user_id), _lifetime())
    owner, _, _ = pipe.execute()
    return owner is not None and owner.decode() == str(user_id)


def end(token: str, user_id: int) -> None:
    pipe = get_redis().pipeline()
    pipe.delete(_key(token))
    pipe.srem(_index(user_id), token)
    pipe.execute()


def end_all(user_id: int, keep: str | None = None) -> None:
    """End every session of the user (but `keep`, the one that asked)."""
    redis = get_redis()
    tokens = [token.decode() for token in redis.smembers(_index(user_id))]
    ended = [token for token in tokens if token != keep]
    if ended:
        pipe = redis.pipeline()
        pipe.delete(*[_key(token) for token in ended])
        pipe.srem(_index(user_id), *ended)
        pipe.execute()
