"""The completeness report ("Afstemning"): one run per shop link and period, the sales in the shop against
the documents in the ledger, read through both systems' APIs (portal.pipeline.completeness)."""

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.transfers import SourceLink
from portal.models.types import UTCDateTime, utcnow

REPORT_STATUSES = ("queued", "running", "done", "failed")
REPORT_TRIGGERS = ("daily", "manual")


class CompletenessReport(db.Model):
    __tablename__ = "completeness_reports"
    __table_args__ = (Index("ix_completeness_reports_source_link", "source_link_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    source_link_id: Mapped[int] = mapped_column(ForeignKey("source_links.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(String(10), default="manual")
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # while running: {"sales": n, "documents": n} read so far
    progress: Mapped[dict | None] = mapped_column(JSON)
    # when done: {"sales": n, "documents": n, "refunds": n, "findings": [...]} (pipeline.completeness)
    result: Mapped[dict | None] = mapped_column(JSON)
    calls: Mapped[dict | None] = mapped_column(JSON)  # requests sent per system
    error: Mapped[dict | None] = mapped_column(JSON)  # a message (msgid + parameters) when it failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    source_link: Mapped[SourceLink] = relationship()

    @property
    def findings(self) -> list[dict]:
        return (self.result or {}).get("findings", [])
