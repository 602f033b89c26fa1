"""An undo of a transfer ("Fortryd overførsel"): a booked invoice cannot be deleted in Denmark, so it is
credited in full (a draft or an order is deleted instead); then the order is transferred again or left out.

The undo is a checkpointed job of its own (portal.pipeline.undo), resumed after a worker's death from what is
committed here: `action` is decided once, `credit_requested` is committed before the credit note's create is
sent (a resume looks it up by its reference), and the transfer's reset and requeue come with `done`.

    queued ─► running ─► done
                    └──► needs_attention   (message: what to do)
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.transfers import Transfer
from portal.models.types import UTCDateTime, utcnow

UNDO_STATUSES = ("queued", "running", "done", "needs_attention")
OPEN_UNDO_STATUSES = ("queued", "running", "needs_attention")  # the transfer is being undone
# What happens to the order once its document is reversed
AFTERWARDS = ("retransfer", "leave_out")
# What the ledger held, and so what was done: a draft or order deleted, a booked invoice credited, or the
# document already gone (deleted by hand)
UNDO_ACTIONS = ("deleted", "credited", "gone")


OPEN_WHERE = text("status IN ('queued', 'running', 'needs_attention')")


class TransferUndo(db.Model):
    __tablename__ = "transfer_undos"
    __table_args__ = (
        # One open undo per transfer, whatever two requests (a double click, two tabs) race for.
        Index(
            "ux_transfer_undos_open",
            "transfer_id",
            unique=True,
            postgresql_where=OPEN_WHERE,
            sqlite_where=OPEN_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    afterwards: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")  # the customer's own words, for a left-out order
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # the document undone, as the transfer knew it when the undo was asked for
    reference: Mapped[str] = mapped_column(String(100))
    document_number: Mapped[str | None] = mapped_column(String(100))
    gross: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # checkpoints
    action: Mapped[str | None] = mapped_column(String(20))
    credit_requested: Mapped[bool] = mapped_column(default=False)
    credit_note_id: Mapped[str | None] = mapped_column(String(100))
    credit_note_number: Mapped[str | None] = mapped_column(String(100))
    payout_id: Mapped[str | None] = mapped_column(String(100))
    # the msgid and parameters of what stopped it (pipeline.messages)
    message: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set while running (watchdog)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    transfer: Mapped[Transfer] = relationship()
