"""The fixes a completeness report offers where one is safe (portal.pipeline.completeness):

transfer   "Overfør nu": a sale the pipeline never saw (or skipped) is read from the shop again and
           imported through the pipeline's own front door (intake.import_order); one needing
           attention is retried (retries.retry); a refund never seen is fetched (fetch_refunds)
link       "Knyt til dokumentet": the one document in the ledger carrying the sale's reference, with the
           sale's totals, becomes the transfer's document — read again before, and only then
"""

from decimal import Decimal

from sqlalchemy import select

from portal import audit
from portal.extensions import db
from portal.models import CompletenessReport, Transfer, utcnow
from portal.pipeline import intake, retries
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.messages import N_, Message, message
from portal.pipeline.steps import log_step
from portal.queue import enqueue_after_commit
from portal.setups.connections import connector_for


class FixRefused(Exception):
    """The fix is not (or no longer) safe; `message` says why, for the page."""

    def __init__(self, said: Message):
        super().__init__(said.english())
        self.message = said


def _transfer(report: CompletenessReport, line: dict) -> Transfer | None:
    kind, ref = ("credit_note", line["refund_id"]) if line.get("refund_id") else ("invoice", line["order_id"])
    return db.session.scalar(
        select(Transfer).where(
            Transfer.source_link_id == report.source_link_id,
            Transfer.kind == kind,
            Transfer.source_ref == ref,
        )
    )


def apply(report: CompletenessReport, index: int) -> Message:
    """Run the fix of the report's line `index`; returns what was done (FixRefused: nothing was)."""
    findings = report.findings
    if not 0 <= index < len(findings) or findings[index].get("fixed") or not findings[index].get("fix"):
        raise FixRefused(message(N_("This line has no fix (or it was fixed already).")))
    line = findings[index]
    done = _link(report, line) if line["fix"] == "link" else _transfer_now(report, line)
    findings[index] = {**line, "fixed": line["fix"]}
    report.result = {**report.result, "findings": findings}  # a new dict: the JSON column sees the change
    db.session.commit()
    return done


def _transfer_now(report: CompletenessReport, line: dict) -> Message:
    source_link = report.source_link
    transfer = _transfer(report, line)
    if transfer is not None and transfer.status in retries.RETRYABLE:
        retries.retry(transfer)
        return message(N_("Order %(number)s is being transferred again."), number=line["order_number"])
    if line["kind"] == "refund_missing":
        enqueue_after_commit("workers.jobs.fetch_refunds", source_link.id, line["order_id"])
        return message(N_("The refunds of order %(number)s are being fetched."), number=line["order_number"])
    if transfer is not None and transfer.status != "skipped":
        raise FixRefused(
            message(N_("Order %(number)s is already being transferred."), number=line["order_number"])
        )
    shop = connector_for(source_link.connection)
    intake.import_order(source_link, shop.get_order(line["order_id"]))
    audit.record(
        "completeness.transfer_now",
        source_link,
        account=source_link.account,
        changes={"order_number": {"before": None, "after": line["order_number"]}},
    )
    return message(N_("Order %(number)s is being transferred now."), number=line["order_number"])


def _link(report: CompletenessReport, line: dict) -> Message:
    source_link = report.source_link
    transfer = _transfer(report, line)
    if transfer is None or transfer.status in ("done", "pending", "running"):
        raise FixRefused(message(N_("There is nothing to link: the transfer is done or under way.")))
    setup = source_link.setup
    connector = connector_for(setup.connection, setup.external_id)
    found = connector.find_invoice(line["reference"])
    tolerance = pipeline_settings.engine_settings(source_link).rounding_tolerance
    shop = Decimal(line.get("refund") or line["shop"])
    if found is None or found.totals is None or abs(abs(found.totals.gross) - shop) > tolerance:
        raise FixRefused(
            message(
                N_("The document in the accounting system no longer matches the sale: nothing was linked.")
            )
        )
    number = found.number or found.id
    transfer.draft_id, transfer.booked_number = found.id, found.number if found.booked else None
    transfer.reference = line["reference"]
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = transfer.message = None
    transfer.next_attempt_at = None
    said = message(N_("Linked to document %(number)s found in the accounting system."), number=number)
    log_step(transfer, "done", "ok", said)
    audit.record(
        "transfer.linked",
        transfer,
        account=source_link.account,
        changes={"document": {"before": None, "after": number}},
    )
    return said
