"""All models, importable from one place (Alembic and the app load them through here)."""

from portal.models.accounts import LANGUAGES, ROLES, Account, Invitation, User
from portal.models.audit import AuditEvent, AuditLogIsAppendOnly
from portal.models.support import SupportAccessLog, SupportSession
from portal.models.types import UTCDateTime, utcnow

__all__ = [
    "LANGUAGES",
    "ROLES",
    "Account",
    "AuditEvent",
    "AuditLogIsAppendOnly",
    "Invitation",
    "SupportAccessLog",
    "SupportSession",
    "UTCDateTime",
    "User",
    "utcnow",
]
