"""Login sessions kept server-side, in the database: the session cookie only names one, so logging out (or
changing the password) ends it for every copy of the cookie, not just for the browser that clicked.

A login gets a random token; its SHA-256 is the LoginSession's key (a copy of the table gives no usable
cookie). A session unused for PERMANENT_SESSION_LIFETIME has ended; use is written at most every
SEEN_EVERY, not on every request. In the database rather than Redis: a Redis restart or outage must not log
everyone out (or fail every page), and the user loader reads the database anyway.
"""

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from portal.extensions import db
from portal.models import LoginSession, utcnow

SEEN_EVERY = timedelta(minutes=5)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return lifetime if isinstance(lifetime, timedelta) else timedelta(seconds=lifetime)


def start(user_id: int) -> str:
    """A new session for the user, added to the caller's transaction (the login commits it)."""
    token = secrets.token_urlsafe(24)
    db.session.add(LoginSession(token_hash=_hash(token), user_id=user_id))
    return token


def is_live(token: str, user_id: int) -> bool:
    """The token is a current session of this user; using it keeps it alive for another lifetime."""
    if not token:
        return False
    now = utcnow()
    seen = db.session.scalar(
        select(LoginSession.last_seen_at).where(
            LoginSession.token_hash == _hash(token), LoginSession.user_id == user_id
        )
    )
    if seen is None or seen < now - _lifetime():
        return False
    if seen < now - SEEN_EVERY:
        db.session.execute(
            update(LoginSession).where(LoginSession.token_hash == _hash(token)).values(last_seen_at=now)
        )
        db.session.commit()  # the user loader runs first in a request: nothing else is pending yet
    return True


def end(token: str, user_id: int) -> None:
    db.session.execute(
        delete(LoginSession).where(LoginSession.token_hash == _hash(token), LoginSession.user_id == user_id)
    )


def end_all(user_id: int, keep: str | None = None) -> None:
    """End every session of the user (but `keep`, the one that asked); the caller commits."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep:
        query = query.where(LoginSession.token_hash != _hash(keep))
    db.session.execute(query)
