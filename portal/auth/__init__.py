"""Logging in and out, passwords, invitations."""

import hashlib

from portal.auth import sessions
from portal.extensions import db
from portal.models import User


def session_fingerprint(user: User) -> str:
    """Part of the login session id: changing the password ends every other session of the user."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def session_token(user: User) -> str | None:
    """The server-side session (portal.auth.sessions) this request's user logged in with."""
    return getattr(user, "_session_token", None)


def init_login(login_manager):
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None

    # "<user id>.<password fingerprint>.<server-side session token>"
    User.get_id = lambda user: f"{user.id}.{session_fingerprint(user)}.{session_token(user) or ''}"

    @login_manager.user_loader
    def load_user(session_id: str):
        user_id, fingerprint, token = [*session_id.split("."), "", ""][:3]
        if not (user_id.isascii() and user_id.isdigit() and len(user_id) < 19):
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or session_fingerprint(user) != fingerprint:
            return None
        if not sessions.is_live(token, user.id):  # logged out, or ended by a password change
            return None
        user._session_token = token
        return user
