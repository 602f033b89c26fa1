"""The pricing rules: one pure function from (catalogue, selection) to a price breakdown.

No Flask, no database, no I/O: the catalogue and the selection are plain frozen dataclasses, and so is
the answer. Money is `Decimal`, built from strings, rounded half up to whole øre at each step that can
produce fractions (the half-yearly discount and VAT), so the lines of a breakdown always add up to its
totals exactly.

How a price is made (all amounts per month, ex. VAT):

- the volume tier: the cheapest tier whose `max_orders` covers the orders per month;
- one module per chosen system;
- the add-ons, each `monthly_price` times the quantity;
- billed half-yearly, the per-month price is lowered by the half-yearly discount (and six months are
  invoiced at a time);
- one-off: the set-up of every system whose set-up is required, and of the optional ones when the
  prospect asks us to set it up; plus the one-off price of the chosen add-ons. The expected delivery is
  that of the slowest of those set-ups (they are done in parallel).

A selection is not priced when it has fewer than two systems, no accounting system, more orders than
the largest tier, or a system combination a rule marks as special (a contact form instead of a price)
or unavailable (a "notify me" form).
"""

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

ORE = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")
HALF_YEAR_MONTHS = 6
MAX_ORDERS = 1_000_000

KINDS = ("accounting", "webshop", "subscription", "acquirer", "pos", "warehouse", "file")
BILLING = ("monthly", "half-yearly")

# Outcomes of pricing a selection.
PRICED = "priced"
TOO_FEW = "too_few"  # fewer than two systems
NO_ACCOUNTING = "no_accounting"  # nothing to book into
SPECIAL = "special"  # a rule or the volume says: talk to us
UNAVAILABLE = "unavailable"  # a rule says: not possible yet

# Why an add-on in the selection was left out of the price.
NEEDS_KIND = "needs_kind"
NEEDS_SYSTEM = "needs_system"


def money(value) -> Decimal:
    """A Decimal in kroner rounded half up to whole øre; floats are refused (they are not exact)."""
    if isinstance(value, float):
        raise TypeError("money is never a float; pass a string or a Decimal")
    return Decimal(str(value) if isinstance(value, int) else value).quantize(ORE, rounding=ROUND_HALF_UP)


# --- the catalogue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    slug: str
    name: str
    kind: str
    monthly_price: Decimal
    setup_price: Decimal = ZERO
    setup_required: bool = False
    delivery_days: int = 0
    description: str = ""


@dataclass(frozen=True)
class Tier:
    max_orders: int
    monthly_price: Decimal
    name: str = ""


@dataclass(frozen=True)
class AddOn:
    slug: str
    name: str
    monthly_price: Decimal
    setup_price: Decimal = ZERO
    delivery_days: int = 0
    max_quantity: int = 1
    requires_kind: str | None = None
    requires_system: str | None = None  # a system slug
    description: str = ""


@dataclass(frozen=True)
class Feature:
    slug: str
    name: str
    requires_kind: str | None = None
    requires_addon: str | None = None  # an add-on slug
    notes: Mapping[str, str] = field(default_factory=dict)  # system slug → caveat


@dataclass(frozen=True)
class Rule:
    systems: frozenset[str]  # applies when all of these are chosen
    outcome: str  # SPECIAL | UNAVAILABLE
    note: str = ""


@dataclass(frozen=True)
class Catalogue:
    systems: tuple[System, ...] = ()
    tiers: tuple[Tier, ...] = ()
    addons: tuple[AddOn, ...] = ()
    features: tuple[Feature, ...] = ()
    rules: tuple[Rule, ...] = ()
    half_yearly_discount_percent: Decimal = Decimal("0")
    vat_percent: Decimal = Decimal("25")

    def system(self, slug: str) -> System | None:
        return next((system for system in self.systems if system.slug == slug), None)

    def addon(self, slug: str) -> AddOn | None:
        return next((addon for addon in self.addons if addon.slug == slug), None)

    @property
    def sorted_tiers(self) -> tuple[Tier, ...]:
        return tuple(sorted(self.tiers, key=lambda tier: tier.max_orders))


# --- the prospect's choice ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    systems: tuple[str, ...] = ()
    orders: int = 0
    addons: tuple[tuple[str, int], ...] = ()  # (slug, quantity), quantity ≥ 1
    billing: str = "monthly"
    setup: bool = False  # "set it up for me" for the systems where our set-up is optional

    def quantity(self, slug: str) -> int:
        return dict(self.addons).get(slug, 0)


def normalise(catalogue: Catalogue, selection: Selection) -> Selection:
    """Drop what the catalogue does not know, keep catalogue order, clamp numbers into range."""
    chosen = set(selection.systems)
    systems = tuple(system.slug for system in catalogue.systems if system.slug in chosen)
    wanted = dict(selection.addons)
    addons = tuple(
        (addon.slug, min(int(wanted[addon.slug]), addon.max_quantity))
        for addon in catalogue.addons
        if int(wanted.get(addon.slug, 0)) > 0
    )
    return Selection(
        systems=systems,
        orders=max(0, min(int(selection.orders), MAX_ORDERS)),
        addons=addons,
        billing=selection.billing if selection.billing in BILLING else "monthly",
        setup=bool(selection.setup),
    )


# --- the answer -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    kind: str  # volume | system | addon (per month); setup | addon_setup (one-off)
    slug: str
    label: str
    amount: Decimal
    quantity: int = 1
    unit_price: Decimal = ZERO
    delivery_days: int = 0


@dataclass(frozen=True)
class FeatureLine:
    slug: str
    name: str
    notes: tuple[tuple[str, str], ...] = ()  # (system name, caveat)


@dataclass(frozen=True)
class Breakdown:
    selection: Selection
    status: str
    reasons: tuple[str, ...] = ()  # why it is special or unavailable (the rules' notes)
    over_volume: bool = False  # special because of more orders than the largest tier
    tier: Tier | None = None
    lines: tuple[Line, ...] = ()  # per month, billed monthly
    skipped_addons: tuple[tuple[str, str, str], ...] = ()  # (add-on slug, NEEDS_*, kind or system)
    features: tuple[FeatureLine, ...] = ()
    # The totals are None unless status == PRICED.
    monthly_total: Decimal | None = None
    half_yearly_discount_percent: Decimal = Decimal("0")
    half_yearly_discount: Decimal | None = None  # per month
    half_yearly_per_month: Decimal | None = None
    setup_lines: tuple[Line, ...] = ()
    setup_total: Decimal | None = None
    delivery_days: int | None = None  # None: nothing for us to set up
    vat_percent: Decimal = Decimal("25")

    @property
    def priced(self) -> bool:
        return self.status == PRICED

    @property
    def months(self) -> int:
        return HALF_YEAR_MONTHS if self.selection.billing == "half-yearly" else 1

    @property
    def per_month(self) -> Decimal | None:
        """Per month with the chosen billing."""
        if not self.priced:
            return None
        return self.half_yearly_per_month if self.selection.billing == "half-yearly" else self.monthly_total

    @property
    def period_total(self) -> Decimal | None:
        """What one subscription invoice is: one month, or six."""
        return None if not self.priced else self.per_month * self.months

    @property
    def first_invoice(self) -> Decimal | None:
        """The first invoice: the first period plus the one-off set-up."""
        return None if not self.priced else self.period_total + self.setup_total

    def vat(self, amount: Decimal | None) -> Decimal | None:
        return None if amount is None else money(amount * self.vat_percent / HUNDRED)

    def incl_vat(self, amount: Decimal | None) -> Decimal | None:
        return None if amount is None else amount + self.vat(amount)


def tier_for(catalogue: Catalogue, orders: int) -> Tier | None:
    """The smallest tier that covers `orders` a month (None: more than the largest, or no tiers)."""
    return next((tier for tier in catalogue.sorted_tiers if orders <= tier.max_orders), None)


def price(catalogue: Catalogue, selection: Selection) -> Breakdown:
    selection = normalise(catalogue, selection)
    systems = [catalogue.system(slug) for slug in selection.systems]
    chosen = set(selection.systems)
    kinds = {system.kind for system in systems}
    base = Breakdown(
        selection=selection,
        status=PRICED,
        half_yearly_discount_percent=catalogue.half_yearly_discount_percent,
        vat_percent=catalogue.vat_percent,
    )

    if len(systems) < 2:
        return replace(base, status=TOO_FEW)
    if "accounting" not in kinds:
        return replace(base, status=NO_ACCOUNTING)

    addons, skipped = [], []
    for slug, quantity in selection.addons:
        addon = catalogue.addon(slug)
        if addon.requires_kind and addon.requires_kind not in kinds:
            skipped.append((slug, NEEDS_KIND, addon.requires_kind))
        elif addon.requires_system and addon.requires_system not in chosen:
            skipped.append((slug, NEEDS_SYSTEM, addon.requires_system))
        else:
            addons.append((addon, quantity))
    base = replace(
        base,
        skipped_addons=tuple(skipped),
        features=_features(catalogue, systems, {addon.slug for addon, _ in addons}, kinds),
    )

    matched = [rule for rule in catalogue.rules if rule.systems and rule.systems <= chosen]
    unavailable = [rule.note for rule in matched if rule.outcome == UNAVAILABLE]
    if unavailable:
        return replace(base, status=UNAVAILABLE, reasons=tuple(unavailable))
    tier = tier_for(catalogue, selection.orders)
    over_volume = bool(catalogue.tiers) and tier is None
    special = [rule.note for rule in matched if rule.outcome == SPECIAL]
    if special or over_volume:
        return replace(base, status=SPECIAL, reasons=tuple(special), over_volume=over_volume)

    lines = []
    if tier is not None:
        lines.append(Line("volume", str(tier.max_orders), tier.name, money(tier.monthly_price)))
    for system in systems:
        lines.append(Line("system", system.slug, system.name, money(system.monthly_price)))
    for addon, quantity in addons:
        if addon.monthly_price > 0 or addon.setup_price == 0:
            unit = money(addon.monthly_price)
            lines.append(Line("addon", addon.slug, addon.name, unit * quantity, quantity, unit))
    monthly_total = sum((line.amount for line in lines), ZERO)

    discount = money(monthly_total * catalogue.half_yearly_discount_percent / HUNDRED)

    setup_lines = []
    for system in systems:
        if system.setup_required or (selection.setup and system.setup_price > 0):
            setup_lines.append(
                Line(
                    "setup",
                    system.slug,
                    system.name,
                    money(system.setup_price),
                    1,
                    ZERO,
                    system.delivery_days,
                )
            )
    for addon, quantity in addons:
        if addon.setup_price > 0:
            unit = money(addon.setup_price)
            setup_lines.append(
                Line(
                    "addon_setup",
                    addon.slug,
                    addon.name,
                    unit * quantity,
                    quantity,
                    unit,
                    addon.delivery_days,
                )
            )

    return replace(
        base,
        tier=tier,
        lines=tuple(lines),
        monthly_total=monthly_total,
        half_yearly_discount=discount,
        half_yearly_per_month=monthly_total - discount,
        setup_lines=tuple(setup_lines),
        setup_total=sum((line.amount for line in setup_lines), ZERO),
        delivery_days=max((line.delivery_days for line in setup_lines), default=None),
    )


def _features(catalogue, systems, addon_slugs, kinds) -> tuple[FeatureLine, ...]:
    lines = []
    for feature in catalogue.features:
        if feature.requires_kind and feature.requires_kind not in kinds:
            continue
        if feature.requires_addon and feature.requires_addon not in addon_slugs:
            continue
        notes = tuple((s.name, feature.notes[s.slug]) for s in systems if feature.notes.get(s.slug))
        lines.append(FeatureLine(feature.slug, feature.name, notes))
    return tuple(lines)


# --- the volume slider ------------------------------------------------------------------------------------

DEFAULT_TIER_LIMITS = (100, 500, 2000, 10000)


def _nice_step(span: int, steps: int) -> int:
    raw = max(1, span // steps)
    magnitude = 10 ** (len(str(raw)) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover


def slider_stops(tiers: tuple[Tier, ...], steps_per_tier: int = 10) -> tuple[int, ...]:
    """Order volumes the slider can stop at: about as many stops per tier, so every tier gets the same
    width and small shops can pick 50 as easily as big ones 5.000; then a stretch past the largest tier."""
    limits = sorted({tier.max_orders for tier in tiers if tier.max_orders > 0}) or list(DEFAULT_TIER_LIMITS)
    limits.append(limits[-1] * 2)
    stops, lower = [], 0
    for upper in limits:
        step = _nice_step(upper - lower, steps_per_tier if upper != limits[-1] else steps_per_tier // 2)
        value = (lower // step + 1) * step
        while value < upper:
            stops.append(value)
            value += step
        stops.append(upper)
        lower = upper
    return tuple(stops)


def slider_position(stops: tuple[int, ...], orders: int) -> int:
    """The slider position for an order volume: the first stop at or above it."""
    return min(bisect_left(stops, orders), len(stops) - 1)


# --- freezing a breakdown into a quote request ----------------------------------------------------------


def _s(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def breakdown_as_json(breakdown: Breakdown) -> dict:
    """The breakdown as JSON-safe data (amounts as strings), as it is stored with a quote request."""

    def line(item: Line) -> dict:
        return {
            "kind": item.kind,
            "slug": item.slug,
            "label": item.label,
            "quantity": item.quantity,
            "unit_price": _s(item.unit_price),
            "amount": _s(item.amount),
            "delivery_days": item.delivery_days,
        }

    return {
        "status": breakdown.status,
        "reasons": list(breakdown.reasons),
        "over_volume": breakdown.over_volume,
        "tier": None
        if breakdown.tier is None
        else {"name": breakdown.tier.name, "max_orders": breakdown.tier.max_orders},
        "lines": [line(item) for item in breakdown.lines],
        "monthly_total": _s(breakdown.monthly_total),
        "half_yearly_discount_percent": _s(breakdown.half_yearly_discount_percent),
        "half_yearly_discount": _s(breakdown.half_yearly_discount),
        "half_yearly_per_month": _s(breakdown.half_yearly_per_month),
        "billing": breakdown.selection.billing,
        "per_month": _s(breakdown.per_month),
        "period_total": _s(breakdown.period_total),
        "setup_lines": [line(item) for item in breakdown.setup_lines],
        "setup_total": _s(breakdown.setup_total),
        "delivery_days": breakdown.delivery_days,
        "first_invoice": _s(breakdown.first_invoice),
        "vat_percent": _s(breakdown.vat_percent),
        "first_invoice_vat": _s(breakdown.vat(breakdown.first_invoice)),
        "first_invoice_incl_vat": _s(breakdown.incl_vat(breakdown.first_invoice)),
        "skipped_addons": [list(item) for item in breakdown.skipped_addons],
        "features": [
            {"name": item.name, "notes": [list(note) for note in item.notes]} for item in breakdown.features
        ],
    }


def selection_as_json(selection: Selection) -> dict:
    return {
        "systems": list(selection.systems),
        "orders": selection.orders,
        "addons": dict(selection.addons),
        "billing": selection.billing,
        "setup": selection.setup,
    }


def selection_from_json(data: dict) -> Selection:
    return Selection(
        systems=tuple(data.get("systems", ())),
        orders=int(data.get("orders", 0)),
        addons=tuple((slug, int(quantity)) for slug, quantity in data.get("addons", {}).items()),
        billing=data.get("billing", "monthly"),
        setup=bool(data.get("setup", False)),
    )
