"""The price catalogue staff edit (systems, volume tiers, add-ons, features, combination rules) and the
quote requests prospects send from the public calculator.

Prices are `Numeric(10, 2)` in kroner, ex. VAT; the calculator turns these rows into the plain
dataclasses of `portal.calculator.pricing` and never prices from the ORM objects themselves.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

SYSTEM_KINDS = ("accounting", "webshop", "subscription", "acquirer", "pos", "warehouse", "file")
SETUP_MODES = ("required", "optional")
RULE_OUTCOMES = ("special", "unavailable")
QUOTE_KINDS = ("quote", "contact", "notify")
QUOTE_STATUSES = ("new", "contacted", "won", "lost")

Money = Numeric(10, 2)
Percent = Numeric(5, 2)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class PriceSettings(db.Model):
    """The catalogue's global numbers; there is one row (created on first use)."""

    __tablename__ = "price_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    half_yearly_discount_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    vat_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("25"))


class PriceSystem(db.Model):
    """A system a prospect can connect: its module price per month and its set-up."""

    __tablename__ = "price_systems"
    __table_args__ = (
        CheckConstraint(_in("kind", SYSTEM_KINDS), name="kind"),
        CheckConstraint(_in("setup", SETUP_MODES), name="setup"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    monthly_price: Mapped[Decimal] = mapped_column(Money)
    setup_price: Mapped[Decimal] = mapped_column(Money)
    setup: Mapped[str] = mapped_column(String(10), default="optional")  # required | optional
    delivery_days: Mapped[int] = mapped_column(default=0)  # working days for our set-up
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self):
        return f"<PriceSystem {self.slug}>"


class PriceTier(db.Model):
    """A volume tier: the subscription price per month for up to `max_orders` orders a month."""

    __tablename__ = "price_tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    max_orders: Mapped[int] = mapped_column(unique=True)
    monthly_price: Mapped[Decimal] = mapped_column(Money)


class PriceAddOn(db.Model):
    """An add-on with a price per month and/or a one-off price, possibly bought in a quantity."""

    __tablename__ = "price_addons"
    __table_args__ = (
        CheckConstraint(
            f"requires_kind IS NULL OR {_in('requires_kind', SYSTEM_KINDS)}", name="requires_kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    monthly_price: Mapped[Decimal] = mapped_column(Money)
    setup_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    delivery_days: Mapped[int] = mapped_column(default=0)
    max_quantity: Mapped[int] = mapped_column(default=1)
    requires_kind: Mapped[str | None] = mapped_column(String(20))
    requires_system_id: Mapped[int | None] = mapped_column(ForeignKey("price_systems.id"))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    requires_system: Mapped[PriceSystem | None] = relationship()

    def __repr__(self):
        return f"<PriceAddOn {self.slug}>"


class PriceFeature(db.Model):
    """A line of "what you get"; shown when its kind of system (or its add-on) is chosen."""

    __tablename__ = "price_features"
    __table_args__ = (
        CheckConstraint(
            f"requires_kind IS NULL OR {_in('requires_kind', SYSTEM_KINDS)}", name="requires_kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    requires_kind: Mapped[str | None] = mapped_column(String(20))
    requires_addon_id: Mapped[int | None] = mapped_column(ForeignKey("price_addons.id"))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    requires_addon: Mapped[PriceAddOn | None] = relationship()

    def __repr__(self):
        return f"<PriceFeature {self.slug}>"


class PriceFeatureNote(db.Model):
    """A caveat of one feature with one system ("Dinero keeps no stock")."""

    __tablename__ = "price_feature_notes"
    __table_args__ = (UniqueConstraint("feature_id", "system_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(ForeignKey("price_features.id"), index=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("price_systems.id"), index=True)
    note: Mapped[str] = mapped_column(Text)
    note_en: Mapped[str] = mapped_column(Text, default="")

    feature: Mapped[PriceFeature] = relationship()
    system: Mapped[PriceSystem] = relationship()


class PriceRule(db.Model):
    """A combination that is special (no price, a contact form) or not available yet.

    It applies when its system, and its other system if it has one, are both chosen.
    """

    __tablename__ = "price_rules"
    __table_args__ = (CheckConstraint(_in("outcome", RULE_OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("price_systems.id"), index=True)
    other_system_id: Mapped[int | None] = mapped_column(ForeignKey("price_systems.id"))
    outcome: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, default="")
    note_en: Mapped[str] = mapped_column(Text, default="")

    system: Mapped[PriceSystem] = relationship(foreign_keys=[system_id])
    other_system: Mapped[PriceSystem | None] = relationship(foreign_keys=[other_system_id])


class QuoteRequest(db.Model):
    """A prospect's request, with the selection and the price computed at that moment frozen in."""

    __tablename__ = "quote_requests"
    __table_args__ = (
        CheckConstraint(_in("kind", QUOTE_KINDS), name="kind"),
        CheckConstraint(_in("status", QUOTE_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(10))  # quote | contact | notify
    status: Mapped[str] = mapped_column(String(10), default="new", index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    cvr: Mapped[str | None] = mapped_column(String(8))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(2), default="da")
    # {"systems": [...], "orders": n, "addons": {slug: qty}, "billing": ..., "setup": bool}
    selection: Mapped[dict] = mapped_column(JSON)
    # pricing.breakdown_as_json(): labels, lines and totals as strings, as the prospect saw them.
    breakdown: Mapped[dict] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self):
        return f"<QuoteRequest {self.id} {self.kind} {self.email}>"
