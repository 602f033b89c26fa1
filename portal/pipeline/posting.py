"""Posting one transfer: under its lock, the engine's plan, then customer → products → draft (or order) →
book → payment → mail, each step checkpointed (see portal.pipeline). Credit notes wait here for their
invoice to be booked."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import bindparam, select, tuple_, update

from portal.connectors.base import AccountingConnector, RemoteCustomer, RemoteInvoice
from portal.connectors.errors import AmbiguousWriteError, ForeignEntries, TransientError, UnsupportedOperation
from portal.engine.documents import COPENHAGEN
from portal.engine.invoice import DraftPlan, build_credit_note
from portal.engine.ledger_documents import PaymentData
from portal.engine.vat import decide_zone
from portal.extensions import db
from portal.models import Transfer, utcnow
from portal.pipeline import (
    failures,
    invoice_mail,
    notifications,
    payment_batches,
    periods,
    refund_payments,
    ride_along,
)
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.checks import remote_totals_differ
from portal.pipeline.ensure import cache_entries, ensure_customer, ensure_products
from portal.pipeline.ledger_orders import finish_order, invoice_from_order
from portal.pipeline.locks import Lease, LockLost, _held_lock, _keep_lock, transfer_lock_key
from portal.pipeline.messages import N_, Message, message, store, stored_message
from portal.pipeline.preview import preview
from portal.pipeline.retries import needs_attention, retry_or_give_up
from portal.pipeline.steps import (
    TRANSFER_GRAPH,
    TransferFailed,
    answer_lost,
    before_remote_call,
    first_create_needs_lookup,
    found_by_reference,
    log_step,
    remote_answer,
    run_connector,
    sent_or_found,
    totals_differ,
)
from portal.queue import enqueue_after_commit, hold_back_once_jobs, stop_holding_back
from portal.redis_client import get_redis
from portal.setups.connections import connector_for
from portal.sources import get_source

log = logging.getLogger(__name__)

RUNNABLE = ("pending", "running", "waiting")


# --- running a transfer ------------------------------------------------------------------------------------


def run_transfer(transfer_id: int, transfer: Transfer | None = None) -> None:
    """Post one transfer; returns at once when another worker holds it. `transfer`: the caller's copy of a
    transfer its uncommitted transaction created (process_event's decision), instead of a fresh read."""
    with ride_along.batch() as ride:
        key = transfer_lock_key(transfer_id)
        lock = ride.take_over(key)  # this batch posted it a moment ago and holds it still
        if lock is None:
            lock = Lease(get_redis(), key)
            if transfer is not None:
                # Created by the caller's uncommitted transaction: no other worker can see it, so the lease
                # is taken with the run's cache read (ensure.cache_entries), before any commit.
                lock.defer()
            elif not lock.acquire():
                db.session.commit()  # the caller's decision stands; the worker holding the transfer posts it
                return
        token = _held_lock.set(lock)
        held_back = hold_back_once_jobs(ride.jobs)
        session = db.session()
        expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
        ended = None
        try:
            # Under the lock nothing else changes this transfer, and its source link, setup and connection
            # do not change mid-run in a way that matters: re-reading them after every checkpoint cost a
            # third of the pipeline's SQL. (A token refresh re-reads the credentials:
            # DatabaseCredentialStore.)
            ended = _run(transfer_id, transfer)
        except LockLost:
            db.session.rollback()
            log.warning("transfer %s: lock lost mid-transfer; left to the worker that holds it", transfer_id)
        finally:
            # Anything else (the database went away mid-run) leaves the transfer `running` without its lock:
            # the watchdog (scheduling.recover) queues it again within seconds.
            session.expire_on_commit = expire_on_commit
            _held_lock.reset(token)
            stop_holding_back(held_back)
            # Done, or waiting for its payment batch (whose flag goes in the same round trip): nothing runs
            # it again at once, so its lease goes with the batch's next round trip (ride_along). Anything
            # else may be retried at once: let go now.
            ride.leases.append(lock)
            if ended is None or not (
                ended.status == "done" or (ended.status == "waiting" and ended.pending_payment is not None)
            ):
                ride.send()


def _run(transfer_id: int, transfer: Transfer | None) -> Transfer | None:
    """The transfer as the run leaves it (None: not run)."""
    if transfer is None:
        # A fresh read: another process may have changed it since this session last looked.
        transfer = db.session.get(Transfer, transfer_id, populate_existing=True, options=TRANSFER_GRAPH)
        if transfer is None or transfer.status not in RUNNABLE:
            return None
    transfer.status, transfer.started_at = "running", utcnow()
    transfer.attempts += 1
    transfer.next_attempt_at = None
    # Not committed on its own: the first checkpoint carries it, and that comes before any remote call.
    try:
        _post(transfer)
    except TransferFailed as failure:
        needs_attention(transfer, failure.kind, failure.message)
    except AmbiguousWriteError as exc:
        what = N_("The accounting system may or may not have received the document")
        retry_or_give_up(transfer, exc, what)
    except TransientError as exc:
        retry_or_give_up(transfer, exc, N_("The accounting system is busy or unreachable"))
    except LockLost:
        raise
    except Exception as exc:  # anything else stops here, visible: configuration, the order, or unexpected
        if failures.ours_unavailable(exc):
            raise  # our database or Redis is away: the watchdog resumes it (failures.ours_unavailable)
        system = transfer.source_link.setup.connection.system
        kind, problem = failures.explain(exc, system, notifications.sale_currency(transfer))
        if kind != failures.CONFIGURATION:
            log.exception("transfer %s: %s", transfer_id, kind)
        needs_attention(transfer, kind, problem, remote_answer(exc))
    return transfer


def _post(transfer: Transfer) -> None:
    source_link = transfer.source_link
    setup = source_link.setup
    if not source_link.active:
        raise TransferFailed(
            "configuration", message(N_("The sales source is not active: activate it first."))
        )
    if not setup.active:
        raise TransferFailed(
            "configuration",
            message(
                N_("The accounting setup “%(setup)s” is not active: complete its templates and activate it."),
                setup=setup.name,
            ),
        )
    connector = run_connector(setup)
    plan = _plan(transfer, connector)
    if plan is None:
        return  # waiting
    # The open periods' cache entry is read with the customer's and products' (one Redis round trip); the
    # period check may move the date, which none of those entries depends on.
    periods_key = periods.cache_key(setup.id)
    cached = cache_entries(transfer, plan, periods_key, connector.limiter, _steady_calls(transfer))
    plan = _in_open_period(transfer, connector, plan, cached.pop(periods_key))
    if transfer.kind == "invoice":
        plan = plan.after_undos(transfer.undone, setup.external_id)  # transferred again after an undo
    # Figures, not checkpoints: they are recomputed on every run, so they go with the next commit.
    transfer.shop_gross, transfer.shop_vat = plan.shop_totals.gross, plan.shop_totals.vat
    transfer.computed_gross, transfer.computed_vat = plan.totals.gross, plan.totals.vat
    transfer.currency = plan.invoice.currency  # what the figures are in (a bulk undo's totals, per currency)
    transfer.reference = plan.invoice.reference

    # Each step renews the lock before it calls the accounting system (before_remote_call); cached steps
    # call nothing, so they need not.
    customer = ensure_customer(transfer, connector, plan, cached)
    ensure_products(transfer, connector, plan, cached)
    _keep_lock()
    if transfer.document == "order" and transfer.kind == "invoice":
        finish_order(transfer, connector, plan, customer)
        return
    remote = _ensure_draft(transfer, connector, plan, customer)

    if not plan.can_book:
        raise TransferFailed("totals_differ", totals_differ(plan, remote.id))
    # The accounting system's own totals, too: its setup may compute otherwise (an OSS group's old VAT rate).
    # Dinero's create answers without totals: a draft to be booked is checked on the booking's answer (one
    # request less per order); one left as a draft is read back for its check.
    unchecked = remote.totals is None
    if unchecked and not _should_book(transfer):
        before_remote_call()
        remote = connector.find_invoice(remote.reference) or remote
    differs = (
        None
        if remote.booked or remote.totals is None
        else remote_totals_differ(plan, remote, connector.system.name)
    )
    if differs is not None:
        raise TransferFailed("totals_differ", differs)
    _keep_lock()
    if _should_book(transfer) and not remote.booked:
        remote = connector.book_invoice(remote)
        log_step(
            transfer,
            "book",
            "ok",
            message(N_("Booked as invoice %(number)s."), number=remote.number),
            {"number": remote.number},
        )
        differs = remote_totals_differ(plan, remote, connector.system.name) if unchecked else None
        if differs is not None:
            transfer.booked_number = remote.number
            raise TransferFailed("totals_differ", differs)
    if remote.booked:
        # Not committed on its own: a resume finds the booked invoice by its reference anyway; the payment
        # and mail steps commit it with their own checkpoints, `done` otherwise.
        transfer.booked_number = remote.number
        if not _register_payment(transfer, connector, plan, remote):
            return  # waiting for its setup's payment batch, which ends it (payment_batches)
        refund_payments.register_refund_payment(
            transfer, connector, plan, remote, log_step, before_remote_call
        )
        if not _send_invoice_mail(transfer, connector, plan, remote):
            return  # retried later, from this step
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = None
    number = remote.number or remote.id
    if remote.booked:
        log_step(transfer, "done", "ok", message(N_("Booked as number %(number)s."), number=number))
    else:
        log_step(transfer, "done", "ok", message(N_("Left as draft %(number)s."), number=number))
    if transfer.kind == "invoice" and remote.booked:
        wake_waiting_credit_notes(transfer)
    db.session.commit()


def _in_open_period(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, cached: bytes | None
) -> DraftPlan:
    """The plan dated in an open period of the ledger, or the transfer held per its setting (periods)."""
    source_link = transfer.source_link
    try:
        plan, moved = periods.check(connector, source_link.setup_id, source_link.settings, plan, cached)
    except periods.ClosedPeriod as exc:
        raise TransferFailed("configuration", exc.message) from exc
    if moved is not None:
        log_step(transfer, "decide", "ok", moved)
    return plan


def _steady_calls(transfer: Transfer) -> int:
    """The requests a run sends after its cache read when nothing was sent before and the cache knows the
    customer and products: its create, and its booking. Their turns in the rate limiter are taken with the
    cache read (one Redis round trip for all); a run that sends more takes the others as it goes."""
    if transfer.draft_requested or transfer.draft_id or transfer.document == "order":
        return 0
    return 2 if _should_book(transfer) else 1


def _should_book(transfer: Transfer) -> bool:
    if transfer.kind == "credit_note":
        # A credit note follows its invoice: booked when the setup books automatically.
        return transfer.source_link.setup.auto_book
    return transfer.document == "booked" and transfer.source_link.setup.auto_book


def _plan(transfer: Transfer, connector: AccountingConnector) -> DraftPlan | None:
    source_link = transfer.source_link
    body = json.loads(transfer.event.raw_body)
    if transfer.kind == "invoice":
        return preview(source_link, body)  # the same engine decision the dry run shows
    order, refund_payload = body["order"], body["refund"]
    invoice_transfer = db.session.scalar(
        select(Transfer).where(
            Transfer.source_link_id == source_link.id,
            Transfer.kind == "invoice",
            Transfer.source_ref == transfer.order_ref,
        )
    )
    if invoice_transfer is not None and invoice_transfer.reference and not invoice_transfer.booked_number:
        # Booked by hand in the accounting system since we made the draft?
        found = connector.find_invoice(invoice_transfer.reference)
        if found is not None and found.booked:
            invoice_transfer.booked_number = found.number
            db.session.commit()
    if invoice_transfer is not None and invoice_transfer.status == "skipped":
        raise TransferFailed(
            "order",
            message(
                N_(
                    "There is no invoice to credit: the order was not transferred (%(reason)s). Leave this "
                    "refund out, or transfer the order first (for instance by letting its state transfer "
                    "under the shop's settings), then retry."
                ),
                reason=stored_message(invoice_transfer) or invoice_transfer.reason or "",
            ),
        )
    if invoice_transfer is None or not invoice_transfer.booked_number:
        transfer.status = "waiting"
        store(transfer, "reason", message(N_("The credit note waits until the order's invoice is booked.")))
        transfer.started_at = None
        log_step(transfer, "decide", "waiting", stored_message(transfer) or transfer.reason)
        db.session.commit()
        return None
    credit_for = connector.find_invoice(invoice_transfer.reference)
    if credit_for is None or not credit_for.booked:
        raise TransferFailed(
            "configuration",
            message(
                N_(
                    "The booked invoice %(number)s (%(reference)s) is no longer found in the accounting "
                    "system."
                ),
                number=invoice_transfer.booked_number,
                reference=invoice_transfer.reference,
            ),
        )
    setup = source_link.setup
    settings = pipeline_settings.engine_settings(source_link)
    rates = pipeline_settings.vat_rates()
    source = get_source(source_link.source_system)
    document = source.normalise(order, settings)
    refund = source.normalise_refund(order, refund_payload, settings)
    decision = decide_zone(document.customer, settings, rates, document.invoice_date)
    values = pipeline_settings.setup_values(setup)
    capabilities = connector.system.capabilities
    return build_credit_note(
        refund, document, decision, values, capabilities, settings, rates, credit_for, setup.external_id
    )


def _ensure_draft(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> RemoteInvoice:
    if transfer.remote_order is not None:
        return invoice_from_order(transfer, connector, plan, customer)
    reference = plan.invoice.reference
    # Resuming (a draft was made, or a create was sent and its answer maybe lost): look it up by reference;
    # it may have been booked since. A first create looks only when something else may have used the
    # reference (see first_create_needs_lookup); so the connector's own look-up is never needed.
    remote = None
    if transfer.draft_requested or transfer.draft_id or first_create_needs_lookup(transfer):
        before_remote_call()
        remote = connector.find_invoice(reference)
    if remote is not None:
        if transfer.rebuild_draft and transfer.draft_id and not remote.booked:
            remote = _rebuild_draft(transfer, connector, plan, customer, remote)
        elif not transfer.draft_id:
            log_step(transfer, "draft", "reused", found_by_reference(remote.number or remote.id, reference))
    else:
        invoice = plan.for_customer(customer)
        transfer.draft_requested = True
        transfer.rebuild_draft = False  # what is created now is made from the order as it is now
        db.session.commit()
        create = (
            connector.create_credit_note if transfer.kind == "credit_note" else connector.create_draft_invoice
        )
        remote, lost = sent_or_found(
            partial(create, invoice, lookup=False), connector.find_invoice, reference
        )
        if lost:
            log_step(transfer, "draft", "reused", answer_lost(remote.id))
        else:
            log_step(
                transfer,
                "draft",
                "ok",
                message(
                    N_("Credit note %(id)s created.")
                    if transfer.kind == "credit_note"
                    else N_("Draft %(id)s created."),
                    id=remote.id,
                ),
                {
                    "reference": reference,
                    "lines": len(invoice.lines),
                    "gross": str(remote.totals.gross) if remote.totals else None,
                },
            )
    # Not committed on its own: the checkpoint that makes a resume safe is `draft_requested`, committed
    # before the create; from it a resume finds this draft by its reference. The draft's id goes with the
    # next commit (booked or done, or the failure's).
    transfer.draft_id = remote.id
    if remote.booked:
        transfer.booked_number = remote.number
    return remote


def _rebuild_draft(
    transfer: Transfer,
    connector: AccountingConnector,
    plan: DraftPlan,
    customer: RemoteCustomer,
    remote: RemoteInvoice,
) -> RemoteInvoice:
    """A person retried after correcting the order: the unbooked draft is made anew from the order as it is
    now, under the same reference (its number stays). Repeating it after a crash does no harm."""
    before_remote_call()
    try:
        remote = connector.replace_draft(remote, plan.for_customer(customer))
    except UnsupportedOperation as exc:
        log_step(
            transfer,
            "draft",
            "reused",
            message(N_("Draft %(id)s kept as it was: %(detail)s"), id=remote.id, detail=str(exc)),
        )
    else:
        log_step(
            transfer,
            "draft",
            "ok",
            message(N_("Draft %(id)s made again from the order as it is now."), id=remote.id),
            {"reference": remote.reference, "gross": str(remote.totals.gross)},
        )
    transfer.rebuild_draft = False  # with the next checkpoint
    return remote


def _register_payment(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, remote: RemoteInvoice
) -> bool:
    """False when the payment waits to be registered together with others (payment_batches)."""
    if transfer.payment_id or transfer.kind != "invoice":
        return True
    method = plan.payment.method if plan.payment else None
    if not method or method not in pipeline_settings.paid_methods(transfer.source_link):
        return True
    if Decimal(remote.totals.gross) == 0:  # an invoice for 0 (a full discount): no money moved to register
        return True
    payments = refund_payments.payments_template(transfer, connector, remote)
    payment = PaymentData(
        invoice=remote,
        amount=Decimal(remote.totals.gross),
        # not before the invoice: one dated on the first open day takes its payment there too
        date=max(_paid_on(plan.payment.paid_at), plan.invoice.date),
        reference=f"{remote.reference or plan.invoice.reference}-P",
        account=payments.get("account"),
        journal=payments.get("journal"),
        # as for the draft: only a resume, or a reference something else may have used, looks it up
        lookup=transfer.payment_requested or first_create_needs_lookup(transfer),
    )
    if payment_batches.may_wait(transfer, connector):
        payment_batches.wait(transfer, payment, method)  # with the booking's checkpoint: one commit
        return False
    before_remote_call()
    if not transfer.payment_requested:
        transfer.payment_requested = True
        db.session.commit()
    periods.load_years(connector, transfer.source_link.setup_id)
    try:
        transfer.payment_id = connector.register_payment(payment)
    except ForeignEntries as exc:
        raise TransferFailed("configuration", foreign_entries(exc)) from exc
    transfer.pending_payment = None
    log_step(
        transfer,
        "payment",
        "ok",
        message(N_("Payment %(id)s registered (%(method)s)."), id=transfer.payment_id, method=method),
    )
    db.session.commit()
    return True


def foreign_entries(exc: ForeignEntries) -> Message:
    return message(
        N_(
            "The payment is in e-conomic's journal %(journal)s as voucher %(voucher)s, but Bogbro did not "
            "book it: that voucher also holds %(count)s entries Bogbro did not make, and booking it would "
            "book them too. In e-conomic, give those entries another voucher number (or remove them), then "
            "retry. Best: choose a journal only Bogbro uses in the Payments template under Setup."
        ),
        journal=exc.journal,
        voucher=exc.voucher,
        count=exc.count,
    )


def _send_invoice_mail(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, remote: RemoteInvoice
) -> bool:
    """The mail step (portal.pipeline.invoice_mail) when the source link mails invoices; False when the
    mail server could not take it now and the transfer was rescheduled."""
    if transfer.mailed or not pipeline_settings.invoice_mail(transfer.source_link).enabled:
        return True
    before_remote_call()
    try:
        invoice_mail.mail_invoice(transfer, connector, plan, remote, log_step)
    except invoice_mail.MailUnavailable as exc:
        retry_or_give_up(transfer, exc, N_("Booked, but the mail could not be sent yet"))
        return False
    except invoice_mail.MailRefused as exc:
        raise TransferFailed(
            "configuration", message(N_("Booked, but not mailed: %(detail)s"), detail=exc.message)
        ) from exc
    return True


def _paid_on(paid_at: datetime | None):
    """The day the shop says the order was paid (Danish calendar), else today."""
    return (paid_at or datetime.now(UTC)).astimezone(COPENHAGEN).date()


_TRANSFERS = Transfer.__table__


def _wake_credit_notes(which):
    return (
        update(_TRANSFERS)
        .where(which, _TRANSFERS.c.kind == "credit_note", _TRANSFERS.c.status == "waiting")
        .values(status="pending", reason=None)
        .returning(_TRANSFERS.c.id)
    )


# Built once, with bound parameters: building a statement (and its cache key) cost more than running it.
_WAKE_CREDIT_NOTES = _wake_credit_notes(
    # (not named after their columns: an UPDATE keeps those names for its SET clause)
    (_TRANSFERS.c.source_link_id == bindparam("link")) & (_TRANSFERS.c.order_ref == bindparam("order"))
)


def wake_waiting_credit_notes(*invoice_transfers: Transfer) -> None:
    """The credit notes waiting for these booked invoices go on, with the caller's next commit: one UPDATE in
    the caller's transaction (almost always matching none) for all of them (a payment batch's), not a query
    and a transaction of their own. On the table, not the ORM class: the ORM's UPDATE flushed the session
    and searched its identity map for rows to update in memory, a third of a steady-state order's own SQL
    time (a credit note in this session is read again with populate_existing before it is used: intake,
    run_transfer)."""
    if not invoice_transfers:
        return
    if len(invoice_transfers) == 1:  # a run's: the statement built once, plain equality
        [invoice] = invoice_transfers
        which = {"link": invoice.source_link_id, "order": invoice.order_ref}
        woken = db.session.scalars(_WAKE_CREDIT_NOTES, which).all()
    else:
        which = tuple_(_TRANSFERS.c.source_link_id, _TRANSFERS.c.order_ref).in_(
            [(t.source_link_id, t.order_ref) for t in invoice_transfers]
        )
        woken = db.session.scalars(_wake_credit_notes(which)).all()
    for transfer_id in woken:
        enqueue_after_commit("workers.jobs.run_transfer", transfer_id)


def check_waiting_credit_notes(source_link_id: int) -> int:
    """Credit notes waiting for an invoice that the bookkeeper books in the accounting system: each such
    invoice is looked up once (by its reference); a booked one lets its credit notes go on. Run with the
    source_link's reconciliation poll. Returns how many invoices were found booked."""
    waiting_orders = select(Transfer.order_ref).where(
        Transfer.source_link_id == source_link_id,
        Transfer.kind == "credit_note",
        Transfer.status == "waiting",
    )
    invoices = db.session.scalars(
        select(Transfer).where(
            Transfer.source_link_id == source_link_id,
            Transfer.kind == "invoice",
            Transfer.booked_number.is_(None),
            Transfer.reference != "",
            Transfer.order_ref.in_(waiting_orders),
        )
    ).all()
    if not invoices:
        return 0
    setup = invoices[0].source_link.setup
    connector = connector_for(setup.connection, setup.external_id)
    booked = 0
    for invoice_transfer in invoices:
        found = connector.find_invoice(invoice_transfer.reference)
        if found is not None and found.booked:
            invoice_transfer.booked_number = found.number
            log_step(
                invoice_transfer,
                "book",
                "ok",
                message(N_("Booked in the accounting system as %(number)s."), number=found.number),
            )
            wake_waiting_credit_notes(invoice_transfer)
            db.session.commit()
            booked += 1
    return booked
