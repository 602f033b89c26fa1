"""The account's plan and its bill before it happens (Settings → Subscription).

The price is always `pricing.price()` over the live catalogue — the function `/priser` uses — so the
account page and the calculator never disagree. The month's outlook is a pure function of the plan, the
documents so far and the day, which is passed in (so a test freezes "today" without mocking a clock).

A document is a transfer that ended `done` having created something in the accounting system (an
order, a draft or a booked invoice, or a credit note), counted in the Danish calendar month it finished
in. Skipped orders, waiting credit notes and failures are not documents.
"""

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.calculator import pricing
from portal.extensions import db
from portal.models import Account, Transfer

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


# --- the pure part ----------------------------------------------------------------------------------------


def month_pace(documents: int, today: date) -> int:
    """The documents the month ends with at this pace: so far ÷ days elapsed (today counts) × days in the
    month, rounded up (a part of a document is still one more)."""
    days = calendar.monthrange(today.year, today.month)[1]
    return -(-documents * days // today.day)


@dataclass(frozen=True)
class Outlook:
    breakdown: pricing.Breakdown  # the plan, priced now
    documents: int  # this month so far
    projected: int  # at the month's end, at this pace
    today: date
    next: pricing.Breakdown | None = None  # the plan at the projected volume, when it leaves the tier

    @property
    def limit(self) -> int | None:
        return self.breakdown.tier.max_orders if self.breakdown.tier else None

    @property
    def crossed(self) -> bool:
        """Already past the tier this month (not just heading there)."""
        return self.limit is not None and self.documents > self.limit

    @property
    def crossing_day(self) -> date | None:
        """The day the pace passes the tier's limit (None: it does not this month, or already has)."""
        if self.next is None or self.crossed or not self.documents:
            return None
        day = -(-(self.limit + 1) * self.today.day // self.documents)
        return self.today.replace(day=min(day, calendar.monthrange(self.today.year, self.today.month)[1]))

    @property
    def beyond_largest(self) -> bool:
        """The pace leaves even the largest tier: no price, a talk with us."""
        return self.next is not None and self.next.over_volume


def outlook(
    catalogue: pricing.Catalogue, selection: pricing.Selection, documents: int, today: date
) -> Outlook:
    breakdown = pricing.price(catalogue, selection)
    projected = month_pace(documents, today)
    limit = breakdown.tier.max_orders if breakdown.priced and breakdown.tier else None
    following = None
    if limit is not None and max(projected, documents) > limit:
        following = pricing.price(catalogue, replace(breakdown.selection, orders=max(projected, documents)))
    return Outlook(breakdown, documents, projected, today, following)


# --- the account's plan in the database -------------------------------------------------------------------


class PlanError(Exception):
    """A refused change of plan, with a message meant for the owner."""


def current_selection(account: Account) -> pricing.Selection | None:
    """The plan the owner chose, else the selection of the quote the account was made from, else none."""
    if account.plan:
        return pricing.selection_from_json(account.plan)
    if account.quote_request is not None:
        return pricing.selection_from_json(account.quote_request.selection)
    return None


def month_start(today: date) -> datetime:
    return datetime.combine(today.replace(day=1), time(), COPENHAGEN)


def documents_this_month(account: Account, today: date) -> int:
    """Documents the account's transfers created in `today`'s month, up to now."""
    start = month_start(today)
    end = month_start(today.replace(day=28) + timedelta(days=4))  # the first of the next month
    return db.session.scalar(
        select(func.count())
        .select_from(Transfer)
        .where(
            Transfer.account_id == account.id,
            Transfer.status == "done",
            Transfer.document != "none",
            Transfer.finished_at >= start,
            Transfer.finished_at < end,
        )
    )


def _described(catalogue: pricing.Catalogue, breakdown: pricing.Breakdown | None) -> dict:
    """A plan as the change log shows it: names and amounts, never keys."""
    if breakdown is None:
        return {}
    selection = breakdown.selection
    tier = breakdown.tier
    addons = [
        f"{catalogue.addon(slug).name} × {quantity}" if quantity > 1 else catalogue.addon(slug).name
        for slug, quantity in selection.addons
    ]
    return {
        "systems": [catalogue.system(slug).name for slug in selection.systems],
        "tier": f"{tier.name} ({tier.max_orders})" if tier else None,
        "addons": addons,
        "billing": selection.billing,
        "price_per_month": str(breakdown.per_month) if breakdown.priced else None,
    }


def change_plan(account: Account, catalogue: pricing.Catalogue, selection: pricing.Selection) -> dict:
    """Set the account's plan to a priced selection from the catalogue; audited old → new. Refused, with
    nothing changed, unless the selection has a price and its volume is one of the tiers."""
    selection = replace(pricing.normalise(catalogue, selection), setup=False)
    if catalogue.tiers and selection.orders not in {tier.max_orders for tier in catalogue.tiers}:
        raise PlanError(_("Choose one of the tiers."))
    breakdown = pricing.price(catalogue, selection)
    if breakdown.status in (pricing.TOO_FEW, pricing.NO_ACCOUNTING):
        raise PlanError(_("Choose an accounting system and at least one system to connect to it."))
    if breakdown.status == pricing.UNAVAILABLE:
        raise PlanError(_("This combination is not available yet: %(why)s", why=" ".join(breakdown.reasons)))
    if not breakdown.priced:
        raise PlanError(_("This combination has no fixed price; write to us and we will find a plan."))
    if breakdown.skipped_addons:
        raise PlanError(_("An add-on you chose needs a system you did not choose."))
    old = current_selection(account)
    before = _described(catalogue, pricing.price(catalogue, old) if old else None)
    after = _described(catalogue, breakdown)
    changes = {
        key: {"before": before.get(key), "after": value}
        for key, value in after.items()
        if before.get(key) != value
    }
    if changes:
        account.plan = pricing.selection_as_json(selection)
        audit.record("account.plan_changed", account, account=account, changes=changes)
        db.session.commit()
    return changes
