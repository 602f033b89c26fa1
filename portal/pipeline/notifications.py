"""Mail to the people behind an order integration, sent by periodic jobs (workers/schedule.py):

    send_error_digests   every 10 minutes: per integration (notify.error_digest, on by default), ONE mail
                         listing its transfers that need attention and were not reported yet; each is then
                         marked `notified_at`. A transfer that leaves needs_attention loses the mark (see
                         portal.models.transfers), so failing again later is reported again.
    send_daily_reports   hourly: from 07:00 Copenhagen time, yesterday's figures for each integration with
                         notify.daily_report, once per day (`last_report_on`).

Recipients: notify.recipients, else the account's owners; language: the account's (its first owner's),
Danish by default. Both jobs may run in several workers at once: each claims its work with one conditional
UPDATE (… WHERE notified_at IS NULL RETURNING id; … WHERE last_report_on < today) before sending, so only
one of them sends; a failed send gives the claim back for the next run. (A worker killed between the claim
and the send loses that one mail: rare, and better than mail storms.)
"""

import json
import logging
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from flask import current_app, render_template
from flask_babel import force_locale, format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update

from portal.engine.documents import COPENHAGEN
from portal.extensions import db
from portal.i18n import format_amount
from portal.mail import send_mail
from portal.models import OrderIntegration, Transfer, utcnow
from portal.pipeline import settings as pipeline_settings

log = logging.getLogger(__name__)

REPORT_HOUR = 7  # the daily report goes out from 07:00 Copenhagen time
STATUSES = ("done", "needs_attention", "pending", "running", "waiting", "skipped")


def _public_context():
    """A request context on the portal's public address, so url_for(..., _external=True) makes links that
    work from the recipient's mail (a periodic job has no request of its own)."""
    return current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"])


def _shop_name(integration: OrderIntegration) -> str:
    return integration.name or integration.connection.label or f"#{integration.id}"


def _raise_first(failures: list[Exception]) -> None:
    """Every integration had its turn; then the job fails visibly (RQ's failed registry) if one did."""
    if failures:
        raise failures[0]


# --- the error digest -------------------------------------------------------------------------------------


def send_error_digests() -> list[int]:
    """One digest per integration with unreported transfers in needs_attention; returns their ids."""
    integration_ids = db.session.scalars(
        select(Transfer.integration_id)
        .where(Transfer.status == "needs_attention", Transfer.notified_at.is_(None))
        .distinct()
    ).all()
    sent, failures = [], []
    for integration_id in sorted(integration_ids):
        try:
            if send_error_digest(integration_id):
                sent.append(integration_id)
        except Exception as exc:  # logged; the others still get theirs
            log.exception("integration %s: the error digest could not be sent", integration_id)
            failures.append(exc)
    _raise_first(failures)
    return sent


def send_error_digest(integration_id: int) -> bool:
    integration = db.session.get(OrderIntegration, integration_id)
    if integration is None or not pipeline_settings.error_digest_enabled(integration):
        return False
    recipients = pipeline_settings.notify_recipients(integration)
    if not recipients:
        log.warning("integration %s: transfers need attention but nobody to tell", integration_id)
        return False
    stamp = utcnow()
    claimed = (
        db.session.execute(
            update(Transfer)
            .where(
                Transfer.integration_id == integration_id,
                Transfer.status == "needs_attention",
                Transfer.notified_at.is_(None),
            )
            # updated_at stays: being reported is not a change of the transfer (the watchdog reads it)
            .values(notified_at=stamp, updated_at=Transfer.updated_at)
            .returning(Transfer.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    db.session.commit()
    if not claimed:
        return False  # another worker got there first
    try:
        transfers = db.session.scalars(
            select(Transfer).where(Transfer.id.in_(claimed)).order_by(Transfer.id)
        ).all()
        language = pipeline_settings.notify_language(integration)
        with _public_context(), force_locale(language):
            shop = _shop_name(integration)
            subject = ngettext(
                "Bogbro: %(num)d order from %(shop)s needs attention",
                "Bogbro: %(num)d orders from %(shop)s need attention",
                len(transfers),
                shop=shop,
            )
            values = {"integration": integration, "shop": shop, "transfers": transfers}
            text = render_template("transfers/mail/error_digest.txt", **values)
            html = render_template("transfers/mail/error_digest.html", **values)
        send_mail(recipients, subject, text, html)
    except Exception:
        db.session.rollback()
        db.session.execute(
            update(Transfer)
            .where(Transfer.id.in_(claimed), Transfer.notified_at == stamp)
            .values(notified_at=None, updated_at=Transfer.updated_at)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        raise
    log.info("integration %s: error digest of %d transfers sent", integration_id, len(claimed))
    return True


# --- the daily status report ------------------------------------------------------------------------------


def send_daily_reports(now: datetime | None = None) -> list[int]:
    """Yesterday's report for every active integration that wants one and has not had today's; returns
    their ids. Before 07:00 Copenhagen time it does nothing."""
    moment = (now or datetime.now(UTC)).astimezone(COPENHAGEN)
    if moment.hour < REPORT_HOUR:
        return []
    today = moment.date()
    candidates = db.session.scalars(
        select(OrderIntegration)
        .where(
            OrderIntegration.active,
            or_(OrderIntegration.last_report_on.is_(None), OrderIntegration.last_report_on < today),
        )
        .order_by(OrderIntegration.id)
    ).all()
    sent, failures = [], []
    for integration in candidates:
        if not pipeline_settings.daily_report_enabled(integration):
            continue
        try:
            if send_daily_report(integration.id, today):
                sent.append(integration.id)
        except Exception as exc:  # logged; the others still get theirs
            log.exception("integration %s: the daily report could not be sent", integration.id)
            failures.append(exc)
    _raise_first(failures)
    return sent


def send_daily_report(integration_id: int, today: date) -> bool:
    """The report of the day before `today` (Copenhagen), claimed first so it goes out once."""
    integration = db.session.get(OrderIntegration, integration_id)
    recipients = pipeline_settings.notify_recipients(integration)
    if not recipients:
        log.warning("integration %s: a daily report is wanted but nobody to send it to", integration_id)
        return False
    previous = integration.last_report_on
    claim = db.session.execute(
        update(OrderIntegration)
        .where(
            OrderIntegration.id == integration_id,
            or_(OrderIntegration.last_report_on.is_(None), OrderIntegration.last_report_on < today),
        )
        .values(last_report_on=today, updated_at=OrderIntegration.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claim.rowcount != 1:
        return False  # another worker sent it
    try:
        day = today - timedelta(days=1)
        figures = daily_figures(integration, day)
        language = pipeline_settings.notify_language(integration)
        with _public_context(), force_locale(language):
            shop = _shop_name(integration)
            subject = _("Bogbro: %(shop)s on %(day)s", shop=shop, day=format_date(day, "long"))
            values = {
                "integration": integration,
                "shop": shop,
                "day": day,
                "figures": figures,
                "amount": lambda value, currency: format_amount(value, currency, language),
            }
            text = render_template("transfers/mail/daily_report.txt", **values)
            html = render_template("transfers/mail/daily_report.html", **values)
        send_mail(recipients, subject, text, html)
    except Exception:
        db.session.rollback()
        db.session.execute(
            update(OrderIntegration)
            .where(OrderIntegration.id == integration_id, OrderIntegration.last_report_on == today)
            .values(last_report_on=previous, updated_at=OrderIntegration.updated_at)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        raise
    log.info("integration %s: daily report of %s sent", integration_id, day.isoformat())
    return True


def _currency(transfer: Transfer) -> str:
    try:
        body = json.loads(transfer.event.raw_body) if transfer.event else {}
    except ValueError:
        return "DKK"
    order = body.get("order", body) if transfer.kind == "credit_note" else body
    return str((order or {}).get("currency") or "DKK").upper()


def daily_figures(integration: OrderIntegration, day: date) -> dict:
    """`day` (a Copenhagen calendar day) in figures:

    received   transfers that came in that day, by their status now
    posted     per kind (invoice, credit_note): documents finished that day — count, booked, drafts, and
               the accounting system's gross total per currency
    open       transfers needing attention now (any day)
    """
    start = datetime.combine(day, time.min, COPENHAGEN).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, COPENHAGEN).astimezone(UTC)
    received = Counter(
        dict(
            db.session.execute(
                select(Transfer.status, func.count(Transfer.id))
                .where(
                    Transfer.integration_id == integration.id,
                    Transfer.created_at >= start,
                    Transfer.created_at < end,
                )
                .group_by(Transfer.status)
            ).all()
        )
    )
    posted = {
        kind: {"count": 0, "booked": 0, "drafts": 0, "totals": defaultdict(Decimal)}
        for kind in ("invoice", "credit_note")
    }
    finished = db.session.scalars(
        select(Transfer).where(
            Transfer.integration_id == integration.id,
            Transfer.status == "done",
            Transfer.finished_at >= start,
            Transfer.finished_at < end,
        )
    ).all()
    for transfer in finished:
        figures = posted[transfer.kind]
        figures["count"] += 1
        figures["booked" if transfer.booked_number else "drafts"] += 1
        figures["totals"][_currency(transfer)] += abs(transfer.computed_gross or Decimal("0"))
    for figures in posted.values():
        # DKK first, then the others alphabetically
        figures["totals"] = sorted(figures["totals"].items(), key=lambda item: (item[0] != "DKK", item[0]))
    open_errors = db.session.scalar(
        select(func.count(Transfer.id)).where(
            Transfer.integration_id == integration.id, Transfer.status == "needs_attention"
        )
    )
    return {
        "received": [(status, received[status]) for status in STATUSES if received[status]],
        "received_total": sum(received.values()),
        "posted": posted,
        "open_errors": open_errors,
    }
