"""Customer accounts, their users, invitations, and staff users (who belong to no account)."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

ROLES = ("owner", "member")
LANGUAGES = ("da", "en")


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    cvr: Mapped[str] = mapped_column(String(8), unique=True)
    # The prospect's quote request the account was made from (its selection and price, as they saw it).
    quote_request_id: Mapped[int | None] = mapped_column(ForeignKey("quote_requests.id"))
    # The plan the owner chose under Settings → Subscription, as pricing.selection_as_json() (orders: the
    # tier's limit); None: the quote's selection still stands, or there is no plan yet (account.plan).
    plan: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list["User"]] = relationship(back_populates="account", order_by="User.email")
    quote_request = relationship("QuoteRequest")

    @property
    def awaiting_confirmation(self) -> bool:
        """Signed up, and no owner has confirmed their e-mail address yet: nothing may be transferred.
        (An account made by support has no owner until its invitation, itself a proof, is accepted.)"""
        owners = [user for user in self.users if user.is_owner and user.active]
        return bool(owners) and all(user.email_confirmed_at is None for user in owners)

    def __repr__(self):
        return f"<Account {self.id} {self.name!r}>"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(is_staff AND account_id IS NULL AND role IS NULL)"
            " OR (NOT is_staff AND account_id IS NOT NULL AND role IN ('owner', 'member'))",
            name="staff_or_account_member",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(2), default="da")
    role: Mapped[str | None] = mapped_column(String(10))
    is_staff: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None only after a self-service sign-up, until the mailed link is opened; every other way in (an
    # invitation link, staff and demo users made on the command line) proves the address already.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account | None] = relationship(back_populates="users")

    @property
    def is_active(self):  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def __repr__(self):
        return f"<User {self.id} {self.email}>"


class Invitation(db.Model):
    """An owner's invitation of a new member; the e-mailed link carries a signed form of its id."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(10), default="member")
    language: Mapped[str] = mapped_column(String(2), default="da")
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    invited_by: Mapped[User] = relationship()

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > utcnow()


class LoginSession(db.Model):
    """One login, kept server-side (portal.auth.sessions): the session cookie names it by a token whose hash
    is the key, so logging out ends it for every copy of the cookie."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
