"""Payments registered together (issue 16): a booked invoice whose payment e-conomic is to register does not
send it alone. It waits (`waiting`, its payment in `transfers.pending_payment`) for its accounting setup's
batch job, queued once per setup (a Redis flag with a TTL, cleared by the job as it starts, so what is
parked after its look goes to the next job). Under load the job runs behind the transfers queued before it
(RQ is FIFO) and finds many: one voucher POST, one draft-entries read and one booking for up to
BATCH_SIZE payments instead of three calls each.

Never twice, never lost:
- the job takes each transfer's lease, then claims the row (`waiting` → `running`, with
  `payment_requested`) in one UPDATE whose WHERE only a waiting row passes, and commits that before the
  POST: two jobs never send one payment, and a job that dies after the POST leaves transfers `running`
  without their lease, which the watchdog resumes one by one (the single path looks the reference up);
- a failed call hands every claimed transfer to the single path: a transient one retried per the usual
  rules (retries.retry_or_give_up), any other queued at once, where each gets its own outcome;
- a job that never ran (lost with its worker, or with Redis) is queued again by the watchdog
  (requeue_lost, from workers.jobs.recover_lost_work) once its flag has expired.
"""

import json
import logging
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from portal.connectors.base import AccountingConnector, RemoteInvoice
from portal.connectors.errors import ConnectorError, ForeignEntries, TransientError
from portal.engine.ledger_documents import PaymentData
from portal.extensions import db
from portal.models import AccountingSetup, SourceLink, Transfer, utcnow
from portal.pipeline import failures, periods, ride_along
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.locks import LOCK_SECONDS, Lease, transfer_lock_key
from portal.pipeline.messages import N_, message, store
from portal.pipeline.retries import needs_attention, retry_or_give_up
from portal.pipeline.steps import log_step
from portal.queue import enqueue_after_commit, enqueue_once_after_commit, get_queue
from portal.redis_client import get_redis
from portal.setups.connections import connector_for

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # claimed per job; the connector's own limit (e-conomic: BATCH_LIMIT) is the same
FLAG_SECONDS = 120  # a queued job's flag: after that the watchdog may queue another
GRACE = timedelta(seconds=5)  # a transfer parked this recently may still be getting its job queued
JOB = "workers.jobs.register_payment_batch"
WAITING = N_("The payment is registered together with others.")


def flag_key(setup_id: int) -> str:
    return f"bogbro:payment-batch:{setup_id}"


def batches(connector: AccountingConnector) -> bool:
    """Whether the connector registers many payments in fewer calls than one each (its own
    register_payments); others keep paying one at a time inside the transfer's run."""
    return type(connector).register_payments is not AccountingConnector.register_payments


def may_wait(transfer: Transfer, connector: AccountingConnector) -> bool:
    """A payment never sent yet, of a transfer that ends with it (no invoice mail after it)."""
    return (
        not transfer.payment_requested
        and batches(connector)
        and not pipeline_settings.invoice_mail(transfer.source_link).enabled
    )


def wait(transfer: Transfer, payment: PaymentData, method: str) -> None:
    """Park the transfer for its setup's batch job and make sure one is queued (after this commit)."""
    invoice = payment.invoice
    transfer.pending_payment = {
        "method": method,
        "amount": str(payment.amount),
        "date": payment.date.isoformat(),
        "reference": payment.reference,
        "account": payment.account,
        "journal": payment.journal,
        "lookup": payment.lookup,
        "invoice": {
            "id": invoice.id,
            "reference": invoice.reference,
            "number": invoice.number,
            # what the connector's voucher names (e-conomic: the customer and currency of the invoice)
            "raw": json.loads(json.dumps(_head(invoice.raw), default=str)),
        },
    }
    transfer.status, transfer.started_at = "waiting", None
    store(transfer, "reason", message(WAITING))
    log_step(transfer, "payment", "waiting", message(WAITING))
    setup_id = transfer.source_link.setup_id
    enqueue_once_after_commit(JOB, setup_id, flag=flag_key(setup_id), flag_seconds=FLAG_SECONDS)
    db.session.commit()


def _head(raw: dict) -> dict:
    return {key: value for key, value in raw.items() if key != "lines"}


def _payment(transfer: Transfer) -> PaymentData:
    stored = transfer.pending_payment
    invoice = stored["invoice"]
    return PaymentData(
        invoice=RemoteInvoice(
            id=invoice["id"],
            reference=invoice["reference"],
            booked=True,
            totals=None,
            number=invoice["number"],
            raw=invoice["raw"],
        ),
        amount=Decimal(stored["amount"]),
        date=date.fromisoformat(stored["date"]),
        reference=stored["reference"],
        account=stored["account"],
        journal=stored["journal"],
        lookup=stored["lookup"],
    )


def _waiting(setup_id: int):
    return select(Transfer.id).where(
        Transfer.status == "waiting",
        Transfer.pending_payment.is_not(None),
        Transfer.source_link_id.in_(select(SourceLink.id).where(SourceLink.setup_id == setup_id)),
    )


# --- the batch job -----------------------------------------------------------------------------------------


def run(setup_id: int) -> int:
    """Register the waiting payments of one accounting setup together; returns how many were sent."""
    redis = get_redis()
    redis.delete(flag_key(setup_id))  # before the look: a payment parked after it queues the next job
    ids = db.session.scalars(_waiting(setup_id).order_by(Transfer.id).limit(BATCH_SIZE)).all()
    db.session.rollback()
    if not ids:
        return 0
    leases = _take_leases(redis, ids)
    try:
        claimed = _claim(list(leases))
        if claimed:
            # The rows alone (what a payment needs is in pending_payment): not their source link, nor the
            # event with its sale, which only a rare failure's message reads (lazily).
            transfers = db.session.scalars(
                select(Transfer)
                .where(Transfer.id.in_(claimed))
                .order_by(Transfer.id)
                .execution_options(populate_existing=True)
            ).all()
            _register(db.session.get(AccountingSetup, setup_id), transfers)
    finally:
        ride = ride_along.RideAlong()  # all the leases in one round trip
        ride.leases.extend(leases.values())
        ride.send()
    if len(ids) == BATCH_SIZE:  # more may wait: behind the work queued meanwhile
        enqueue_once_after_commit(JOB, setup_id, flag=flag_key(setup_id), flag_seconds=FLAG_SECONDS)
        db.session.commit()
    elif len(claimed) < len(ids) and redis.set(flag_key(setup_id), "1", nx=True, ex=FLAG_SECONDS):
        # held a moment (the run that parked it had not let go yet): looked at again shortly
        get_queue().enqueue_in(timedelta(seconds=1), JOB, setup_id)
    return len(claimed)


def _take_leases(redis, ids: list[int]) -> dict[int, Lease]:
    """Each transfer's lease, as run_transfer takes it, in one round trip; a transfer another worker holds
    is left to it."""
    leases = {transfer_id: Lease(redis, transfer_lock_key(transfer_id)) for transfer_id in ids}
    with redis.pipeline(transaction=False) as pipe:
        for lease in leases.values():
            pipe.set(lease.key, lease.token, nx=True, px=int(LOCK_SECONDS * 1000))
        taken = pipe.execute()
    for (transfer_id, lease), ok in zip(list(leases.items()), taken, strict=True):
        if ok:
            lease._start()  # renewed by the process's heartbeat from now on
        else:
            del leases[transfer_id]
    return leases


def _claim(ids: list[int]) -> list[int]:
    """Waiting → running with payment_requested, committed before anything is sent: only a row still
    waiting passes the WHERE (a row lock on PostgreSQL, the one writer on SQLite), so a payment is claimed
    once, and a resume after a crash looks its reference up."""
    if not ids:
        return []
    claimed = db.session.scalars(
        update(Transfer)
        .where(Transfer.id.in_(ids), Transfer.status == "waiting", Transfer.pending_payment.is_not(None))
        .values(status="running", started_at=utcnow(), payment_requested=True)
        .returning(Transfer.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(claimed)


def _register(setup: AccountingSetup, transfers: list[Transfer]) -> None:
    try:
        connector = connector_for(setup.connection, setup.external_id)
        periods.load_years(connector, setup.id)
        results = connector.register_payments([_payment(transfer) for transfer in transfers])
        periods.save_years(connector, setup.id)
    except TransientError as exc:
        for transfer in transfers:  # resumed alone, later, looking its reference up
            retry_or_give_up(transfer, exc, N_("The accounting system is busy or unreachable"))
        return
    except ConnectorError as exc:
        # Refused (one payment's fault, maybe): each is sent alone and gets its own outcome.
        log.warning("payment batch of setup %s refused: %s", setup.id, exc)
        db.session.rollback()
        for transfer in transfers:
            _alone(transfer, str(exc))
        db.session.commit()
        return
    except Exception as exc:
        if failures.ours_unavailable(exc):
            raise  # the transfers stay `running` without a lease: the watchdog resumes them
        log.exception("payment batch of setup %s", setup.id)
        db.session.rollback()
        kind, problem = failures.explain(exc, setup.connection.system)
        for transfer in transfers:  # as the transfer's own run ends on an unexpected error
            needs_attention(transfer, kind, problem)
        return
    from portal.pipeline.posting import foreign_entries, wake_waiting_credit_notes

    done = []
    for transfer, result in zip(transfers, results, strict=True):
        if isinstance(result, ForeignEntries):
            needs_attention(transfer, "configuration", foreign_entries(result))
        elif isinstance(result, Exception):
            _alone(transfer, str(result))
        else:
            _done(transfer, result)
            done.append(transfer)
    wake_waiting_credit_notes(*done)  # one UPDATE for the batch
    db.session.commit()


def _alone(transfer: Transfer, detail: str) -> None:
    """Sent on its own instead: its run then ends as a single payment's would (its own message)."""
    transfer.status, transfer.started_at, transfer.next_attempt_at = "pending", None, None
    log_step(
        transfer,
        "payment",
        "error",
        message(N_("Not registered with the others (%(detail)s): registering it on its own."), detail=detail),
    )
    enqueue_after_commit("workers.jobs.run_transfer", transfer.id)


def _done(transfer: Transfer, payment_id: str) -> None:
    method = transfer.pending_payment.get("method")
    transfer.payment_id, transfer.pending_payment = payment_id, None
    log_step(
        transfer,
        "payment",
        "ok",
        message(N_("Payment %(id)s registered (%(method)s)."), id=payment_id, method=method),
    )
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = None
    log_step(
        transfer, "done", "ok", message(N_("Booked as number %(number)s."), number=transfer.booked_number)
    )


# --- the watchdog ------------------------------------------------------------------------------------------


def requeue_lost() -> list[int]:
    """Setups with payments parked for a while and no job queued (its flag expired: the job was lost with
    its worker, or Redis restarted empty): a job is queued again. Returns those setups."""
    cutoff = utcnow() - GRACE
    setups = db.session.scalars(
        select(SourceLink.setup_id)
        .join(Transfer, Transfer.source_link_id == SourceLink.id)
        .where(
            Transfer.status == "waiting",
            Transfer.pending_payment.is_not(None),
            Transfer.updated_at < cutoff,
        )
        .distinct()
    ).all()
    db.session.rollback()
    redis, queued = get_redis(), []
    for setup_id in setups:
        if redis.set(flag_key(setup_id), "1", nx=True, ex=FLAG_SECONDS):
            get_queue().enqueue(JOB, setup_id)
            queued.append(setup_id)
    if queued:
        log.warning("payment batches queued again: %s", queued)
    return queued
