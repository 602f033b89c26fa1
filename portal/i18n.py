"""Language choice and Danish-first formatting of amounts and dates."""

from datetime import UTC, datetime

from babel.dates import format_date, format_datetime, format_timedelta
from babel.lists import format_list
from babel.numbers import format_decimal
from flask import request, session
from flask_babel import get_locale, get_timezone
from flask_login import current_user

from portal.engine.money import format_money
from portal.models import LANGUAGES

LANGUAGE_SESSION_KEY = "language"


def select_locale() -> str:
    if current_user and current_user.is_authenticated:
        return current_user.language
    chosen = session.get(LANGUAGE_SESSION_KEY)
    if chosen in LANGUAGES:
        return chosen
    if request.args.get("lang") in LANGUAGES:
        return request.args["lang"]
    return "da"


# English readers here are Danish businesses' staff: day-month order and a 24-hour clock (Babel's `en` says
# `12/7/26, 2:05 PM`). Danish keeps Babel's own words and order.
DATE_PATTERNS = {
    "da": {"date": "d. MMM yyyy", "long": "d. MMMM yyyy", "datetime": "d. MMM yyyy 'kl.' HH.mm"},
    "en": {"date": "d MMM yyyy", "long": "d MMMM yyyy", "datetime": "d MMM yyyy, HH:mm"},
}
# The systems' own spelling, for pages and mails that would otherwise show our key (`dynaccount`).
SYSTEM_NAMES = {
    "e-conomic": "e-conomic",
    "dinero": "Dinero",
    "dynaccount": "Dynaccount",
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "stripe": "Stripe",
    "frisbii": "Frisbii",
}


def language_of(locale) -> str:
    if locale is None:
        try:
            locale = get_locale()
        except RuntimeError:  # no request to choose by (a worker outside force_locale): Danish first
            locale = None
    return str(locale or "da").split("_")[0]


def format_amount(value, currency: str = "DKK", locale=None) -> str:
    """`1.234,50 kr.` in Danish, `DKK 1,234.50` in English; rounded half up to whole øre first. The one
    way an amount is written: templates (`|amount`), messages and mails."""
    if value is None or value == "":
        return ""
    return format_money(value, currency, language_of(locale))


def format_amounts(totals: dict, locale=None) -> str:
    """Amounts in several currencies ({"DKK": …, "EUR": …}) as one phrase: `1.234,50 kr. og 99,00 €`."""
    language = language_of(locale)
    return format_list(
        [format_amount(value, currency, language) for currency, value in totals.items()], locale=language
    )


def format_day(value, fmt: str = "date", locale=None) -> str:
    """`7. dec. 2026` / `7 Dec 2026` (`long`: the month written out)."""
    if not value:
        return ""
    language = language_of(locale)
    pattern = DATE_PATTERNS.get(language, DATE_PATTERNS["da"])
    return format_date(value, pattern["long" if fmt == "long" else "date"], locale=language)


def format_moment(value, fmt: str = "datetime", locale=None) -> str:
    """`7. dec. 2026 kl. 14.05` / `7 Dec 2026, 14:05`, in the reader's time zone, to the minute."""
    if not value:
        return ""
    language = language_of(locale)
    pattern = DATE_PATTERNS.get(language, DATE_PATTERNS["da"])["datetime"]
    return format_datetime(value, pattern, tzinfo=_timezone(), locale=language)


def _timezone():
    try:
        return get_timezone()
    except RuntimeError:  # outside a request or app context (a worker's log line)
        return None


def system_name(key: str | None) -> str:
    return SYSTEM_NAMES.get(key or "", key or "")


def format_number(value, locale=None) -> str:
    """`10.000` in Danish, `10,000` in English; decimals only where there are any (`12,5`)."""
    return format_decimal(value, locale=str(locale or get_locale() or "da"))


def format_ago(value, now: datetime | None = None, locale=None) -> str:
    """`for 5 minutter siden` / `5 minutes ago` for an aware UTC moment in the past."""
    if value is None:
        return ""
    moment = (now or datetime.now(UTC)) - value
    return format_timedelta(-moment, add_direction=True, locale=str(locale or get_locale() or "da"))


def init_app(app):
    app.jinja_env.filters["amount"] = format_amount
    app.jinja_env.filters["amounts"] = format_amounts
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["ago"] = format_ago
    # the format argument some templates pass ("short", "medium") is kept for them; one pattern per language
    app.jinja_env.filters["date"] = lambda value, fmt="date": format_day(value, fmt)
    app.jinja_env.filters["datetime"] = lambda value, fmt="datetime": format_moment(value)
    app.jinja_env.filters["system_name"] = system_name
    app.jinja_env.globals["current_language"] = lambda: str(get_locale())
