"""Support agents: finding accounts and impersonating them, always with a reason and a trail."""

from flask import g, session
from sqlalchemy import func, or_, select

from portal import audit
from portal.extensions import db
from portal.models import Account, SupportSession, User, utcnow
from portal.tenancy import SUPPORT_SESSION_KEY

SEARCH_LIMIT = 50


def search_accounts(query: str) -> list[Account]:
    query = query.strip()
    statement = select(Account).order_by(Account.name).limit(SEARCH_LIMIT)
    if query:
        needle = query.lower()
        digits = "".join(ch for ch in query if ch.isdigit())
        conditions = [
            func.lower(Account.name).contains(needle, autoescape=True),
            Account.id.in_(
                select(User.account_id).where(func.lower(User.email).contains(needle, autoescape=True))
            ),
        ]
        if digits:
            conditions.append(Account.cvr.contains(digits, autoescape=True))
        statement = statement.where(or_(*conditions))
    return list(db.session.scalars(statement))


def start_impersonation(staff_user: User, account: Account, reason: str) -> SupportSession:
    if g.get("support_session") is not None:
        stop_impersonation()
    support_session = SupportSession(
        account_id=account.id, staff_user_id=staff_user.id, reason=reason.strip()
    )
    db.session.add(support_session)
    db.session.flush()
    audit.record(
        "support.access_started",
        support_session,
        account=account,
        changes={"reason": {"before": None, "after": support_session.reason}},
    )
    db.session.commit()
    session[SUPPORT_SESSION_KEY] = support_session.id
    g.support_session = support_session
    g.account = account
    return support_session


def stop_impersonation() -> None:
    support_session = g.get("support_session")
    session.pop(SUPPORT_SESSION_KEY, None)
    if support_session is None:
        return
    support_session.ended_at = utcnow()
    audit.record("support.access_ended", support_session, account=support_session.account)
    db.session.commit()
    g.support_session = None
    g.account = None
