"""VAT: a dated EU rate table, the VAT zone decision per sale, and the VAT-rate drift check.

The rate table is seeded from ibericode/vat-rates (history with effective dates; `load_ibericode`) and can be
cross-checked against the vatnode `eu-vat-rates-data` file (current rates only; `load_vatnode`,
`compare_tables`). The app stores the rows (`RateTable.rows()`) in a database table; tests use
`TEST_RATES` or the spec files.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from babel import Locale
from stdnum.dk import cvr as dk_cvr
from stdnum.eu import vat as eu_vat

from portal.engine.documents import Party, SalesLine
from portal.engine.ledger_documents import Zone
from portal.engine.money import ZERO, fmt_rate
from portal.engine.settings import OrderError, SourceLinkSettings
from portal.engine.text import N_, Text

EU_MEMBERS: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
# ISO country codes as VAT numbers spell them (Greece: "EL").
_VAT_PREFIX_TO_ISO = {"EL": "GR"}

# Territories in ibericode's `exceptions` that lie outside the EU VAT area (Council Directive 2006/112/EC
# art. 6): sales there are exports. Any exception with a 0 % standard rate is treated the same way. The
# others (Azores, Madeira, Jungholz, Mittelberg) are inside the VAT area with their own rates.
OUTSIDE_VAT_AREA: frozenset[str] = frozenset(
    {
        "Canary Islands",
        "Ceuta",
        "Melilla",
        "Büsingen am Hochrhein",
        "Heligoland",
        "Mount Athos",
        "Livigno",
        "Campione d'Italia",
        "Guadeloupe",
        "Guyane",
        "Martinique",
        "Mayotte",
        "Reunion",
    }
)


def iso_country(code: str | None) -> str:
    code = (code or "").strip().upper()
    return _VAT_PREFIX_TO_ISO.get(code, code)


class UnknownRate(LookupError):
    """No rate for that country on that day."""


# ISO 3166-1 alpha-2: the two-letter territories CLDR names, less its codes that are no country (ZZ
# "unknown region", EU, EZ, UN, QO, the pseudo-locales XA/XB) or only reserved (AC, CP, CQ, DG, EA, IC, TA).
# XK (Kosovo) stays: it is user-assigned, yet shops and the EU use it.
_NOT_COUNTRIES = frozenset(
    {"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)
ISO_COUNTRIES = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)
NOT_A_COUNTRY = N_(
    "The order's country code “%(country)s” is not a country (ISO 3166). Nothing was posted: correct the "
    "address in the sales source, then retry."
)


def check_country(code: str | None) -> None:
    """Raise OrderError for a country code that is no ISO 3166 country: never guessed to be an export."""
    if code and iso_country(code) not in ISO_COUNTRIES:
        raise OrderError.translatable(NOT_A_COUNTRY, country=code.strip())


@dataclass(frozen=True)
class RateException:
    name: str
    postcode_pattern: str  # a regular expression over the whole postcode
    standard: Decimal

    @property
    def outside_vat_area(self) -> bool:
        return self.standard == 0 or self.name in OUTSIDE_VAT_AREA

    def matches(self, postcode: str | None) -> bool:
        if not postcode:
            return False
        return re.fullmatch(self.postcode_pattern, postcode.replace(" ", "")) is not None


@dataclass(frozen=True)
class RatePeriod:
    country: str
    effective_from: date  # date.min: long-standing
    standard: Decimal  # percent
    reduced: tuple[Decimal, ...] = ()
    exceptions: tuple[RateException, ...] = ()

    @property
    def all_rates(self) -> frozenset[Decimal]:
        return frozenset((self.standard, *self.reduced))


class RateTable:
    """VAT rates per country with their effective dates."""

    def __init__(self, periods: Iterable[RatePeriod]):
        by_country: dict[str, list[RatePeriod]] = {}
        for period in periods:
            by_country.setdefault(iso_country(period.country), []).append(period)
        self._periods = {
            c: sorted(ps, key=lambda p: p.effective_from, reverse=True) for c, ps in by_country.items()
        }

    @property
    def countries(self) -> frozenset[str]:
        return frozenset(self._periods)

    def period_on(self, country: str, day: date) -> RatePeriod:
        for period in self._periods.get(iso_country(country), ()):
            if period.effective_from <= day:
                return period
        raise UnknownRate(f"No VAT rate for {country} on {day.isoformat()}")

    def next_change(self, country: str, day: date) -> RatePeriod | None:
        """The first period that starts after `day` (a known future rate change), if any."""
        later = [p for p in self._periods.get(iso_country(country), ()) if p.effective_from > day]
        return min(later, key=lambda p: p.effective_from) if later else None

    def rate_on(self, country: str, day: date) -> Decimal:
        """The standard rate (percent) in force in `country` on `day`."""
        return self.period_on(country, day).standard

    def territory(self, country: str, postcode: str | None, day: date) -> RateException | None:
        """The special territory (ibericode `exceptions`) a postcode lies in, if any."""
        try:
            period = self.period_on(country, day)
        except UnknownRate:
            return None
        return next((e for e in period.exceptions if e.matches(postcode)), None)

    def rows(self) -> list[dict]:
        """Plain rows for seeding a database table."""
        return [
            {
                "country": p.country,
                "effective_from": p.effective_from,
                "standard": p.standard,
                "reduced": list(p.reduced),
                "exceptions": [
                    {"name": e.name, "postcode": e.postcode_pattern, "standard": e.standard}
                    for e in p.exceptions
                ],
            }
            for ps in self._periods.values()
            for p in ps
        ]


def _day(text: str) -> date:
    return date.min if text.startswith("0000") else date.fromisoformat(text)


def _pct(value: object) -> Decimal:
    return Decimal(str(value))


def load_ibericode(data: dict) -> RateTable:
    """From ibericode/vat-rates `vat-rates.json` (parsed): items → country → periods newest first, each with
    `effective_from` ("0000-01-01" = long-standing), `rates` {standard, reduced, reduced1, …} and optional
    `exceptions` [{name, postcode, standard}]."""
    periods = []
    for country, items in data["items"].items():
        for item in items:
            rates = item["rates"]
            reduced = tuple(sorted({_pct(v) for k, v in rates.items() if k != "standard" and v is not None}))
            exceptions = tuple(
                RateException(e["name"], e["postcode"], _pct(e["standard"]))
                for e in item.get("exceptions", [])
            )
            periods.append(
                RatePeriod(
                    iso_country(country),
                    _day(item["effective_from"]),
                    _pct(rates["standard"]),
                    reduced,
                    exceptions,
                )
            )
    return RateTable(periods)


def load_vatnode(data: dict, effective_from: date = date.min, eu_only: bool = True) -> RateTable:
    """From vatnode's `eu_vat_rates_data.json` (parsed). It has current rates only (no history), so every
    period starts at `effective_from`: use it for cross-checks, not as the booking table."""
    periods = []
    for country, item in data["rates"].items():
        if eu_only and not item.get("eu_member"):
            continue
        reduced = [*(item.get("reduced") or []), item.get("super_reduced"), item.get("parking")]
        periods.append(
            RatePeriod(
                iso_country(country),
                effective_from,
                _pct(item["standard"]),
                tuple(sorted({_pct(v) for v in reduced if v is not None})),
            )
        )
    return RateTable(periods)


def compare_tables(table: RateTable, reference: RateTable, day: date, reduced: bool = True) -> list[str]:
    """Disagreements between two tables on one day (e.g. ibericode vs vatnode, for a scheduled check).
    `reduced=False` compares standard rates only (the datasets file parking/super-reduced rates
    differently)."""
    problems = []
    for country in sorted(reference.countries):
        ref = reference.period_on(country, day)
        try:
            ours = table.period_on(country, day)
        except UnknownRate:
            problems.append(f"{country}: missing (reference {fmt_rate(ref.standard)} %)")
            continue
        if ours.standard != ref.standard:
            problems.append(
                f"{country}: standard rate {fmt_rate(ours.standard)} % "
                f"vs reference {fmt_rate(ref.standard)} %"
            )
        if reduced and set(ours.reduced) != set(ref.reduced):
            a = ", ".join(fmt_rate(r) for r in ours.reduced) or "none"
            b = ", ".join(fmt_rate(r) for r in ref.reduced) or "none"
            problems.append(f"{country}: reduced rates {a} vs reference {b}")
    return problems


def _p(country: str, since: str, standard: str, *reduced: str) -> RatePeriod:
    return RatePeriod(country, _day(since), Decimal(standard), tuple(Decimal(r) for r in reduced))


# A tiny in-code table for tests and examples (values as in ibericode @5abb1e1).
TEST_RATES = RateTable(
    [
        _p("DK", "0000-01-01", "25"),
        _p("SE", "0000-01-01", "25", "6", "12"),
        _p("DE", "2021-01-01", "19", "7"),
        _p("DE", "2020-07-01", "16", "5"),
        _p("DE", "0000-01-01", "19", "7"),
        _p("FI", "2024-09-01", "25.5", "10", "14"),
        _p("FI", "0000-01-01", "24", "10", "14"),
        _p("NL", "0000-01-01", "21", "9"),
        _p("FR", "0000-01-01", "20", "5.5", "10", "2.1"),
        RatePeriod(
            "ES",
            date.min,
            Decimal("21"),
            (Decimal("4"), Decimal("10")),
            (RateException("Canary Islands", r"(35\d{3}|38\d{3})", Decimal("0")),),
        ),
    ]
)


# --- identifiers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VatId:
    """A buyer's VAT number, checked offline (format + check digits; VIES is an online check, not here)."""

    raw: str
    compact: str  # DK: the 8-digit CVR; other EU: with its prefix, e.g. "SE556703748501"
    country: str  # ISO code of the issuing country ("GR" for "EL…"), "" when unknown
    valid: bool


def parse_vat_id(raw: str | None, country_hint: str = "") -> VatId | None:
    """Reads a CVR ("13585628", "DK 13 58 56 28") or an EU VAT number ("SE556703748501"). A bare number
    without a prefix is read as a VAT number of `country_hint` (the buyer's country)."""
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    try:
        compact = eu_vat.compact(text)
    except Exception:  # stdnum raises several types on garbage
        compact = re.sub(r"[\s.\-]", "", text).upper()
    prefix = compact[:2]
    if not prefix.isalpha():
        hint = iso_country(country_hint)
        if hint == "DK":
            ok = dk_cvr.is_valid(compact)
            return VatId(raw, compact, "DK", ok)
        prefix = "EL" if hint == "GR" else hint
        compact = prefix + compact if prefix else compact
    country = iso_country(prefix)
    valid = bool(prefix) and eu_vat.is_valid(compact)
    if country == "DK":
        return VatId(raw, compact[2:], "DK", valid)
    return VatId(raw, compact, country, valid)


# --- the zone decision -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VatDecision:
    zone: Zone
    rate: Decimal  # percent the invoice's taxable lines carry (the destination's under OSS)
    reason: str
    reverse_charge: bool = False
    oss_country: str | None = None
    country: str = ""  # the destination country
    customer_type: str = "b2c"  # the treatment applied (an invalid VAT number falls back to "b2c")
    vat_id: VatId | None = None
    day: date = date.min
    warnings: tuple[str, ...] = field(default=())

    @property
    def export(self) -> bool:
        return self.zone == "world"


def decide_zone(
    customer: Party, settings: SourceLinkSettings, rates: RateTable, day: date, home: str | None = None
) -> VatDecision:
    """Where the sale is taxed and at which rate.

    domestic → home rate; EU business with a valid VAT number from another member state → reverse charge
    (0 %, zone "eu"); other EU buyers → OSS on: the destination's rate (zone "eu"), OSS off: home VAT (zone
    "domestic", e-conomic VAT zone 1, as below the EU-wide €10,000 threshold); outside the EU (or in an EU
    territory outside the VAT area) → export (0 %, zone "world")."""
    home = iso_country(home or settings.home_country)
    warnings: list[str] = []
    check_country(customer.destination_country)
    check_country(customer.country)
    dest = iso_country(customer.destination_country)
    if not dest:
        dest = home
        warnings.append(
            Text(N_("The order has no country; treated as a domestic sale (%(home)s)."), home=home)
        )
    vat_id = parse_vat_id(customer.vat_number, customer.country or dest) if customer.type != "b2c" else None
    common = {"country": dest, "vat_id": vat_id, "day": day}

    territory = rates.territory(dest, customer.destination_postcode, day) if dest in EU_MEMBERS else None
    if territory is not None and territory.outside_vat_area:
        return VatDecision(
            "world",
            ZERO,
            Text(
                N_("Export: %(territory)s (%(country)s) is outside the EU VAT area."),
                territory=territory.name,
                country=dest,
            ),
            customer_type=customer.type,
            warnings=tuple(warnings),
            **common,
        )

    if dest == home:
        reason = Text(N_("Domestic sale (%(home)s)."), home=home)
        if vat_id is not None and not vat_id.valid:
            warnings.append(Text(N_("The VAT number %(number)s is not valid."), number=repr(vat_id.raw)))
        return VatDecision(
            "domestic",
            rates.rate_on(home, day),
            reason,
            customer_type=customer.type,
            warnings=tuple(warnings),
            **common,
        )

    if dest in EU_MEMBERS:
        treated_as = customer.type
        if vat_id is not None:
            if vat_id.valid and vat_id.country in EU_MEMBERS and vat_id.country != home:
                return VatDecision(
                    "eu",
                    ZERO,
                    Text(
                        N_(
                            "EU business customer in %(country)s with valid VAT number %(number)s: "
                            "reverse charge."
                        ),
                        country=dest,
                        number=vat_id.compact,
                    ),
                    reverse_charge=True,
                    customer_type=customer.type,
                    warnings=tuple(warnings),
                    **common,
                )
            if not vat_id.valid:
                warnings.append(
                    Text(
                        N_(
                            "The VAT number %(number)s is not valid: "
                            "the sale is treated as one to a private customer."
                        ),
                        number=repr(vat_id.raw),
                    )
                )
            else:
                warnings.append(
                    Text(
                        N_(
                            "The VAT number %(number)s is not from another EU country: no reverse charge; "
                            "the sale is treated as one to a private customer."
                        ),
                        number=vat_id.compact,
                    )
                )
            treated_as = "b2c"
        if settings.oss:
            territory_rate = territory.standard if territory is not None else None
            rate = territory_rate if territory_rate is not None else rates.rate_on(dest, day)
            return VatDecision(
                "eu",
                rate,
                Text(
                    N_("EU private customer in %(country)s, OSS: %(country)s VAT %(rate)s %%."),
                    country=dest,
                    rate=fmt_rate(rate),
                ),
                oss_country=dest,
                customer_type=treated_as,
                warnings=tuple(warnings),
                **common,
            )
        rate = rates.rate_on(home, day)
        return VatDecision(
            "domestic",
            rate,
            Text(
                N_("EU private customer in %(country)s without OSS: %(home)s VAT %(rate)s %%."),
                country=dest,
                home=home,
                rate=fmt_rate(rate),
            ),
            customer_type=treated_as,
            warnings=tuple(warnings),
            **common,
        )

    return VatDecision(
        "world",
        ZERO,
        Text(N_("Export outside the EU (%(country)s)."), country=dest),
        customer_type=customer.type,
        warnings=tuple(warnings),
        **common,
    )


# --- rates per line and the drift check ------------------------------------------------------------------

ZERO_RATED_KINDS = frozenset({"gift_card"})


def expected_line_rate(line: SalesLine, decision: VatDecision, rates: RateTable | None = None) -> Decimal:
    """The rate the accounting system will apply to this line.

    Gift cards carry no VAT. Under OSS, a reduced rate of the destination that the shop used is accepted
    (books, food…: the shop knows the product's category, we do not). Otherwise the decision's rate."""
    if line.kind in ZERO_RATED_KINDS or decision.rate == 0:
        return ZERO
    if rates is not None and decision.oss_country and line.vat_rate is not None and line.vat_rate_exact:
        try:
            period = rates.period_on(decision.oss_country, decision.day)
        except UnknownRate:
            return decision.rate
        if line.vat_rate in period.all_rates and line.vat_rate != 0:
            return line.vat_rate
    return decision.rate


def _slack(line: SalesLine) -> Decimal:
    # The shop rounds the tax of a line (or of each unit) to the cent: allow one cent per unit.
    return Decimal("0.01") * max(Decimal(1), abs(line.quantity))


def check_line_rate(
    line: SalesLine, expected: Decimal, decision: VatDecision, rates: RateTable | None = None
) -> str | None:
    """A warning when the shop's VAT for a line is not what the accounting system will apply (e.g. Finland
    still at 24 % in the shop after the change to 25.5 % on 2024-09-01), else None."""
    if line.net_total == 0:
        return None
    shop_rate = line.vat_rate
    if shop_rate is not None and line.vat_rate_exact:
        drift = shop_rate != expected
    else:
        drift = abs(line.vat_total - line.net_total * expected / 100) > _slack(line)
    if not drift:
        return None
    shown = Text(N_("no")) if shop_rate is None else f"{fmt_rate(shop_rate)} %"
    detail = decision.reason
    if decision.oss_country and rates is not None:
        try:
            period = rates.period_on(decision.oss_country, decision.day)
            if period.effective_from == date.min:
                since = Text(N_("long-standing"))
            else:
                since = Text(N_("since %(day)s"), day=period.effective_from.isoformat())
            detail = Text(
                N_("%(country)s standard rate %(rate)s %% %(since)s"),
                country=decision.oss_country,
                rate=fmt_rate(period.standard),
                since=since,
            )
        except UnknownRate:
            pass
    return Text(
        N_(
            "VAT rate drift on %(line)s: the sales source charged %(shop)s VAT (%(vat)s on %(net)s), the "
            "invoice will carry %(rate)s %% (%(detail)s)"
        ),
        line=repr(line.description),
        shop=shown,
        vat=str(line.vat_total),
        net=str(line.net_total),
        rate=fmt_rate(expected),
        detail=detail,
    )


def check_rates(
    lines: Iterable[SalesLine], decision: VatDecision, rates: RateTable | None = None
) -> list[str]:
    """Drift warnings for every line whose VAT differs from what will be booked."""
    warnings = []
    for line in lines:
        warning = check_line_rate(line, expected_line_rate(line, decision, rates), decision, rates)
        if warning:
            warnings.append(warning)
    return warnings
