"""Who changed what: an append-only log that the app can write but never rewrite or delete."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from portal.extensions import db
from portal.models.accounts import Account, User
from portal.models.types import UTCDateTime, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    support_session_id: Mapped[int | None] = mapped_column(ForeignKey("support_sessions.id"))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(100))
    # {"field": {"before": …, "after": …}} for the fields that changed, JSON-safe values only.
    changes: Mapped[dict] = mapped_column(JSON, default=dict)

    account: Mapped[Account | None] = relationship()
    actor: Mapped[User | None] = relationship()


class AuditLogIsAppendOnly(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session, flush_context, instances):
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise AuditLogIsAppendOnly("audit events cannot be deleted")
    for obj in session.dirty:
        if isinstance(obj, AuditEvent) and session.is_modified(obj):
            raise AuditLogIsAppendOnly("audit events cannot be changed")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_rewrites(state):
    if (state.is_delete or state.is_update) and state.statement.table.name == AuditEvent.__tablename__:
        raise AuditLogIsAppendOnly("audit events cannot be deleted or changed")
