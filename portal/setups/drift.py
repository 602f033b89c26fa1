"""Drift guards: once a day, every active accounting setup's templates are checked against the ledger as it
is now and against the dated VAT rate table — before the first order fails on them.

What drifts without Bogbro seeing it:
    a chosen account or product group deleted or barred in the ledger   (no longer among its choices)
    an account whose VAT code changed, or a VAT code whose rate changed  (the wizard's checks, checks.py)
    a country's VAT rate changing (Finland 24 → 25.5 %)                  (OSS groups against today's rate,
                                                                          and every check again on the day
                                                                          of the next known change)

`queue_due_checks` (hourly, workers/schedule.py) claims each active setup once per Copenhagen day from
CHECK_HOUR on (before the 07:00 daily report, which includes the result) and queues `check_setup` on the
`low` queue: the workers take it only when no order is waiting, and the connectors keep to the ledger's
pace. The result is stored on the setup (`drift`) in every language Bogbro speaks, as the job has no reader:

    {"checked_at": "…", "state": "ok" | "attention" | "unreachable" | "failed", "message": {"da": …, "en": …},
     "findings": [{"template": id, "field": name, "level": "refuse" | "warn", "message": {"da": …, "en": …}}]}

A ledger that does not answer is "unreachable" with its message and no findings: never a wrong account.
"""

import logging
from datetime import UTC, date, datetime

from babel import Locale
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from portal.connectors.errors import ConnectorError
from portal.engine.documents import COPENHAGEN
from portal.engine.vat import UnknownRate
from portal.extensions import db
from portal.i18n import format_day, format_number
from portal.models import LANGUAGES, AccountingSetup, Connection, utcnow
from portal.pipeline.settings import vat_rates
from portal.queue import enqueue_after_commit
from portal.setups import operations

log = logging.getLogger(__name__)

CHECK_HOUR = 5  # Copenhagen time: done before the daily report goes out at 07:00


def copenhagen_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(COPENHAGEN).date()


# --- scheduling -------------------------------------------------------------------------------------------


def queue_due_checks(now: datetime | None = None) -> list[int]:
    """Claim every active setup not checked today and queue its check; returns their ids. Several runs (or
    workers) at once are harmless: each setup is claimed by one conditional UPDATE."""
    moment = (now or datetime.now(UTC)).astimezone(COPENHAGEN)
    if moment.hour < CHECK_HOUR:
        return []
    today = moment.date()
    due = db.session.scalars(
        select(AccountingSetup.id)
        .join(Connection)
        .where(
            AccountingSetup.active,
            Connection.status != "disabled",
            or_(AccountingSetup.drift_checked_on.is_(None), AccountingSetup.drift_checked_on < today),
        )
        .order_by(AccountingSetup.id)
    ).all()
    claimed = []
    for setup_id in due:
        won = db.session.execute(
            update(AccountingSetup)
            .where(
                AccountingSetup.id == setup_id,
                or_(AccountingSetup.drift_checked_on.is_(None), AccountingSetup.drift_checked_on < today),
            )
            .values(drift_checked_on=today, updated_at=AccountingSetup.updated_at)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount == 1:
            enqueue_after_commit("workers.jobs.check_setup_drift", setup_id, queue="low")
            claimed.append(setup_id)
    db.session.commit()
    return claimed


def queue_check(setup: AccountingSetup) -> None:
    """The check now, on the default queue (someone is waiting for it)."""
    enqueue_after_commit("workers.jobs.check_setup_drift", setup.id)
    db.session.commit()


# --- the check --------------------------------------------------------------------------------------------


def check_setup(setup_id: int, today: date | None = None) -> dict | None:
    """Read the chosen values' choices afresh from the ledger, check every template, store the result."""
    setup = db.session.get(AccountingSetup, setup_id)
    if setup is None or not setup.active:
        return None
    today = today or copenhagen_today()
    try:
        result = _result(setup, today)
    except Exception:
        # Not silent: the setup says the check failed (and the job fails visibly, for us to see).
        db.session.rollback()
        _store(setup, today, {"state": "failed", "message": _in_every_language(_failed), "findings": []})
        raise
    return _store(setup, today, result)


def _store(setup: AccountingSetup, today: date, result: dict) -> dict:
    setup.drift = {"checked_at": utcnow().isoformat(), **result}
    setup.drift_checked_on = today
    db.session.commit()
    log.info("setup %s: drift check %s, %d findings", setup.id, result["state"], len(result["findings"]))
    return setup.drift


def _result(setup: AccountingSetup, today: date) -> dict:
    try:
        available = _fetch(setup)
    except ConnectorError as exc:
        log.info("setup %s: the ledger did not answer the drift check: %s", setup.id, exc)
        return {
            "state": "unreachable",
            "message": _in_every_language(_unreachable, setup, exc),
            "findings": [],
        }
    findings = {}
    for language in LANGUAGES:
        with force_locale(language):
            for template_id, field, level, message in _findings(setup, available, today):
                entry = findings.setdefault(
                    (template_id, field),
                    {"template": template_id, "field": field, "level": level, "message": {}},
                )
                entry["message"][language] = message
    return {"state": "attention" if findings else "ok", "message": None, "findings": list(findings.values())}


def _fetch(setup: AccountingSetup) -> dict[int, dict]:
    """Template id -> field name -> the choices the ledger offers now; each kind read once, not from the
    wizard's cache (a day-old answer would hide what changed)."""
    read: dict[str, list] = {}
    available = {}
    for template in setup.templates:
        spec = operations.spec_of(setup, template)
        for field in spec.fields:
            if field.choices not in read:
                read[field.choices] = operations.choices(setup, field.choices, refresh=True)
        available[template.id] = {field.name: read[field.choices] for field in spec.fields}
    return available


def _in_every_language(render, *args) -> dict[str, str]:
    texts = {}
    for language in LANGUAGES:
        with force_locale(language):
            texts[language] = render(*args)
    return texts


def _unreachable(setup: AccountingSetup, exc: ConnectorError) -> str:
    return _(
        "%(system)s did not answer the daily check, so the templates could not be checked today: %(message)s",
        system=operations.system_of(setup).name,
        message=_(exc.message),
    )


def _failed() -> str:
    return _("The daily check of the templates failed unexpectedly; it runs again tomorrow.")


def _findings(setup: AccountingSetup, available: dict[int, dict], today: date):
    """(template id, field, level, message) for what no longer fits, in the current language."""
    name = operations.system_of(setup).name
    changes = _next_changes(setup, today)
    for template in setup.templates:
        spec = operations.spec_of(setup, template)
        offered = available[template.id]
        found = {}
        for field in spec.fields:
            value = template.values.get(field.name)
            if value and value not in {choice.value for choice in offered[field.name]}:
                found[field.name] = (
                    "refuse",
                    _(
                        "%(value)s no longer exists in %(system)s, or is barred there: orders that need it "
                        "will stop. Choose another, or open it again in %(system)s.",
                        value=template.labels.get(field.name, value),
                        system=name,
                    ),
                )
        now = operations.account_findings(setup, template, offered, day=today)
        for field_name, finding in now.items():
            found.setdefault(field_name, (finding.level, finding.message))
        if spec.kind == "oss":
            for field_name, message in operations.template_warnings(setup, template, offered, today).items():
                found.setdefault(field_name, ("warn", message))
        # A known rate change: every check again as on that day; what newly fails is told before it does.
        for day, country, rate in changes:
            if spec.kind != "oss" and country != operations.HOME_COUNTRY:
                continue  # only the OSS groups carry other countries' rates
            later = {
                n: f.message
                for n, f in operations.account_findings(setup, template, offered, day=day).items()
            }
            if spec.kind == "oss":
                later.update(operations.template_warnings(setup, template, offered, day))
            for field_name, message in later.items():
                if field_name in found or (spec.kind == "oss" and field_name != country):
                    continue
                found[field_name] = (
                    "warn",
                    _(
                        "From %(day)s the VAT rate in %(country)s is %(rate)s %%: %(message)s Change the VAT "
                        "code in %(system)s on that day.",
                        day=format_day(day, "long"),
                        country=_country(country),
                        rate=format_number(rate),
                        message=message,
                        system=name,
                    ),
                )
        for field_name, (level, message) in found.items():
            yield template.id, field_name, level, message


def _next_changes(setup: AccountingSetup, today: date) -> list[tuple[date, str, object]]:
    """(day, country, new standard rate) of the next known change of Denmark's rate and of each country an
    OSS template names a group for."""
    countries = {operations.HOME_COUNTRY}
    for template in setup.templates:
        if template.kind == "oss":
            countries.update(field for field, value in template.values.items() if value)
    rates, changes = vat_rates(), []
    for country in sorted(countries):
        try:
            current = rates.period_on(country, today)
        except UnknownRate:
            continue
        upcoming = rates.next_change(country, today)
        if upcoming is not None and upcoming.standard != current.standard:
            changes.append((upcoming.effective_from, country, upcoming.standard))
    return changes


def _country(code: str) -> str:
    """The country's name in the current language ("Finland"; Danish: "Finland", "Tyskland")."""
    return Locale(_language()).territories.get(code, code)


# --- reading the result -----------------------------------------------------------------------------------


def _language() -> str:
    locale = str(get_locale() or "da")
    return locale if locale in LANGUAGES else "da"


def _text(message: dict | None) -> str:
    message = message or {}
    return message.get(_language()) or message.get("da") or next(iter(message.values()), "")


def checked_at(setup: AccountingSetup) -> datetime | None:
    drift = setup.drift or {}
    return datetime.fromisoformat(drift["checked_at"]) if drift.get("checked_at") else None


def template_notices(setup: AccountingSetup, template_id: int) -> list[dict]:
    """The last check's findings for one template, in the reader's language: [{field, level, message}]."""
    drift, when = setup.drift or {}, checked_at(setup)
    return [
        {"field": f["field"], "level": f["level"], "message": _text(f["message"]), "checked_at": when}
        for f in drift.get("findings", ())
        if f["template"] == template_id
    ]


def summary(setup: AccountingSetup) -> dict | None:
    """For the dashboard and the daily report: None when the last check found nothing (or none ran yet);
    else {state, checked_at, message (unreachable), templates: [(template, its name, [messages])]}."""
    drift = setup.drift or {}
    if drift.get("state") not in ("attention", "unreachable", "failed"):
        return None
    by_id = {template.id: template for template in setup.templates}
    templates = []
    for template_id in dict.fromkeys(f["template"] for f in drift.get("findings", ())):
        template = by_id.get(template_id)
        if template is not None:
            label = _(operations.spec_of(setup, template).label)
            templates.append((template, label, [n["message"] for n in template_notices(setup, template_id)]))
    return {
        "state": drift["state"],
        "checked_at": checked_at(setup),
        "message": _text(drift.get("message")),
        "templates": templates,
    }
