"""All models, importable from one place (Alembic and the app load them through here)."""

from portal.models import row_updates  # noqa: F401  (registers the flush's fast path)
from portal.models.accounts import LANGUAGES, ROLES, Account, Invitation, LoginSession, User
from portal.models.audit import AuditEvent, AuditLogIsAppendOnly
from portal.models.completeness import CompletenessReport
from portal.models.pricing import (
    QUOTE_KINDS,
    QUOTE_STATUSES,
    RULE_OUTCOMES,
    SETUP_MODES,
    SYSTEM_KINDS,
    PriceAddOn,
    PriceFeature,
    PriceFeatureNote,
    PriceRule,
    PriceSettings,
    PriceSystem,
    PriceTier,
    QuoteRequest,
)
from portal.models.setups import (
    ACCOUNTING_SYSTEMS,
    AccountingSetup,
    Connection,
    SandboxRecord,
    Template,
)
from portal.models.support import SupportAccessLog, SupportSession
from portal.models.transfers import (
    TRANSFER_STATUSES,
    SourceEvent,
    SourceLink,
    Transfer,
    TransferLog,
)
from portal.models.types import UTCDateTime, utcnow
from portal.models.undos import TransferUndo

__all__ = [
    "ACCOUNTING_SYSTEMS",
    "LANGUAGES",
    "QUOTE_KINDS",
    "QUOTE_STATUSES",
    "ROLES",
    "RULE_OUTCOMES",
    "SETUP_MODES",
    "SYSTEM_KINDS",
    "TRANSFER_STATUSES",
    "Account",
    "AccountingSetup",
    "AuditEvent",
    "AuditLogIsAppendOnly",
    "CompletenessReport",
    "Connection",
    "Invitation",
    "LoginSession",
    "PriceAddOn",
    "PriceFeature",
    "PriceFeatureNote",
    "PriceRule",
    "PriceSettings",
    "PriceSystem",
    "PriceTier",
    "QuoteRequest",
    "SandboxRecord",
    "SourceEvent",
    "SourceLink",
    "SupportAccessLog",
    "SupportSession",
    "Template",
    "Transfer",
    "TransferLog",
    "TransferUndo",
    "UTCDateTime",
    "User",
    "utcnow",
]
