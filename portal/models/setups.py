"""Connections to external systems and the accounting setups ("bogføringsopsætninger") on them.

A Connection holds the credentials of one grant (an e-conomic agreement grant, a Dinero OAuth grant that
may reach several organisations, a Dynaccount API key). Each organisation/agreement reached through it
gets its own AccountingSetup, with the Template rows that tell Bogbro where money lands.
"""

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedJSON
from portal.extensions import db
from portal.models.accounts import Account
from portal.models.types import UTCDateTime, utcnow

ACCOUNTING_SYSTEMS = ("e-conomic", "dinero", "dynaccount")
CONNECTION_STATUSES = ("active", "reconnect", "disabled")


class Connection(db.Model):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    system: Mapped[str] = mapped_column(String(30))
    role: Mapped[str] = mapped_column(String(20), default="accounting")
    label: Mapped[str] = mapped_column(String(200))
    # Tokens and keys; encrypted at rest, never rendered back to anyone.
    credentials: Mapped[dict] = mapped_column(EncryptedJSON)
    # True: talks to Bogbro's own emulator of the system (demo and tests), never to the real one.
    sandbox: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    setups: Mapped[list["AccountingSetup"]] = relationship(
        back_populates="connection", order_by="AccountingSetup.id"
    )


class AccountingSetup(db.Model):
    """One accounting setup: one organisation/agreement in one accounting system."""

    __tablename__ = "accounting_setups"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))  # agreement number / organisation id / API id
    name: Mapped[str] = mapped_column(String(200))  # the company's name in the accounting system
    # Why this organisation cannot be used (e.g. Dinero without a paid plan); None = usable.
    unusable_reason: Mapped[str | None] = mapped_column(Text)
    selected: Mapped[bool] = mapped_column(default=False)  # "Use this organisation" ticked in the wizard
    active: Mapped[bool] = mapped_column(default=False)  # every required template complete; transfers may run
    auto_book: Mapped[bool] = mapped_column(default=False)  # "Bogfør automatisk"; drafts until switched on
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The daily drift check's last result (portal.setups.drift) and the Copenhagen day it was claimed.
    drift: Mapped[dict | None] = mapped_column(JSON)
    drift_checked_on: Mapped[date | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    connection: Mapped[Connection] = relationship(back_populates="setups")
    account: Mapped[Account] = relationship()
    templates: Mapped[list["Template"]] = relationship(
        back_populates="setup", order_by="Template.id", cascade="all, delete-orphan"
    )

    @property
    def system(self) -> str:
        return self.connection.system

    def template(self, kind: str, zone: str = "") -> "Template | None":
        return next((t for t in self.templates if t.kind == kind and t.zone == zone), None)


class Template(db.Model):
    """An enrichment template ("berigelsesskabelon"): the values chosen for one kind of line in one zone."""

    __tablename__ = "accounting_templates"
    __table_args__ = (UniqueConstraint("setup_id", "kind", "zone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    setup_id: Mapped[int] = mapped_column(ForeignKey("accounting_setups.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # invoice | goods | freight | payments
    zone: Mapped[str] = mapped_column(String(20), default="")  # "" | domestic | eu | world
    # Field name -> the chosen value as the system identifies it (always a string), e.g. {"layout": "19"}.
    values: Mapped[dict] = mapped_column(JSON, default=dict)
    # Field name -> the label shown when the value was chosen (kept so a deleted choice is still named).
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    setup: Mapped[AccountingSetup] = relationship(back_populates="templates")


class SandboxRecord(db.Model):
    """State of the vendor sandboxes (documents keyed per system, tenant and collection)."""

    __tablename__ = "sandbox_records"
    __table_args__ = (
        UniqueConstraint("system", "tenant", "collection", "key"),
        Index("ix_sandbox_records_lookup", "system", "tenant", "collection"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(30))
    tenant: Mapped[str] = mapped_column(String(100))
    collection: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
