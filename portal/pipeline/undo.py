"""Legal undo ("Fortryd overførsel"): a transfer's document is taken back the way Danish bookkeeping allows,
then the order is transferred again with today's settings or left out with the customer's reason.

    request / request_matching   check, record a TransferUndo (audited), queue `workers.jobs.undo_transfer`
    run                          under the transfer's lock (the same lease as posting it):
                                   a draft invoice or an order in the ledger → deleted;
                                   a booked invoice → a credit note for all of it, linked to the invoice,
                                   booked when the setup books, with the money paid back registered where
                                   the invoice was registered paid (refund_payments' rules);
                                 then, in one commit: the transfer reset and queued again (its next document
                                 carries "-V<n>": Transfer.undone), or skipped with the reason; the undo done
    recover                      the watchdog: an undo `running` without its lock lost its worker: queued
                                 again

Never twice: `action` is decided once from what the ledger holds; `credit_requested` is committed before the
credit note's create, whose reference is derived from the invoice's ("<reference>-F") and looked up first on
a resume; the reset and the requeue commit together with `done`.
"""

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial

from flask import current_app
from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from portal import audit
from portal.connectors import evidence
from portal.connectors.base import AccountingConnector, PaymentData, RemoteCustomer, RemoteInvoice
from portal.connectors.errors import AmbiguousWriteError, TransientError, UnsupportedOperation
from portal.engine.invoice import dinero_guid
from portal.engine.money import q2
from portal.extensions import db
from portal.i18n import system_name
from portal.models import Transfer, utcnow
from portal.models.undos import AFTERWARDS, OPEN_UNDO_STATUSES, TransferUndo
from portal.pipeline import failures, refund_payments, retries, steps
from portal.pipeline.filters import TransferFilters, today
from portal.pipeline.locks import Lease, LockLost, _held_lock, _keep_lock, transfer_lock_key
from portal.pipeline.messages import N_, Message, amount, message, store
from portal.pipeline.preview import preview
from portal.queue import enqueue_after_commit, get_queue
from portal.redis_client import get_redis
from portal.setups.connections import connector_for

log = logging.getLogger(__name__)

CREDIT_SUFFIX = "-F"  # the undo's credit note: "<the invoice's reference>-F" ("fortrudt")
MAX_ATTEMPTS = 5
TOTALS_TOLERANCE = Decimal("0.01")


class UndoFailed(Exception):
    def __init__(self, problem: Message):
        super().__init__(problem.english())
        self.problem = problem


def credit_reference(transfer: Transfer) -> str:
    return f"{transfer.reference}{CREDIT_SUFFIX}"


# --- asking for it -----------------------------------------------------------------------------------------


def _credited_refunds():
    """A refund of the same order with a document in the ledger (its credit note)."""
    refund = aliased(Transfer)
    return exists().where(
        refund.source_link_id == Transfer.source_link_id,
        refund.kind == "credit_note",
        refund.order_ref == Transfer.order_ref,
        or_(refund.draft_id.is_not(None), refund.draft_requested, refund.booked_number.is_not(None)),
    )


def _open_undo():
    return exists().where(
        TransferUndo.transfer_id == Transfer.id, TransferUndo.status.in_(OPEN_UNDO_STATUSES)
    )


def _undoable_conditions():
    return and_(
        Transfer.kind == "invoice",
        Transfer.status == "done",
        Transfer.draft_id.is_not(None) | Transfer.booked_number.is_not(None),
        ~_open_undo(),
        ~_credited_refunds(),
    )


def refusal(transfer: Transfer) -> Message | None:
    """Why this transfer cannot be undone now, or None when it can."""
    if transfer.kind != "invoice":
        return message(N_("Only an order's invoice can be undone; a refund's credit note is not."))
    if transfer.status != "done" or not (transfer.draft_id or transfer.booked_number):
        return message(N_("Only a done transfer with a document in the accounting system can be undone."))
    if db.session.scalar(select(_open_undo()).where(Transfer.id == transfer.id)):
        return message(N_("This transfer is being undone already."))
    if db.session.scalar(select(_credited_refunds()).where(Transfer.id == transfer.id)):
        return CREDITED_REFUNDS
    return None


CREDITED_REFUNDS = message(
    N_(
        "Refunds of this order are credited in the accounting system already, so a credit note for the whole "
        "invoice would credit them twice. Credit the rest by hand in the accounting system."
    )
)


def _start(transfer: Transfer, afterwards: str, reason: str) -> TransferUndo:
    undo = TransferUndo(
        account_id=transfer.account_id,
        transfer_id=transfer.id,
        afterwards=afterwards,
        reason=reason,
        reference=transfer.reference,
        document_number=transfer.booked_number or transfer.remote_order or transfer.draft_id,
        gross=transfer.computed_gross,
    )
    db.session.add(undo)
    db.session.flush()
    steps.log_step(
        transfer,
        "undo",
        "ok",
        message(
            N_("Undo requested: %(afterwards)s."), ("afterwards",), afterwards=AFTERWARDS_NAMES[afterwards]
        ),
    )
    enqueue_after_commit("workers.jobs.undo_transfer", undo.id)
    return undo


AFTERWARDS_NAMES = {
    "retransfer": N_("then transfer the order again with today's settings"),
    "leave_out": N_("then leave the order out"),
}


class AlreadyUndoing(Exception):
    """Another request started an undo of the same transfer a moment ago (the unique open undo)."""


def request(transfer: Transfer, afterwards: str, reason: str = "") -> TransferUndo:
    """Undo one transfer (the caller checked `refusal`); audited, queued after the commit."""
    if afterwards not in AFTERWARDS:
        raise ValueError(afterwards)
    try:
        undo = _start(transfer, afterwards, reason)
    except IntegrityError as exc:
        db.session.rollback()
        raise AlreadyUndoing from exc
    audit.record(
        "transfer.undo_requested",
        transfer,
        changes={
            "afterwards": {"before": None, "after": afterwards},
            "reason": {"before": None, "after": reason},
        },
    )
    db.session.commit()
    return undo


def undoable(account, filters: TransferFilters) -> Select:
    """The account's transfers matching the log's filters that can be undone: done invoices with a document,
    not being undone, without credited refunds."""
    return filters.apply(select(Transfer), account.id).where(_undoable_conditions())


@dataclass(frozen=True)
class UndoTotals:
    """What a bulk undo's confirmation names: how many, their documents' total per currency (DKK first),
    and how many have no known currency (posted before transfers.currency: their amounts are in no total)."""

    count: int
    totals: dict[str, Decimal]
    unknown: int


def count_and_total(account, filters: TransferFilters) -> UndoTotals:
    """Exact: the confirmation names how many will be undone and the amount their documents come to — per
    currency, as sums of EUR and DKK are no amount at all."""
    matching = undoable(account, filters).subquery()
    rows = db.session.execute(
        select(
            matching.c.currency,
            func.count(),
            func.sum(func.coalesce(matching.c.computed_gross, matching.c.shop_gross)),
        ).group_by(matching.c.currency)
    ).all()
    known = sorted((row for row in rows if row[0]), key=lambda row: (row[0] != "DKK", row[0]))
    return UndoTotals(
        count=sum(n for _, n, _ in rows),
        totals={currency: q2(Decimal(str(total or 0))) for currency, _, total in known},
        unknown=sum(n for currency, n, _ in rows if not currency),
    )


def request_matching(account, filters: TransferFilters, afterwards: str, reason: str = "") -> int:
    """Undo every transfer matching the filters, in one commit with one audit entry (filters, count)."""
    if afterwards not in AFTERWARDS:
        raise ValueError(afterwards)
    transfers = db.session.scalars(undoable(account, filters).order_by(Transfer.id)).all()
    try:
        for transfer in transfers:
            _start(transfer, afterwards, reason)
    except IntegrityError as exc:
        db.session.rollback()
        raise AlreadyUndoing from exc
    audit.record(
        "transfers.undo_requested",
        None,
        account=account,
        changes={
            "filters": {"before": None, "after": filters.describe()},
            "count": {"before": None, "after": len(transfers)},
            "afterwards": {"before": None, "after": afterwards},
        },
    )
    db.session.commit()
    return len(transfers)


def retry(undo: TransferUndo) -> bool:
    """A person asked to try a stopped undo again (after doing what its message said)."""
    if undo.status != "needs_attention":
        return False
    undo.status, undo.message, undo.attempts = "queued", None, 0
    steps.log_step(undo.transfer, "undo", "ok", message(N_("Undo retried.")))
    enqueue_after_commit("workers.jobs.undo_transfer", undo.id)
    db.session.commit()
    return True


# --- the job -----------------------------------------------------------------------------------------------


def run(undo_id: int) -> None:
    undo = db.session.get(TransferUndo, undo_id, populate_existing=True)
    if undo is None or undo.status not in ("queued", "running"):
        return
    lock = Lease(get_redis(), transfer_lock_key(undo.transfer_id))
    if not lock.acquire():
        # A worker is posting or undoing this transfer: look again shortly (a finished undo returns at once).
        get_queue().enqueue_in(timedelta(seconds=5), "workers.jobs.undo_transfer", undo_id)
        return
    token = _held_lock.set(lock)
    try:
        _run(undo)
    except LockLost:
        db.session.rollback()
        log.warning("undo %s: lock lost; left to the worker that holds it", undo_id)
    finally:
        _held_lock.reset(token)
        if not lock.release():
            log.warning("undo %s: lock lost before the undo finished", undo_id)


def _run(undo: TransferUndo) -> None:
    # Read again under the lock: the worker that held it may have finished this undo meanwhile.
    undo = db.session.get(TransferUndo, undo.id, populate_existing=True)
    if undo.status not in ("queued", "running"):
        return
    transfer = db.session.get(Transfer, undo.transfer_id, populate_existing=True)
    undo.status, undo.started_at = "running", utcnow()
    undo.attempts += 1
    db.session.commit()  # `running` is the watchdog's sign that a worker has it
    setup = transfer.source_link.setup
    try:
        connector = connector_for(setup.connection, setup.external_id)
        _reverse(undo, transfer, connector)
        _afterwards(undo, transfer)
    except UndoFailed as failure:
        _stopped(undo, transfer, failure.problem)
    except (AmbiguousWriteError, TransientError) as exc:
        _later(undo, transfer, exc)
    except LockLost:
        raise
    except Exception as exc:
        if failures.ours_unavailable(exc):
            raise  # the watchdog resumes it from its checkpoints
        kind, problem = failures.explain(exc, setup.connection.system)
        if kind == failures.UNEXPECTED:
            log.exception("undo %s", undo.id)
        _stopped(undo, transfer, problem)


def _before_remote_call() -> None:
    _keep_lock()
    db.session.commit()


def _reverse(undo: TransferUndo, transfer: Transfer, connector: AccountingConnector) -> None:
    """Take the document back, once: delete what is still a draft (or an order), credit what is booked."""
    system = system_name(connector.system.key)
    if undo.action is None:
        if db.session.scalar(select(_credited_refunds()).where(Transfer.id == transfer.id)):
            raise UndoFailed(CREDITED_REFUNDS)  # a refund was credited since the undo was asked for
        _before_remote_call()
        if transfer.remote_order is not None:
            order = connector.find_order(transfer.reference)
            if order is not None and order.open:
                connector.delete_order(order)
                _decided(
                    undo, transfer, "deleted", N_("Order %(id)s deleted in %(system)s."), order.id, system
                )
                return
        remote = connector.find_invoice(transfer.reference)
        if remote is None:
            _decided(
                undo,
                transfer,
                "gone",
                N_(
                    "No document with the reference %(id)s is in %(system)s (deleted there?): nothing to "
                    "take back."
                ),
                transfer.reference,
                system,
            )
            return
        if not remote.booked:
            _delete_draft(undo, transfer, connector, remote, system)
            return
        undo.action, undo.document_number = "credited", remote.number
        db.session.commit()
    if undo.action == "credited":
        _credit(undo, transfer, connector, system)


def _decided(undo, transfer, action: str, msgid: str, id_, system: str) -> None:
    undo.action = action
    steps.log_step(transfer, "undo", "ok", message(msgid, id=id_, system=system))
    db.session.commit()


def _delete_draft(undo, transfer, connector: AccountingConnector, remote: RemoteInvoice, system: str) -> None:
    settings = transfer.source_link.settings or {}
    how = message(
        N_(
            "The draft %(id)s cannot be deleted automatically in %(system)s. Delete it there by hand, then "
            "press “Try the undo again”: Bogbro then finds no document and goes on."
        ),
        id=remote.id,
        system=system,
    )
    if not evidence.allowed(connector.system.key, "delete_draft_invoice", settings):
        raise UndoFailed(how)
    try:
        connector.delete_draft_invoice(remote)
    except UnsupportedOperation as exc:
        raise UndoFailed(how) from exc
    _decided(undo, transfer, "deleted", N_("Draft %(id)s deleted in %(system)s."), remote.id, system)


def _credit(undo: TransferUndo, transfer: Transfer, connector: AccountingConnector, system: str) -> None:
    reference = credit_reference(transfer)
    _before_remote_call()
    remote = connector.find_invoice(reference) if undo.credit_requested else None
    if remote is None:
        invoice = connector.find_invoice(transfer.reference)
        if invoice is None or not invoice.booked:
            raise UndoFailed(
                message(
                    N_("The booked invoice %(number)s (%(reference)s) is no longer found in %(system)s."),
                    number=undo.document_number,
                    reference=transfer.reference,
                    system=system,
                )
            )
        document = _credit_document(transfer, invoice, reference)
        undo.credit_requested = True
        db.session.commit()  # the checkpoint: from here a resume looks the credit note up by its reference
        remote, lost = steps.sent_or_found(
            partial(connector.create_credit_note, document, lookup=False), connector.find_invoice, reference
        )
        said = (
            N_("The answer was lost; found credit note %(id)s by reference %(reference)s.")
            if lost
            else N_("Credit note %(id)s created for the whole invoice (reference %(reference)s).")
        )
        steps.log_step(
            transfer, "undo", "reused" if lost else "ok", message(said, id=remote.id, reference=reference)
        )
    undo.credit_note_id = remote.id
    if transfer.source_link.setup.auto_book and not remote.booked:
        _before_remote_call()
        remote = connector.book_invoice(remote)
        steps.log_step(
            transfer, "undo", "ok", message(N_("Credit note booked as %(number)s."), number=remote.number)
        )
    undo.credit_note_number = remote.number if remote.booked else None
    db.session.commit()
    if remote.booked and transfer.payment_id and not undo.payout_id:
        _payout(undo, transfer, connector, remote, system)


def _credit_document(transfer: Transfer, invoice: RemoteInvoice, reference: str):
    """The invoice's own lines as the stored order gives them, dated today, credited against the invoice.
    Settings changed since (another account, another rate) could make it differ: then a person decides."""
    setup = transfer.source_link.setup
    plan = preview(transfer.source_link, json.loads(transfer.event.raw_body))
    if invoice.totals is not None and abs(abs(invoice.totals.gross) - plan.totals.gross) > TOTALS_TOLERANCE:
        raise UndoFailed(
            message(
                N_(
                    "A credit note made from the order with today's settings would come to %(credit)s, but "
                    "the invoice %(number)s is %(invoice)s (templates changed since?). Credit the invoice "
                    "by hand in the accounting system, then leave the order out or transfer it again."
                ),
                credit=amount(plan.totals.gross, plan.invoice.currency),
                invoice=amount(abs(invoice.totals.gross), plan.invoice.currency),
                number=invoice.number,
            )
        )
    customer = RemoteCustomer(
        id=transfer.remote_customer_id or "", number=transfer.remote_customer_number, name=plan.customer.name
    )
    document = plan.for_customer(customer)
    return replace(
        document,
        reference=reference,
        guid=dinero_guid(reference, setup.external_id) if document.guid else None,
        date=today(),
        credit_for=invoice,
        text=f"Kreditnota for faktura {invoice.number}: ordre #{transfer.order_number} fortrudt",
    )


def _payout(
    undo, transfer: Transfer, connector: AccountingConnector, remote: RemoteInvoice, system: str
) -> None:
    """The invoice was registered paid: the money goes back, as for a refund (refund_payments' switch)."""
    if not refund_payments.enabled(transfer, connector):
        steps.log_step(
            transfer,
            "undo",
            "skipped",
            message(
                N_(
                    "The invoice was registered as paid: register the money paid back to the customer by "
                    "hand in %(system)s (Bogbro does not register payouts there by default)."
                ),
                system=system,
            ),
        )
        return
    payments = refund_payments.payments_template(transfer, connector, remote)
    _before_remote_call()
    payout = PaymentData(
        invoice=remote,
        amount=abs(Decimal(remote.totals.gross)),
        date=today(),
        reference=f"{remote.reference or credit_reference(transfer)}-P",
        account=payments.get("account"),
        journal=payments.get("journal"),
    )
    undo.payout_id = connector.register_refund_payment(payout)
    steps.log_step(transfer, "undo", "ok", message(N_("Payout %(id)s registered."), id=undo.payout_id))
    db.session.commit()


def _afterwards(undo: TransferUndo, transfer: Transfer) -> None:
    """One commit: the transfer starts over (its next document under a reference of its own) or is left
    out, and the undo is done — so a resume after this point finds nothing left to do."""
    transfer.undone += 1
    transfer.draft_id = transfer.booked_number = transfer.payment_id = None
    transfer.payment_requested = False
    transfer.draft_requested = transfer.rebuild_draft = transfer.mailed = transfer.products_ensured = False
    transfer.remote_customer_id = transfer.remote_customer_number = (
        None  # matched anew, with today's settings
    )
    undo.status, undo.finished_at, undo.message = "done", utcnow(), None
    if undo.afterwards == "retransfer":
        retries.requeue(
            transfer, message(N_("Undone: the order is transferred again with today's settings."))
        )
    else:
        reason = message(N_("Undone and left out: %(reason)s"), reason=undo.reason or "–")
        transfer.status, transfer.finished_at = "skipped", utcnow()
        transfer.error_kind = transfer.error_message = None
        store(transfer, "reason", reason)
        steps.log_step(transfer, "decide", "skipped", reason)
    audit.record(
        "transfer.undone",
        transfer,
        account=transfer.source_link.account,
        changes={
            "document": {"before": undo.document_number, "after": None},
            "credit_note": {"before": None, "after": undo.credit_note_number or undo.credit_note_id},
            "afterwards": {"before": None, "after": undo.afterwards},
        },
    )
    db.session.commit()


def _stopped(undo: TransferUndo, transfer: Transfer, problem: Message) -> None:
    db.session.rollback()
    undo.status, undo.message, undo.started_at = "needs_attention", problem.as_dict(), None
    steps.log_step(transfer, "undo", "error", problem)
    db.session.commit()


def _later(undo: TransferUndo, transfer: Transfer, exc: TransientError) -> None:
    db.session.rollback()
    problem = message(N_("The accounting system is busy or unreachable: %(detail)s"), detail=exc.message)
    if undo.attempts >= current_app.config.get("PIPELINE_MAX_ATTEMPTS", MAX_ATTEMPTS):
        _stopped(
            undo, transfer, message(N_("%(problem)s. Gave up; try the undo again later."), problem=problem)
        )
        return
    delay = max(
        exc.retry_after or 0, current_app.config.get("PIPELINE_RETRY_SECONDS", 30) * 2 ** (undo.attempts - 1)
    )
    undo.status, undo.started_at = "queued", None
    steps.log_step(
        transfer,
        "undo",
        "error",
        message(N_("%(problem)s; retry in %(seconds)s s."), problem=problem, seconds=f"{delay:.0f}"),
    )
    db.session.commit()
    get_queue().enqueue_in(timedelta(seconds=delay), "workers.jobs.undo_transfer", undo.id)


NEVER_STARTED = timedelta(minutes=1)  # a queued undo not started by then lost its job (a Redis restart)


def recover() -> list[int]:
    """Undos `running` without their transfer's lock lost their worker, and undos queued a while ago that
    never started lost their job: queued again (they resume from their checkpoints; twice is harmless)."""
    running = db.session.execute(
        select(TransferUndo.id, TransferUndo.transfer_id).where(TransferUndo.status == "running")
    ).all()
    lost: list[int] = []
    redis = get_redis()
    if running:
        with redis.pipeline(transaction=False) as pipe:
            for _, transfer_id in running:
                pipe.exists(transfer_lock_key(transfer_id))
            lost = [undo_id for (undo_id, _), held in zip(running, pipe.execute(), strict=True) if not held]
    never_started = db.session.scalars(
        select(TransferUndo.id).where(
            TransferUndo.status == "queued",
            TransferUndo.attempts == 0,
            TransferUndo.created_at < utcnow() - NEVER_STARTED,
        )
    ).all()
    # at most once a minute each: a long queue may simply not have reached it yet
    lost += [u for u in never_started if redis.set(f"bogbro:undo-requeued:{u}", "1", nx=True, ex=60)]
    db.session.commit()
    for undo_id in lost:
        get_queue().enqueue("workers.jobs.undo_transfer", undo_id)
    return lost


# --- the history -------------------------------------------------------------------------------------------

STOPPED_SHOWN = 10


def stopped(account_id: int) -> list[tuple[int, str]]:
    """(transfer id, order number) of the account's undos that stopped, for the dashboard: the transfer is
    still `done`, so its own "needs attention" would not show them."""
    return db.session.execute(
        select(Transfer.id, Transfer.order_number)
        .join(TransferUndo, TransferUndo.transfer_id == Transfer.id)
        .where(TransferUndo.account_id == account_id, TransferUndo.status == "needs_attention")
        .order_by(TransferUndo.id)
        .limit(STOPPED_SHOWN)
    ).all()


def history(transfer: Transfer) -> list[dict]:
    """Each undo of the transfer, oldest first, with the document that came after it: the next undo's, or
    the transfer's own now."""
    undos = db.session.scalars(
        select(TransferUndo).where(TransferUndo.transfer_id == transfer.id).order_by(TransferUndo.id)
    ).all()
    entries = []
    for index, undo in enumerate(undos):
        later = undos[index + 1].document_number if index + 1 < len(undos) else None
        if (
            later is None
            and index + 1 == len(undos)
            and undo.status == "done"
            and undo.afterwards == "retransfer"
        ):
            later = transfer.booked_number or transfer.draft_id
        entries.append({"undo": undo, "next": later})
    return entries
