"""Authentication, passwords and invitations: the state-changing functions behind the auth views."""

from datetime import timedelta

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.auth import ratelimit, session_token, sessions, tokens
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.extensions import db
from portal.mail import send_mail
from portal.models import Account, Invitation, User, utcnow
from portal.queue import enqueue_after_commit
from portal.web import public_link

INVITATION_LIFETIME = timedelta(days=7)


class AuthError(Exception):
    """A refusal with a message meant for the user."""


class TooManyAttempts(AuthError):
    def __init__(self, seconds: int):
        super().__init__(
            _("Too many failed attempts. Try again in %(minutes)s minutes.", minutes=-(-seconds // 60))
        )
        self.seconds = seconds


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def authenticate(email: str, password: str, ip: str) -> User:
    wait = ratelimit.seconds_blocked(email, ip)
    if wait:
        raise TooManyAttempts(wait)
    user = find_user_by_email(email)
    if not verify_password(user.password_hash if user else None, password) or not user.active:
        ratelimit.record_failure(email, ip)
        raise AuthError(_("Wrong e-mail or password."))
    ratelimit.record_success(email, ip)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def start_session(user: User) -> None:
    """A new server-side session for the user; login_user then stores its id in the cookie."""
    user._session_token = sessions.start(user.id)
    db.session.commit()


def end_session(user: User) -> None:
    """Logout: the session ends on the server, so a copy of the cookie is worthless too."""
    token = session_token(user)
    if token:
        sessions.end(token, user.id)
        db.session.commit()


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise AuthError(_("The current password is wrong."))
    user.password_hash = hash_password(new)
    audit.record("user.password_changed", user, account=user.account)
    sessions.end_all(user.id, keep=session_token(user))  # whoever else knew the old password is out
    db.session.commit()


def request_password_reset(email: str) -> None:
    """Mail a reset link if the address belongs to an active user; say nothing either way."""
    user = find_user_by_email(email)
    if user is not None and user.active:
        enqueue_after_commit("workers.jobs.send_password_reset_mail", user.id)
        db.session.commit()


def reset_password(user: User, new: str) -> None:
    user.password_hash = hash_password(new)
    audit.record("user.password_reset", user, account=user.account)
    sessions.end_all(user.id)
    db.session.commit()


def invite_member(account: Account, inviter: User, email: str, role: str, language: str) -> Invitation:
    email = normalise_email(email)
    if find_user_by_email(email) is not None:
        raise AuthError(_("A user with this e-mail address already exists."))
    waiting = db.session.scalars(
        select(Invitation).where(Invitation.account_id == account.id, Invitation.email == email)
    ).all()
    if any(earlier.is_open for earlier in waiting):
        raise AuthError(
            _(
                "An invitation to %(email)s is already waiting to be accepted. Withdraw it below to send a "
                "new one.",
                email=email,
            )
        )
    invitation = Invitation(
        account_id=account.id,
        email=email,
        role=role,
        language=language,
        invited_by_id=inviter.id,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    db.session.add(invitation)
    audit.record(
        "invitation.created",
        invitation,
        account=account,
        changes={"email": {"before": None, "after": email}, "role": {"before": None, "after": role}},
    )
    enqueue_after_commit("workers.jobs.send_invitation_mail", invitation.id)
    db.session.commit()
    return invitation


def revoke_invitation(invitation: Invitation) -> None:
    invitation.revoked_at = utcnow()
    audit.record("invitation.revoked", invitation, account=invitation.account)
    db.session.commit()


def accept_invitation(invitation: Invitation, name: str, password: str) -> User:
    if find_user_by_email(invitation.email) is not None:
        raise AuthError(_("A user with this e-mail address already exists."))
    user = User(
        account_id=invitation.account_id,
        email=invitation.email,
        name=name.strip(),
        password_hash=hash_password(password),
        language=invitation.language,
        role=invitation.role,
    )
    db.session.add(user)
    invitation.accepted_at = utcnow()
    db.session.flush()
    audit.record(
        "user.joined",
        user,
        account=invitation.account,
        changes={"role": {"before": None, "after": user.role}},
    )
    db.session.commit()
    return user


# --- mail delivery (run by workers.jobs) --------------------------------------------------------------
# Links are built on PUBLIC_URL, never on the request's Host header: a forged Host would otherwise put an
# attacker's address (and the reset token) into a genuine mail.


def deliver_password_reset_mail(user_id: int) -> None:
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        return
    link = public_link("/password/reset/" + tokens.password_reset_token(user))
    with force_locale(user.language):
        subject = _("Reset your Bogbro password")
        body = render_template("auth/mail/password_reset.txt", user=user, link=link)
    send_mail(user.email, subject, body)


def deliver_invitation_mail(invitation_id: int) -> None:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or not invitation.is_open:
        return
    link = public_link("/invitation/" + tokens.invitation_token(invitation))
    with force_locale(invitation.language):
        subject = _("You are invited to %(account)s on Bogbro", account=invitation.account.name)
        body = render_template("auth/mail/invitation.txt", invitation=invitation, link=link)
    send_mail(invitation.email, subject, body)
