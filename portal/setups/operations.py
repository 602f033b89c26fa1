"""Connecting accounting systems and completing their setup; every change is audited."""

import json
from dataclasses import asdict
from datetime import date
from decimal import Decimal

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from portal import audit
from portal.connectors import StaticCredentials, get_system, system_module
from portal.connectors.base import N_, AccountingSystem, Choice, TemplateSpec
from portal.connectors.errors import ConfigurationError, ConnectorError
from portal.engine.vat import UnknownRate
from portal.extensions import db
from portal.i18n import format_number
from portal.models import Account, AccountingSetup, Connection, Template, utcnow
from portal.pipeline.settings import vat_rates
from portal.redis_client import get_redis
from portal.setups import checks
from portal.setups.connections import SandboxTransport, connector_for, system_settings

CHOICES_CACHE_SECONDS = 300
HOME_COUNTRY = "DK"  # the domestic VAT rate the checks expect on sales in Denmark


class SetupError(Exception):
    """A refusal with a message meant for the user."""


# --- connecting -------------------------------------------------------------------------------------------


def connect(
    account: Account,
    system_key: str,
    sandbox: bool,
    params: dict,
    callback_url: str,
    finish: dict | None = None,
) -> Connection:
    """Turn a finished handshake (or submitted keys) into a Connection and one setup per organisation.
    `finish`: what the handshake kept for the token exchange (handshake.Attempt.finish: state, PKCE verifier).

    Nothing is saved unless the credentials work and the organisations could be listed. Connecting an
    organisation that is already connected renews the credentials of its existing connection.
    """
    module = system_module(system_key)
    settings = system_settings(system_key, sandbox)
    transport = SandboxTransport(current_app._get_current_object()) if sandbox else None
    try:
        credentials = module.finish_connect(settings, params, callback_url, transport, **(finish or {}))
        probe = Connection(
            account_id=account.id, system=system_key, label="", credentials=credentials, sandbox=sandbox
        )
        # Nothing is written before the organisations are known (and no transaction is held open
        # while the accounting system answers).
        organisations = connector_for(probe, credentials=StaticCredentials(credentials)).list_organisations()
    except ConnectorError as exc:
        db.session.rollback()
        raise SetupError(
            _(
                "%(system)s refused the connection: %(message)s",
                system=module.SYSTEM.name,
                message=_(exc.message),  # connectors mark their own texts for translation (N_)
            )
        ) from exc
    if not organisations:
        db.session.rollback()
        raise SetupError(
            _("The grant gives access to no organisation in %(system)s.", system=module.SYSTEM.name)
        )

    existing = _existing_connection(account, system_key, sandbox, {org.external_id for org in organisations})
    # An organisation that cannot be used (Dinero without Pro) is explained now, not left on the dashboard
    # as a source link that can never run; one already set up keeps its setup, marked unusable.
    known_ids = {setup.external_id for setup in existing.setups} if existing is not None else set()
    refused = [org for org in organisations if not org.usable and org.external_id not in known_ids]
    organisations = [org for org in organisations if org not in refused]
    if not organisations:
        db.session.rollback()
        raise SetupError(_unusable_message(module.SYSTEM.name, refused))
    if existing is not None:
        existing.credentials = credentials
        existing.status, existing.status_message = "active", None
        connection = existing
        audit.record("connection.renewed", connection, account=account)
    else:
        connection = probe
        db.session.add(connection)
        connection.label = ", ".join(org.name for org in organisations)[:200]
        audit.record(
            "connection.created",
            connection,
            account=account,
            changes={
                "system": {"before": None, "after": system_key},
                "sandbox": {"before": None, "after": sandbox},
            },
        )
    known = {setup.external_id: setup for setup in connection.setups}
    for org in organisations:
        setup = known.get(org.external_id)
        if setup is None:
            setup = AccountingSetup(
                account_id=account.id, connection=connection, external_id=org.external_id, name=org.name
            )
            db.session.add(setup)
        setup.name = org.name
        # Kept as the connector's English text (an N_ msgid) and translated where it is shown.
        setup.unusable_reason = (
            None if org.usable else (org.reason or N_("This organisation cannot be used."))
        )
    db.session.commit()
    # Not stored: the organisations left out, for the view to explain (refused_message).
    connection.refused_organisations = refused
    return connection


def refused_message(connection: Connection) -> str | None:
    """Why organisations the grant reaches got no source link (None when all did), for the customer."""
    refused = getattr(connection, "refused_organisations", None)
    return _unusable_message(get_system(connection.system).name, refused) if refused else None


def _unusable_message(system_name: str, refused: list) -> str:
    reasons = sorted({_(org.reason or N_("This organisation cannot be used.")) for org in refused})
    return _(
        "%(organisations)s in %(system)s cannot be used, so no accounting setup was made for it: %(reason)s",
        organisations=", ".join(org.name for org in refused),
        system=system_name,
        reason=" ".join(reasons),
    )


def _existing_connection(account, system_key, sandbox, external_ids) -> Connection | None:
    return db.session.scalar(
        select(Connection)
        .join(AccountingSetup)
        .where(
            Connection.account_id == account.id,
            Connection.system == system_key,
            Connection.sandbox == sandbox,
            AccountingSetup.external_id.in_(external_ids),
        )
        .limit(1)
    )


def disconnect(connection: Connection) -> None:
    changes = audit.apply_changes(connection, {"status": "disabled"})
    connection.credentials = {}
    for setup in connection.setups:
        changes.update(
            {f"{setup.name}.active": {"before": setup.active, "after": False}} if setup.active else {}
        )
        setup.active = False
    audit.record("connection.disconnected", connection, account=connection.account, changes=changes)
    db.session.commit()


# --- the setup ---------------------------------------------------------------------------------------------


def system_of(setup: AccountingSetup) -> AccountingSystem:
    return get_system(setup.connection.system)


def spec_of(setup: AccountingSetup, template: Template) -> TemplateSpec:
    return next(
        spec
        for spec in system_of(setup).templates
        if (spec.kind, spec.zone) == (template.kind, template.zone)
    )


def select_setup(setup: AccountingSetup, selected: bool) -> None:
    """Tick "Use this organisation" (step 2): Bogbro creates the templates the system needs (still empty)."""
    if selected and setup.unusable_reason:
        raise SetupError(_(setup.unusable_reason))
    changes = audit.apply_changes(setup, {"selected": selected})
    if selected:
        _add_missing_templates(setup)
    elif setup.active:
        changes.update(audit.apply_changes(setup, {"active": False}))
    if changes:
        audit.record(
            "setup.selected" if selected else "setup.deselected",
            setup,
            account=setup.account,
            changes=changes,
        )
    db.session.commit()


def _add_missing_templates(setup: AccountingSetup) -> bool:
    """A row (values still empty) for every template the system needs that the setup lacks; True if any
    was added. A setup made before a template existed (e.g. the VAT-free one) gets it this way."""
    have = {(template.kind, template.zone) for template in setup.templates}
    added = False
    for spec in system_of(setup).templates:
        if (spec.kind, spec.zone) not in have:
            setup.templates.append(Template(account_id=setup.account_id, kind=spec.kind, zone=spec.zone))
            added = True
    return added


def complete_templates(setup: AccountingSetup) -> None:
    """Give a selected setup the templates added to its system since it was selected (shown in the wizard
    at once instead of only after ticking "Use this organisation" again). Idempotent."""
    if setup.selected and _add_missing_templates(setup):
        db.session.commit()


def choices(setup: AccountingSetup, kind: str, refresh: bool = False) -> list[Choice]:
    """Live master data from the accounting system, cached briefly so the wizard stays fast."""
    if setup.connection.status != "active":
        name = system_of(setup).name
        raise ConfigurationError(
            _("The connection to %(system)s must be renewed first.", system=name), system=name
        )
    key = f"bogbro:choices:{setup.id}:{kind}"
    redis = get_redis()
    if not refresh:
        cached = redis.get(key)
        if cached is not None:
            return [Choice(**item) for item in json.loads(cached)]
    found = connector_for(setup.connection, setup.external_id).list_choices(kind)
    # default=str: details may hold Decimals (rates); the cache only serves display and validation.
    redis.set(key, json.dumps([asdict(choice) for choice in found], default=str), ex=CHOICES_CACHE_SECONDS)
    return found


def template_choices(setup: AccountingSetup, spec: TemplateSpec) -> dict[str, list[Choice]]:
    """Field name -> what the system offers for it now (raises ConnectorError when it does not answer)."""
    return {field.name: choices(setup, field.choices) for field in spec.fields}


def account_setups(account: Account) -> list[AccountingSetup]:
    """The account's accounting setups whose connection is not removed."""
    return db.session.scalars(
        select(AccountingSetup)
        .join(Connection)
        .options(contains_eager(AccountingSetup.connection))  # every caller shows the connection's system
        .where(AccountingSetup.account_id == account.id, Connection.status != "disabled")
        .order_by(AccountingSetup.id)
    ).all()


def linked_shops(setup: AccountingSetup) -> list:
    """The sales sources (webshops) sending to this setup (step 5 of the wizard)."""
    from portal.models import SourceLink

    return db.session.scalars(
        select(SourceLink).where(SourceLink.setup_id == setup.id).order_by(SourceLink.id)
    ).all()


def save_template(template: Template, submitted: dict, available: dict[str, list[Choice]]) -> dict[str, str]:
    """Store the chosen values; every value must be one the system offers right now.

    Returns field errors (nothing is saved when there are any).
    """
    setup = template.setup
    spec = spec_of(setup, template)
    values, labels, errors = dict(template.values), dict(template.labels), {}
    for field in spec.fields:
        value = (submitted.get(field.name) or "").strip()
        if not value:
            values.pop(field.name, None)
            labels.pop(field.name, None)
            continue
        choice = next((c for c in available[field.name] if c.value == value), None)
        if choice is None:
            errors[field.name] = _("%(system)s has no such choice (any more).", system=system_of(setup).name)
            continue
        values[field.name], labels[field.name] = choice.value, choice.label
    errors.update(
        (name, finding.message)
        for name, finding in account_findings(setup, template, available, values).items()
        if finding.refused
    )
    if errors:
        return errors
    changes = audit.apply_changes(template, {"values": values, "labels": labels})
    if changes:
        audit.record(f"template.{template.kind}.updated", template, account=setup.account, changes=changes)
        _forget_drift(setup, template.id)
    db.session.commit()
    return {}


def _forget_drift(setup: AccountingSetup, template_id: int) -> None:
    """The daily check's findings about a template were about its old values: once it is changed, the
    wizard's own checks judge the new ones (and tomorrow's check all of them)."""
    drift = setup.drift
    if not drift or not any(f["template"] == template_id for f in drift.get("findings", ())):
        return
    findings = [f for f in drift["findings"] if f["template"] != template_id]
    setup.drift = {**drift, "findings": findings, "state": "attention" if findings else "ok"}


def account_findings(
    setup: AccountingSetup,
    template: Template,
    available: dict[str, list[Choice]],
    values: dict | None = None,
    day: date | None = None,
) -> dict[str, checks.Finding]:
    """Field name -> why the chosen account (or product group) does not fit the template's purpose (see
    checks.py). `values`: the submitted ones, else the saved ones; a value no longer offered is not judged.
    `day`: the domestic VAT rate of that day (the drift check's known future change), else today's."""
    spec = spec_of(setup, template)
    values = template.values if values is None else values
    chosen = {}
    for field in spec.fields:
        value = values.get(field.name)
        choice = next((c for c in available.get(field.name, ()) if c.value == value), None) if value else None
        if choice is not None:
            chosen[field.name] = (field.choices, choice)
    vat_codes = {
        choice.value: choice
        for field in spec.fields
        if field.choices == "vat_codes"
        for choice in available.get(field.name, ())
    }
    domestic_rate = vat_rates().period_on(HOME_COUNTRY, day or date.today()).standard
    return checks.check_template(spec.kind, spec.zone, chosen, vat_codes, domestic_rate)


def refused_values(setup: AccountingSetup) -> list[str]:
    """One message per saved value the checks refuse (saved before the checks, or the account changed in
    the accounting system since): activation waits until they are corrected."""
    messages = []
    for template in setup.templates:
        spec = spec_of(setup, template)
        available = template_choices(setup, spec)
        for finding in account_findings(setup, template, available).values():
            if finding.refused:
                messages.append(
                    _("%(template)s: %(message)s", template=_(spec.label), message=finding.message)
                )
    return messages


def _journal_warnings(template: Template, available: dict[str, list[Choice]]) -> dict:
    """The payments journal holds entries Bogbro did not make (a bookkeeper's kassekladde): Bogbro books
    only its own vouchers, but a journal of its own keeps the two apart (see the connector's notes)."""
    value = template.values.get("journal")
    choice = next((c for c in available.get("journal", ()) if c.value == value), None) if value else None
    count = (choice.details or {}).get("foreign_entries", 0) if choice else 0
    if not count:
        return {}
    return {
        "journal": _(
            "This journal holds %(count)s entries that Bogbro did not make. Bogbro books only its own "
            "payments and leaves them alone, but it is best to give Bogbro a journal of its own: create one "
            "in e-conomic (for example “Bogbro betalinger”) and choose it here.",
            count=count,
        )
    }


def template_warnings(
    setup: AccountingSetup, template: Template, available: dict[str, list[Choice]], day: date | None = None
) -> dict:
    """Field name -> a warning about a chosen value that is allowed but likely wrong; nothing is refused.

    The OSS template (fields named by country): the chosen product group's EU sales account must carry the
    country's VAT rate as Bogbro's dated rate table has it today — else every sale there would be booked at
    the wrong rate (IEX's most common failed test: Finland at 24 % in the ledger, 25.5 % in the shop). Read
    from the choices as the system offers them now (the group's `vat_rates`). `day`: the rates of that day
    instead of today's (the drift check looks ahead to a known change)."""
    spec = spec_of(setup, template)
    found = {
        name: f.message
        for name, f in account_findings(setup, template, available, day=day).items()
        if not f.refused
    }
    if spec.kind == "payments":
        return {**found, **_journal_warnings(template, available)}
    if spec.kind != "oss":
        return found
    rates, today = vat_rates(), day or date.today()
    warnings = {}
    for field in spec.fields:
        value = template.values.get(field.name)
        choice = next((c for c in available.get(field.name, ()) if c.value == value), None) if value else None
        if choice is None or "vat_rates" not in choice.details:
            continue  # nothing chosen, a stale choice (flagged elsewhere), or a system that does not say
        try:
            period = rates.period_on(field.name, today)
        except UnknownRate:
            continue
        country = _(field.label)
        account = choice.details.get("sales_accounts", {}).get("eu", "")
        ledger = choice.details["vat_rates"].get("eu")
        expected = format_number(period.standard)
        if period.effective_from == date.min:
            since = _("for years")
        else:
            since = _("since %(day)s", day=format_date(period.effective_from))
        if ledger is None:
            warnings[field.name] = _(
                "The group's EU sales account %(account)s has no VAT code, so sales to %(country)s would "
                "carry no VAT; %(country)s's rate is %(rate)s %%.",
                account=account,
                country=country,
                rate=expected,
            )
        elif Decimal(str(ledger)) != period.standard:
            warnings[field.name] = _(
                "The group's EU sales account %(account)s carries %(ledger)s %% VAT, but %(country)s's rate "
                "is %(rate)s %% (%(since)s). Correct its VAT code in %(system)s: until then Bogbro leaves "
                "the invoices as drafts, as their totals differ from the shop's.",
                account=account,
                ledger=format_number(Decimal(str(ledger))),
                country=country,
                rate=expected,
                since=since,
                system=system_of(setup).name,
            )
    return warnings


def missing_values(setup: AccountingSetup, stale: dict[int, set[str]] | None = None) -> list[str]:
    """One message per required value that is not chosen, and per chosen value (optional ones too) that is
    no longer valid; empty means complete."""
    messages = []
    by_key = {(t.kind, t.zone): t for t in setup.templates}
    for spec in system_of(setup).templates:
        template = by_key.get((spec.kind, spec.zone))
        for field in spec.fields:
            value = template.values.get(field.name) if template else None
            if not value and not field.required:
                continue
            if not value:
                messages.append(
                    _("%(template)s: choose %(field)s.", template=_(spec.label), field=_(field.label).lower())
                )
            elif stale and field.name in stale.get(template.id, set()):
                label = template.labels.get(field.name, value)
                message = _("%(template)s: %(value)s no longer exists in %(system)s; choose another.")
                messages.append(
                    message % {"template": _(spec.label), "value": label, "system": system_of(setup).name}
                )
    return messages


def stale_values(setup: AccountingSetup) -> dict[int, set[str]]:
    """Chosen values the accounting system no longer offers (e.g. an account deleted there)."""
    stale: dict[int, set[str]] = {}
    for template in setup.templates:
        for field in spec_of(setup, template).fields:
            value = template.values.get(field.name)
            if value and value not in {choice.value for choice in choices(setup, field.choices)}:
                stale.setdefault(template.id, set()).add(field.name)
    return stale


def set_auto_book(setup: AccountingSetup, on: bool) -> None:
    changes = audit.apply_changes(setup, {"auto_book": on})
    if changes:
        audit.record("setup.auto_book", setup, account=setup.account, changes=changes)
    db.session.commit()


def activate(
    setup: AccountingSetup, stale: dict[int, set[str]] | None = None, refused: list[str] | None = None
) -> list[str]:
    """Activate when every required template is complete and no chosen account is refused (`refused`:
    refused_values, read with the choices); otherwise return what is missing."""
    if setup.unusable_reason:
        return [_(setup.unusable_reason)]
    if setup.account.awaiting_confirmation:  # a self-service sign-up transfers nothing before this
        return [_("The account owner must confirm their e-mail address first (see the link in the mail).")]
    if setup.connection.status != "active":
        return [_("The connection to %(system)s must be renewed first.", system=system_of(setup).name)]
    missing = ([] if setup.selected else [_("Tick “Use this organisation” first.")]) + missing_values(
        setup, stale
    )
    missing += refused or []
    if missing:
        return missing
    changes = audit.apply_changes(setup, {"active": True, "activated_at": utcnow()})
    audit.record("setup.activated", setup, account=setup.account, changes=changes)
    db.session.commit()
    return []


def deactivate(setup: AccountingSetup) -> None:
    changes = audit.apply_changes(setup, {"active": False})
    if changes:
        audit.record("setup.deactivated", setup, account=setup.account, changes=changes)
    db.session.commit()


def real_connect_available(system_key: str) -> bool:
    """Whether Bogbro is registered with the vendor (the app's own ids are configured)."""
    settings = system_settings(system_key, sandbox=False)
    needed = {
        "grant_token": ("app_secret_token", "app_public_token"),
        "oauth": ("client_id", "client_secret"),
        "api_key": (),
    }[get_system(system_key).connect]
    return all(settings.get(name) for name in needed)


def forget_choices(setup: AccountingSetup) -> None:
    redis = get_redis()
    keys = list(redis.scan_iter(f"bogbro:choices:{setup.id}:*"))
    if keys:
        redis.delete(*keys)
