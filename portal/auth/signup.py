"""New customer accounts: a company signs up itself, support creates one and invites its owner, or a
prospect's quote request becomes one. Each is one transaction: a refusal leaves nothing behind.

An owner who signed up themselves must open the mailed link before the account can transfer anything:
until then they may log in and set everything up, but no accounting setup can be activated (and
nothing is posted to a ledger without an active one).
"""

from contextlib import contextmanager
from dataclasses import dataclass

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import audit
from portal.auth import tokens
from portal.auth.operations import INVITATION_LIFETIME, find_user_by_email, normalise_email
from portal.auth.passwords import hash_password
from portal.extensions import db
from portal.mail import send_mail
from portal.models import Account, Invitation, QuoteRequest, User, utcnow
from portal.queue import enqueue_after_commit
from portal.web import public_link


class SignupError(Exception):
    """A refusal tied to one form field, with a message meant for the user."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class Company:
    name: str
    cvr: str  # compact 8 digits, already checked (portal.validators.CVR)
    email: str
    language: str = "da"


def _check_free(company: Company) -> None:
    if db.session.scalar(select(Account.id).where(Account.cvr == company.cvr)) is not None:
        raise SignupError(
            "cvr", _("An account with this CVR number already exists. Ask its owner to invite you.")
        )
    if find_user_by_email(company.email) is not None:
        raise SignupError("email", _("This e-mail address is already in use. Log in, or choose another."))
    pending = select(Invitation.id).where(
        Invitation.email == normalise_email(company.email),
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )
    if db.session.scalar(pending) is not None:
        raise SignupError(
            "email", _("This e-mail address has an open invitation. Use the link in that mail.")
        )


def _new_account(company: Company, quote: QuoteRequest | None) -> Account:
    _check_free(company)
    account = Account(name=company.name.strip(), cvr=company.cvr, quote_request=quote)
    db.session.add(account)
    db.session.flush()
    return account


@contextmanager
def _one_transaction(company: Company):
    """Everything inside is committed together or not at all. A concurrent sign-up with the same CVR or
    address that got in between the check and the insert loses on the unique constraints, and is told
    which field, like any other."""
    try:
        yield
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        _check_free(company)
        raise
    except Exception:
        db.session.rollback()  # also drops the mail queued for after the commit
        raise


def sign_up(company: Company, owner_name: str, password: str) -> User:
    """A company signs up: the account and its owner, whose address is confirmed by a mailed link."""
    with _one_transaction(company):
        account = _new_account(company, None)
        user = User(
            account_id=account.id,
            email=normalise_email(company.email),
            name=owner_name.strip(),
            password_hash=hash_password(password),
            language=company.language,
            role="owner",
        )
        db.session.add(user)
        db.session.flush()
        # Unproven until the mailed link is opened (the column's default, "confirmed", also fills in an
        # explicit None on INSERT, so it is cleared in the same transaction).
        user.email_confirmed_at = None
        audit.record("account.signed_up", account, account=account, changes=_created(account))
        enqueue_after_commit("workers.jobs.send_email_confirmation", user.id)
    return user


def _created(account: Account) -> dict:
    return {"name": {"before": None, "after": account.name}, "cvr": {"before": None, "after": account.cvr}}


def create_and_invite(company: Company, staff: User, quote: QuoteRequest | None = None) -> Invitation:
    """Support creates an account and invites its owner (the invitation link proves the address)."""
    with _one_transaction(company):
        account = _new_account(company, quote)
        invitation = Invitation(
            account_id=account.id,
            email=normalise_email(company.email),
            role="owner",
            language=company.language,
            invited_by_id=staff.id,
            expires_at=utcnow() + INVITATION_LIFETIME,
        )
        db.session.add(invitation)
        db.session.flush()
        changes = _created(account)
        if quote is not None:
            changes["quote_request"] = {"before": None, "after": quote.id}
            if quote.status in ("new", "contacted"):
                quote.status, quote.updated_at = "won", utcnow()
        audit.record("account.created_by_support", account, account=account, changes=changes)
        audit.record(
            "invitation.created",
            invitation,
            account=account,
            changes={
                "email": {"before": None, "after": invitation.email},
                "role": {"before": None, "after": "owner"},
            },
        )
        enqueue_after_commit("workers.jobs.send_invitation_mail", invitation.id)
    return invitation


def confirm_email(user: User) -> bool:
    """Mark the address confirmed; False when it already was (an old link opened again)."""
    if user.email_confirmed_at is not None:
        return False
    user.email_confirmed_at = utcnow()
    audit.record("user.email_confirmed", user, account=user.account)
    db.session.commit()
    return True


def resend_confirmation(user: User) -> None:
    enqueue_after_commit("workers.jobs.send_email_confirmation", user.id)
    db.session.commit()


def deliver_confirmation_mail(user_id: int) -> None:
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.email_confirmed_at is not None:
        return
    link = public_link("/signup/confirm/" + tokens.email_confirmation_token(user))
    with force_locale(user.language):
        subject = _("Confirm your e-mail address for Bogbro")
        body = render_template("auth/mail/confirm_email.txt", user=user, link=link)
    send_mail(user.email, subject, body)


def account_made_from(quote: QuoteRequest) -> Account | None:
    return db.session.scalar(select(Account).where(Account.quote_request_id == quote.id).limit(1))
