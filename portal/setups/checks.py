"""Does the chosen account fit what the template field is for? One rule per purpose, each a pure function.

The wizard used to accept any account the system offered, so a bank account with purchase VAT could become
the account for sales in Denmark and the setup was still marked done. Here every chosen account (or
e-conomic product group, per VAT zone) is checked against its purpose from the generic metadata the
connectors' `list_choices` return, and the answer is refused (not saved, blocks activation) or warned
(saved, shown beside the field), always with the reason:

    accounts       details "type" (e-conomic profitAndLoss/status, Dinero/Dynaccount OPERATING/BALANCE),
                   "vat_code", optionally "vat_rate" (percent) and "vat_name"
    vat_codes      details "rate" (percent), optionally "type" (SALES/PURCHASE, or e-conomic's VAT type name)
    product_groups details "vat_codes", "vat_rates", optionally "vat_types", each per zone

What a system does not say is not held against the choice: an unknown type or direction passes.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from flask_babel import gettext as _

from portal.connectors.base import Choice
from portal.i18n import format_number

Level = Literal["refuse", "warn"]
Purpose = Literal["domestic", "eu", "world", "no_vat", "payments"]
ZONES = ("domestic", "eu", "world")


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str

    @property
    def refused(self) -> bool:
        return self.level == "refuse"


@dataclass(frozen=True)
class Vat:
    """A VAT code as far as the system describes it."""

    code: str
    rate: Decimal | None = None  # percent
    direction: Literal["sales", "purchase"] | None = None
    treatment: Literal["eu_goods", "eu_services", "export"] | None = None


@dataclass(frozen=True)
class Account:
    """What is booked on: an account (or one zone of a product group) with the VAT it carries."""

    label: str
    balance: bool | None = None  # True: balance sheet (bank, debtors, VAT); False: operating; None: unknown
    vat: Vat | None = None


# --- reading the metadata -----------------------------------------------------------------------------------

_OPERATING = {"profitandloss", "operating"}
_BALANCE = {"status", "balance"}


def _rate(value) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def vat_of(code: str | None, rate=None, name: str | None = None, kind: str | None = None) -> Vat | None:
    """A VAT code's direction and treatment, from the system's type where it gives one (Dynaccount
    SALES/PURCHASE, e-conomic's VAT type names), else from the Danish naming every system shares: U… or
    "salg" is output VAT, I…/K… or "køb" is input VAT; "uden for EU"/eksport/EXP is export, EU with
    "ydelse"/services is EU services, other EU is EU goods. "none" (Dinero) is no code."""
    if not code or code.lower() == "none":
        return None
    kind_text, text = (kind or "").lower(), f"{code} {name or ''}".lower()
    if "purchase" in kind_text or "køb" in kind_text:
        direction = "purchase"
    elif "sale" in kind_text or "salg" in kind_text:
        direction = "sales"
    elif "køb" in text or code[:1].upper() in "IK":
        direction = "purchase"
    elif "salg" in text or code[:1].upper() == "U":
        direction = "sales"
    else:
        direction = None
    if any(word in text for word in ("uden for eu", "eksport", "export", "exp", "rubrik c")):
        treatment = "export"
    elif "eu" in text and any(word in text for word in ("ydelse", "service", "euy")):
        treatment = "eu_services"
    elif "eu" in text:
        treatment = "eu_goods"
    else:
        treatment = None
    return Vat(code=code, rate=_rate(rate), direction=direction, treatment=treatment)


def account_of(
    choice: Choice, vat_codes: dict[str, Choice] | None = None, code: str | None = None
) -> Account:
    """An account choice; `code` overrides the account's own VAT code (Dynaccount: the line's code)."""
    details = choice.details or {}
    kind = str(details.get("type") or "").lower()
    balance = True if kind in _BALANCE else False if kind in _OPERATING else None
    own = details.get("vat_code")
    vat = vat_from_codes(code or own, vat_codes, details if (code or own) == own else {})
    return Account(choice.label, balance, vat)


def vat_from_codes(code: str | None, vat_codes: dict[str, Choice] | None, details: dict) -> Vat | None:
    """A code described by the system's list of VAT codes, else by the account's own details."""
    described = (vat_codes or {}).get(code) if code else None
    if described is not None:
        return vat_of(code, described.details.get("rate"), described.label, described.details.get("type"))
    return vat_of(code, details.get("vat_rate"), details.get("vat_name"))


def group_zones(choice: Choice) -> dict[str, Account]:
    """An e-conomic product group: the sales account of each zone, with its VAT."""
    details = choice.details or {}
    codes, rates, types = (details.get(key) or {} for key in ("vat_codes", "vat_rates", "vat_types"))
    return {
        zone: Account(label, False, vat_of(codes.get(zone), rates.get(zone), None, types.get(zone)))
        for zone, label in (details.get("sales_accounts") or {}).items()
    }


# --- the rules ----------------------------------------------------------------------------------------------


def _percent(rate: Decimal) -> str:
    return format_number(rate)


def _not_operating(account: Account) -> Finding | None:
    if account.balance:
        return Finding(
            "refuse",
            _(
                "%(account)s is a balance account (bank, debtors, VAT …); sales are booked on an operating "
                "(revenue) account.",
                account=account.label,
            ),
        )
    return None


def _purchase(account: Account) -> Finding | None:
    if account.vat and account.vat.direction == "purchase":
        return Finding(
            "refuse",
            _(
                "%(account)s carries purchase VAT (%(code)s); a sale needs a sales VAT code.",
                account=account.label,
                code=account.vat.code,
            ),
        )
    return None


def domestic(account: Account, domestic_rate: Decimal) -> Finding | None:
    """Sales in Denmark: an operating account with output VAT at the domestic rate."""
    found = _not_operating(account) or _purchase(account)
    if found:
        return found
    vat = account.vat
    if vat is None:
        return Finding(
            "warn",
            _(
                "%(account)s has no VAT code, so sales in Denmark would carry no VAT. That is only right "
                "if your company is exempt from VAT; otherwise choose an account with %(rate)s %% output "
                "VAT.",
                account=account.label,
                rate=_percent(domestic_rate),
            ),
        )
    if vat.treatment in ("eu_goods", "eu_services", "export") or (vat.rate is not None and vat.rate == 0):
        return Finding(
            "refuse",
            _(
                "%(account)s carries %(code)s, the VAT code for EU or export sales (0 %%); sales in Denmark "
                "need %(rate)s %% output VAT.",
                account=account.label,
                code=vat.code,
                rate=_percent(domestic_rate),
            ),
        )
    if vat.rate is not None and vat.rate != domestic_rate:
        return Finding(
            "refuse",
            _(
                "%(account)s carries %(code)s at %(actual)s %%; sales in Denmark need %(rate)s %% output "
                "VAT.",
                account=account.label,
                code=vat.code,
                actual=_percent(vat.rate),
                rate=_percent(domestic_rate),
            ),
        )
    return None


def zero_rated(account: Account, zone: str, goods: bool = True) -> Finding | None:
    """EU business sales (reverse charge) and exports: an operating account whose VAT, if any, is 0 %."""
    found = _not_operating(account) or _purchase(account)
    if found:
        return found
    vat = account.vat
    if vat is None:
        return None  # no VAT is right; the VAT return boxes follow the account's own setup
    if vat.rate is not None and vat.rate > 0:
        if zone == "eu":
            message = _(
                "%(account)s adds %(rate)s %% VAT (%(code)s); a sale to an EU business is reverse charge "
                "and must carry no Danish VAT. Choose an account with an EU sales VAT code.",
                account=account.label,
                rate=_percent(vat.rate),
                code=vat.code,
            )
        else:
            message = _(
                "%(account)s adds %(rate)s %% VAT (%(code)s); a sale outside the EU is an export and must "
                "carry no VAT. Choose an account with an export VAT code.",
                account=account.label,
                rate=_percent(vat.rate),
                code=vat.code,
            )
        return Finding("refuse", message)
    if zone == "eu" and vat.treatment == "export":
        return Finding(
            "warn",
            _(
                "%(code)s is the VAT code for exports outside the EU: sales to EU businesses would be "
                "reported in the wrong box of the VAT return.",
                code=vat.code,
            ),
        )
    if zone == "world" and vat.treatment in ("eu_goods", "eu_services"):
        return Finding(
            "warn",
            _(
                "%(code)s is the VAT code for sales to EU businesses: exports would be reported in the "
                "wrong box of the VAT return.",
                code=vat.code,
            ),
        )
    if zone == "eu" and goods and vat.treatment == "eu_services":
        return Finding(
            "warn",
            _(
                "%(code)s is the VAT code for EU sales of services; goods to EU businesses are reported "
                "in another box of the VAT return.",
                code=vat.code,
            ),
        )
    return None


def no_vat(account: Account) -> Finding | None:
    """Gift cards and rounding: an operating account that adds no VAT and is not reported as EU/export."""
    found = _not_operating(account) or _purchase(account)
    if found:
        return found
    vat = account.vat
    if vat is None:
        return None
    if vat.rate is None or vat.rate > 0:
        return Finding(
            "refuse",
            _(
                "%(account)s carries %(code)s; gift cards and rounding must carry no VAT. Choose an account "
                "without a VAT code.",
                account=account.label,
                code=vat.code,
            ),
        )
    if vat.treatment:
        return Finding(
            "warn",
            _(
                "%(code)s is a VAT code for EU or export sales: gift cards and rounding would be reported "
                "as such on the VAT return. An account without a VAT code is better.",
                code=vat.code,
            ),
        )
    return None


def payments(account: Account) -> Finding | None:
    """Payments: a bank or clearing account (balance sheet), which carries no VAT."""
    if account.balance is False:
        return Finding(
            "refuse",
            _(
                "%(account)s is an operating account; payments go to a bank or clearing account (a balance "
                "account).",
                account=account.label,
            ),
        )
    if account.vat is not None:
        return Finding(
            "refuse",
            _(
                "%(account)s carries the VAT code %(code)s; a payment carries no VAT. Choose a bank or "
                "clearing account without a VAT code.",
                account=account.label,
                code=account.vat.code,
            ),
        )
    return None


def check(purpose: Purpose, account: Account, domestic_rate: Decimal, goods: bool = True) -> Finding | None:
    if purpose == "domestic":
        return domestic(account, domestic_rate)
    if purpose in ("eu", "world"):
        return zero_rated(account, purpose, goods)
    if purpose == "no_vat":
        return no_vat(account)
    return payments(account)


def _zone_name(zone: str) -> str:
    return {"domestic": _("Denmark"), "eu": _("EU"), "world": _("Outside the EU")}.get(zone, zone)


def check_group(
    choice: Choice, purposes: dict[str, Purpose], domestic_rate: Decimal, goods: bool
) -> Finding | None:
    """An e-conomic product group: each zone's sales account against that zone's purpose; the worst wins,
    every problem is told."""
    findings = []
    for zone, account in group_zones(choice).items():
        if zone in purposes:
            found = check(purposes[zone], account, domestic_rate, goods)
            if found:
                findings.append(Finding(found.level, f"{_zone_name(zone)}: {found.message}"))
    if not findings:
        return None
    level = "refuse" if any(f.refused for f in findings) else "warn"
    return Finding(level, " ".join(f.message for f in findings))


# --- a template ---------------------------------------------------------------------------------------------


def purpose_of(kind: str, zone: str) -> Purpose | None:
    if kind in ("goods", "freight") and zone in ZONES:
        return zone  # type: ignore[return-value]
    if kind in ("no_vat", "payments"):
        return kind  # type: ignore[return-value]
    return None


def check_template(
    kind: str,
    zone: str,
    chosen: dict[str, tuple[str, Choice]],
    vat_codes: dict[str, Choice],
    domestic_rate: Decimal,
) -> dict[str, Finding]:
    """Field name -> what is wrong with its chosen value. `chosen`: field name -> (the field's choices kind,
    the chosen Choice). A template with an account and a VAT code field (Dynaccount) is judged on the
    account with the chosen code, or its own when none is chosen (a line without one gets the account's)."""
    goods = kind == "goods"
    if any(source == "product_groups" for source, _c in chosen.values()):
        if kind not in ("goods", "freight", "no_vat"):
            return {}  # OSS groups: their rate per country is checked by the OSS warnings
        # e-conomic: one product group for every zone; the VAT-free group must be VAT-free in all of them.
        purposes = {z: ("no_vat" if kind == "no_vat" else z) for z in ZONES}
        return {
            name: found
            for name, (source, choice) in chosen.items()
            if source == "product_groups" and (found := check_group(choice, purposes, domestic_rate, goods))
        }
    if kind == "invoice":
        return _balance_fields(chosen)
    purpose = purpose_of(kind, zone)
    if purpose is None:
        return {}
    findings: dict[str, Finding] = {}
    code_field = next((name for name, (source, _c) in chosen.items() if source == "vat_codes"), None)
    code = chosen[code_field][1].value if code_field else None
    if code_field and not any(source in ("accounts", "deposit_accounts") for source, _c in chosen.values()):
        # Only the code chosen so far: judge the VAT alone (an unknown account type passes).
        found = check(purpose, Account(code, None, vat_from_codes(code, vat_codes, {})), domestic_rate, goods)
        return {code_field: found} if found else {}
    for name, (source, choice) in chosen.items():
        if source not in ("accounts", "deposit_accounts"):
            continue
        account = account_of(choice, vat_codes, code)
        found = check(purpose, account, domestic_rate, goods)
        if found is None:
            continue
        # A VAT problem from the chosen code belongs beside the code; the account's type beside the account.
        vat_problem = code_field and account.balance is not True and purpose != "payments"
        findings[code_field if vat_problem else name] = found
    return findings


def _balance_fields(chosen: dict[str, tuple[str, Choice]]) -> dict[str, Finding]:
    """The invoice template's accounts (Dynaccount's receivable and output VAT accounts for its sales
    vouchers) are balance sheet accounts: an operating account there would book the sale as a cost."""
    return {
        name: Finding(
            "refuse",
            _(
                "%(account)s is an operating account; this field needs a balance sheet account "
                "(debtors or output VAT).",
                account=choice.label,
            ),
        )
        for name, (source, choice) in chosen.items()
        if source == "accounts" and account_of(choice).balance is False
    }
