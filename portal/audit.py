"""Writing the audit log. Every operation that changes settings calls `record` in its transaction."""

from datetime import date, datetime
from decimal import Decimal

from flask import g, has_request_context
from flask_login import current_user

from portal.extensions import db
from portal.models import AuditEvent


def _json_safe(value):
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    return value


def apply_changes(obj, values: dict, secret_fields: frozenset = frozenset()) -> dict:
    """Set attributes on obj; return the before/after of those that really changed.

    Secret fields are recorded as changed without their values.
    """
    changes = {}
    for field, new in values.items():
        old = getattr(obj, field)
        if old == new:
            continue
        setattr(obj, field, new)
        if field in secret_fields:
            changes[field] = {"before": "***", "after": "***"}
        else:
            changes[field] = {"before": _json_safe(old), "after": _json_safe(new)}
    return changes


def record(action: str, obj, *, account=None, changes: dict | None = None) -> AuditEvent:
    """Add an audit event for `obj` to the current transaction (committed with the change itself)."""
    actor = current_user if has_request_context() and current_user.is_authenticated else None
    support_session = g.get("support_session") if has_request_context() else None
    if account is None:
        account = getattr(obj, "account", None)
    if obj is not None and obj.id is None:
        db.session.flush()  # the new row needs its id in the log
    event = AuditEvent(
        account_id=account.id if account is not None else None,
        actor_id=actor.id if actor is not None else None,
        support_session_id=support_session.id if support_session is not None else None,
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(obj.id) if obj is not None else None,
        changes=changes or {},
    )
    db.session.add(event)
    return event
