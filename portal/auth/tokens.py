"""Signed, expiring links for password resets, invitations and e-mail confirmation."""

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.auth import session_fingerprint
from portal.extensions import db
from portal.models import Invitation, User

RESET_MAX_AGE = 3600


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"bogbro.{purpose}")


def password_reset_token(user: User) -> str:
    # The fingerprint of the current hash makes the link single-use: it dies with the old password.
    return _serializer("password-reset").dumps({"u": user.id, "f": session_fingerprint(user)})


def user_from_reset_token(token: str) -> User | None:
    try:
        data = _serializer("password-reset").loads(token, max_age=RESET_MAX_AGE)
    except BadSignature:
        return None
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or session_fingerprint(user) != data.get("f"):
        return None
    return user


def invitation_token(invitation: Invitation) -> str:
    return _serializer("invitation").dumps({"i": invitation.id})


def invitation_from_token(token: str) -> Invitation | None:
    try:
        data = _serializer("invitation").loads(token)
    except BadSignature:
        return None
    invitation = db.session.get(Invitation, data.get("i"))
    return invitation if invitation is not None and invitation.is_open else None


CONFIRM_MAX_AGE = 7 * 24 * 3600


def email_confirmation_token(user: User) -> str:
    # The address is inside: a link mailed to an address the user has since changed confirms nothing.
    return _serializer("confirm-email").dumps({"u": user.id, "e": user.email})


def user_from_confirmation_token(token: str) -> User | None:
    try:
        data = _serializer("confirm-email").loads(token, max_age=CONFIRM_MAX_AGE)
    except BadSignature:
        return None
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or user.email != data.get("e"):
        return None
    return user
