"""What the posting steps share: the classified failure (TransferFailed), the step log (log_step, with
secrets redacted), the load options a run needs, and the rules around every remote call — commit and renew
the lock before it (before_remote_call), find by reference after an ambiguous create (sent_or_found), and
look before a first create only when something else may have used the reference."""

import re
from contextvars import ContextVar

from flask import current_app
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, joinedload

from portal.connectors.base import AccountingConnector
from portal.connectors.errors import AmbiguousWriteError, ConnectorError
from portal.engine.invoice import DraftPlan
from portal.extensions import db
from portal.models import AccountingSetup, SourceEvent, SourceLink, Transfer, TransferLog, utcnow
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.locks import _keep_lock
from portal.pipeline.messages import N_, Message, amount, message
from portal.redaction import redact_text
from portal.setups.connections import connector_for


class TransferFailed(Exception):
    """A step failed in a way already classified: (error kind, message for the user)."""

    def __init__(self, kind: str, message: Message | str):
        super().__init__(message.english() if isinstance(message, Message) else message)
        self.kind = kind
        self.message = message


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


def found_by_reference(number, reference: str) -> Message:
    return message(N_("Found %(number)s by reference %(reference)s."), number=number, reference=reference)


def answer_lost(remote_id) -> Message:
    return message(N_("The create's answer was lost; found %(id)s by reference."), id=remote_id)


def log_step(
    transfer: Transfer, step: str, outcome: str, said: "Message | str", details: dict | None = None
) -> None:
    """One step log row: the English text (search, old readers) and, for a Message, its msgid and
    parameters, so the page shows it in the reader's language (portal.pipeline.messages.log_text).

    Built now (redacted, timestamped) and written with the transaction's next statement or commit, all
    rows waiting by then in one INSERT (_write_logs): as ORM objects, the rows cost a steady-state order a
    quarter of its own time in the unit of work."""
    english = said.english() if isinstance(said, Message) else said
    row = {
        "account_id": transfer.account_id,
        "transfer_id": transfer.id,  # a logged transfer is always flushed (it has its id)
        "attempt": transfer.attempts,
        "step": step,
        "outcome": outcome,
        "message": redact_text(english) if english else english,
        "text": redact(said.as_dict()) if isinstance(said, Message) else None,
        "details": redact(details or {}),
        "created_at": utcnow(),
    }
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that a rollback or close without a statement drops the rows too (_drop_logs)
    session.info.setdefault(_LOGS, []).append(row)


_LOGS = "bogbro.step_logs"
_INSERT_LOGS = insert(TransferLog.__table__)


def _write_logs(session: Session) -> None:
    """The rows log_step built, before anything in this transaction can read them or commits: before each
    statement the session executes (a query of the log sees them; a lazy load too), each flush and the
    commit."""
    rows = session.info.pop(_LOGS, None)
    if rows:
        # on the transaction's connection, not session.execute: no autoflush, no events, no recursion
        session.connection().execute(_INSERT_LOGS, rows)


@event.listens_for(Session, "do_orm_execute")
def _logs_before_statement(state) -> None:
    _write_logs(state.session)


@event.listens_for(Session, "before_flush")
def _logs_before_flush(session, flush_context, instances) -> None:
    _write_logs(session)


@event.listens_for(Session, "before_commit")
def _logs_before_commit(session) -> None:
    _write_logs(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_logs(session, transaction) -> None:
    if transaction.parent is None:  # rolled back (or closed) with the rest: written by a commit already
        session.info.pop(_LOGS, None)


def remote_answer(exc: Exception) -> dict:
    """What the remote system answered, for the log (secrets redacted)."""
    if not isinstance(exc, ConnectorError):
        return {}
    return redact({"system": exc.system, "status": exc.status, "details": exc.details})


# Load options: a source link with its accounting setup, templates and both connections, in the query that
# loads it or what points at it — a run needs them all, and lazy loads cost a query (and a flush) each.
# Built once: building loader options cost more than the query's own SQL.
SOURCE_LINK_GRAPH = (
    joinedload(SourceLink.setup).joinedload(AccountingSetup.connection),
    joinedload(SourceLink.setup).selectinload(AccountingSetup.templates),
    joinedload(SourceLink.connection),
)
EVENT_GRAPH = (joinedload(SourceEvent.source_link).options(*SOURCE_LINK_GRAPH),)
TRANSFER_GRAPH = (joinedload(Transfer.source_link).options(*SOURCE_LINK_GRAPH), joinedload(Transfer.event))


def before_remote_call() -> None:
    """Before asking another system: renew this worker's lock (or stop: LockLost), and commit what this
    run has changed so far — no write transaction may stay open across a remote call (SQLite would block
    every other writer, the in-process sandboxes too, for as long as the call takes). Steps that need no
    remote call (cached customer and products) leave their changes to the next commit."""
    _keep_lock()
    db.session.commit()


def totals_differ(plan: DraftPlan, draft_id: str | None = None, order: str | None = None) -> Message:
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
                "The totals differ: the sales source says %(shop)s, the accounting system will compute "
                "%(computed)s. The order %(order)s was created: correct it in the accounting system (or the "
                "order), then retry."
            ),
            order=order,
            **figures,
        )
    return message(
        N_(
            "The totals differ: the sales source says %(shop)s, the accounting system will compute "
            "%(computed)s. The draft %(draft)s was created but not booked: correct it in the accounting "
            "system (or the order), then book it there."
        ),
        draft=draft_id,
        **figures,
    )


def sent_or_found(create, find, reference: str):
    """(document, answer_lost): send a create; when its answer was lost, the document carrying the
    reference is the answer — and when there is none, the create did not happen (raise, to retry)."""
    try:
        return create(), False
    except AmbiguousWriteError:
        remote = find(reference)  # did it happen?
        if remote is None:
            raise
        return remote, True


def first_create_needs_lookup(transfer: Transfer) -> bool:
    """Whether a first create must look for its reference in the accounting system first.

    Not in steady state: `draft_requested` is committed before any create is sent and the transfer is
    unique per (source_link, order), so only this transfer can have sent one. Yes when that reasoning does
    not hold: an import on purpose (the order may have been transferred by hand or by an earlier setup),
    another source link of the account writing references with the same shop id, or a database restored
    from a backup (PIPELINE_LOOKUP_BEFORE_CREATE)."""
    if current_app.config.get("PIPELINE_LOOKUP_BEFORE_CREATE") or transfer.event.source == "manual":
        return True
    source_link = transfer.source_link
    memo = batch_memo.get()
    key = ("shop shared", source_link.id)
    if memo is not None and key in memo:
        return memo[key]
    shop_id = pipeline_settings.shop_id(source_link.id, source_link.settings)
    with db.session.no_autoflush:  # the run's changes go with its next checkpoint, not before this read
        siblings = db.session.execute(
            select(SourceLink.id, SourceLink.settings).where(
                SourceLink.account_id == source_link.account_id, SourceLink.id != source_link.id
            )
        ).all()
    shared = any(pipeline_settings.shop_id(other, settings) == shop_id for other, settings in siblings)
    if memo is not None:
        memo[key] = shared
    return shared


def run_connector(setup: AccountingSetup) -> AccountingConnector:
    """The connector a run posts through: in a drain batch, the batch's for its setup. Building one (its
    HTTP client, rate limiter and credentials) cost a twentieth of a steady-state sale's own time; within
    a batch nothing it holds changes but a refreshed token, which the next run wants too."""
    memo = batch_memo.get()
    if memo is None:
        return connector_for(setup.connection, setup.external_id)
    key = ("connector", setup.id)
    if key not in memo:
        memo[key] = connector_for(setup.connection, setup.external_id)
    return memo[key]


# What a drain batch reads or builds once for all its events, like the source link itself:
# ("shop shared", source_link id) → whether another source link of the account writes the same shop id
# (first_create_needs_lookup); ("connector", setup id) → the setup's connector (run_connector).
batch_memo: ContextVar[dict | None] = ContextVar("bogbro_drain_batch", default=None)
