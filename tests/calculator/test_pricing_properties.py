"""Properties of the pricing rules over generated catalogues and selections (hypothesis)."""

from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portal.calculator import pricing
from portal.calculator.pricing import AddOn, Catalogue, Feature, Rule, Selection, System, Tier

ORE = Decimal("0.01")
amounts = st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False)
percents = st.decimals(
    min_value=0, max_value=Decimal("99.99"), places=2, allow_nan=False, allow_infinity=False
)
kinds = st.sampled_from(pricing.KINDS)


@st.composite
def catalogues(draw) -> Catalogue:
    n = draw(st.integers(2, 6))
    systems = tuple(
        System(
            slug=f"s{i}",
            name=f"System {i}",
            kind="accounting" if i == 0 else draw(kinds),  # at least one ledger
            monthly_price=draw(amounts),
            setup_price=draw(amounts),
            setup_required=draw(st.booleans()),
            delivery_days=draw(st.integers(0, 30)),
        )
        for i in range(n)
    )
    slugs = [system.slug for system in systems]
    limits = sorted(draw(st.lists(st.integers(1, 50000), max_size=5, unique=True)))
    prices = sorted(draw(st.lists(amounts, min_size=len(limits), max_size=len(limits))))
    tiers = tuple(Tier(limit, price, f"T{limit}") for limit, price in zip(limits, prices, strict=True))
    addons = tuple(
        AddOn(
            slug=f"a{i}",
            name=f"Add-on {i}",
            monthly_price=draw(amounts),
            setup_price=draw(amounts),
            delivery_days=draw(st.integers(0, 30)),
            max_quantity=draw(st.integers(1, 5)),
            requires_kind=draw(st.none() | kinds),
            requires_system=draw(st.none() | st.sampled_from(slugs)),
        )
        for i in range(draw(st.integers(0, 4)))
    )
    rules = tuple(
        Rule(frozenset(draw(st.lists(st.sampled_from(slugs), min_size=1, max_size=2))), outcome, "note")
        for outcome in draw(st.lists(st.sampled_from([pricing.SPECIAL, pricing.UNAVAILABLE]), max_size=1))
    )
    features = (Feature("f", "Feature", notes={slugs[0]: "caveat"}),)
    return Catalogue(
        systems=systems,
        tiers=tiers,
        addons=addons,
        features=features,
        rules=rules,
        half_yearly_discount_percent=draw(percents),
        vat_percent=draw(st.decimals(min_value=0, max_value=50, places=2)),
    )


@st.composite
def cases(draw, any_systems=False):
    """A catalogue and a selection; mostly one that can be priced (a ledger + another system, a volume
    within the tiers), so few examples are thrown away."""
    catalogue = draw(catalogues())
    slugs = [s.slug for s in catalogue.systems]
    if any_systems:
        systems = draw(st.lists(st.sampled_from(slugs), unique=True))
    else:
        systems = [slugs[0], *draw(st.lists(st.sampled_from(slugs[1:]), min_size=1, unique=True))]
    top = max((tier.max_orders for tier in catalogue.tiers), default=120000)
    addons = tuple(
        (addon.slug, draw(st.integers(1, addon.max_quantity)))
        for addon in catalogue.addons
        if draw(st.booleans())
    )
    selection = Selection(
        systems=tuple(systems),
        orders=draw(st.integers(0, top) | st.integers(0, 120000)),
        addons=addons,
        billing=draw(st.sampled_from(pricing.BILLING)),
        setup=draw(st.booleans()),
    )
    return catalogue, selection


def totals(b: pricing.Breakdown) -> list[Decimal]:
    return [
        b.monthly_total,
        b.half_yearly_per_month,
        b.per_month,
        b.period_total,
        b.setup_total,
        b.first_invoice,
        b.incl_vat(b.first_invoice),
    ]


def every_amount(b: pricing.Breakdown) -> list[Decimal]:
    lines = [line.amount for line in b.lines + b.setup_lines] + [line.unit_price for line in b.lines]
    return [*lines, *totals(b), b.half_yearly_discount, b.vat(b.first_invoice)]


@settings(deadline=None)
@given(cases())
def test_breakdown_lines_add_up_to_the_totals(case):
    b = pricing.price(*case)
    assume(b.priced)
    assert sum(line.amount for line in b.lines) == b.monthly_total
    assert b.monthly_total - b.half_yearly_discount == b.half_yearly_per_month
    assert sum(line.amount for line in b.setup_lines) == b.setup_total
    assert b.period_total == b.per_month * b.months
    assert b.first_invoice == b.period_total + b.setup_total
    assert b.incl_vat(b.first_invoice) == b.first_invoice + b.vat(b.first_invoice)


@settings(deadline=None)
@given(cases())
def test_amounts_are_decimals_rounded_to_whole_ore(case):
    b = pricing.price(*case)
    assume(b.priced)
    for amount in every_amount(b):
        assert isinstance(amount, Decimal)
        assert amount.as_tuple().exponent == -2, amount
        assert amount >= 0


@settings(deadline=None)
@given(cases())
def test_half_yearly_per_month_is_never_more_than_monthly(case):
    b = pricing.price(*case)
    assume(b.priced)
    assert b.half_yearly_per_month <= b.monthly_total


@settings(deadline=None)
@given(cases(), st.integers(0, 5000))
def test_the_total_never_drops_when_the_volume_grows(case, more):
    catalogue, selection = case
    smaller = pricing.price(catalogue, selection)
    larger = pricing.price(catalogue, Selection(**{**vars(selection), "orders": selection.orders + more}))
    assume(larger.priced)
    assert smaller.priced  # a smaller volume is never "special" when the larger one has a price
    for low, high in zip(totals(smaller), totals(larger), strict=True):
        assert low <= high


@settings(deadline=None)
@given(cases(), st.data())
def test_the_total_never_drops_when_an_add_on_is_added(case, data):
    catalogue, selection = case
    assume(catalogue.addons)
    addon = data.draw(st.sampled_from(catalogue.addons))
    quantities = dict(selection.addons)
    assume(quantities.get(addon.slug, 0) < addon.max_quantity)
    quantities[addon.slug] = quantities.get(addon.slug, 0) + 1
    before = pricing.price(catalogue, selection)
    after = pricing.price(catalogue, Selection(**{**vars(selection), "addons": tuple(quantities.items())}))
    assert after.status == before.status
    assume(before.priced)
    for low, high in zip(totals(before), totals(after), strict=True):
        assert low <= high


@settings(deadline=None)
@given(cases(any_systems=True))
def test_pricing_is_pure_and_never_fails(case):
    catalogue, selection = case
    assert pricing.price(catalogue, selection) == pricing.price(catalogue, selection)
    noisy = Selection(**{**vars(selection), "systems": (*selection.systems, "unknown"), "orders": -1})
    assert pricing.price(catalogue, noisy).status in {
        pricing.PRICED, pricing.TOO_FEW, pricing.NO_ACCOUNTING, pricing.SPECIAL, pricing.UNAVAILABLE
    }  # fmt: skip
