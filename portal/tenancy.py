"""Who is asking, for which account — and the one door through which account-owned rows are loaded.

`g.account` is the account the request acts on: the user's own, or, for a support agent, the account
they impersonate. Every account-owned object is loaded with `get_owned_or_404`, so another account's
object is indistinguishable from one that does not exist.
"""

from datetime import timedelta
from functools import wraps

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.extensions import db
from portal.ids import is_row_id
from portal.models import Account, SupportAccessLog, SupportSession, utcnow

SUPPORT_SESSION_KEY = "support_session_id"
MAX_IMPERSONATION = timedelta(hours=2)


def load_request_context():
    """before_request: resolve g.account and g.support_session, and log impersonated requests."""
    g.account = None
    g.support_session = None
    if not current_user.is_authenticated:
        session.pop(SUPPORT_SESSION_KEY, None)
        return
    if not current_user.is_staff:
        g.account = current_user.account
        return
    support_session = _active_support_session()
    if support_session is None:
        return
    g.support_session = support_session
    g.account = support_session.account
    if request.endpoint != "static":
        db.session.add(
            SupportAccessLog(
                support_session_id=support_session.id,
                account_id=support_session.account_id,
                staff_user_id=current_user.id,
                method=request.method,
                path=request.full_path.rstrip("?")[:2000],
            )
        )
        db.session.commit()


def _active_support_session():
    session_id = session.get(SUPPORT_SESSION_KEY)
    if session_id is None:
        return None
    support_session = db.session.get(SupportSession, session_id)
    valid = (
        support_session is not None
        and support_session.staff_user_id == current_user.id
        and support_session.ended_at is None
    )
    if valid and utcnow() - support_session.started_at > MAX_IMPERSONATION:
        support_session.ended_at = support_session.started_at + MAX_IMPERSONATION
        db.session.commit()
        valid = False
    if not valid:
        session.pop(SUPPORT_SESSION_KEY, None)
        return None
    return support_session


def current_account() -> Account | None:
    return g.get("account")


def is_impersonating() -> bool:
    return g.get("support_session") is not None


def get_owned_or_404(model, object_id):
    """Load an account-owned row by id, scoped to the current account; anything else is a 404."""
    account = current_account()
    if account is None or not is_row_id(object_id):
        abort(404)
    obj = db.session.scalar(select(model).where(model.id == object_id, model.account_id == account.id))
    if obj is None:
        abort(404)
    return obj


def account_required(view):
    """A customer (or a support agent impersonating one) acting on an account."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if current_account() is None:
            return redirect(url_for("support.index"))
        return view(*args, **kwargs)

    return wrapper


def owner_required(view):
    """Owners manage the account; a support agent acts with the owner's rights."""

    @account_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not (is_impersonating() or current_user.is_owner):
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def not_while_impersonating(view):
    """Security actions (passwords, members) stay with the customer, never with support."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if is_impersonating():
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def staff_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not current_user.is_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
