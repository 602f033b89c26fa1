"""Closed accounting periods, handled before the ledger refuses a document (issue 15 §3).

Before a document is posted its date is checked against the ledger's open periods, as far as each API shows
them (`AccountingConnector.open_periods`: e-conomic's open accounting years and periods, Dinero's years from
the first one on, Dynaccount's years not closed; docs/connectors/ say what is verified). A date in a closed
period is handled per the source link's `closed_period` setting:

- "hold" (the default): the transfer needs attention, with what to do;
- "first_open_day": the document is dated on the first open day after it, the original date kept in its
  text ("ordredato 30.12.2025").

The open periods are cached per accounting setup in Redis for CACHE_SECONDS, so the steady state (dates in an
open period) costs no call per order — and no Redis round trip of its own: a run reads the entry with its
customer and product cache entries (ensure.cache_entries). A date the cache calls closed is checked once
more against a fresh read, so a period opened in the ledger takes effect at once on the next retry.

The ledger's accounting years, where its vouchers name one (e-conomic), are cached next to them (same TTL,
rewritten by every fresh read of the periods): a payment's voucher then needs no call for its year.
"""

import json
from dataclasses import replace
from datetime import date

from portal.connectors.base import AccountingConnector, OpenPeriod
from portal.engine.invoice import DraftPlan
from portal.i18n import system_name
from portal.pipeline.messages import N_, Message, a_day, message
from portal.redis_client import get_redis

CACHE_SECONDS = 15 * 60
HOLD, FIRST_OPEN_DAY = "hold", "first_open_day"
CHOICES = (HOLD, FIRST_OPEN_DAY)


class ClosedPeriod(Exception):
    """The document's date is in a closed period and the setting says hold: `message` says what to do."""

    def __init__(self, message: Message):
        super().__init__(message.english())
        self.message = message


def cache_key(setup_id: int) -> str:
    return f"bogbro:periods:{setup_id}"


def years_key(setup_id: int) -> str:
    return f"bogbro:years:{setup_id}"


def load_years(connector: AccountingConnector, setup_id: int) -> None:
    """Give the connector the cached accounting years (a connector that names none has no such hook)."""
    if hasattr(connector, "use_accounting_years"):
        cached = get_redis().get(years_key(setup_id))
        if cached is not None:
            connector.use_accounting_years(json.loads(cached))


def save_years(connector: AccountingConnector, setup_id: int, pipe=None) -> None:
    """Cache the years the connector read from the ledger during this run, if it read any."""
    if getattr(connector, "years_fetched", False):
        value = json.dumps(connector.accounting_years)
        (pipe or get_redis()).set(years_key(setup_id), value, ex=CACHE_SECONDS)


def open_periods(
    connector: AccountingConnector, setup_id: int, fresh: bool = False, cached: bytes | None = None
) -> list[OpenPeriod] | None:
    """The ledger's open periods, from the cache unless `fresh`; None when its API shows none. `cached`:
    the cache entry when the caller has read it already."""
    redis = get_redis()
    if cached is None and not fresh:
        cached = redis.get(cache_key(setup_id))
    if cached is not None:
        stored = json.loads(cached)
        return None if stored is None else [_period(item) for item in stored]
    periods = connector.open_periods()
    stored = None
    if periods is not None:
        stored = [[p.start.isoformat(), p.end and p.end.isoformat()] for p in periods]
    with redis.pipeline(transaction=False) as pipe:
        pipe.set(cache_key(setup_id), json.dumps(stored), ex=CACHE_SECONDS)
        save_years(connector, setup_id, pipe)
        pipe.execute()
    return periods


def _period(item: list) -> OpenPeriod:
    return OpenPeriod(date.fromisoformat(item[0]), date.fromisoformat(item[1]) if item[1] else None)


def first_open_day(periods: list[OpenPeriod], day: date) -> date | None:
    """`day` itself when a period holds it, else the first day of the next open period (None: none)."""
    if any(period.holds(day) for period in periods):
        return day
    later = [period.start for period in periods if period.start > day]
    return min(later) if later else None


def setting(settings: dict | None) -> str:
    value = (settings or {}).get("closed_period")
    return value if value in CHOICES else HOLD


def check(
    connector: AccountingConnector,
    setup_id: int,
    settings: dict | None,
    plan: DraftPlan,
    cached: bytes | None = None,
) -> tuple[DraftPlan, Message | None]:
    """The plan to post and, when it was moved to the first open day, what to log; raise ClosedPeriod when
    the setting holds it (or no later day is open). `cached`: the cache entry, when already read."""
    day = plan.invoice.date
    periods = open_periods(connector, setup_id, cached=cached)
    if periods is None or first_open_day(periods, day) == day:
        return plan, None
    periods = open_periods(connector, setup_id, fresh=True)  # closed per the cache: make sure
    first = first_open_day(periods, day) if periods is not None else day
    if first == day:
        return plan, None
    system = system_name(connector.system.key)
    if first is None:
        raise ClosedPeriod(
            message(
                N_(
                    "The date %(day)s lies in a closed accounting period in %(system)s, and no later period "
                    "is open. Create or open the accounting year in %(system)s, then retry."
                ),
                day=a_day(day),
                system=system,
            )
        )
    if setting(settings) == HOLD:
        raise ClosedPeriod(
            message(
                N_(
                    "The date %(day)s lies in a closed accounting period in %(system)s; the first open day "
                    "is %(first)s. Open the period in %(system)s, or choose “Date it on the first open day” "
                    "under closed periods in the shop's settings, then retry."
                ),
                day=a_day(day),
                first=a_day(first),
                system=system,
            )
        )
    text = f"{plan.invoice.text or plan.invoice.reference} · ordredato {day:%d.%m.%Y}"
    moved = replace(plan, invoice=replace(plan.invoice, date=first, text=text))
    said = message(
        N_("The date %(day)s lies in a closed accounting period: dated %(first)s, the first open day."),
        day=a_day(day),
        first=a_day(first),
    )
    return moved, said
