"""The calculator's business functions: the catalogue as pricing data, quote requests and their mail,
and the staff's changes to quote requests and to the price catalogue (every one audited)."""

from decimal import Decimal

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.calculator import pricing, ratelimit
from portal.calculator.forms import query_string
from portal.extensions import db
from portal.mail import send_mail
from portal.models import (
    SYSTEM_KINDS,
    AuditEvent,
    PriceAddOn,
    PriceFeature,
    PriceFeatureNote,
    PriceRule,
    PriceSettings,
    PriceSystem,
    PriceTier,
    QuoteRequest,
    utcnow,
)
from portal.queue import enqueue_after_commit
from portal.web import public_link

# --- the catalogue as the pricing function's data ---------------------------------------------------------


def _text(obj, name: str, language: str) -> str:
    """The English text where there is one and English is wanted; the Danish one otherwise."""
    english = getattr(obj, f"{name}_en", "") if language == "en" else ""
    return english or getattr(obj, name)


def price_settings() -> PriceSettings:
    """The one settings row; an unsaved default until staff first save it."""
    return db.session.scalar(select(PriceSettings).order_by(PriceSettings.id).limit(1)) or PriceSettings(
        half_yearly_discount_percent=Decimal("0"), vat_percent=Decimal("25")
    )


def load_catalogue(language: str = "da") -> pricing.Catalogue:
    """The active catalogue as plain data, in the prospect's language. Read fresh on every request, so a
    change in the editor shows on the public page at once."""
    all_systems = db.session.scalars(
        select(PriceSystem).order_by(PriceSystem.position, PriceSystem.name)
    ).all()
    slug_of = {system.id: system.slug for system in all_systems}
    active_ids = {system.id for system in all_systems if system.active}
    systems = tuple(
        pricing.System(
            slug=system.slug,
            name=system.name,
            kind=system.kind,
            monthly_price=system.monthly_price,
            setup_price=system.setup_price,
            setup_required=system.setup == "required",
            delivery_days=system.delivery_days,
            description=_text(system, "description", language),
        )
        for system in all_systems
        if system.active
    )
    tiers = tuple(
        pricing.Tier(tier.max_orders, tier.monthly_price, tier.name)
        for tier in db.session.scalars(select(PriceTier).order_by(PriceTier.max_orders))
    )
    addon_rows = db.session.scalars(
        select(PriceAddOn).where(PriceAddOn.active).order_by(PriceAddOn.position, PriceAddOn.name)
    ).all()
    addons = tuple(
        pricing.AddOn(
            slug=addon.slug,
            name=_text(addon, "name", language),
            monthly_price=addon.monthly_price,
            setup_price=addon.setup_price,
            delivery_days=addon.delivery_days,
            max_quantity=addon.max_quantity,
            requires_kind=addon.requires_kind,
            requires_system=slug_of.get(addon.requires_system_id),
            description=_text(addon, "description", language),
        )
        for addon in addon_rows
    )
    addon_slug_of = {
        row.id: row.slug for row in db.session.execute(select(PriceAddOn.id, PriceAddOn.slug)).all()
    }
    notes: dict[int, dict[str, str]] = {}
    for note in db.session.scalars(select(PriceFeatureNote)):
        if note.system_id in active_ids:
            notes.setdefault(note.feature_id, {})[slug_of[note.system_id]] = _text(note, "note", language)
    features = tuple(
        pricing.Feature(
            slug=feature.slug,
            name=_text(feature, "name", language),
            requires_kind=feature.requires_kind,
            requires_addon=addon_slug_of.get(feature.requires_addon_id),
            notes=notes.get(feature.id, {}),
        )
        for feature in db.session.scalars(
            select(PriceFeature).where(PriceFeature.active).order_by(PriceFeature.position, PriceFeature.name)
        )
    )
    rules = tuple(
        pricing.Rule(
            systems=frozenset(slug_of[i] for i in (rule.system_id, rule.other_system_id) if i is not None),
            outcome=rule.outcome,
            note=_text(rule, "note", language),
        )
        for rule in db.session.scalars(select(PriceRule).order_by(PriceRule.id))
    )
    settings = price_settings()
    return pricing.Catalogue(
        systems=systems,
        tiers=tiers,
        addons=addons,
        features=features,
        rules=rules,
        half_yearly_discount_percent=settings.half_yearly_discount_percent,
        vat_percent=settings.vat_percent,
    )


# --- quote requests from prospects --------------------------------------------------------------------

REQUEST_KIND = {pricing.PRICED: "quote", pricing.SPECIAL: "contact", pricing.UNAVAILABLE: "notify"}


class QuoteError(Exception):
    """A refusal with a message meant for the prospect."""


class TooManyRequests(QuoteError):
    def __init__(self, seconds: int):
        super().__init__(
            _(
                "You have sent several requests in a short time. Try again in %(minutes)s minutes, "
                "or write to us at %(email)s.",
                minutes=-(-seconds // 60),
                email=current_app.config["SALES_EMAIL"],
            )
        )
        self.seconds = seconds


def request_kind(breakdown: pricing.Breakdown) -> str | None:
    """quote (priced), contact (special) or notify (unavailable); None: nothing to ask about yet."""
    return REQUEST_KIND.get(breakdown.status)


def submit_request(
    breakdown: pricing.Breakdown,
    contact: dict,
    *,
    ip: str,
    language: str,
    honeypot: str = "",
) -> QuoteRequest | None:
    """Save a prospect's request with its selection and price frozen in, and mail the prospect and sales
    once it is committed. A filled-in honeypot is a bot: it is counted and dropped without a word."""
    kind = request_kind(breakdown)
    if kind is None:
        raise ValueError(f"a {breakdown.status} selection cannot be requested")
    wait = ratelimit.hit(ip)
    if wait:
        raise TooManyRequests(wait)
    if honeypot:
        return None
    quote = QuoteRequest(
        kind=kind,
        status="new",
        name=contact.get("name") or "",
        company=contact.get("company") or "",
        cvr=contact.get("cvr") or None,
        email=contact["email"].strip().lower(),
        phone=contact.get("phone") or "",
        message=contact.get("message") or "",
        language=language,
        selection=pricing.selection_as_json(breakdown.selection),
        breakdown=pricing.breakdown_as_json(breakdown),
    )
    db.session.add(quote)
    db.session.flush()
    enqueue_after_commit("workers.jobs.send_quote_confirmation", quote.id)
    enqueue_after_commit("workers.jobs.send_quote_notification", quote.id)
    db.session.commit()
    return quote


def system_names() -> dict[str, str]:
    """Every system's name by its key (switched-off ones too: old quote requests name them)."""
    return dict(db.session.execute(select(PriceSystem.slug, PriceSystem.name)).all())


def calculator_link(quote: QuoteRequest) -> str:
    selection = pricing.selection_from_json(quote.selection)
    return public_link(f"/priser?{query_string(selection)}")


def _system_names(quote: QuoteRequest) -> dict[str, str]:
    names = system_names()
    return {slug: names.get(slug, slug) for slug in quote.selection["systems"]}


def deliver_quote_confirmation(quote_id: int) -> None:
    quote = db.session.get(QuoteRequest, quote_id)
    if quote is None:
        return
    with force_locale(quote.language):
        subjects = {
            "quote": _("We have received your request for a quote"),
            "contact": _("We have received your request"),
            "notify": _("We will let you know"),
        }
        body = render_template(
            "calculator/mail/confirmation.txt",
            quote=quote,
            systems=_system_names(quote),
            link=calculator_link(quote),
            sales_email=current_app.config["SALES_EMAIL"],
        )
        send_mail(quote.email, subjects[quote.kind], body)


def deliver_quote_notification(quote_id: int) -> None:
    quote = db.session.get(QuoteRequest, quote_id)
    if quote is None:
        return
    with force_locale("da"):
        who = quote.company or quote.email
        subjects = {
            "quote": _("New quote request from %(who)s", who=who),
            "contact": _("Special combination: %(who)s wants to talk", who=who),
            "notify": _("%(who)s wants to know when a combination is available", who=who),
        }
        body = render_template(
            "calculator/mail/notification.txt",
            quote=quote,
            systems=_system_names(quote),
            link=calculator_link(quote),
            inbox_link=public_link(f"/support/quotes/{quote.id}"),
        )
        send_mail(current_app.config["SALES_EMAIL"], subjects[quote.kind], body)


# --- the staff's quote inbox -----------------------------------------------------------------------------


def list_quote_requests(status: str | None = None, limit: int = 200) -> list[QuoteRequest]:
    statement = select(QuoteRequest).order_by(QuoteRequest.created_at.desc(), QuoteRequest.id.desc())
    if status:
        statement = statement.where(QuoteRequest.status == status)
    return list(db.session.scalars(statement.limit(limit)))


def count_quote_requests_by_status() -> dict[str, int]:
    rows = db.session.execute(select(QuoteRequest.status, func.count()).group_by(QuoteRequest.status))
    return dict(rows.all())


def update_quote_request(quote: QuoteRequest, status: str, notes: str) -> dict:
    changes = audit.apply_changes(quote, {"status": status, "notes": notes.strip()})
    if changes:
        quote.updated_at = utcnow()
        audit.record("quote_request.updated", quote, changes=changes)
    db.session.commit()
    return changes


# --- the staff's price-catalogue editor -------------------------------------------------------------------

AUDIT_NAMES = {
    PriceSystem: "catalogue.system",
    PriceTier: "catalogue.tier",
    PriceAddOn: "catalogue.addon",
    PriceFeature: "catalogue.feature",
    PriceFeatureNote: "catalogue.caveat",
    PriceRule: "catalogue.rule",
    PriceSettings: "catalogue.settings",
}


class CatalogueError(Exception):
    """A refused catalogue change, with the form field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _others(model, obj):
    statement = select(model)
    return statement if obj is None else statement.where(model.id != obj.id)


def _check(model, obj, values: dict) -> None:
    if "slug" in values:
        taken = db.session.scalar(_others(model, obj).where(model.slug == values["slug"]))
        if taken is not None:
            raise CatalogueError("slug", _("This key is already used by %(name)s.", name=taken.name))
    if model is PriceTier:
        _check_tier(obj, values)
    if model is PriceFeatureNote:
        taken = db.session.scalar(
            _others(model, obj).where(
                model.feature_id == values["feature_id"], model.system_id == values["system_id"]
            )
        )
        if taken is not None:
            raise CatalogueError("system_id", _("This feature already has a caveat for this system."))
    if model is PriceRule and values.get("other_system_id") == values["system_id"]:
        raise CatalogueError("other_system_id", _("Choose another system, or none."))


def _check_tier(obj, values: dict) -> None:
    """Each tier for more orders costs at least as much as every tier for fewer: the total never drops
    when the volume grows."""
    others = db.session.scalars(_others(PriceTier, obj)).all()
    limit, price = values["max_orders"], values["monthly_price"]
    for other in others:
        if other.max_orders == limit:
            raise CatalogueError("max_orders", _("There is already a tier up to this number of orders."))
        if (other.max_orders < limit and other.monthly_price > price) or (
            other.max_orders > limit and other.monthly_price < price
        ):
            raise CatalogueError(
                "monthly_price",
                _(
                    "A tier for more orders must not cost less than one for fewer; the tier up to "
                    "%(orders)s orders costs %(price)s kr.",
                    orders=other.max_orders,
                    price=other.monthly_price,
                ),
            )


_ROW_ORDER = {
    PriceSystem: lambda s: (SYSTEM_KINDS.index(s.kind), s.position, s.name.lower()),
    PriceTier: lambda t: t.max_orders,
    PriceAddOn: lambda a: (a.position, a.name.lower()),
    PriceFeature: lambda f: (f.position, f.name.lower()),
    PriceFeatureNote: lambda n: (n.feature.position, n.feature.name.lower(), n.system.name.lower()),
    PriceRule: lambda r: r.id,
}


def caveats_of(system: PriceSystem) -> list[PriceFeatureNote]:
    return sorted(
        db.session.scalars(select(PriceFeatureNote).where(PriceFeatureNote.system_id == system.id)),
        key=_ROW_ORDER[PriceFeatureNote],
    )


def catalogue_rows(model) -> list:
    """Every row of a catalogue table (switched-off ones too), in the order the editor lists them."""
    return sorted(db.session.scalars(select(model)), key=_ROW_ORDER[model])


def save_catalogue_item(model, obj, values: dict):
    """Create (obj None) or update a catalogue row; refused with CatalogueError; audited."""
    _check(model, obj, values)
    created = obj is None
    if created:
        obj = model()
        db.session.add(obj)
    changes = audit.apply_changes(obj, values)
    if changes:
        action = "created" if created else "updated"
        audit.record(f"{AUDIT_NAMES[model]}.{action}", obj, changes=changes)
    db.session.commit()
    return obj, changes


def _json_safe(value):
    return str(value) if isinstance(value, Decimal) else value


def delete_catalogue_item(obj) -> None:
    """Only tiers, caveats and rules are deleted; systems, add-ons and features are switched off."""
    before = {
        column.key: {"before": _json_safe(getattr(obj, column.key)), "after": None}
        for column in obj.__table__.columns
        if column.key != "id"
    }
    audit.record(f"{AUDIT_NAMES[type(obj)]}.deleted", obj, changes=before)
    db.session.delete(obj)
    db.session.commit()


def save_price_settings(values: dict) -> dict:
    settings = db.session.scalar(select(PriceSettings).order_by(PriceSettings.id).limit(1))
    if settings is None:
        settings = PriceSettings()
        db.session.add(settings)
    changes = audit.apply_changes(settings, values)
    if changes:
        audit.record("catalogue.settings.updated", settings, changes=changes)
    db.session.commit()
    return changes


def catalogue_changes(limit: int = 100) -> list[AuditEvent]:
    return db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.like("catalogue.%"))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
