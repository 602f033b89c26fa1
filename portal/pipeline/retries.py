"""Retries: a transient failure retried with back-off, then given up on as "needs attention"; a person's
retry (one transfer, or every one matching the log's filters) and "leave out"."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, select

from portal import audit
from portal.connectors.errors import TransientError
from portal.extensions import db
from portal.models import Transfer, utcnow
from portal.pipeline.counts import exact_count
from portal.pipeline.filters import TransferFilters
from portal.pipeline.locks import DRAIN_FLAG_SECONDS, _drain_flag
from portal.pipeline.messages import N_, Message, message, store
from portal.pipeline.steps import log_step, remote_answer
from portal.queue import enqueue_after_commit, enqueue_once_after_commit, get_queue

RETRYABLE = ("needs_attention", "pending", "waiting")  # what a person may queue again


def _kept(transfer: Transfer) -> Transfer:
    """The transfer to record a failure on. What the run did before the failure stands (the event's
    outcome, the steps done and their log: each reflects what the other systems hold); only a session
    left unusable by a failed flush is rolled back."""
    if db.session.is_active:
        return transfer
    db.session.rollback()
    return db.session.get(Transfer, transfer.id)


def needs_attention(
    transfer: Transfer, kind: str, problem: Message | str, answer: dict | None = None
) -> None:
    transfer = _kept(transfer)
    transfer.status, transfer.error_kind = "needs_attention", kind
    store(transfer, "error_message", problem)
    transfer.started_at = None
    log_step(transfer, "error", "error", problem, {"kind": kind, **(answer or {})})
    db.session.commit()


def backoff(attempts: int, exc: TransientError) -> float | None:
    """Seconds until the next try after `attempts` transient failures (doubling, honouring Retry-After);
    None when it is time to give up (PIPELINE_MAX_ATTEMPTS)."""
    if attempts >= current_app.config.get("PIPELINE_MAX_ATTEMPTS", 5):
        return None
    base = current_app.config.get("PIPELINE_RETRY_SECONDS", 30)
    return max(exc.retry_after or 0, base * 2 ** (attempts - 1))


def retry_or_give_up(transfer: Transfer, exc: TransientError, what: str) -> None:
    transfer = _kept(transfer)
    problem = message(N_("%(what)s: %(detail)s"), what=message(what), detail=exc.message)
    delay = backoff(transfer.attempts, exc)
    if delay is None:
        needs_attention(
            transfer,
            "transient",
            message(
                N_("%(problem)s. Gave up after %(attempts)s attempts; retry later."),
                problem=problem,
                attempts=transfer.attempts,
            ),
            remote_answer(exc),
        )
        return
    transfer.status, transfer.started_at = "pending", None
    transfer.next_attempt_at = utcnow() + timedelta(seconds=delay)
    transfer.error_kind = "transient"
    store(transfer, "error_message", problem)
    log_step(
        transfer,
        "retry",
        "error",
        message(N_("%(problem)s; retry in %(seconds)s s."), problem=problem, seconds=f"{delay:.0f}"),
        {"attempt": transfer.attempts, **remote_answer(exc)},
    )
    db.session.commit()
    get_queue().enqueue_in(timedelta(seconds=delay), "workers.jobs.run_transfer", transfer.id)


def retry(transfer: Transfer) -> None:
    """A person asked to try again (after fixing what the message said)."""
    if transfer.status not in RETRYABLE:
        return
    requeue(transfer, message(N_("Retry requested.")))
    db.session.commit()


def posted_nothing(transfer: Transfer) -> bool:
    """No document was created (or asked for) in the accounting system yet."""
    return not (transfer.draft_id or transfer.draft_requested or transfer.booked_number)


def retry_effect(transfer: Transfer) -> Message:
    """What "Retry" will do, said before the person presses it."""
    if posted_nothing(transfer):
        return message(N_("A retry reads the order as it is now in the sales source, with today's settings."))
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
            "A retry makes the draft in the accounting system again from the order as it is now in the "
            "sales source (same reference), then goes on."
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
    log_step(transfer, "decide", "skipped", reason)
    audit.record("transfer.left_out", transfer, changes={"status": {"before": None, "after": "skipped"}})
    db.session.commit()
    return True


def requeue(transfer: Transfer, why: Message) -> None:
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
            transfer.source_link_id,
            flag=_drain_flag(transfer.source_link_id),
            flag_seconds=DRAIN_FLAG_SECONDS,
        )
    else:
        transfer.rebuild_draft = not transfer.booked_number and transfer.remote_order is None
        enqueue_after_commit("workers.jobs.run_transfer", transfer.id)
    log_step(transfer, "retry", "ok", why)


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
        requeue(transfer, message(N_("Retry requested (with others).")))
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
