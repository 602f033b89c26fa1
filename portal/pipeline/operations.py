"""The transfer pipeline: raw events in, exactly one accounting document per order (and per refund) out.

    record_event   store the raw payload (deduplicated on the sender's delivery id), commit, then queue
                   the integration's drain job unless one is queued or running already (scheduling.drain:
                   one job at a time per integration processes its unprocessed events, oldest first)
    process_event  normalise, decide (state, activation date) and upsert the Transfer; then post it at once
                   (later runs — retries, resumes, credit notes woken up — are run_transfer jobs)
    run_transfer   under a per-transfer Redis lock: build the DraftPlan with the engine, then post step by
                   step — customer → products → draft → book → payment → mail (invoice_mail.py); a
                   checkpoint is committed before each remote call (what is about to be sent: e.g.
                   draft_requested), so a resume looks up what may have been made and never makes it twice;
                   the document "order" stops after customer → products → order, and a later state turns
                   that order into the draft (e-conomic's upgrade) and goes on from there

The locks are in locks.py; the drain job and the watchdog that queues again what lost its worker in
scheduling.py.

Never twice: the unique Transfer per (integration, kind, source id), the lock, and a lookup of the remote
document by its deterministic reference before every create and after every ambiguous failure.
"""

import hashlib
import json
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from flask import current_app
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import audit
from portal.connectors import get_system
from portal.connectors.base import (
    AccountingConnector,
    InvoiceLine,
    PaymentData,
    RemoteCustomer,
    RemoteInvoice,
)
from portal.connectors.errors import (
    AmbiguousWriteError,
    ConnectorError,
    ForeignEntries,
    TransientError,
    UnsupportedOperation,
)
from portal.engine.documents import COPENHAGEN
from portal.engine.invoice import DraftPlan, build_credit_note, build_draft
from portal.engine.money import q2
from portal.engine.sources import parse_datetime
from portal.engine.vat import decide_zone
from portal.extensions import db
from portal.i18n import system_name
from portal.integrations.connections import connector_for
from portal.models import AccountingSetup, OrderIntegration, SourceEvent, Transfer, TransferLog, utcnow
from portal.models.transfers import ORDER_PREFIX
from portal.pipeline import failures, invoice_mail, periods, refund_payments
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.checks import remote_totals_differ
from portal.pipeline.counts import exact_count
from portal.pipeline.filters import TransferFilters
from portal.pipeline.locks import (
    DRAIN_FLAG_SECONDS,
    Lease,
    LockLost,
    _drain_flag,
    _held_lock,
    _keep_lock,
    transfer_lock_key,
)
from portal.pipeline.messages import N_, Message, a_day, amount, message, render, store, stored_message
from portal.queue import enqueue_after_commit, enqueue_once_after_commit, get_queue
from portal.redaction import redact_text
from portal.redis_client import get_redis

log = logging.getLogger(__name__)

SOURCE_MODULES = {
    "woocommerce": "portal.engine.sources.woocommerce",
    "shopify": "portal.engine.sources.shopify",
}
CREATOR_WAIT_SECONDS = 30  # how long a transfer waits for another creating the same customer or product
PRODUCT_CACHE_SECONDS = 24 * 3600
CUSTOMER_CACHE_SECONDS = 24 * 3600
# The internal topic of a refund event: {"order": <order document>, "refund": <refund document>}, recorded
# by whatever fetched the refund (the poll, or the order.updated handling of a source connector).
REFUND_TOPIC = "refund.created"
RUNNABLE = ("pending", "running", "waiting")
RETRYABLE = ("needs_attention", "pending", "waiting")  # what a person may queue again
# A later order state may raise the document of a transfer already posted: (from, to).
RAISES = {("order", "draft"), ("order", "booked"), ("draft", "booked")}
LATER_STATE_SECONDS = 30  # a later state met a running transfer: decide again after this long
# Named in the step log (msgids, translated where shown)
DOCUMENT_NAMES = {
    "none": N_("not transferred"),
    "order": N_("an order"),
    "draft": N_("a draft invoice"),
    "booked": N_("a booked invoice"),
}
CUSTOMER_OUTCOMES = {
    "found": N_("found"),
    "created": N_("created"),
    "cached": N_("known from an earlier order"),
    "collective": N_("the collective customer"),
}


class TransferFailed(Exception):
    """A step failed in a way already classified: (error kind, message for the user)."""

    def __init__(self, kind: str, message: Message | str):
        super().__init__(message.english() if isinstance(message, Message) else message)
        self.kind = kind
        self.message = message


# --- events ------------------------------------------------------------------------------------------------


def record_event(
    integration: OrderIntegration,
    source: str,
    delivery_id: str,
    topic: str,
    resource_id: str | None,
    raw_body: str | bytes,
) -> SourceEvent | None:
    """Store an inbound payload raw; None when this delivery was stored before (a replay)."""
    if isinstance(raw_body, bytes):
        # Shops send UTF-8 JSON; a stray byte must not cost us the event (the signature was checked on the
        # bytes already), so it is kept as U+FFFD rather than refused.
        raw_body = raw_body.decode("utf-8", errors="replace")
    try:
        event = _add_event(integration, source, delivery_id, topic, resource_id, raw_body)
    except IntegrityError:  # the same delivery, concurrently
        db.session.rollback()
        return None
    db.session.commit()
    return event


def _add_event(
    integration: OrderIntegration,
    source: str,
    delivery_id: str,
    topic: str,
    resource_id: str | None,
    raw_body: str,
) -> SourceEvent | None:
    """Add the event to this transaction (None when the delivery is stored already) and queue its
    processing for after the commit."""
    existing = db.session.scalar(
        select(SourceEvent.id).where(
            SourceEvent.integration_id == integration.id, SourceEvent.delivery_id == delivery_id
        )
    )
    if existing is not None:
        return None
    event = SourceEvent(
        account_id=integration.account_id,
        integration_id=integration.id,
        source=source,
        delivery_id=delivery_id,
        topic=topic,
        resource_id=str(resource_id) if resource_id is not None else None,
        raw_body=raw_body,
    )
    db.session.add(event)
    db.session.flush()
    enqueue_once_after_commit(
        "workers.jobs.drain_events",
        integration.id,
        flag=_drain_flag(integration.id),
        flag_seconds=DRAIN_FLAG_SECONDS,
    )
    return event


# --- an event whose processing failed ------------------------------------------------------------------


def event_failed(event_id: int, exc: Exception) -> None:
    """An event whose processing raised before its transfer could record why: its order's transfer needs
    attention with the reason, and the event is done — never left to crash the next job the same way. (When
    our database or Redis is away, or even this cannot be written, the event stays unprocessed for the
    watchdog.)"""
    if failures.ours_unavailable(exc):
        return
    try:
        event = db.session.get(SourceEvent, event_id, populate_existing=True, options=EVENT_GRAPH)
        if event is None or event.processed_at is not None:
            return
        target = _event_target(event)
        if target is not None:
            transfer, _created = _upsert_transfer(event, *target)
            if transfer.status not in ("done", "running"):
                kind, problem = failures.explain(exc, event.integration.setup.connection.system)
                _needs_attention(transfer, kind, problem)
        _finish_event(event, f"error: {type(exc).__name__}: {exc}"[:1000])
    except Exception:
        db.session.rollback()
        log.exception("event %s: its failure could not be recorded", event_id)


def _event_target(event: SourceEvent) -> tuple[str, str, str, dict] | None:
    """(kind, source ref, order ref, order) of the transfer an event is about, if it says."""
    try:
        body = json.loads(event.raw_body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if event.topic == REFUND_TOPIC:
        order, refund = body.get("order") or {}, body.get("refund") or {}
        if order.get("id") and refund.get("id"):
            return "credit_note", str(refund["id"]), str(order["id"]), order
        return None
    if body.get("id"):
        return "invoice", str(body["id"]), str(body["id"]), body
    return None


def _source_module(integration: OrderIntegration):
    import importlib

    return importlib.import_module(SOURCE_MODULES[integration.source_system])


# Load options: an integration with its accounting setup, templates and both connections, in the query that
# loads it or what points at it — a run needs them all, and lazy loads cost a query (and a flush) each.
# Built once: building loader options cost more than the query's own SQL.
INTEGRATION_GRAPH = (
    joinedload(OrderIntegration.setup).joinedload(AccountingSetup.connection),
    joinedload(OrderIntegration.setup).selectinload(AccountingSetup.templates),
    joinedload(OrderIntegration.connection),
)
EVENT_GRAPH = (joinedload(SourceEvent.integration).options(*INTEGRATION_GRAPH),)
TRANSFER_GRAPH = (joinedload(Transfer.integration).options(*INTEGRATION_GRAPH), joinedload(Transfer.event))


def process_event(event_id: int, integration: OrderIntegration | None = None) -> None:
    """`integration`: the event's, loaded with its setup and connections by the caller (drain), so the event
    is read alone."""
    if integration is None:
        event = db.session.get(SourceEvent, event_id, populate_existing=True, options=EVENT_GRAPH)
    else:
        event = db.session.get(SourceEvent, event_id, populate_existing=True)
        if event is not None and event.integration_id != integration.id:
            raise ValueError(f"event {event_id} is not integration {integration.id}'s")
    if event is None or event.processed_at is not None:
        return
    integration = event.integration
    if not integration.active:
        # Kept raw: activating the integration (or importing on purpose) can process it later.
        _finish_event(event, "the order integration is not active: not processed")
        return
    try:
        body = json.loads(event.raw_body)
    except ValueError:
        _finish_event(event, "not JSON: ignored")
        return
    if event.topic == REFUND_TOPIC:
        order, refund = body.get("order") or {}, body.get("refund") or {}
        if not order.get("id") or not refund.get("id"):
            _finish_event(event, "a refund event needs the order and the refund")
            return
        transfer, _ = _upsert_transfer(event, "credit_note", str(refund["id"]), str(order["id"]), order)
        if transfer.status not in ("done", "running") and not transfer.draft_id:
            transfer.status = "pending"
            enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
        _finish_event(event, f"credit note transfer {transfer.id} ({transfer.status})")
        return
    if not isinstance(body, dict) or not body.get("id") or "line_items" not in body:
        _finish_event(event, "not an order: ignored")
        return
    state = order_state(integration.source_system, body)
    document = pipeline_settings.document_for_state(integration, state)
    transfer, created = _upsert_transfer(event, "invoice", str(body["id"]), str(body["id"]), body)
    _detect_refunds(event, body)
    if transfer.status in ("done", "running") or transfer.draft_id:
        # Already posted (or being posted): a later state may raise the document (an order becomes the
        # invoice, a draft is booked), never make a second one.
        if (transfer.document, document) in RAISES:
            if transfer.status == "running":
                # What the running attempt posts is not known yet: look at this event again shortly.
                db.session.commit()
                get_queue().enqueue_in(
                    timedelta(seconds=LATER_STATE_SECONDS), "workers.jobs.process_event", event.id
                )
                return
            if transfer.document == "order":
                transfer.draft_requested = False  # no invoice create sent yet; draft_id keeps the order
            transfer.document = document
            if transfer.status == "done":
                transfer.status = "pending"
                enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
            _log(
                transfer,
                "decide",
                "ok",
                message(
                    N_("The order is now “%(state)s”: %(document)s."),
                    ("document", "state"),
                    state=pipeline_settings.STATE_NAMES.get(state, state),
                    document=DOCUMENT_NAMES.get(document, document),
                ),
            )
        _finish_event(event, f"transfer {transfer.id} ({transfer.status})")
        return
    if transfer.status == "skipped" and transfer.undone:
        # Undone and left out by a person (pipeline.undo): a later state of the order does not bring it back.
        _finish_event(event, f"transfer {transfer.id} was undone and left out")
        return
    reason = _skip_reason(integration, body, state, document, imported=event.source == "manual")
    if reason:
        transfer.status = "skipped"
        store(transfer, "reason", reason)
        _log(transfer, "decide", "skipped", reason)
        _finish_event(event, f"skipped: {transfer.reason}")
        return
    transfer.document = document
    transfer.status, transfer.reason, transfer.error_kind, transfer.error_message = (
        "pending",
        None,
        None,
        None,
    )
    event.processed_at, event.outcome = utcnow(), f"transfer {transfer.id} started"
    # Posted in this job: a job of its own would cost a queue round trip per order. The event's outcome
    # and the new transfer go with the run's first commit (or this one, when another worker holds the
    # transfer); a worker dying before it leaves the event unprocessed, to the watchdog (requeue_stuck).
    # A transfer this job created is run as it is; one that existed is read again once its lock is held
    # (another worker may have posted it since the read above).
    run_transfer(transfer.id, transfer if created else None)


def order_state(source: str, order: dict) -> str:
    """The state the integration's per-state settings key on: WooCommerce's `status`; Shopify's
    `financial_status` ("paid", "pending", …), or "cancelled" once cancelled."""
    if source == "shopify":
        return "cancelled" if order.get("cancelled_at") else str(order.get("financial_status") or "")
    return str(order.get("status") or "")


def _order_number(order: dict) -> str:
    return str(order.get("order_number") or order.get("number") or order.get("name") or order.get("id"))


def _detect_refunds(event: SourceEvent, order: dict) -> None:
    """Refunds show up on the order (WooCommerce lists their ids in `refunds`; Shopify embeds them whole).
    Each new one becomes a refund event of its own: Shopify's at once, WooCommerce's after fetching the
    refund's lines from the shop (fetch_refunds)."""
    refunds = [r for r in order.get("refunds") or [] if isinstance(r, dict) and r.get("id")]
    if not refunds:
        return
    known = set(
        db.session.scalars(
            select(Transfer.source_ref).where(
                Transfer.integration_id == event.integration_id,
                Transfer.kind == "credit_note",
                Transfer.order_ref == str(order["id"]),
            )
        )
    )
    new = [r for r in refunds if str(r["id"]) not in known]
    complete = [r for r in new if "refund_line_items" in r or "transactions" in r]  # Shopify: whole refunds
    for refund in complete:
        record_refund(event.integration, order, refund, commit=False)
    if len(complete) < len(new):
        enqueue_after_commit("workers.jobs.fetch_refunds", event.integration_id, str(order["id"]))


def record_refund(integration: OrderIntegration, order: dict, refund: dict, commit: bool = True):
    """A refund event ({"order", "refund"}), deduplicated per refund id."""
    event = (integration, "poll", f"refund:{refund['id']}", REFUND_TOPIC, str(refund["id"]))
    body = json.dumps({"order": order, "refund": refund})
    if not commit:  # part of the caller's transaction (an order event being processed)
        _add_event(*event, body)
        return None
    return record_event(*event, body)


def fetch_refunds(integration_id: int, order_id: str) -> int:
    """Read an order's refunds (with their lines) from the shop and record each as a refund event."""
    integration = db.session.get(OrderIntegration, integration_id)
    if integration is None:
        return 0
    try:
        shop = connector_for(integration.connection)
    except (LookupError, AttributeError) as exc:  # no source connector for this system (yet)
        log.warning("integration %s: cannot fetch refunds of order %s: %s", integration_id, order_id, exc)
        return 0
    order = shop.get_order(order_id)
    recorded = 0
    for refund in shop.list_refunds(order_id):
        if record_refund(integration, order, refund) is not None:
            recorded += 1
    return recorded


def _skip_reason(
    integration: OrderIntegration, order: dict, state: str, document: str, imported: bool = False
) -> Message | None:
    if document == "none":
        return message(
            N_("The order's state “%(state)s” is not set to transfer."),
            ("state",),
            state=pipeline_settings.STATE_NAMES.get(state, state),
        )
    start = None if imported else pipeline_settings.activation_date(integration)
    created = order.get("date_created_gmt") or order.get("created_at") or order.get("date_created")
    if start and created:
        day = parse_datetime(created).astimezone(COPENHAGEN).date()
        if day < start:
            return message(
                N_("The order is from %(day)s, before the activation date %(start)s."),
                day=a_day(day),
                start=a_day(start),
            )
    return None


def import_order(integration: OrderIntegration, order: dict) -> SourceEvent | None:
    """Transfer an order on purpose (one from before the activation date, say): recorded as a manual
    event, which the activation date does not hold back. Still never twice."""
    modified = order.get("date_modified_gmt") or order.get("updated_at") or ""
    return record_event(
        integration,
        "manual",
        f"manual:{order.get('id')}:{modified}",
        "order.import",
        str(order.get("id")),
        json.dumps(order),
    )


def _upsert_transfer(
    event: SourceEvent, kind: str, source_ref: str, order_ref: str, order: dict
) -> tuple[Transfer, bool]:
    """The transfer for this order (or refund), and whether this transaction created it — then no other
    worker can see it before our commit."""
    integration = event.integration
    query = select(Transfer).where(
        Transfer.integration_id == integration.id, Transfer.kind == kind, Transfer.source_ref == source_ref
    )
    # populate_existing: as it is now, not as this session may remember it from an earlier event
    transfer = db.session.scalar(query.execution_options(populate_existing=True))
    created = False
    if transfer is None:
        transfer = Transfer(
            account_id=integration.account_id,
            integration_id=integration.id,
            kind=kind,
            source_ref=source_ref,
            order_ref=order_ref,
            order_number=_order_number(order),
            event_id=event.id,
            status="pending",
        )
        db.session.add(transfer)
        try:
            db.session.flush()
            created = True
        except IntegrityError:
            # Another worker created it a moment ago: use theirs. (The upsert is this transaction's first
            # write, so rolling all of it back loses nothing.)
            db.session.rollback()
            transfer = db.session.scalar(query.execution_options(populate_existing=True))
    if transfer.status not in ("done", "running") and (
        not transfer.draft_id
        or (
            transfer.status == "needs_attention"
            and not transfer.booked_number
            and transfer.remote_order is None
        )
    ):
        # The newest payload wins until something was posted — or, while a draft waits for a person's
        # retry, so the retry makes the draft again from the corrected order.
        transfer.event_id = event.id
    return transfer, created


def _finish_event(event: SourceEvent, outcome: str) -> None:
    event.processed_at, event.outcome = utcnow(), outcome
    db.session.commit()


# --- running a transfer ------------------------------------------------------------------------------------


def run_transfer(transfer_id: int, transfer: Transfer | None = None) -> None:
    """Post one transfer; returns at once when another worker holds it. `transfer`: the caller's copy,
    with its changes not committed yet (process_event's decision), instead of a fresh read."""
    lock = Lease(get_redis(), transfer_lock_key(transfer_id))
    if not lock.acquire():
        db.session.commit()  # the caller's decision stands; the worker holding the transfer posts it
        return
    token = _held_lock.set(lock)
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        # Under the lock nothing else changes this transfer, and its integration, setup and connection do
        # not change mid-run in a way that matters: re-reading them after every checkpoint cost a third of
        # the pipeline's SQL. (A token refresh re-reads the credentials: DatabaseCredentialStore.)
        _run(transfer_id, transfer)
    except LockLost:
        db.session.rollback()
        log.warning("transfer %s: lock lost mid-transfer; left to the worker that holds it", transfer_id)
    finally:
        # Anything else (the database went away mid-run) leaves the transfer `running` without its lock:
        # the watchdog (scheduling.recover) queues it again within seconds.
        session.expire_on_commit = expire_on_commit
        _held_lock.reset(token)
        if not lock.release():
            log.warning("transfer %s: lock lost before the transfer finished", transfer_id)


def _run(transfer_id: int, transfer: Transfer | None) -> None:
    if transfer is None:
        # A fresh read: another process may have changed it since this session last looked.
        transfer = db.session.get(Transfer, transfer_id, populate_existing=True, options=TRANSFER_GRAPH)
        if transfer is None or transfer.status not in RUNNABLE:
            return
    transfer.status, transfer.started_at = "running", utcnow()
    transfer.attempts += 1
    transfer.next_attempt_at = None
    # Not committed on its own: the first checkpoint carries it, and that comes before any remote call.
    try:
        _post(transfer)
    except TransferFailed as failure:
        _needs_attention(transfer, failure.kind, failure.message)
    except AmbiguousWriteError as exc:
        what = N_("The accounting system may or may not have received the document")
        _retry_or_give_up(transfer, exc, what)
    except TransientError as exc:
        _retry_or_give_up(transfer, exc, N_("The accounting system is busy or unreachable"))
    except LockLost:
        raise
    except Exception as exc:  # anything else stops here, visible: configuration, the order, or unexpected
        if failures.ours_unavailable(exc):
            raise  # our database or Redis is away: the watchdog resumes it (failures.ours_unavailable)
        kind, problem = failures.explain(exc, transfer.integration.setup.connection.system)
        if kind != failures.CONFIGURATION:
            log.exception("transfer %s: %s", transfer_id, kind)
        _needs_attention(transfer, kind, problem, _answer(exc))


def _post(transfer: Transfer) -> None:
    integration = transfer.integration
    setup = integration.setup
    if not integration.active:
        raise TransferFailed(
            "configuration", message(N_("The order integration is not active: activate it first."))
        )
    if not setup.active:
        raise TransferFailed(
            "configuration",
            message(
                N_(
                    "The accounting integration “%(setup)s” is not active: complete its templates and "
                    "activate it."
                ),
                setup=setup.name,
            ),
        )
    connector = connector_for(setup.connection, setup.external_id)
    plan = _plan(transfer, connector)
    if plan is None:
        return  # waiting
    plan = _in_open_period(transfer, connector, plan)
    if transfer.kind == "invoice":
        plan = plan.after_undos(transfer.undone, setup.external_id)  # transferred again after an undo
    # Figures, not checkpoints: they are recomputed on every run, so they go with the next commit.
    transfer.shop_gross, transfer.shop_vat = plan.shop_totals.gross, plan.shop_totals.vat
    transfer.computed_gross, transfer.computed_vat = plan.totals.gross, plan.totals.vat
    transfer.reference = plan.invoice.reference

    # Each step renews the lock before it calls the accounting system (_before_remote_call); cached steps
    # call nothing, so they need not.
    cached = _cache_entries(transfer, plan)
    customer = _ensure_customer(transfer, connector, plan, cached)
    _ensure_products(transfer, connector, plan, cached)
    _keep_lock()
    if transfer.document == "order" and transfer.kind == "invoice":
        _finish_order(transfer, connector, plan, customer)
        return
    remote = _ensure_draft(transfer, connector, plan, customer)

    if not plan.can_book:
        raise TransferFailed("totals_differ", _totals_differ(plan, remote.id))
    # The accounting system's own totals, too: its setup may compute otherwise (an OSS group's old VAT rate).
    # Dinero's create answers without totals: a draft to be booked is checked on the booking's answer (one
    # request less per order); one left as a draft is read back for its check.
    unchecked = remote.totals is None
    if unchecked and not _should_book(transfer):
        _before_remote_call()
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
        _log(
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
        _register_payment(transfer, connector, plan, remote)
        refund_payments.register_refund_payment(transfer, connector, plan, remote, _log, _before_remote_call)
        if not _send_invoice_mail(transfer, connector, plan, remote):
            return  # retried later, from this step
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = None
    number = remote.number or remote.id
    if remote.booked:
        _log(transfer, "done", "ok", message(N_("Booked as number %(number)s."), number=number))
    else:
        _log(transfer, "done", "ok", message(N_("Left as draft %(number)s."), number=number))
    db.session.commit()
    if transfer.kind == "invoice" and remote.booked:
        _wake_waiting_credit_notes(transfer)


def _in_open_period(transfer: Transfer, connector: AccountingConnector, plan: DraftPlan) -> DraftPlan:
    """The plan dated in an open period of the ledger, or the transfer held per its setting (periods)."""
    integration = transfer.integration
    try:
        plan, moved = periods.check(connector, integration.setup_id, integration.settings, plan)
    except periods.ClosedPeriod as exc:
        raise TransferFailed("configuration", exc.message) from exc
    if moved is not None:
        _log(transfer, "decide", "ok", moved)
    return plan


def _before_remote_call() -> None:
    """Before asking another system: renew this worker's lock (or stop: LockLost), and commit what this
    run has changed so far — no write transaction may stay open across a remote call (SQLite would block
    every other writer, the in-process sandboxes too, for as long as the call takes). Steps that need no
    remote call (cached customer and products) leave their changes to the next commit."""
    _keep_lock()
    db.session.commit()


def _shown(problem: Message | None) -> str | None:
    return render(problem.as_dict()) if problem is not None else None


def _totals_differ(plan: DraftPlan, draft_id: str | None = None, order: str | None = None) -> Message:
    """Beyond the rounding tolerance: both figures, and what was made (a draft, never booked; or an
    order)."""
    currency = plan.invoice.currency
    figures = {
        "shop": amount(plan.shop_totals.gross, currency),
        "computed": amount(plan.totals.gross, currency),
    }
    if order is not None:
        return message(
            N_(
                "The totals differ: the shop says %(shop)s, the accounting system will compute "
                "%(computed)s. The order %(order)s was created: correct it in the accounting system (or the "
                "order), then retry."
            ),
            order=order,
            **figures,
        )
    return message(
        N_(
            "The totals differ: the shop says %(shop)s, the accounting system will compute "
            "%(computed)s. The draft %(draft)s was created but not booked: correct it in the accounting "
            "system (or the order), then book it there."
        ),
        draft=draft_id,
        **figures,
    )


def _should_book(transfer: Transfer) -> bool:
    if transfer.kind == "credit_note":
        # A credit note follows its invoice: booked when the setup books automatically.
        return transfer.integration.setup.auto_book
    return transfer.document == "booked" and transfer.integration.setup.auto_book


def _plan(transfer: Transfer, connector: AccountingConnector) -> DraftPlan | None:
    integration = transfer.integration
    body = json.loads(transfer.event.raw_body)
    if transfer.kind == "invoice":
        return preview(integration, body)  # the same engine decision the dry run shows
    order, refund_payload = body["order"], body["refund"]
    invoice_transfer = db.session.scalar(
        select(Transfer).where(
            Transfer.integration_id == integration.id,
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
        _log(transfer, "decide", "waiting", stored_message(transfer) or transfer.reason)
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
    setup = integration.setup
    settings = pipeline_settings.engine_settings(integration)
    rates = pipeline_settings.vat_rates()
    source = _source_module(integration)
    document = source.normalise_order(order, settings)
    refund = source.normalise_refund(order, refund_payload, settings)
    decision = decide_zone(document.customer, settings, rates, document.invoice_date)
    values = pipeline_settings.setup_values(setup)
    capabilities = connector.system.capabilities
    return build_credit_note(
        refund, document, decision, values, capabilities, settings, rates, credit_for, setup.external_id
    )


@contextmanager
def _one_creator(key: str):
    """Only one worker at a time finds-or-creates a given customer or product: two orders from the same
    new customer (or with the same new product) on two workers would both find nothing and both create
    it — a second customer, or a product e-conomic refuses as a duplicate. The caller looks at the cache
    again once it holds the lock: the worker it waited for may have made it."""
    lock = Lease(get_redis(), f"bogbro:lock:{key}")
    if not lock.acquire(wait_seconds=CREATOR_WAIT_SECONDS):
        raise TransientError("another transfer is creating the same customer or product")
    try:
        yield
    finally:
        if not lock.release():
            log.warning("%s: the find-or-create lock was lost before it was released", key)


def _customer_key(transfer: Transfer, plan: DraftPlan) -> str | None:
    """The cache entry of the customer the order matches (by e-mail, CVR …); None when it matches none."""
    match = plan.match
    if match.kind != "lookup":
        return None
    return f"customer:{transfer.integration.setup_id}:{match.field}:{match.value}"


def _product_key(transfer: Transfer, product) -> str:
    return f"product:{transfer.integration.setup_id}:{product.number}"


def _cache_entries(transfer: Transfer, plan: DraftPlan) -> dict[str, bytes | None]:
    """What the cache knows of this order's customer and products, in one Redis round trip (steady state:
    everything, so the accounting system is not asked)."""
    keys = []
    customer_key = _customer_key(transfer, plan)
    if not transfer.remote_customer_id and customer_key:
        keys.append(customer_key)
    if not transfer.products_ensured:
        keys.extend(_product_key(transfer, product) for product in plan.products)
    if not keys:
        return {}
    return dict(zip(keys, get_redis().mget([f"bogbro:{key}" for key in keys]), strict=True))


def _ensure_customer(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, cached: dict
) -> RemoteCustomer:
    if transfer.remote_customer_id:
        return RemoteCustomer(
            id=transfer.remote_customer_id, number=transfer.remote_customer_number, name=plan.customer.name
        )
    match = plan.match
    if match.kind == "collective":
        remote, outcome = (
            RemoteCustomer(id=match.customer_number, number=match.customer_number, name=plan.customer.name),
            "collective",
        )
    elif match.kind == "lookup":
        cache_key = _customer_key(transfer, plan)
        remote = _cached_customer(cached.get(cache_key), plan)
        outcome = "cached"
        if remote is None:
            _before_remote_call()  # nothing uncommitted while waiting for another worker
            with _one_creator(cache_key):
                remote = _cached_customer(get_redis().get(f"bogbro:{cache_key}"), plan)
                if remote is None:
                    remote, outcome = _find_or_create_customer(transfer, connector, plan)
                    get_redis().set(
                        f"bogbro:{cache_key}",
                        json.dumps({"id": remote.id, "number": remote.number}),
                        ex=CUSTOMER_CACHE_SECONDS,
                    )
    else:  # nothing to match on: a customer of its own
        _before_remote_call()
        remote, outcome = _find_or_create_customer(transfer, connector, plan)
    transfer.remote_customer_id, transfer.remote_customer_number = remote.id, remote.number
    _log(
        transfer,
        "customer",
        "ok",
        message(
            N_("Customer %(number)s (%(outcome)s)."),
            ("outcome",),
            number=remote.number or remote.id,
            outcome=CUSTOMER_OUTCOMES.get(outcome, outcome),
        ),
        {"match": match.reason},
    )
    if outcome != "cached" and outcome != "collective":
        db.session.commit()  # a checkpoint once the accounting system was asked (a retry must not redo it)
    return remote


def _cached_customer(cached: bytes | None, plan: DraftPlan) -> RemoteCustomer | None:
    if not cached:
        return None
    found = json.loads(cached)
    return RemoteCustomer(found["id"], found["number"], plan.customer.name)


def _find_or_create_customer(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan
) -> tuple[RemoteCustomer, str]:
    match = plan.match
    rules = pipeline_settings.rules(transfer.integration, "customers")
    if match.kind == "lookup":
        remote = connector.find_customer(match.field, match.value)
        if remote is not None:
            if rules.update:
                return connector.update_customer(remote, plan.customer), "found, updated"
            return remote, "found"
    if not rules.create:
        raise TransferFailed(
            "configuration",
            message(
                N_(
                    "No customer in %(system)s has the %(field)s %(value)s, and the shop's settings "
                    "do not let Bogbro create customers: create the customer there (or allow "
                    "creating customers), then retry."
                ),
                system=system_name(transfer.integration.setup.connection.system),
                field=match.field,
                value=match.value or "–",
            ),
        )
    return connector.create_customer(plan.customer), "created"


def _ensure_products(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, cached: dict
) -> None:
    if transfer.products_ensured:
        return
    redis = get_redis()
    done = []
    for product in plan.products:
        key = _product_key(transfer, product)
        if cached.get(key):
            continue
        _before_remote_call()  # nothing uncommitted while waiting for another worker
        with _one_creator(key):
            if redis.get(f"bogbro:{key}"):
                continue  # made by the worker we waited for
            done.append(_find_or_create_product(transfer, connector, product))
            redis.set(f"bogbro:{key}", "1", ex=PRODUCT_CACHE_SECONDS)
    transfer.products_ensured = True
    if done:  # a checkpoint only when the accounting system was asked (all cached: nothing to keep)
        _log(transfer, "products", "ok", message(N_("Products: %(products)s."), products=done))
        db.session.commit()


def _find_or_create_product(transfer: Transfer, connector: AccountingConnector, product) -> Message:
    rules = pipeline_settings.rules(transfer.integration, "products")
    found = connector.find_product(product.number)
    if found is None:
        if not rules.create:
            raise TransferFailed(
                "configuration",
                message(
                    N_(
                        "The product %(number)s (%(name)s) does not exist in %(system)s, and the shop's "
                        "settings do not let Bogbro create products: create it there (or allow creating "
                        "products), then retry."
                    ),
                    number=product.number,
                    name=product.name,
                    system=system_name(transfer.integration.setup.connection.system),
                ),
            )
        connector.create_product(product)
        return message(N_("%(number)s created"), number=product.number)
    if rules.update:
        connector.update_product(found, product)
        return message(N_("%(number)s updated"), number=product.number)
    return message(N_("%(number)s found"), number=product.number)


def _ensure_draft(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> RemoteInvoice:
    if transfer.remote_order is not None:
        return _invoice_from_order(transfer, connector, plan, customer)
    reference = plan.invoice.reference
    # Resuming (a draft was made, or a create was sent and its answer maybe lost): look it up by reference;
    # it may have been booked since. A first create looks only when something else may have used the
    # reference (see _first_create_needs_lookup); so the connector's own look-up is never needed.
    remote = None
    if transfer.draft_requested or transfer.draft_id or _first_create_needs_lookup(transfer):
        _before_remote_call()
        remote = connector.find_invoice(reference)
    if remote is not None:
        if transfer.rebuild_draft and transfer.draft_id and not remote.booked:
            remote = _rebuild_draft(transfer, connector, plan, customer, remote)
        elif not transfer.draft_id:
            _log(transfer, "draft", "reused", _found_by_reference(remote.number or remote.id, reference))
    else:
        invoice = plan.for_customer(customer)
        transfer.draft_requested = True
        transfer.rebuild_draft = False  # what is created now is made from the order as it is now
        db.session.commit()
        create = (
            connector.create_credit_note if transfer.kind == "credit_note" else connector.create_draft_invoice
        )
        remote, lost = _sent_or_found(
            partial(create, invoice, lookup=False), connector.find_invoice, reference
        )
        if lost:
            _log(transfer, "draft", "reused", _answer_lost(remote.id))
        else:
            _log(
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
    _before_remote_call()
    try:
        remote = connector.replace_draft(remote, plan.for_customer(customer))
    except UnsupportedOperation as exc:
        _log(
            transfer,
            "draft",
            "reused",
            message(N_("Draft %(id)s kept as it was: %(detail)s"), id=remote.id, detail=str(exc)),
        )
    else:
        _log(
            transfer,
            "draft",
            "ok",
            message(N_("Draft %(id)s made again from the order as it is now."), id=remote.id),
            {"reference": remote.reference, "gross": str(remote.totals.gross)},
        )
    transfer.rebuild_draft = False  # with the next checkpoint
    return remote


# --- orders (e-conomic's, reserving stock): the document "order", invoiced when a later state asks ---------


def _finish_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> None:
    number = _ensure_order(transfer, connector, plan, customer)
    if not plan.can_book:
        raise TransferFailed("totals_differ", _totals_differ(plan, order=number))
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = None
    _log(transfer, "done", "ok", message(N_("Order %(number)s."), number=number), {"order": number})
    db.session.commit()


def _ensure_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> str:
    """The order's number in the accounting system, made once. Checkpoints: draft_id "order:" and
    draft_requested are committed before the create is sent; "order:<number>" once it is known."""
    if transfer.remote_order:
        return transfer.remote_order
    reference = plan.invoice.reference
    remote = None
    if transfer.remote_order == "" or _first_create_needs_lookup(transfer):
        _before_remote_call()
        remote = connector.find_order(reference)  # a create was sent (its answer lost), or may have been
        if remote is not None:
            _log(
                transfer,
                "order",
                "reused",
                message(
                    N_("Found order %(id)s by reference %(reference)s."), id=remote.id, reference=reference
                ),
            )
    if remote is None:
        order = plan.for_customer(customer)
        transfer.draft_requested, transfer.draft_id = True, ORDER_PREFIX
        db.session.commit()
        remote, lost = _sent_or_found(
            partial(connector.create_order, order, lookup=False), connector.find_order, reference
        )
        if lost:
            _log(transfer, "order", "reused", _answer_lost(remote.id))
        else:
            _log(
                transfer,
                "order",
                "ok",
                message(N_("Order %(id)s created."), id=remote.id),
                {"reference": reference, "lines": len(order.lines), "gross": str(remote.totals.gross)},
            )
    transfer.draft_id = ORDER_PREFIX + remote.id
    db.session.commit()
    return remote.id


def _invoice_from_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> RemoteInvoice:
    """The order's invoice draft, made from the order (e-conomic's upgrade), after which the order no
    longer reserves stock. Resuming (draft_requested: the create was sent) looks the invoice up first, and
    removes the order if the earlier attempt stopped before it was gone."""
    reference = plan.invoice.reference
    number = transfer.remote_order or "?"
    _before_remote_call()
    remote = connector.find_invoice(reference) if transfer.draft_requested else None
    if remote is not None:
        _log(transfer, "draft", "reused", _found_by_reference(remote.number or remote.id, reference))
        _close_order(transfer, connector, reference)
    else:
        order = connector.find_order(reference)
        if order is not None and not order.open:
            # Archived: turned into an invoice in the accounting system already (by hand?).
            remote = connector.find_invoice(reference)
            if remote is None:
                raise TransferFailed(
                    "configuration",
                    message(
                        N_(
                            "The order %(order)s was already turned into an invoice in the accounting "
                            "system, but no invoice carries the reference %(reference)s. Check the invoice "
                            "there; Bogbro makes no second one."
                        ),
                        order=order.id,
                        reference=reference,
                    ),
                )
            _log(
                transfer,
                "draft",
                "reused",
                message(N_("Order %(order)s was invoiced already: %(id)s."), order=order.id, id=remote.id),
            )
        else:
            invoice = plan.for_customer(customer)
            transfer.draft_requested = True
            db.session.commit()
            if order is not None:
                create = partial(connector.invoice_order, order, invoice)
            else:
                create = partial(connector.create_draft_invoice, invoice, lookup=False)
            remote, lost = _sent_or_found(create, connector.find_invoice, reference)
            if lost:
                _log(transfer, "draft", "reused", _answer_lost(remote.id))
                _close_order(transfer, connector, reference)
            elif order is not None:
                _log(
                    transfer,
                    "draft",
                    "ok",
                    message(N_("Draft %(id)s made from order %(order)s."), id=remote.id, order=order.id),
                    {"reference": reference, "order": order.id, "gross": str(remote.totals.gross)},
                )
            else:
                _log(
                    transfer,
                    "draft",
                    "ok",
                    message(
                        N_(
                            "Draft %(id)s created: the order %(order)s is no longer in the accounting system "
                            "(deleted there?), so the invoice was made from the shop's order."
                        ),
                        id=remote.id,
                        order=number,
                    ),
                    {"reference": reference, "gross": str(remote.totals.gross)},
                )
    transfer.draft_id = remote.id  # the order is behind us
    if remote.booked:
        transfer.booked_number = remote.number
    db.session.commit()
    return remote


def _close_order(transfer: Transfer, connector: AccountingConnector, reference: str) -> None:
    """The invoice exists: an order still open (an attempt stopped between the two) must not keep
    reserving stock or be invoiced again by hand."""
    order = connector.find_order(reference)
    if order is not None and order.open:
        connector.delete_order(order)
        _log(transfer, "order", "ok", message(N_("Order %(id)s removed: its invoice exists."), id=order.id))


def _sent_or_found(create, find, reference: str):
    """(document, answer_lost): send a create; when its answer was lost, the document carrying the
    reference is the answer — and when there is none, the create did not happen (raise, to retry)."""
    try:
        return create(), False
    except AmbiguousWriteError:
        remote = find(reference)  # did it happen?
        if remote is None:
            raise
        return remote, True


def _first_create_needs_lookup(transfer: Transfer) -> bool:
    """Whether a first create must look for its reference in the accounting system first.

    Not in steady state: `draft_requested` is committed before any create is sent and the transfer is
    unique per (integration, order), so only this transfer can have sent one. Yes when that reasoning does
    not hold: an import on purpose (the order may have been transferred by hand or by an earlier setup),
    another integration of the account writing references with the same shop id, or a database restored
    from a backup (PIPELINE_LOOKUP_BEFORE_CREATE)."""
    if current_app.config.get("PIPELINE_LOOKUP_BEFORE_CREATE") or transfer.event.source == "manual":
        return True
    integration = transfer.integration
    memo = _batch_memo.get()
    if memo is not None and integration.id in memo:
        return memo[integration.id]
    shop_id = pipeline_settings.shop_id(integration.id, integration.settings)
    with db.session.no_autoflush:  # the run's changes go with its next checkpoint, not before this read
        siblings = db.session.execute(
            select(OrderIntegration.id, OrderIntegration.settings).where(
                OrderIntegration.account_id == integration.account_id, OrderIntegration.id != integration.id
            )
        ).all()
    shared = any(pipeline_settings.shop_id(other, settings) == shop_id for other, settings in siblings)
    if memo is not None:
        memo[integration.id] = shared
    return shared


# What a drain batch reads once for all its events, like the integration itself: integration id → whether
# another integration of the account writes the same shop id (_first_create_needs_lookup).
_batch_memo: ContextVar[dict | None] = ContextVar("bogbro_drain_batch", default=None)


def _register_payment(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, remote: RemoteInvoice
) -> None:
    if transfer.payment_id or transfer.kind != "invoice":
        return
    method = plan.payment.method if plan.payment else None
    if not method or method not in pipeline_settings.paid_methods(transfer.integration):
        return
    payments = refund_payments.payments_template(transfer, connector, remote)
    _before_remote_call()
    payment = PaymentData(
        invoice=remote,
        amount=Decimal(remote.totals.gross),
        # not before the invoice: one dated on the first open day takes its payment there too
        date=max(_paid_on(plan.payment.paid_at), plan.invoice.date),
        reference=f"{remote.reference or plan.invoice.reference}-P",
        account=payments.get("account"),
        journal=payments.get("journal"),
    )
    try:
        transfer.payment_id = connector.register_payment(payment)
    except ForeignEntries as exc:
        raise TransferFailed("configuration", _foreign_entries(exc)) from exc
    _log(
        transfer,
        "payment",
        "ok",
        message(N_("Payment %(id)s registered (%(method)s)."), id=transfer.payment_id, method=method),
    )
    db.session.commit()


def _foreign_entries(exc: ForeignEntries) -> Message:
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
    """The mail step (portal.pipeline.invoice_mail) when the integration mails invoices; False when the
    mail server could not take it now and the transfer was rescheduled."""
    if transfer.mailed or not pipeline_settings.invoice_mail(transfer.integration).enabled:
        return True
    _before_remote_call()
    try:
        invoice_mail.mail_invoice(transfer, connector, plan, remote, _log)
    except invoice_mail.MailUnavailable as exc:
        _retry_or_give_up(transfer, exc, N_("Booked, but the mail could not be sent yet"))
        return False
    except invoice_mail.MailRefused as exc:
        raise TransferFailed(
            "configuration", message(N_("Booked, but not mailed: %(detail)s"), detail=exc.message)
        ) from exc
    return True


def _paid_on(paid_at: datetime | None):
    """The day the shop says the order was paid (Danish calendar), else today."""
    return (paid_at or datetime.now(UTC)).astimezone(COPENHAGEN).date()


def _wake_waiting_credit_notes(invoice_transfer: Transfer) -> None:
    # Their ids first (almost always none: a whole Transfer per invoice was the costlier read).
    waiting = db.session.scalars(
        select(Transfer.id).where(
            Transfer.integration_id == invoice_transfer.integration_id,
            Transfer.kind == "credit_note",
            Transfer.order_ref == invoice_transfer.order_ref,
            Transfer.status == "waiting",
        )
    ).all()
    if not waiting:
        return
    for transfer in db.session.scalars(select(Transfer).where(Transfer.id.in_(waiting))):
        transfer.status, transfer.reason = "pending", None
        enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
    db.session.commit()


def check_waiting_credit_notes(integration_id: int) -> int:
    """Credit notes waiting for an invoice that the bookkeeper books in the accounting system: each such
    invoice is looked up once (by its reference); a booked one lets its credit notes go on. Run with the
    integration's reconciliation poll. Returns how many invoices were found booked."""
    waiting_orders = select(Transfer.order_ref).where(
        Transfer.integration_id == integration_id,
        Transfer.kind == "credit_note",
        Transfer.status == "waiting",
    )
    invoices = db.session.scalars(
        select(Transfer).where(
            Transfer.integration_id == integration_id,
            Transfer.kind == "invoice",
            Transfer.booked_number.is_(None),
            Transfer.reference != "",
            Transfer.order_ref.in_(waiting_orders),
        )
    ).all()
    if not invoices:
        return 0
    setup = invoices[0].integration.setup
    connector = connector_for(setup.connection, setup.external_id)
    booked = 0
    for invoice_transfer in invoices:
        found = connector.find_invoice(invoice_transfer.reference)
        if found is not None and found.booked:
            invoice_transfer.booked_number = found.number
            _log(
                invoice_transfer,
                "book",
                "ok",
                message(N_("Booked in the accounting system as %(number)s."), number=found.number),
            )
            db.session.commit()
            _wake_waiting_credit_notes(invoice_transfer)
            booked += 1
    return booked


# --- failures ----------------------------------------------------------------------------------------------


def _answer(exc: Exception) -> dict:
    """What the remote system answered, for the log (secrets redacted)."""
    if not isinstance(exc, ConnectorError):
        return {}
    return redact({"system": exc.system, "status": exc.status, "details": exc.details})


def _kept(transfer: Transfer) -> Transfer:
    """The transfer to record a failure on. What the run did before the failure stands (the event's
    outcome, the steps done and their log: each reflects what the other systems hold); only a session
    left unusable by a failed flush is rolled back."""
    if db.session.is_active:
        return transfer
    db.session.rollback()
    return db.session.get(Transfer, transfer.id)


def _needs_attention(
    transfer: Transfer, kind: str, problem: Message | str, answer: dict | None = None
) -> None:
    transfer = _kept(transfer)
    transfer.status, transfer.error_kind = "needs_attention", kind
    store(transfer, "error_message", problem)
    transfer.started_at = None
    _log(transfer, "error", "error", problem, {"kind": kind, **(answer or {})})
    db.session.commit()


def _retry_or_give_up(transfer: Transfer, exc: TransientError, what: str) -> None:
    transfer = _kept(transfer)
    limit = current_app.config.get("PIPELINE_MAX_ATTEMPTS", 5)
    problem = message(N_("%(what)s: %(detail)s"), what=message(what), detail=exc.message)
    if transfer.attempts >= limit:
        _needs_attention(
            transfer,
            "transient",
            message(
                N_("%(problem)s. Gave up after %(attempts)s attempts; retry later."),
                problem=problem,
                attempts=transfer.attempts,
            ),
            _answer(exc),
        )
        return
    base = current_app.config.get("PIPELINE_RETRY_SECONDS", 30)
    delay = max(exc.retry_after or 0, base * 2 ** (transfer.attempts - 1))
    transfer.status, transfer.started_at = "pending", None
    transfer.next_attempt_at = utcnow() + timedelta(seconds=delay)
    transfer.error_kind = "transient"
    store(transfer, "error_message", problem)
    _log(
        transfer,
        "retry",
        "error",
        message(N_("%(problem)s; retry in %(seconds)s s."), problem=problem, seconds=f"{delay:.0f}"),
        {"attempt": transfer.attempts, **_answer(exc)},
    )
    db.session.commit()
    get_queue().enqueue_in(timedelta(seconds=delay), "workers.jobs.run_transfer", transfer.id)


def retry(transfer: Transfer) -> None:
    """A person asked to try again (after fixing what the message said)."""
    if transfer.status not in RETRYABLE:
        return
    _requeue(transfer, message(N_("Retry requested.")))
    db.session.commit()


def posted_nothing(transfer: Transfer) -> bool:
    """No document was created (or asked for) in the accounting system yet."""
    return not (transfer.draft_id or transfer.draft_requested or transfer.booked_number)


def retry_effect(transfer: Transfer) -> Message:
    """What "Retry" will do, said before the person presses it."""
    if posted_nothing(transfer):
        return message(N_("A retry reads the order as it is now in the shop, with today's settings."))
    if transfer.booked_number:
        return message(
            N_(
                "The invoice %(number)s is booked: a retry goes on from the step that stopped "
                "(payment, mail)."
            ),
            number=transfer.booked_number,
        )
    return message(
        N_(
            "A retry makes the draft in the accounting system again from the order as it is now in the shop "
            "(same reference), then goes on."
        )
    )


def leave_out(transfer: Transfer) -> bool:
    """A person decided this order (or refund) is not to be transferred: skipped, with who decided, and
    audited. Only while nothing was posted — a document in the accounting system is corrected there."""
    if transfer.status not in RETRYABLE or not posted_nothing(transfer):
        return False
    transfer.status, transfer.error_kind, transfer.error_message = "skipped", None, None
    reason = message(N_("Left out on request: it will not be transferred."))
    store(transfer, "reason", reason)
    transfer.next_attempt_at = None
    _log(transfer, "decide", "skipped", reason)
    audit.record("transfer.left_out", transfer, changes={"status": {"before": None, "after": "skipped"}})
    db.session.commit()
    return True


def _requeue(transfer: Transfer, why: Message) -> None:
    """Queue the transfer again. While nothing was posted, its order is decided again from the newest
    payload with today's settings (its event processed anew: the state may no longer transfer, or the
    failure was in the decision itself); otherwise the run resumes from its checkpoints."""
    transfer.status, transfer.error_kind, transfer.error_message = "pending", None, None
    transfer.reason = None
    transfer.attempts = 0
    event = transfer.event
    if event is not None and not (transfer.draft_id or transfer.draft_requested):
        event.processed_at, event.outcome = None, None
        enqueue_once_after_commit(
            "workers.jobs.drain_events",
            transfer.integration_id,
            flag=_drain_flag(transfer.integration_id),
            flag_seconds=DRAIN_FLAG_SECONDS,
        )
    else:
        transfer.rebuild_draft = not transfer.booked_number and transfer.remote_order is None
        enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
    _log(transfer, "retry", "ok", why)


def retryable(account, filters: TransferFilters) -> Select:
    """The account's transfers that match `filters` and may be queued again: never a done one (its document
    exists), a running one (a worker has it) or a skipped one (there is nothing to post)."""
    return filters.apply(select(Transfer), account.id).where(Transfer.status.in_(RETRYABLE))


def count_retryable(account, filters: TransferFilters) -> int:
    """Exact: the bulk re-transfer's confirmation names how many it will queue."""
    return exact_count(retryable(account, filters))


def retry_matching(account, filters: TransferFilters) -> int:
    """Queue again every not-done transfer matching the log's filters (after fixing what their messages
    said): as `retry`, for all of them in one commit, with one audit entry naming the filters and the count.
    Each job still takes the transfer's lock and looks the document up by reference before any create."""
    transfers = db.session.scalars(retryable(account, filters).order_by(Transfer.id)).all()
    for transfer in transfers:
        _requeue(transfer, message(N_("Retry requested (with others).")))
    audit.record(
        "transfers.retried",
        None,
        account=account,
        changes={
            "filters": {"before": None, "after": filters.describe()},
            "count": {"before": None, "after": len(transfers)},
        },
    )
    db.session.commit()
    return len(transfers)


# --- the log -------------------------------------------------------------------------------------------

_SECRET_KEYS = re.compile(r"(token|secret|password|authorization|api_key|apikey|grant|cookie)", re.I)


def redact(value):
    """Request/response summaries without secrets: values under secret-looking keys are replaced, and
    keys inside URLs (Dynaccount's path, WooCommerce's query) are masked."""
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEYS.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _found_by_reference(number, reference: str) -> Message:
    return message(N_("Found %(number)s by reference %(reference)s."), number=number, reference=reference)


def _answer_lost(remote_id) -> Message:
    return message(N_("The create's answer was lost; found %(id)s by reference."), id=remote_id)


def _log(
    transfer: Transfer, step: str, outcome: str, said: "Message | str", details: dict | None = None
) -> None:
    """One step log row: the English text (search, old readers) and, for a Message, its msgid and
    parameters, so the page shows it in the reader's language (portal.pipeline.messages.log_text)."""
    english = said.english() if isinstance(said, Message) else said
    db.session.add(
        TransferLog(
            account_id=transfer.account_id,
            # by id (a logged transfer is always flushed): the relationship's backref cost more than this
            transfer_id=transfer.id,
            attempt=transfer.attempts,
            step=step,
            outcome=outcome,
            message=redact_text(english) if english else english,
            text=redact(said.as_dict()) if isinstance(said, Message) else None,
            details=redact(details or {}),
        )
    )


def preview(integration: OrderIntegration, order: dict) -> DraftPlan:
    """The exact invoice a real order would become (lines, zone, accounts/product groups, rounding line,
    customer match, reconciliation) — computed by the engine alone: nothing is read from or written to the
    accounting system. Raises EngineConfigError when the setup cannot book it."""
    setup = integration.setup
    settings = pipeline_settings.engine_settings(integration)
    rates = pipeline_settings.vat_rates()
    document = _source_module(integration).normalise_order(order, settings)
    decision = decide_zone(document.customer, settings, rates, document.invoice_date)
    capabilities = get_system(setup.system).capabilities
    values = pipeline_settings.setup_values(setup)
    return build_draft(document, decision, values, capabilities, settings, rates, setup.external_id)


@dataclass(frozen=True)
class OrderPreview:
    """What an order would become, decided exactly as a transfer decides it, without posting anything."""

    order_number: str
    state: str  # the shop's state the per-state settings key on
    document: str  # what that state makes: none | draft | booked (booked only while the setup auto-books)
    skip_reason: str | None  # why a transfer would skip it (the state, the activation date), if it would
    # (in the reader's language: the preview is rendered in a request)
    plan: DraftPlan

    @property
    def will_book(self) -> bool:
        return self.skip_reason is None and self.document == "booked" and self.plan.can_book

    def lines(self) -> list["PreviewLine"]:
        """Each invoice line with its kind, VAT rate and where it is booked (product group, account, VAT
        code — whichever the accounting system books by) for the order's zone."""
        products = {product.number: product for product in self.plan.products}
        kinds = self.plan.line_kinds or ("",) * len(self.plan.invoice.lines)
        result = []
        for line, rate, kind in zip(self.plan.invoice.lines, self.plan.line_rates, kinds, strict=True):
            product = products.get(line.product_number or "")
            result.append(
                PreviewLine(
                    kind=kind,
                    line=line,
                    vat_rate=rate,
                    net_total=q2(line.quantity * line.unit_net_price),
                    product_group=product.product_group if product else None,
                    account=line.account or (product.account if product else None),
                    vat_code=line.vat_code or (product.vat_code if product else None),
                )
            )
        return result


@dataclass(frozen=True)
class PreviewLine:
    kind: str
    line: InvoiceLine
    vat_rate: Decimal
    net_total: Decimal
    product_group: str | None
    account: str | None
    vat_code: str | None


def preview_order(integration: OrderIntegration, order: dict, imported: bool = False) -> OrderPreview:
    """preview() plus the decision a transfer makes first: whether the order's state transfers at all, and
    as a draft or booked. Raises EngineConfigError, or KeyError/ValueError/TypeError for an unreadable
    order."""
    state = order_state(integration.source_system, order)
    document = pipeline_settings.document_for_state(integration, state)
    return OrderPreview(
        order_number=_order_number(order),
        state=state,
        document=document,
        skip_reason=_shown(_skip_reason(integration, order, state, document, imported=imported)),
        plan=preview(integration, order),
    )


class OrderNotFound(LookupError):
    """The shop has no order with that number or id."""


def find_shop_order(integration: OrderIntegration, number: str) -> dict:
    """Read an order from the integration's shop by the number the customer sees (or the shop's id), for a
    preview: a read only. Raises OrderNotFound, or the connector's errors (the shop refused or is down)."""
    shop = connector_for(integration.connection)
    try:
        order = shop.find_order(number)
    finally:
        shop.close()
    if order is None:
        raise OrderNotFound(number)
    return order


def can_preview(transfer: Transfer) -> bool:
    """Credit notes are not previewed: their plan needs the booked invoice from the accounting system."""
    return transfer.kind == "invoice" and transfer.event_id is not None


def preview_transfer(transfer: Transfer) -> OrderPreview:
    """The invoice the transfer's stored order payload becomes with today's settings."""
    if not can_preview(transfer):
        raise ValueError("Only an order's invoice can be previewed.")
    event = transfer.event
    return preview_order(transfer.integration, json.loads(event.raw_body), imported=event.source == "manual")


# --- the reconciliation poll -------------------------------------------------------------------------

POLL_OVERLAP = timedelta(minutes=2)  # re-read a little of the last window: clocks and commits are not exact
FIRST_POLL_WINDOW = timedelta(days=1)


def poll_orders(integration_id: int) -> int:
    """Read the orders changed since the last poll from the shop and record each version as an event; the
    unique delivery id per version (poll_delivery_id) makes repeated polls and a poll racing a webhook
    harmless. Returns the number of new events."""
    integration = db.session.get(OrderIntegration, integration_id)
    if integration is None or not integration.active:
        return 0
    started = utcnow()
    since = integration.last_polled_at - POLL_OVERLAP if integration.last_polled_at else None
    if since is None:
        start = pipeline_settings.activation_date(integration)
        since = (
            datetime.combine(start, datetime.min.time(), COPENHAGEN).astimezone(UTC)
            if start
            else started - FIRST_POLL_WINDOW
        )
    shop = connector_for(integration.connection)
    recorded, page = 0, 1
    while page:
        result = shop.list_orders(modified_after=since, page=page)
        for order in result.items:
            delivery_id = poll_delivery_id(order)
            if record_event(
                integration, "poll", delivery_id, "order.poll", str(order.get("id")), json.dumps(order)
            ):
                recorded += 1
        page = result.next_page
    integration = db.session.get(OrderIntegration, integration_id)
    integration.last_polled_at = started
    db.session.commit()
    return recorded


def poll_delivery_id(order: dict) -> str:
    """One id per version of an order: its modification time (whole seconds in both shops, so two changes
    within a second share it) and a hash of the document (the same version reads the same every poll)."""
    modified = order.get("date_modified_gmt") or order.get("updated_at") or order.get("date_modified")
    digest = hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()[:16]
    return f"poll:{order.get('id')}:{modified or ''}:{digest}"


def due_polls() -> list[int]:
    """Active integrations whose poll interval (settings "poll_minutes", default 5; 0 = never) has passed;
    each is queued as its own job."""
    now = utcnow()
    due = []
    for integration in db.session.scalars(select(OrderIntegration).where(OrderIntegration.active)):
        minutes = int(
            (integration.settings or {}).get("poll_minutes", pipeline_settings.DEFAULT_POLL_MINUTES)
        )
        if minutes <= 0:
            continue
        if integration.last_polled_at is None or now - integration.last_polled_at >= timedelta(
            minutes=minutes
        ):
            due.append(integration.id)
            enqueue_after_commit("workers.jobs.poll_orders", integration.id)
    db.session.commit()
    return due
