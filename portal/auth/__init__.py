"""Logging in and out, passwords, invitations."""

import hashlib

from portal.extensions import db
from portal.models import User


def session_fingerprint(user: User) -> str:
    """Part of the login session id: changing the password ends every other session of the user."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def init_login(login_manager):
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None

    User.get_id = lambda user: f"{user.id}.{session_fingerprint(user)}"

    @login_manager.user_loader
    def load_user(session_id: str):
        user_id, _, fingerprint = session_id.partition(".")
        if not user_id.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or session_fingerprint(user) != fingerprint:
            return None
        return user
