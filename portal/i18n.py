"""Language choice and Danish-first formatting of amounts and dates."""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_timedelta
from babel.numbers import format_currency, format_decimal
from flask import request, session
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user

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


def format_amount(value, currency: str = "DKK", locale=None) -> str:
    """`1.234,50 kr.` in Danish, `DKK 1,234.50` in English; rounded half up to whole øre first."""
    if value is None:
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return format_currency(amount, currency, locale=str(locale or get_locale() or "da"))


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
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["ago"] = format_ago
    app.jinja_env.filters["date"] = lambda value, fmt="medium": format_date(value, fmt) if value else ""
    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(value, fmt) if value else ""
    )
    app.jinja_env.globals["current_language"] = lambda: str(get_locale())
