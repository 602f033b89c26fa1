"""Support agents' impersonation sessions and every request made during them."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.accounts import Account, User
from portal.models.types import UTCDateTime, utcnow


class SupportSession(db.Model):
    __tablename__ = "support_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    staff_user: Mapped[User] = relationship()
    requests: Mapped[list["SupportAccessLog"]] = relationship(
        back_populates="support_session", order_by="SupportAccessLog.id"
    )

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class SupportAccessLog(db.Model):
    """One request made by a support agent while impersonating; the customer can read these."""

    __tablename__ = "support_access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    support_session_id: Mapped[int] = mapped_column(ForeignKey("support_sessions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))

    support_session: Mapped[SupportSession] = relationship(back_populates="requests")
    staff_user: Mapped[User] = relationship()
