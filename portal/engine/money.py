"""Money helpers. Money is Decimal, parsed from strings (never through float arithmetic)."""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency

ZERO = Decimal("0")
CENT = Decimal("0.01")
HUNDRED = Decimal("100")


def D(value: object, default: Decimal | None = None) -> Decimal:
    """A Decimal from a shop value: a string ("29.35"), an int, or a JSON number (WooCommerce `price` is a
    float such as 7.905138333333333; `str()` keeps its shortest repr, so no binary-float noise is added).
    None or "" gives `default` (an error when no default is given)."""
    if value is None or value == "":
        if default is None:
            raise ValueError("missing amount")
        return default
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


def q2(value: Decimal) -> Decimal:
    """Round half-up (away from zero on .5) to 2 decimals: the commercial rounding used in Denmark."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def floor2(value: Decimal) -> Decimal:
    """Round towards minus infinity to 2 decimals."""
    return value.quantize(CENT, rounding=ROUND_FLOOR)


def has_2dp(value: Decimal) -> bool:
    """True when the value has at most 2 decimals (what e-conomic accepts for prices and quantities)."""
    return value == value.quantize(CENT)


def is_integral(value: Decimal) -> bool:
    return value == value.to_integral_value()


def fmt_rate(rate: Decimal) -> str:
    """25.50 → "25.5", 25.00 → "25" (for messages and template keys)."""
    text = format(rate.normalize(), "f")
    return text


def sum_dec(values) -> Decimal:
    return sum(values, ZERO)


# English readers here are Danish businesses' staff: the code first, with a space (Babel's `en` says
# `DKK1,234.50`). Danish keeps Babel's `da`: `1.234,50 kr.`.
_ENGLISH_AMOUNT = "¤\xa0#,##0.00"


def format_money(value, currency: str = "DKK", language: str = "da") -> str:
    """The one way an amount is written, in pages, messages and mails: `1.234,50 kr.` in Danish,
    `DKK 1,234.50` in English; rounded half up to whole øre first."""
    amount = q2(Decimal(str(value)))
    if language == "en":
        return format_currency(amount, currency, format=_ENGLISH_AMOUNT, locale="en")
    return format_currency(amount, currency, locale=language)
