"""Intake: raw events stored (deduplicated on the sender's delivery id) and queued to the drain job; each
event decided and its Transfer upserted (refunds found on the order become refund events of their own);
a notification that only names its sale (or a refund) read first, a failed read retried or made visible;
orders imported on purpose; an event whose processing failed made visible."""

import json
import logging
from datetime import timedelta

from flask_babel import force_locale, gettext
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from portal.connectors.errors import AuthenticationError, ConnectorError, NotFound, TransientError
from portal.extensions import db
from portal.i18n import system_name
from portal.models import SourceEvent, SourceLink, Transfer, TransferLog, utcnow
from portal.pipeline import failures
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.locks import DRAIN_FLAG_SECONDS, _drain_flag
from portal.pipeline.messages import N_, message, store
from portal.pipeline.posting import run_transfer
from portal.pipeline.preview import DOCUMENT_NAMES, renewal_name, skip_reason
from portal.pipeline.retries import backoff, needs_attention, posted_nothing
from portal.pipeline.steps import EVENT_GRAPH, log_step, remote_answer
from portal.queue import enqueue_after_commit, enqueue_once_after_commit, get_queue
from portal.redis_client import get_redis
from portal.setups.connections import connector_for
from portal.sources import Source, get_source

log = logging.getLogger(__name__)

# The internal topic of a refund event: {"order": <order document>, "refund": <refund document>}, recorded
# by whatever fetched the refund (the poll, or the order.updated handling of a source connector).
REFUND_TOPIC = "refund.created"


def _is_refund_event(event: SourceEvent) -> bool:
    """Ours, not a webhook of the same name (Stripe's `refund.created` names a PaymentIntent)."""
    return event.topic == REFUND_TOPIC and event.source != "webhook"


# A later order state may raise the document of a transfer already posted: (from, to).
RAISES = {("order", "draft"), ("order", "booked"), ("draft", "booked")}
LATER_STATE_SECONDS = 30  # a later state met a running transfer: decide again after this long


# --- events ------------------------------------------------------------------------------------------------


def record_event(
    source_link: SourceLink,
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
        event = _add_event(source_link, source, delivery_id, topic, resource_id, raw_body)
    except IntegrityError:  # the same delivery, concurrently
        db.session.rollback()
        return None
    db.session.commit()
    return event


def _add_event(
    source_link: SourceLink,
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
            SourceEvent.source_link_id == source_link.id, SourceEvent.delivery_id == delivery_id
        )
    )
    if existing is not None:
        return None
    event = SourceEvent(
        account_id=source_link.account_id,
        source_link_id=source_link.id,
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
        source_link.id,
        flag=_drain_flag(source_link.id),
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
                kind, problem = failures.explain(exc, event.source_link.setup.connection.system)
                needs_attention(transfer, kind, problem)
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
    if _is_refund_event(event):
        order, refund = body.get("order") or {}, body.get("refund") or {}
        if order.get("id") and refund.get("id"):
            return "credit_note", str(refund["id"]), str(order["id"]), order
        return None
    source = get_source(event.source_link.source_system)
    reference = source.to_fetch(event.topic, body)
    if reference is not None:  # a notification whose sale was not read: its stand-in (_fetch_failed)
        return _stand_in(event, reference)
    refunded = source.refunded_sale(body)
    if refunded:
        return _stand_in(event, refunded, refunds=True)
    if not source.is_sale(body):
        return None
    body = source.sale_of(body)
    if body.get("id"):
        return "invoice", str(body["id"]), str(body["id"]), body
    return None


# A drain's read of each event (its source link is loaded already). Built once, with a bound parameter:
# Session.get built the statement and its cache key anew each time, half of the read's cost.
_EVENT = (
    select(SourceEvent)
    .where(SourceEvent.id == bindparam("event_id"))
    .execution_options(populate_existing=True)
)


def process_event(event_id: int, source_link: SourceLink | None = None) -> None:
    """`source_link`: the event's, loaded with its setup and connections by the caller (drain), so the event
    is read alone."""
    if source_link is None:
        event = db.session.get(SourceEvent, event_id, populate_existing=True, options=EVENT_GRAPH)
    else:
        event = db.session.scalar(_EVENT, {"event_id": event_id})
        if event is not None and event.source_link_id != source_link.id:
            raise ValueError(f"event {event_id} is not source_link {source_link.id}'s")
    if event is None or event.processed_at is not None:
        return
    source_link = event.source_link
    if not source_link.active:
        # Kept raw: activating the source link (or importing on purpose) can process it later.
        _finish_event(event, "the sales source is not active: not processed")
        return
    try:
        body = json.loads(event.raw_body)
    except ValueError:
        _finish_event(event, "not JSON: ignored")
        return
    if _is_refund_event(event):
        order, refund = body.get("order") or {}, body.get("refund") or {}
        if not order.get("id") or not refund.get("id"):
            _finish_event(event, "a refund event needs the order and the refund")
            return
        transfer, _ = _upsert_transfer(event, "credit_note", str(refund["id"]), str(order["id"]), order)
        if transfer.status not in ("done", "running") and not transfer.draft_id:
            if transfer.order_ref != str(order["id"]):  # it stood in for the refund (_stand_in): now its own
                transfer.order_ref = str(order["id"])
                transfer.order_number = get_source(source_link.source_system).sale_number(order)
            transfer.status = "pending"
            enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
        _finish_event(event, f"credit note transfer {transfer.id} ({transfer.status})")
        return
    source = get_source(source_link.source_system)
    refunded = source.refunded_sale(body)
    if refunded:
        _fetch_refunds_of(event, refunded)
        return
    reference = source.to_fetch(event.topic, body)
    if reference is not None:
        _fetch_sale(event, reference)
        return
    if not source.is_sale(body):
        with force_locale("da"):
            _finish_event(event, f"ignored: {gettext(source.ignored_reason(event.topic, body))}")
        return
    body = source.sale_of(body)
    state = source.sale_state(body)
    document = pipeline_settings.document_for_state(source_link, state)
    transfer, created = _upsert_transfer(event, "invoice", str(body["id"]), str(body["id"]), body)
    _detect_refunds(event, source, body)
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
            log_step(
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
    subscription = source.subscription_of(body)
    if subscription is not None:  # the step log names the kind of sale
        log_step(transfer, "decide", "ok", renewal_name(subscription))
    reason = skip_reason(source_link, body, state, document, imported=event.source == "manual")
    if reason:
        transfer.status = "skipped"
        store(transfer, "reason", reason)
        log_step(transfer, "decide", "skipped", reason)
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


def _read(event: SourceEvent, reference: str, read, refunds: bool = False):
    """`read(shop)`'s answer, or None when it failed: a transient failure is tried again later with the
    pipeline's back-off, the notification kept unprocessed meanwhile; a final one (or giving up) leaves a
    transfer needing attention, whose retry processes the notification again."""
    redis = get_redis()
    if redis.exists(FETCH_WAIT.format(event.id)):
        return None  # its retry is scheduled (fetch_again): not before, whatever else drains the link
    shop = connector_for(event.source_link.connection)
    try:
        answer = read(shop)
    except TransientError as exc:
        _fetch_again_later(event, reference, exc, refunds)
        return None
    except ConnectorError as exc:
        _fetch_failed(event, reference, exc, refunds=refunds)
        return None
    finally:
        shop.close()
    redis.delete(FETCH_ATTEMPTS.format(event.id))
    return answer


def _fetch_refunds_of(event: SourceEvent, order_id: str) -> None:
    """A refund announced on its own (Stripe's credit_note.created, refund.created, charge.refunded): the
    sale's refunds read now, each recorded as a refund event of its own; a failed read as _read says."""
    read = _read(event, order_id, lambda shop: _sale_and_refunds(shop, order_id), refunds=True)
    if read is None:
        return
    order, refunds = read
    if order is None:  # e.g. a Stripe refund of a payment that paid no invoice: no sale of ours to credit
        _finish_event(event, f"no sale {order_id} to credit")
        return
    for refund in refunds:
        record_refund(event.source_link, order, refund, commit=False)
    _drop_stand_in(event, order_id, {str(r["id"]) for r in refunds})
    _finish_event(event, f"the refunds of {order_id} are fetched")


def _sale_and_refunds(shop, order_id: str) -> tuple[dict | None, list[dict]]:
    try:
        return shop.get_order(order_id), list(shop.list_refunds(order_id))
    except NotFound:
        return None, []


def _fetch_sale(event: SourceEvent, reference: str) -> None:
    """A notification that only names its sale: the sale as the source has it now, stored as an event of its
    own (deduplicated per notification), which this drain decides next. A failed read never ends the
    notification in silence (_read)."""
    read = _read(event, reference, lambda shop: shop.get_order(reference))
    if read is None:
        return
    sale = read
    _claim_stand_in(event, reference, sale)
    delivery_id = f"fetch:{event.delivery_id}"
    _add_event(
        event.source_link,
        "fetch",
        delivery_id,
        f"{event.topic}.fetched",
        str(sale.get("id")),
        json.dumps(sale),
    )
    _finish_event(event, f"fetched {reference}")


# A notification whose sale could not be read: its attempts so far, and a flag that holds it back until its
# retry is due (in Redis: a flushed Redis only costs a few more attempts, the event stays unprocessed).
FETCH_ATTEMPTS = "bogbro:fetch:attempts:{}"
FETCH_WAIT = "bogbro:fetch:wait:{}"


def _fetch_again_later(event: SourceEvent, reference: str, exc: TransientError, refunds: bool) -> None:
    """A transfer's rules for a read (retries.backoff): back off, honouring Retry-After, then give up."""
    redis = get_redis()
    attempts = redis.incr(FETCH_ATTEMPTS.format(event.id))
    redis.expire(FETCH_ATTEMPTS.format(event.id), 86400)
    delay = backoff(attempts, exc)
    if delay is None:
        redis.delete(FETCH_ATTEMPTS.format(event.id))
        _fetch_failed(event, reference, exc, attempts, refunds)
        return
    event.outcome = f"fetching {reference} failed (attempt {attempts}): {exc.message}; retry in {delay:.0f} s"
    db.session.commit()
    if delay >= 1:
        redis.set(FETCH_WAIT.format(event.id), "1", ex=int(delay))
        get_queue().enqueue_in(timedelta(seconds=delay), "workers.jobs.fetch_again", event.id)
    else:
        get_queue().enqueue("workers.jobs.fetch_again", event.id)


def fetch_again(event_id: int) -> None:
    """A notification's scheduled retry of its read: due now, whatever the hold's clock says."""
    get_redis().delete(FETCH_WAIT.format(event_id))
    process_event(event_id)


def _fetch_failed(
    event: SourceEvent, reference: str, exc: ConnectorError, attempts: int = 0, refunds: bool = False
) -> None:
    """The sale (or its refunds) could not be read and a retry alone will not mend it (or gave up): a
    transfer standing in for it needs attention with what to do."""
    source_link = event.source_link
    system = system_name(source_link.source_system)
    detail = failures.detail(exc)
    values = {"reference": reference, "system": system, "detail": detail}
    texts = failures.REFUNDS_NOT_READ if refunds else failures.SALE_NOT_READ
    if attempts:
        kind, problem = "transient", message(texts["gave_up"], attempts=attempts, **values)
    elif isinstance(exc, AuthenticationError):
        kind, problem = failures.CONFIGURATION, message(texts["refused"], **values)
    elif isinstance(exc, NotFound):
        kind, problem = failures.ORDER, message(texts["not_found"], **values)
    else:
        kind, problem = failures.CONFIGURATION, message(texts["failed"], **values)
    transfer, _created = _upsert_transfer(event, *_stand_in(event, reference, refunds))
    if transfer.status not in ("done", "running"):
        needs_attention(transfer, kind, problem, remote_answer(exc))
    _finish_event(event, f"fetching {reference} failed: {detail}"[:1000])


def _stand_in(event: SourceEvent, reference: str, refunds: bool = False) -> tuple[str, str, str, dict]:
    """(kind, source ref, order ref, payload) of the transfer standing in for what a notification names
    and was not read yet: its sale, keyed by the reference; or a refund, keyed by the refund (or credit
    note, or charge) the notification is about."""
    if refunds:
        return "credit_note", event.resource_id or reference, reference, {"id": reference}
    return "invoice", reference, reference, {"id": reference, "handle": reference}


def _drop_stand_in(event: SourceEvent, order_id: str, refund_ids: set[str]) -> None:
    """The sale's refunds are read: a stand-in keyed by one of them is that refund's own transfer now (its
    event finds it); one keyed by anything else (a charge, or the other event of the same refund) has done
    its work and goes, nothing having been posted for it."""
    stand_ins = db.session.scalars(
        select(Transfer).where(
            Transfer.source_link_id == event.source_link_id,
            Transfer.kind == "credit_note",
            Transfer.order_ref == order_id,
            Transfer.status.in_(("needs_attention", "pending")),  # pending: the one being retried
            Transfer.source_ref.not_in(refund_ids),
        )
    )
    for stand_in in stand_ins:
        if posted_nothing(stand_in):
            db.session.delete(stand_in)


def _claim_stand_in(event: SourceEvent, reference: str, sale: dict) -> None:
    """The sale is read at last: a transfer that stood in for it under the notification's reference (a
    Frisbii handle, where transfers key on the invoice's id) becomes the sale's own — or, when the sale has
    one already (the poll found it), gives it its log and goes. One transfer per sale, whatever failed."""
    sale_id = str(sale.get("id"))
    if sale_id == reference:
        return  # the same key: the sale's event finds it
    source_link = event.source_link
    query = select(Transfer).where(Transfer.source_link_id == source_link.id, Transfer.kind == "invoice")
    stand_in = db.session.scalar(query.where(Transfer.source_ref == reference))
    waiting = stand_in is not None and stand_in.status in ("needs_attention", "pending")
    if not waiting or not posted_nothing(stand_in):
        return  # none, or left out by a person: the sale's own transfer is decided as any
    own = db.session.scalar(query.where(Transfer.source_ref == sale_id))
    if own is None:
        stand_in.source_ref = stand_in.order_ref = sale_id
        stand_in.order_number = get_source(source_link.source_system).sale_number(sale)
        return
    db.session.execute(
        update(TransferLog).where(TransferLog.transfer_id == stand_in.id).values(transfer_id=own.id)
    )
    db.session.expire(stand_in, ["logs"])
    db.session.delete(stand_in)


def _detect_refunds(event: SourceEvent, source: Source, order: dict) -> None:
    """Refunds show up on the order (WooCommerce lists their ids; Shopify embeds them whole). Each new one
    becomes a refund event of its own: a complete one at once, the others after fetching them from the
    source (fetch_refunds)."""
    refunds = source.refunds_in(order)
    if not refunds:
        return
    known = set(
        db.session.scalars(
            select(Transfer.source_ref).where(
                Transfer.source_link_id == event.source_link_id,
                Transfer.kind == "credit_note",
                Transfer.order_ref == str(order["id"]),
            )
        )
    )
    new = [r for r in refunds if str(r["id"]) not in known]
    complete = [r for r in new if source.refund_complete(r)]
    for refund in complete:
        record_refund(event.source_link, order, refund, commit=False)
    if len(complete) < len(new):
        enqueue_after_commit("workers.jobs.fetch_refunds", event.source_link_id, str(order["id"]))


def record_refund(source_link: SourceLink, order: dict, refund: dict, commit: bool = True):
    """A refund event ({"order", "refund"}), deduplicated per refund id."""
    event = (source_link, "poll", f"refund:{refund['id']}", REFUND_TOPIC, str(refund["id"]))
    body = json.dumps({"order": order, "refund": refund})
    if not commit:  # part of the caller's transaction (an order event being processed)
        _add_event(*event, body)
        return None
    return record_event(*event, body)


def fetch_refunds(source_link_id: int, order_id: str) -> int:
    """Read an order's refunds (with their lines) from the shop and record each as a refund event."""
    source_link = db.session.get(SourceLink, source_link_id)
    if source_link is None:
        return 0
    try:
        shop = connector_for(source_link.connection)
    except (LookupError, AttributeError) as exc:  # no source connector for this system (yet)
        log.warning("source_link %s: cannot fetch refunds of order %s: %s", source_link_id, order_id, exc)
        return 0
    try:
        order = shop.get_order(order_id)
    except NotFound:  # e.g. a Stripe refund of a payment that paid no invoice: no sale of ours to credit
        log.info("source_link %s: no sale %s to fetch refunds of", source_link_id, order_id)
        return 0
    recorded = 0
    for refund in shop.list_refunds(order_id):
        if record_refund(source_link, order, refund) is not None:
            recorded += 1
    return recorded


def import_order(source_link: SourceLink, order: dict) -> SourceEvent | None:
    """Transfer an order on purpose (one from before the activation date, say): recorded as a manual
    event, which the activation date does not hold back. Still never twice."""
    modified = get_source(source_link.source_system).sale_modified(order) or ""
    return record_event(
        source_link,
        "manual",
        f"manual:{order.get('id')}:{modified}",
        "order.import",
        str(order.get("id")),
        json.dumps(order),
    )


# populate_existing: the transfer as it is now, not as this session may remember it from an earlier event.
# Built once, with bound parameters: building a statement (and its cache key) cost more than running it.
_TRANSFER_OF_SALE = (
    select(Transfer)
    .where(
        Transfer.source_link_id == bindparam("source_link_id"),
        Transfer.kind == bindparam("kind"),
        Transfer.source_ref == bindparam("source_ref"),
    )
    .execution_options(populate_existing=True)
)


def _upsert_transfer(
    event: SourceEvent, kind: str, source_ref: str, order_ref: str, order: dict
) -> tuple[Transfer, bool]:
    """The transfer for this order (or refund), and whether this transaction created it — then no other
    worker can see it before our commit."""
    source_link = event.source_link
    which = {"source_link_id": source_link.id, "kind": kind, "source_ref": source_ref}
    transfer = db.session.scalar(_TRANSFER_OF_SALE, which)
    created = False
    if transfer is None:
        transfer = Transfer(
            account_id=source_link.account_id,
            source_link_id=source_link.id,
            kind=kind,
            source_ref=source_ref,
            order_ref=order_ref,
            order_number=get_source(source_link.source_system).sale_number(order),
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
            transfer = db.session.scalar(_TRANSFER_OF_SALE, which)
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
