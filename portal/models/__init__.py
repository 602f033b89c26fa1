"""All models, importable from one place (Alembic and the app load them through here)."""

from portal.models.accounts import LANGUAGES, ROLES, Account, Invitation, User
from portal.models.audit import AuditEvent, AuditLogIsAppendOnly
from portal.models.integrations import (
    ACCOUNTING_SYSTEMS,
    AccountingSetup,
    Connection,
    SandboxRecord,
    Template,
)
from portal.models.support import SupportAccessLog, SupportSession
from portal.models.types import UTCDateTime, utcnow

__all__ = [
    "ACCOUNTING_SYSTEMS",
    "LANGUAGES",
    "ROLES",
    "Account",
    "AccountingSetup",
    "AuditEvent",
    "AuditLogIsAppendOnly",
    "Connection",
    "Invitation",
    "SandboxRecord",
    "SupportAccessLog",
    "SupportSession",
    "Template",
    "UTCDateTime",
    "User",
    "utcnow",
]
