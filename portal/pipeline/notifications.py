"""Mail to the people behind an sales source, sent by periodic jobs (workers/schedule.py):

    send_error_digests   every 10 minutes: per source link (notify.error_digest, on by default), ONE mail
                         listing its transfers that need attention and were not reported yet; each is then
                         marked `notified_at`. A transfer that leaves needs_attention loses the mark (see
                         portal.models.transfers), so failing again later is reported again.
    send_daily_reports   hourly: from 07:00 Copenhagen time, yesterday's figures for each source link with
                         notify.daily_report, once per day (`last_report_on`), and what the day's drift
                         check (portal.setups.drift) found in its accounting setup's templates.

Recipients: notify.recipients, else the account's owners; language: the account's (its first owner's),
Danish by default. Both jobs may run in several workers at once: each claims its work with one conditional
UPDATE (… WHERE notified_at IS NULL RETURNING id; … WHERE last_report_on < today) before sending, so only
one of them sends; a failed send gives the claim back for the next run. (A worker killed between the claim
and the send loses that one mail: rare, and better than mail storms.)
"""

import json
import logging
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial

from flask import current_app, render_template
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

from portal.engine.documents import COPENHAGEN
from portal.extensions import db
from portal.i18n import format_day
from portal.mail import send_mail
from portal.models import SourceLink, Transfer, utcnow
from portal.pipeline import completeness
from portal.pipeline import settings as pipeline_settings
from portal.setups import drift
from portal.sources import get_source

log = logging.getLogger(__name__)

REPORT_HOUR = 7  # the daily report goes out from 07:00 Copenhagen time
STATUSES = ("done", "needs_attention", "pending", "running", "waiting", "skipped")


def _public_context():
    """A request context on the portal's public address, so url_for(..., _external=True) makes links that
    work from the recipient's mail (a periodic job has no request of its own)."""
    return current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"])


def _each(source_link_ids, send, what: str) -> list[int]:
    """send(id) for each source link; one failing does not keep the others from theirs, and afterwards the
    job fails visibly (RQ's failed registry) if one did. Returns the ids that were sent."""
    sent, failures = [], []
    for source_link_id in source_link_ids:
        try:
            if send(source_link_id):
                sent.append(source_link_id)
        except Exception as exc:  # logged; the others still get theirs
            log.exception("source_link %s: the %s could not be sent", source_link_id, what)
            failures.append(exc)
    if failures:
        raise failures[0]
    return sent


@contextmanager
def _given_back_on_failure(release):
    """Around sending what was claimed: when it fails, run `release` (an UPDATE undoing the claim) so the
    next run tries again, then re-raise."""
    try:
        yield
    except Exception:
        db.session.rollback()
        db.session.execute(release.execution_options(synchronize_session=False))
        db.session.commit()
        raise


def _mail(source_link: SourceLink, recipients, template: str, subject, **values) -> None:
    """Render transfers/mail/<template>.txt/.html in the recipients' language with links on the public
    address, and send it. `subject(shop)` is called inside that language."""
    with _public_context(), force_locale(pipeline_settings.notify_language(source_link)):
        shop = source_link.display_name
        values = {"source_link": source_link, "shop": shop, **values}
        text = render_template(f"transfers/mail/{template}.txt", **values)
        html = render_template(f"transfers/mail/{template}.html", **values)
        title = subject(shop)
    send_mail(recipients, title, text, html)


# --- the error digest -------------------------------------------------------------------------------------


def send_error_digests() -> list[int]:
    """One digest per source link with unreported transfers in needs_attention; returns their ids."""
    source_link_ids = db.session.scalars(
        select(Transfer.source_link_id)
        .where(Transfer.status == "needs_attention", Transfer.notified_at.is_(None))
        .distinct()
    ).all()
    return _each(sorted(source_link_ids), send_error_digest, "error digest")


def send_error_digest(source_link_id: int) -> bool:
    source_link = db.session.get(SourceLink, source_link_id)
    if source_link is None or not pipeline_settings.error_digest_enabled(source_link):
        return False
    recipients = pipeline_settings.notify_recipients(source_link)
    if not recipients:
        log.warning("source_link %s: transfers need attention but nobody to tell", source_link_id)
        return False
    stamp = utcnow()
    claimed = (
        db.session.execute(
            update(Transfer)
            .where(
                Transfer.source_link_id == source_link_id,
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
    release = (
        update(Transfer)
        .where(Transfer.id.in_(claimed), Transfer.notified_at == stamp)
        .values(notified_at=None, updated_at=Transfer.updated_at)
    )
    with _given_back_on_failure(release):
        transfers = db.session.scalars(
            select(Transfer).where(Transfer.id.in_(claimed)).order_by(Transfer.id)
        ).all()
        _mail(
            source_link,
            recipients,
            "error_digest",
            lambda shop: ngettext(
                "Bogbro: %(num)d order from %(shop)s needs attention",
                "Bogbro: %(num)d orders from %(shop)s need attention",
                len(transfers),
                shop=shop,
            ),
            transfers=transfers,
        )
    log.info("source_link %s: error digest of %d transfers sent", source_link_id, len(claimed))
    return True


# --- the daily status report ------------------------------------------------------------------------------


def send_daily_reports(now: datetime | None = None) -> list[int]:
    """Yesterday's report for every active source link that wants one and has not had today's; returns
    their ids. Before 07:00 Copenhagen time it does nothing."""
    moment = (now or datetime.now(UTC)).astimezone(COPENHAGEN)
    if moment.hour < REPORT_HOUR:
        return []
    today = moment.date()
    candidates = db.session.scalars(
        select(SourceLink)
        .where(
            SourceLink.active,
            or_(SourceLink.last_report_on.is_(None), SourceLink.last_report_on < today),
        )
        .order_by(SourceLink.id)
    ).all()
    wanted = [i.id for i in candidates if pipeline_settings.daily_report_enabled(i)]
    return _each(wanted, partial(send_daily_report, today=today), "daily report")


def send_daily_report(source_link_id: int, today: date) -> bool:
    """The report of the day before `today` (Copenhagen), claimed first so it goes out once."""
    source_link = db.session.get(SourceLink, source_link_id)
    recipients = pipeline_settings.notify_recipients(source_link)
    if not recipients:
        log.warning("source_link %s: a daily report is wanted but nobody to send it to", source_link_id)
        return False
    previous = source_link.last_report_on
    claim = db.session.execute(
        update(SourceLink)
        .where(
            SourceLink.id == source_link_id,
            or_(SourceLink.last_report_on.is_(None), SourceLink.last_report_on < today),
        )
        .values(last_report_on=today, updated_at=SourceLink.updated_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claim.rowcount != 1:
        return False  # another worker sent it
    release = (
        update(SourceLink)
        .where(SourceLink.id == source_link_id, SourceLink.last_report_on == today)
        .values(last_report_on=previous, updated_at=SourceLink.updated_at)
    )
    day = today - timedelta(days=1)
    with _given_back_on_failure(release):
        figures = daily_figures(source_link, day)
        _mail(
            source_link,
            recipients,
            "daily_report",
            lambda shop: _("Bogbro: %(shop)s on %(day)s", shop=shop, day=format_day(day, "long")),
            day=day,
            figures=figures,
            # the daily check of the templates (05:00), read in the recipients' language while rendering
            drift_of=drift.summary,
            # the newest completeness report of the shop against the ledger ("Alt stemmer for …")
            completeness_of=_completeness,
        )
    log.info("source_link %s: daily report of %s sent", source_link_id, day.isoformat())
    return True


def _completeness(source_link: SourceLink) -> dict | None:
    report = completeness.latest(source_link)
    return completeness.summary(report) if report is not None else None


def sale_currency(transfer: Transfer) -> str:
    """The currency of the sale a transfer posts (or credits): as posting recorded it, else (a row from before
    transfers.currency, or one not posted yet) as its source wrote it, DKK when it wrote none."""
    if transfer.currency:
        return transfer.currency
    try:
        body = json.loads(transfer.event.raw_body) if transfer.event else {}
    except ValueError:
        return "DKK"
    if transfer.kind == "credit_note":
        order = body.get("order", body)
    else:
        order = get_source(transfer.source_link.source_system).sale_of(body)
    return str((order or {}).get("currency") or "DKK").upper()


def daily_figures(source_link: SourceLink, day: date) -> dict:
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
                    Transfer.source_link_id == source_link.id,
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
        select(Transfer)
        .options(selectinload(Transfer.event))  # the currency is in the order: one query, not one each
        .where(
            Transfer.source_link_id == source_link.id,
            Transfer.status == "done",
            Transfer.finished_at >= start,
            Transfer.finished_at < end,
        )
    ).all()
    for transfer in finished:
        figures = posted[transfer.kind]
        figures["count"] += 1
        figures["booked" if transfer.booked_number else "drafts"] += 1
        figures["totals"][sale_currency(transfer)] += abs(transfer.computed_gross or Decimal("0"))
    for figures in posted.values():
        # DKK first, then the others alphabetically
        figures["totals"] = sorted(figures["totals"].items(), key=lambda item: (item[0] != "DKK", item[0]))
    open_errors = db.session.scalar(
        select(func.count(Transfer.id)).where(
            Transfer.source_link_id == source_link.id, Transfer.status == "needs_attention"
        )
    )
    return {
        "received": [(status, received[status]) for status in STATUSES if received[status]],
        "received_total": sum(received.values()),
        "posted": posted,
        "open_errors": open_errors,
    }
