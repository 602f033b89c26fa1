"""The completeness report ("Afstemning"): every sale in the shop against every document in the ledger that
carries our reference, for one shop link and period — read through both systems' APIs, page by page, never
from our own tables alone (the Transfer rows only explain a gap: "skipped: <reason>").

    request          a report of any period, queued now (someone waits for it: the default queue)
    queue_daily      once a day from DAILY_HOUR Copenhagen time, the last 30 days of every active shop link,
                     on the `low` queue (behind live traffic; the connectors' rate limiter keeps the pace)
    run              read the shop (SourceConnector.list_orders: the orders changed since the period began,
                     so refunds made later are seen too) and the ledger (AccountingConnector.list_documents),
                     compare, store the findings
    compare          the pure comparison: Sale, SaleRefund and LedgerDocument in, findings out
    summary          what the dashboard and the daily report mail say about the newest report

The fixes ("Overfør nu", "Knyt til dokumentet") are in completeness_fixes.py.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from babel.dates import format_date
from flask_babel import gettext, ngettext
from sqlalchemy import select

from portal.connectors.base import LedgerDocument
from portal.connectors.errors import ConnectorError
from portal.connectors.http import counted
from portal.engine.documents import COPENHAGEN, order_reference, refund_reference
from portal.engine.sources import parse_datetime
from portal.extensions import db
from portal.i18n import format_day, language_of
from portal.models import CompletenessReport, SourceLink, Transfer, utcnow
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.messages import N_, message, render
from portal.pipeline.preview import order_state
from portal.queue import enqueue_after_commit
from portal.redis_client import get_redis
from portal.setups.connections import connector_for
from portal.sources import Source, get_source

log = logging.getLogger(__name__)

DAILY_DAYS = 30
DAILY_HOUR = 6  # after the drift check (05:00), before the daily report mail (07:00)
MAX_DAYS = 366  # the longest period one report reads
INTERRUPTED_AFTER = timedelta(hours=6)  # a report not done by then lost its worker
IN_FLIGHT = ("pending", "running", "waiting")
# The kinds of finding, in the order the page shows them
KINDS = (
    "missing",
    "duplicate",
    "totals_differ",
    "unmatched",
    "refund_missing",
    "credit_unmatched",
    "unlinked",
)


@dataclass
class SaleRefund:
    refund_id: str
    reference: str
    amount: Decimal  # positive: the money that went back


@dataclass
class Sale:
    order_id: str
    number: str
    reference: str
    day: date  # the order's day in Denmark
    customer: str
    currency: str
    gross: Decimal
    expected: bool  # in a transferring state, after the activation date, in the period
    refunds: list[SaleRefund] = field(default_factory=list)


# --- reading the two systems ---------------------------------------------------------------------------


def _money(value) -> Decimal:
    try:
        return abs(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def read_sales(source_link: SourceLink, start: date, end: date, progress=None) -> list[Sale]:
    """Every order changed since `start` began (a sale of the period, or an older one refunded since), as
    the shop's API lists them; `expected` marks those the ledger must hold an invoice for."""
    source = source_link.source_system
    module = get_source(source)
    settings = pipeline_settings.engine_settings(source_link)
    activation = pipeline_settings.activation_date(source_link)
    since = datetime.combine(start, datetime.min.time(), COPENHAGEN).astimezone(UTC)
    shop = connector_for(source_link.connection)
    sales, page = [], 1
    while page:
        result = shop.list_orders(modified_after=since, page=page)
        for order in result.items:
            sale = _sale(source_link, module, settings, order)
            state = order_state(source, order)
            transfers = pipeline_settings.document_for_state(source_link, state) != "none"
            sale.expected = (
                transfers and start <= sale.day <= end and (activation is None or sale.day >= activation)
            )
            sales.append(sale)
        if progress is not None:
            progress(sales=len(sales))
        page = result.next_page
    return sales


def _sale(source_link: SourceLink, module: Source, settings, order: dict) -> Sale:
    """The sale as the pipeline would name it (its reference) and the shop totals it (gross incl. VAT)."""
    try:
        document = module.normalise(order, settings)
        reference, number = document.reference, document.number
        day, gross = document.invoice_date, document.shop_totals.gross
        customer, currency = document.customer.name, document.currency
    except Exception:  # an order the engine refuses (a country that is none) is still a sale to account for
        number = module.sale_number(order).lstrip("#")
        reference = order_reference(module.reference_prefix, settings.shop_id, number)
        created = module.sale_created(order)
        day = parse_datetime(created).astimezone(COPENHAGEN).date() if created else date.min
        gross = _money(order.get("total") or order.get("total_price") or 0)
        billing = order.get("billing") or order.get("billing_address") or {}
        customer = " ".join(filter(None, (billing.get("first_name"), billing.get("last_name"))))
        currency = str(order.get("currency") or "DKK")
    sale = Sale(str(order["id"]), number, reference, day, customer, currency, gross, expected=False)
    for refund in order.get("refunds") or []:
        if not isinstance(refund, dict) or not refund.get("id"):
            continue
        if "total" in refund:  # WooCommerce lists {id, reason, total (negative)} on the order
            amount = _money(refund["total"])
        else:  # Shopify embeds the whole refund
            try:
                amount = module.normalise_refund(order, refund, settings).amount
            except Exception:
                amount = Decimal("0")
        sale.refunds.append(
            SaleRefund(str(refund["id"]), refund_reference(reference, str(refund["id"])), amount)
        )
    return sale


def reference_prefix(source_link: SourceLink) -> str:
    """What every reference of this shop link starts with, e.g. "WC-12-"."""
    shop_id = pipeline_settings.shop_id(source_link.id, source_link.settings)
    return order_reference(get_source(source_link.source_system).reference_prefix, shop_id, "")


def read_documents(source_link: SourceLink, start: date, end: date) -> list[LedgerDocument]:
    setup = source_link.setup
    connector = connector_for(setup.connection, setup.external_id)
    template = setup.template("invoice")
    return connector.list_documents(
        start, end, reference_prefix(source_link), template.values if template else {}
    )


# --- comparing ---------------------------------------------------------------------------------------------


def _document(doc: LedgerDocument) -> dict:
    return {
        "id": doc.id,
        "number": doc.number,
        "kind": doc.kind,
        "booked": doc.booked,
        "date": doc.date.isoformat(),
        "gross": str(doc.gross),
        "url": doc.url,
    }


def _line(kind: str, sale: Sale | None = None, **more) -> dict:
    line = {"kind": kind}
    if sale is not None:
        line.update(
            order_id=sale.order_id,
            order_number=sale.number,
            reference=sale.reference,
            customer=sale.customer,
            day=sale.day.isoformat(),
            currency=sale.currency,
            shop=str(sale.gross),
        )
    line.update(more)
    return line


def compare(
    sales: list[Sale], documents: list[LedgerDocument], start: date, end: date, tolerance: Decimal
) -> list[dict]:
    """The findings, each a plain dict (stored as JSON): which sale, which documents, what differs. Documents
    may be dated after `end` (a refund's credit note, a date moved out of a closed period); only those dated
    in the period can be without a sale."""
    by_reference: dict[str, list[LedgerDocument]] = {}
    for doc in documents:
        by_reference.setdefault(doc.reference, []).append(doc)
    known: set[str] = set()
    findings = []
    for sale in sales:
        known.add(sale.reference)
        docs = by_reference.get(sale.reference, [])
        invoices = [d for d in docs if d.kind != "order"] or docs  # an open order stands for its invoice
        if sale.expected or invoices:
            findings += _sale_findings(sale, invoices, tolerance)
        for refund in sale.refunds:
            known.add(refund.reference)
            credits = by_reference.get(refund.reference, [])
            if len(credits) > 1:
                findings.append(_duplicate(sale, refund.reference, credits, refund))
            elif credits and abs(credits[0].gross - refund.amount) > tolerance:
                findings.append(
                    _line(
                        "totals_differ",
                        sale,
                        reference=refund.reference,
                        refund_id=refund.refund_id,
                        refund=str(refund.amount),
                        ledger=str(credits[0].gross),
                        documents=[_document(credits[0])],
                    )
                )
            elif not credits and invoices and refund.amount:
                findings.append(
                    _line(
                        "refund_missing",
                        sale,
                        reference=refund.reference,
                        refund_id=refund.refund_id,
                        refund=str(refund.amount),
                    )
                )
    for reference, docs in sorted(by_reference.items()):
        if reference in known:
            continue
        dated = [d for d in docs if start <= d.date <= end]
        for doc in dated:
            kind = "credit_unmatched" if doc.kind == "credit_note" else "unmatched"
            findings.append(_line(kind, reference=reference, documents=[_document(doc)]))
    return findings


def _sale_findings(sale: Sale, docs: list[LedgerDocument], tolerance: Decimal) -> list[dict]:
    if not docs:
        return [_line("missing", sale)]
    if len(docs) > 1:
        return [_duplicate(sale, sale.reference, docs)]
    (doc,) = docs
    if abs(doc.gross - sale.gross) > tolerance:
        return [_line("totals_differ", sale, ledger=str(doc.gross), documents=[_document(doc)])]
    return [_line("matched", sale, documents=[_document(doc)])]  # kept only while a transfer is checked


def _duplicate(sale: Sale, reference: str, docs: list[LedgerDocument], refund: SaleRefund | None = None):
    line = _line("duplicate", sale, documents=[_document(d) for d in docs])
    line["reference"] = reference
    if refund is not None:
        line.update(refund_id=refund.refund_id, refund=str(refund.amount))
    return line


def explain(source_link: SourceLink, findings: list[dict]) -> list[dict]:
    """Our transfers explain a gap and decide its fix: a missing sale skipped (with the reason) or needing
    attention is retried or imported; one matched while its transfer is not done can be linked."""
    orders = {f["order_id"] for f in findings if f.get("order_id")}
    transfers: dict[tuple[str, str], Transfer] = {}
    for chunk in _chunks(sorted(orders), 500):
        for transfer in db.session.scalars(
            select(Transfer).where(Transfer.source_link_id == source_link.id, Transfer.order_ref.in_(chunk))
        ):
            transfers[(transfer.kind, transfer.source_ref)] = transfer
    kept = []
    for line in findings:
        if line.get("refund_id"):
            transfer = transfers.get(("credit_note", line["refund_id"]))
        else:
            transfer = transfers.get(("invoice", line.get("order_id", "")))
        if line["kind"] == "matched":
            if transfer is None or transfer.status in ("done", *IN_FLIGHT):
                continue
            line["kind"], line["fix"] = "unlinked", "link"
        elif line["kind"] in ("missing", "refund_missing"):
            line["fix"] = _missing_fix(line, transfer)
        if transfer is not None:
            line["status"] = transfer.status
            line["reason"] = _reason(transfer)
        kept.append(line)
    return kept


def _missing_fix(line: dict, transfer: Transfer | None) -> str | None:
    if transfer is None:
        return "transfer" if line["kind"] == "missing" else "refunds"
    if transfer.status == "needs_attention":
        return "retry"
    if transfer.status == "skipped" and line["kind"] == "missing":
        return "transfer"
    return None  # in flight (it is being transferred), or done but gone from the ledger: a person looks


def _reason(transfer: Transfer) -> dict | str | None:
    text = transfer.error_message or transfer.reason
    stored = transfer.message
    if text and stored and stored.get("english") == text:
        return {k: v for k, v in stored.items() if k != "english"}
    return text


def _chunks(items: list, size: int):
    for n in range(0, len(items), size):
        yield items[n : n + size]


# --- running -----------------------------------------------------------------------------------------------


class PeriodError(ValueError):
    pass


def check_period(start: date, end: date) -> None:
    if end < start:
        raise PeriodError(N_("The period ends before it starts."))
    if (end - start).days >= MAX_DAYS:
        raise PeriodError(N_("A report covers at most a year: choose a shorter period."))


def request(source_link: SourceLink, start: date, end: date, trigger: str = "manual") -> CompletenessReport:
    """A report of the period, queued; the daily ones on the `low` queue."""
    check_period(start, end)
    report = CompletenessReport(
        account_id=source_link.account_id,
        source_link_id=source_link.id,
        period_start=start,
        period_end=end,
        trigger=trigger,
        status="queued",
    )
    db.session.add(report)
    db.session.flush()
    queue = "low" if trigger == "daily" else "default"
    enqueue_after_commit("workers.jobs.run_completeness_report", report.id, queue=queue)
    db.session.commit()
    return report


def today() -> date:
    return datetime.now(COPENHAGEN).date()


def queue_daily(now: datetime | None = None) -> list[int]:
    """The last 30 days of every active shop link, once a day (claimed in Redis: a second cron run or worker
    queues nothing); returns the report ids."""
    moment = (now or datetime.now(UTC)).astimezone(COPENHAGEN)
    if moment.hour < DAILY_HOUR:
        return []
    day, redis, queued = moment.date(), get_redis(), []
    _give_up_interrupted(moment - INTERRUPTED_AFTER)
    source_links = db.session.scalars(
        select(SourceLink).where(SourceLink.active).order_by(SourceLink.id)
    ).all()
    for source_link in source_links:
        key = f"bogbro:completeness:daily:{source_link.id}:{day.isoformat()}"
        if source_link.setup.active and redis.set(key, 1, nx=True, ex=2 * 24 * 3600):
            queued.append(request(source_link, day - timedelta(days=DAILY_DAYS), day, "daily").id)
    return queued


def _give_up_interrupted(before: datetime) -> None:
    """A report whose worker died never finishes: after INTERRUPTED_AFTER it is failed, saying so, so its
    page stops waiting for it."""
    said = message(N_("The report was interrupted before it was done: check the period again.")).as_dict()
    for report in db.session.scalars(
        select(CompletenessReport).where(
            CompletenessReport.status.in_(("queued", "running")), CompletenessReport.created_at < before
        )
    ):
        report.status, report.finished_at, report.error = "failed", utcnow(), said
    db.session.commit()


def run(report_id: int) -> None:
    """Read both systems, compare, store. A system that does not answer leaves the report failed with what
    it said — never a report that claims all is well."""
    report = db.session.get(CompletenessReport, report_id)
    if report is None or report.status not in ("queued", "running"):
        return
    report.status, report.started_at, report.progress = "running", utcnow(), {"sales": 0, "documents": 0}
    db.session.commit()
    source_link = report.source_link
    start, end = report.period_start, report.period_end

    def progress(**figures):
        report.progress = {**(report.progress or {}), **figures}
        db.session.commit()

    with counted() as calls:
        try:
            sales = read_sales(source_link, start, end, progress)
            # documents up to today: a refund's credit note may be dated long after the sale
            documents = read_documents(source_link, start, max(end, today()))
            progress(documents=len(documents))
            tolerance = pipeline_settings.engine_settings(source_link).rounding_tolerance
            findings = explain(source_link, compare(sales, documents, start, end, tolerance))
        except Exception as exc:  # whatever it was, the report ends visible: failed, with what was said
            if isinstance(exc, ConnectorError):
                log.warning("completeness report %s failed: %s", report_id, exc)
            else:
                log.exception("completeness report %s failed", report_id)
            db.session.rollback()
            report = db.session.get(CompletenessReport, report_id)
            report.status, report.finished_at, report.calls = "failed", utcnow(), dict(calls)
            report.error = message(N_("The report could not be made: %(error)s"), error=str(exc)).as_dict()
            db.session.commit()
            return
    report.result = {
        "sales": sum(1 for s in sales if s.expected),
        "refunds": sum(len(s.refunds) for s in sales if s.expected),
        "documents": len(documents),
        "findings": findings,
    }
    report.status, report.finished_at, report.calls = "done", utcnow(), dict(calls)
    db.session.commit()


# --- what the dashboard and the mail say -------------------------------------------------------------------


def latest(source_link: SourceLink, done: bool = True) -> CompletenessReport | None:
    query = select(CompletenessReport).where(CompletenessReport.source_link_id == source_link.id)
    if done:
        query = query.where(CompletenessReport.status == "done")
    return db.session.scalar(query.order_by(CompletenessReport.id.desc()).limit(1))


def account_reports(account_id: int) -> list[tuple[SourceLink, CompletenessReport]]:
    """The newest finished report of each of the account's shop links that has one (the dashboard)."""
    shops = db.session.scalars(
        select(SourceLink).where(SourceLink.account_id == account_id).order_by(SourceLink.id)
    ).all()
    return [(shop, report) for shop in shops if (report := latest(shop))]


def period_label(start: date, end: date) -> str:
    """ "november 2026" for a calendar month, else "7. nov. 2026 – 6. dec. 2026"."""
    language = language_of(None)
    month_end = (end + timedelta(days=1)).day == 1
    if start.day == 1 and month_end and (start.year, start.month) == (end.year, end.month):
        return format_date(start, "LLLL y", locale=language)
    return f"{format_day(start)} – {format_day(end)}"


def open_findings(report: CompletenessReport) -> list[dict]:
    return [f for f in report.findings if not f.get("fixed")]


def counts(report: CompletenessReport) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in open_findings(report):
        found[line["kind"]] = found.get(line["kind"], 0) + 1
    return {kind: found[kind] for kind in KINDS if kind in found}


def shown_reason(line: dict) -> str:
    reason = line.get("reason")
    if isinstance(reason, dict) and reason.get("msgid"):
        try:
            return render(reason)
        except (KeyError, TypeError, ValueError):
            return ""
    return reason or ""


def _phrase(kind: str, n: int) -> str:
    if kind == "missing":
        return ngettext(
            "%(num)d order is missing in the accounting system",
            "%(num)d orders are missing in the accounting system",
            n,
        )
    if kind == "duplicate":
        return ngettext(
            "%(num)d document is there more than once", "%(num)d documents are there more than once", n
        )
    if kind == "totals_differ":
        return ngettext("%(num)d total differs from the shop's", "%(num)d totals differ from the shop's", n)
    if kind == "unmatched":
        return ngettext("%(num)d document matches no order", "%(num)d documents match no order", n)
    if kind == "refund_missing":
        return ngettext("%(num)d refund has no credit note", "%(num)d refunds have no credit note", n)
    if kind == "credit_unmatched":
        return ngettext("%(num)d credit note matches no refund", "%(num)d credit notes match no refund", n)
    return ngettext(
        "%(num)d document is not linked to its transfer",
        "%(num)d documents are not linked to their transfers",
        n,
    )


def summary(report: CompletenessReport) -> dict:
    """{"ok", "period", "text"} in the reader's language: "Alt stemmer for november 2026" or what does
    not ("3 ordrer mangler i regnskabet, 1 dokument findes mere end én gang")."""
    period = period_label(report.period_start, report.period_end)
    found = counts(report)
    if not found:
        return {
            "ok": True,
            "period": period,
            "text": gettext("Everything matches for %(period)s", period=period),
        }
    phrases = [_phrase(kind, n) for kind, n in found.items()]
    text = gettext("%(findings)s (%(period)s)", findings=", ".join(phrases), period=period)
    return {"ok": False, "period": period, "text": text}
