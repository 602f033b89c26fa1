"""Sales sources (a webshop linked to an accounting setup), the raw events they receive, and the
transfers those events become: one per (source_link, kind, source id), never two.

A Transfer is a state machine with a checkpoint per posting step, so a retry (or a second worker after the
first one died) resumes where the last committed step left off and never redoes a step:

    pending ─► running ─► done
                     ├──► skipped          (state not transferring, before the activation date: `reason`)
                     ├──► waiting          (a credit note whose invoice is not booked yet)
                     └──► needs_attention  (error_kind: ERROR_KINDS)
"""

import secrets
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedJSON
from portal.extensions import db
from portal.models.accounts import Account
from portal.models.setups import AccountingSetup, Connection
from portal.models.types import UTCDateTime, utcnow

EVENT_SOURCES = ("webhook", "poll", "manual")
TRANSFER_KINDS = ("invoice", "credit_note")
TRANSFER_STATUSES = ("pending", "running", "done", "skipped", "waiting", "needs_attention")
# pipeline.failures says which: the setup, the order itself, or an error nobody expected
ERROR_KINDS = ("configuration", "order", "transient", "totals_differ", "unexpected")
# Per order state, the document to create: nothing, an order (e-conomic's stock-reserving order), a draft
# invoice, or a booked invoice.
DOCUMENTS = ("none", "order", "draft", "booked")
ORDER_PREFIX = "order:"  # Transfer.draft_id of an order (see Transfer.remote_order)

Money = Numeric(14, 2)


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


class SourceLink(db.Model):
    """A source connection (a webshop) posting into an accounting setup, with its settings."""

    __tablename__ = "source_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)  # role="webshop"
    setup_id: Mapped[int] = mapped_column(ForeignKey("accounting_setups.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # The engine's SourceLinkSettings fields plus the pipeline's own (see portal.pipeline.settings).
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    # {"secret": "..."}: the shared secret the shop signs its webhooks with; encrypted, never rendered.
    webhook_secret: Mapped[dict] = mapped_column(EncryptedJSON, default=dict, deferred=True)
    # {"smtp_password": "..."}: the customer's own SMTP password for invoice mails; encrypted, never rendered.
    mail_secret: Mapped[dict | None] = mapped_column(EncryptedJSON, deferred=True)
    # The unguessable part of the delivery URL /webhooks/<source>/<token>.
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_webhook_token)
    active: Mapped[bool] = mapped_column(default=False)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_report_on: Mapped[date | None] = mapped_column(Date)  # the daily status report went out that day
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    connection: Mapped[Connection] = relationship()
    setup: Mapped[AccountingSetup] = relationship()

    @property
    def source_system(self) -> str:
        return self.connection.system

    @property
    def display_name(self) -> str:
        """What people call it: its name, else the shop connection's label, else its number."""
        return self.name or self.connection.label or f"#{self.id}"


class SourceEvent(db.Model):
    """An inbound payload exactly as received, stored before anything reads it."""

    __tablename__ = "source_events"
    __table_args__ = (
        UniqueConstraint("source_link_id", "delivery_id"),
        # The events still waiting: a few among a year's, found without reading the rest (the drain, the
        # watchdogs, /metrics' oldest waiting event).
        Index(
            "ix_source_events_waiting",
            "received_at",
            "source_link_id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    source_link_id: Mapped[int] = mapped_column(ForeignKey("source_links.id"), index=True)
    source: Mapped[str] = mapped_column(String(20))  # webhook | poll | manual
    delivery_id: Mapped[str] = mapped_column(String(200))  # the sender's id; replays share it
    topic: Mapped[str] = mapped_column(String(100), default="")
    resource_id: Mapped[str | None] = mapped_column(String(100))
    raw_body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(Text)

    source_link: Mapped[SourceLink] = relationship()


class Transfer(db.Model):
    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("source_link_id", "kind", "source_ref"),
        Index("ix_transfers_status", "status", "next_attempt_at"),
        # Shaped for the pages over a year of history (tests/bench_portal.py): the log and a date range read
        # the newest first; a status filter, "needs attention" and the bulk re-transfer count read one
        # status's range; an order number matches exactly or as a prefix (pattern ops: LIKE 'x%' on
        # PostgreSQL whatever the collation); the dashboard's newest needing attention by when they failed.
        Index("ix_transfers_account_created", "account_id", "created_at", "id"),
        Index("ix_transfers_account_status", "account_id", "status", "created_at", "id"),
        Index(
            "ix_transfers_account_order",
            "account_id",
            "order_number",
            postgresql_ops={"order_number": "varchar_pattern_ops"},
        ),
        Index(
            "ix_transfers_attention",
            "account_id",
            "updated_at",
            postgresql_where=text("status = 'needs_attention'"),
            sqlite_where=text("status = 'needs_attention'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))  # indexed first in the indexes above
    source_link_id: Mapped[int] = mapped_column(ForeignKey("source_links.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # invoice | credit_note
    source_ref: Mapped[str] = mapped_column(String(100))  # the shop's order id (refund id for credit notes)
    order_ref: Mapped[str] = mapped_column(String(100))  # the shop's order id (for both kinds)
    order_number: Mapped[str] = mapped_column(String(100), default="")
    reference: Mapped[str] = mapped_column(String(100), default="")  # our deterministic remote reference
    event_id: Mapped[int | None] = mapped_column(ForeignKey("source_events.id"))  # the latest payload
    # order | draft | booked, as decided; a later state may raise it (order → draft/booked, draft → booked)
    document: Mapped[str] = mapped_column(String(20), default="draft")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)  # why skipped / waiting
    error_kind: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)
    # the msgid and parameters behind error_message / reason, to show them translated (pipeline.messages)
    message: Mapped[dict | None] = mapped_column(JSON)
    # checkpoints, each committed before the next step starts
    remote_customer_id: Mapped[str | None] = mapped_column(String(100))
    remote_customer_number: Mapped[str | None] = mapped_column(String(100))
    products_ensured: Mapped[bool] = mapped_column(default=False)
    draft_requested: Mapped[bool] = mapped_column(default=False)  # a create was sent (answer maybe lost)
    # The draft invoice's id; while the document is still an order (e-conomic's, reserving stock):
    # ORDER_PREFIX + the order number ("order:" alone: its create was sent, the number not yet known).
    draft_id: Mapped[str | None] = mapped_column(String(100))
    # A person retried: a draft still unbooked is made anew from the order as it is now (replace_draft).
    rebuild_draft: Mapped[bool] = mapped_column(default=False)
    booked_number: Mapped[str | None] = mapped_column(String(100))
    payment_id: Mapped[str | None] = mapped_column(String(100))
    payment_requested: Mapped[bool] = mapped_column(default=False)  # a payment was sent (answer maybe lost)
    # The payment waiting for its setup's batch (pipeline.payment_batches): what will be sent, so the batch
    # needs no call to rebuild it. Set while the transfer is `waiting` for it, cleared when registered.
    pending_payment: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    mailed: Mapped[bool] = mapped_column(default=False)
    # How often its document was undone (pipeline.undo): the next document's reference gets "-V<n+1>"
    undone: Mapped[int] = mapped_column(default=0, server_default="0")
    # set when the error digest told the recipients about this transfer's needs_attention (None: not yet)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the figures
    shop_gross: Mapped[Decimal | None] = mapped_column(Money)
    shop_vat: Mapped[Decimal | None] = mapped_column(Money)
    computed_gross: Mapped[Decimal | None] = mapped_column(Money)
    computed_vat: Mapped[Decimal | None] = mapped_column(Money)
    # ISO 4217, the sale's (the figures are in it); None on rows from before it was recorded: unknown
    currency: Mapped[str | None] = mapped_column(String(3))
    # scheduling
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set while running (watchdog)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    source_link: Mapped[SourceLink] = relationship()
    event: Mapped[SourceEvent | None] = relationship()

    logs: Mapped[list["TransferLog"]] = relationship(
        back_populates="transfer", order_by="TransferLog.id", cascade="all, delete-orphan"
    )

    @property
    def remote_order(self) -> str | None:
        """The accounting system's order number while the transfer's document is an order not yet invoiced
        ("" while its create's answer is outstanding); None otherwise."""
        if self.draft_id and self.draft_id.startswith(ORDER_PREFIX):
            return self.draft_id.removeprefix(ORDER_PREFIX)
        return None


@event.listens_for(Transfer.status, "set")
def _reportable_again(transfer: Transfer, value, oldvalue, initiator) -> None:
    """A transfer that leaves needs_attention (retried, requeued, done) loses its error-digest mark, so
    failing again later is reported again (portal.pipeline.notifications)."""
    if value != "needs_attention":
        transfer.notified_at = None


class TransferLog(db.Model):
    """One step of one attempt: what was asked and answered, with secrets redacted."""

    __tablename__ = "transfer_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    attempt: Mapped[int] = mapped_column(default=0)
    step: Mapped[str] = mapped_column(String(40))  # decide | customer | products | draft | book | payment …
    outcome: Mapped[str] = mapped_column(String(20))  # ok | reused | skipped | error
    message: Mapped[str] = mapped_column(Text, default="")  # English
    # the msgid and parameters behind `message`, to show it in the reader's language (pipeline.messages)
    text: Mapped[dict | None] = mapped_column(JSON)
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # redacted request/response summaries
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    transfer: Mapped[Transfer] = relationship(back_populates="logs")
