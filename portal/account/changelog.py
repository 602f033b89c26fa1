"""The change log as people read it: what was done, to which thing by its name, and old → new for only the
settings that changed, with field labels — rendered from the stored AuditEvent rows (so rows written before
this module still read well). Writing the log is portal.audit's."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from portal.connectors.base import OSS_COUNTRIES
from portal.extensions import db
from portal.i18n import format_amount, format_day, format_moment, system_name
from portal.models import AccountingSetup, Connection, SourceLink, SupportSession, Transfer, utcnow
from portal.models.accounts import Account, Invitation, User
from portal.models.setups import Template
from portal.pipeline.messages import translated
from portal.pipeline.settings import STATE_NAMES
from portal.setups.operations import spec_of

ACTIONS = {
    "account.updated": _l("Company details changed"),
    "account.plan_changed": _l("Subscription changed"),
    "catalogue.settings.updated": _l("Price list settings changed"),
    "connection.created": _l("Connected"),
    "connection.renewed": _l("Connection renewed"),
    "connection.disconnected": _l("Disconnected"),
    "connection.disabled": _l("Connection switched off"),
    "invitation.created": _l("Invitation sent"),
    "invitation.revoked": _l("Invitation withdrawn"),
    "source_link.created": _l("Sales source linked to the accounting setup"),
    "source_link.settings": _l("Sales source settings changed"),
    "source_link.active": _l("Sales source switched on or off"),
    "source_link.webhook_secret": _l("Webhook secret renewed"),
    "source_link.webhooks_registered": _l("Webhooks registered in the sales source"),
    "quote_request.updated": _l("Quote request changed"),
    "setup.activated": _l("Accounting setup activated"),
    "setup.deactivated": _l("Accounting setup paused"),
    "setup.auto_book": _l("Automatic booking changed"),
    "setup.selected": _l("Accounting setup chosen"),
    "support.access_started": _l("Support access started"),
    "support.access_ended": _l("Support access ended"),
    "transfer.left_out": _l("Order left out of the transfers"),
    "transfer.undo_requested": _l("Undo of a transfer requested"),
    "transfers.undo_requested": _l("Undo of several transfers requested"),
    "transfer.undone": _l("Transfer undone"),
    "transfer.linked": _l("Order linked to its document in the accounting system"),
    "completeness.transfer_now": _l("Order transferred from the reconciliation"),
    "user.joined": _l("User joined"),
    "user.password_changed": _l("Password changed"),
    "user.password_reset": _l("Password reset"),
    "user.profile_updated": _l("Profile changed"),
    "user.removed": _l("User removed"),
}
# Field names (dotted for nested settings) → labels; a field not listed is shown as its name, readably.
FIELDS = {
    "active": _l("Active"),
    "auto_book": _l("Book automatically"),
    "selected": _l("Chosen"),
    "status": _l("Status"),
    "role": _l("Role"),
    "email": _l("E-mail"),
    "name": _l("Name"),
    "language": _l("Language"),
    "system": _l("System"),
    "sandbox": _l("Sandbox"),
    "shop": _l("Shop"),
    "setup": _l("Accounting setup"),
    "topics": _l("Webhooks"),
    "mail_secret": _l("SMTP password"),
    "webhook_secret": _l("Webhook secret"),
    "credentials": _l("Access keys"),
    "cvr": _l("CVR number"),
    "systems": _l("Systems"),
    "tier": _l("Tier"),
    "addons": _l("Add-ons"),
    "billing": _l("Billing"),
    "price_per_month": _l("Price a month"),
    "reason": _l("Reason"),
    "afterwards": _l("Afterwards"),
    "credit_note": _l("Credit note"),
    "order_number": _l("Order number"),
    "document": _l("Document in the accounting system"),
    "layout": _l("Layout"),
    "payment_terms": _l("Payment terms"),
    "product_group": _l("Product group"),
    "account": _l("Account"),
    "journal": _l("Journal"),
    "settings.states": _l("Order states"),
    "settings.activation_date": _l("Activation date"),
    "settings.match_b2c": _l("Private customers matched on"),
    "settings.match_b2b": _l("Business customers matched on"),
    "settings.match_ean": _l("EAN customers matched on"),
    "settings.collective_customer": _l("Collective customer"),
    "settings.customers.create": _l("Create customers"),
    "settings.customers.update": _l("Update customers"),
    "settings.products.create": _l("Create products"),
    "settings.products.update": _l("Update products"),
    "settings.fixed_products": _l("Fixed products"),
    "settings.payment_terms_by_method": _l("Payment terms per payment method"),
    "settings.paid_methods": _l("Payment methods registered as paid"),
    "settings.refund_payouts_guessed": _l("Register refund payouts"),
    "settings.rounding_tolerance": _l("Rounding tolerance"),
    "settings.oss": _l("OSS"),
    "settings.poll_minutes": _l("Check the sales source every (minutes)"),
    "settings.invoice_mail.enabled": _l("Mail invoices"),
    "settings.invoice_mail.host": _l("SMTP server"),
    "settings.invoice_mail.port": _l("SMTP port"),
    "settings.invoice_mail.security": _l("SMTP security"),
    "settings.invoice_mail.username": _l("SMTP user"),
    "settings.invoice_mail.sender": _l("Sender"),
    "settings.invoice_mail.subject": _l("Invoice mail subject"),
    "settings.invoice_mail.body": _l("Invoice mail text"),
    "settings.invoice_mail.credit_note_subject": _l("Credit note mail subject"),
    "settings.invoice_mail.credit_note_body": _l("Credit note mail text"),
    "settings.notify.recipients": _l("Notification recipients"),
    "settings.notify.error_digest": _l("Error digest"),
    "settings.notify.daily_report": _l("Daily report"),
    "settings.shop_id": _l("Shop number in references"),
    "settings.vat_meta_keys": _l("VAT number fields"),
}
VALUES = {
    "none": _l("not transferred"),
    "order": _l("an order"),
    "draft": _l("a draft invoice"),
    "booked": _l("a booked invoice"),
    "email": _l("E-mail address"),
    "vat_number": _l("VAT number"),
    "ean": _l("EAN number"),
    "owner": _l("Owner"),
    "member": _l("Member"),
    "active": _l("Active"),
    "disabled": _l("Switched off"),
    "monthly": _l("Monthly"),
    "half-yearly": _l("Half-yearly"),
    "reconnect": _l("Must be reconnected"),
    "retransfer": _l("Transfer the order again, with today's settings"),
    "leave_out": _l("Leave the order out"),
}
HIDDEN = "***"  # how portal.audit records a secret field's values


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class Entry:
    at: datetime
    who: str
    by_support: bool
    what: str
    subject: str  # the thing changed, by its name
    changes: list[Change]


# Audit rows are never rewritten: those from before the rename (December 2026) keep the old names.
_OLD_ACTION_PREFIX = ("order_integration.", "source_link.")
_OLD_OBJECT_TYPE = ("OrderIntegration", "SourceLink")


def _action(event) -> str:
    old, new = _OLD_ACTION_PREFIX
    return new + event.action[len(old) :] if event.action.startswith(old) else event.action


def entries(events) -> list[Entry]:
    return [
        Entry(
            at=event.at,
            who=event.actor.name if event.actor else _("Bogbro"),
            by_support=event.support_session_id is not None,
            what=str(ACTIONS.get(_action(event)) or _action_fallback(_action(event))),
            subject=_subject(event),
            changes=list(_changes(event.changes or {})),
        )
        for event in events
    ]


def _action_fallback(action: str) -> str:
    if action.startswith("template."):
        return _("Template changed")
    return action.replace("_", " ").replace(".", ": ")


def _subject(event) -> str:
    """The changed thing's name, read from the same account (another account's row is never named)."""
    model = {
        "SourceLink": SourceLink,
        "AccountingSetup": AccountingSetup,
        "Connection": Connection,
        "Transfer": Transfer,
        "User": User,
        "Invitation": Invitation,
        "Template": Template,
        "Account": Account,
        "SupportSession": SupportSession,
    }.get(_OLD_OBJECT_TYPE[1] if event.object_type == _OLD_OBJECT_TYPE[0] else event.object_type)
    if model is None or not (event.object_id or "").isdigit():
        return ""
    obj = db.session.get(model, int(event.object_id))
    owner = obj.id if isinstance(obj, Account) else getattr(obj, "account_id", None)
    if obj is None or owner != event.account_id:
        return ""
    if isinstance(obj, SourceLink):
        return obj.display_name
    if isinstance(obj, AccountingSetup):
        return f"{obj.name} ({system_name(obj.connection.system)})"
    if isinstance(obj, Connection):
        return f"{obj.label} ({system_name(obj.system)})"
    if isinstance(obj, Transfer):
        return _("Order #%(number)s", number=obj.order_number)
    if isinstance(obj, Invitation):
        return obj.email
    if isinstance(obj, Template):
        return f"{obj.setup.name}: {_template_name(obj)}"
    if isinstance(obj, SupportSession):
        return f"{obj.staff_user.name}: {obj.reason}"
    return obj.name


def _changes(changes: dict, prefix: str = ""):
    """Only the leaves that differ: a settings dict before → after becomes one line per changed setting."""
    if {"values", "labels"} <= set(changes):  # a template: each choice by the name it was chosen by
        yield from _template_changes(changes["values"], changes["labels"])
        return
    for field, change in changes.items():
        if not isinstance(change, dict) or not {"before", "after"} <= set(change):
            continue
        yield from _diff(prefix + field, change["before"], change["after"])


def _diff(path: str, before, after):
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            yield from _diff(f"{path}.{key}", before.get(key), after.get(key))
        return
    if before == after:
        return
    if isinstance(after, dict) and before is None:  # created with a whole dict: only what was set
        for key in sorted(after):
            yield from _diff(f"{path}.{key}", None, after[key])
        return
    if after is None and before is None:
        return
    yield Change(_label(path), _value(path, before), _value(path, after))


def _template_changes(values: dict, labels: dict):
    old, new = values.get("before") or {}, values.get("after") or {}
    old_names, new_names = labels.get("before") or {}, labels.get("after") or {}
    for field in sorted(set(old) | set(new)):
        if old.get(field) == new.get(field):
            continue
        label = translated(OSS_COUNTRIES[field]) if field in OSS_COUNTRIES else _label(field)
        before = old_names.get(field) or old.get(field)
        after = new_names.get(field) or new.get(field)
        yield Change(label, _value(field, before), _value(field, after))


def _label(path: str) -> str:
    if path in FIELDS:
        return str(FIELDS[path])
    head, _dot, last = path.rpartition(".")
    if head == "settings.states":  # one state's document: "Order states: Processing"
        return f"{FIELDS['settings.states']}: {translated(STATE_NAMES.get(last, last))}"
    if last in FIELDS:
        return str(FIELDS[last])
    return last.replace("_", " ").capitalize()


def _value(path: str, value) -> str:
    if value is None or value == "" or value == []:
        return "–"
    if value == HIDDEN:
        return _("changed (not shown)")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return ", ".join(_value(path, item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(path, v)}" for k, v in value.items())
    if path.endswith(("rounding_tolerance", "price_per_month")):
        try:
            return format_amount(value)
        except ArithmeticError:
            return str(value)
    if path.endswith("activation_date"):
        try:
            return format_day(date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    if path.endswith("_at") and isinstance(value, str):
        try:
            return format_moment(datetime.fromisoformat(value))
        except ValueError:
            return value
    if path == "system":
        return system_name(str(value))
    if str(value) in VALUES:
        return str(VALUES[str(value)])
    return str(value)


SUPPORT_VISIBLE_DAYS = 7  # a support session stays on the dashboard this long after it ended


def support_visits(account_id: int) -> list[SupportSession]:
    """Support sessions in progress or ended in the last SUPPORT_VISIBLE_DAYS days, newest first."""
    since = utcnow() - timedelta(days=SUPPORT_VISIBLE_DAYS)
    return db.session.scalars(
        select(SupportSession)
        .where(
            SupportSession.account_id == account_id,
            or_(SupportSession.ended_at.is_(None), SupportSession.ended_at >= since),
        )
        .order_by(SupportSession.started_at.desc())
        .limit(5)
    ).all()


def _template_name(template: Template) -> str:
    """The template as the wizard names it ("Varer, Danmark")."""
    try:
        return translated(spec_of(template.setup, template).label)
    except StopIteration:  # a template the system no longer describes
        return template.kind
