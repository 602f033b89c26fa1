"""Changes to an account, its users and their profiles; each one is audited."""

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.auth import sessions
from portal.extensions import db
from portal.models import Account, User


class AccountError(Exception):
    """A refusal with a message meant for the user."""


def update_account(account: Account, name: str, cvr: str) -> dict:
    other = db.session.scalar(select(Account).where(Account.cvr == cvr, Account.id != account.id))
    if other is not None:
        raise AccountError(_("Another account is already registered with this CVR number."))
    changes = audit.apply_changes(account, {"name": name.strip(), "cvr": cvr})
    if changes:
        audit.record("account.updated", account, account=account, changes=changes)
    db.session.commit()
    return changes


def update_profile(user: User, name: str, language: str) -> dict:
    changes = audit.apply_changes(user, {"name": name.strip(), "language": language})
    if changes:
        audit.record("user.profile_updated", user, account=user.account, changes=changes)
    db.session.commit()
    return changes


def remove_member(account: Account, user: User, acting_user: User) -> None:
    """Deactivate a user (kept, so the audit log still names them)."""
    if user.id == acting_user.id:
        raise AccountError(_("You cannot remove yourself."))
    if user.is_owner:
        owners = db.session.scalar(
            select(func.count()).where(User.account_id == account.id, User.role == "owner", User.active)
        )
        if owners <= 1:
            raise AccountError(_("The account must keep at least one owner."))
    changes = audit.apply_changes(user, {"active": False})
    audit.record("user.removed", user, account=account, changes=changes)
    sessions.end_all(user.id)
    db.session.commit()
