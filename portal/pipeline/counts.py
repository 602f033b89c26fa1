"""Counts that stay cheap over a year of history: exact where a person acts on the number (the bulk
re-transfer's confirmation counts every transfer it will queue), capped where it only informs (the
dashboard's "needs attention", the log's hint above the table). A capped count stops reading at the cap, and
says so: "over 1.000".
"""

from flask_babel import format_number
from flask_babel import gettext as _
from sqlalchemy import Select, func, select

from portal.extensions import db

COUNT_CAP = 1_000


class Count(int):
    """A number of rows; `capped` when there are more than `cap` (the value is then cap + 1)."""

    capped: bool = False
    cap: int = COUNT_CAP


def capped_count(query: Select, cap: int = COUNT_CAP) -> Count:
    """How many rows `query` has, reading at most cap + 1 of them."""
    n = db.session.scalar(select(func.count()).select_from(_narrow(query).limit(cap + 1).subquery()))
    count = Count(min(n, cap + 1))
    count.capped, count.cap = n > cap, cap
    return count


def exact_count(query: Select) -> int:
    return db.session.scalar(select(func.count()).select_from(_narrow(query).subquery()))


def _narrow(query: Select) -> Select:
    """Only the first column (the id): what is counted can then come from an index alone."""
    return query.with_only_columns(query.selected_columns[0], maintain_column_froms=True)


def shown(count: int) -> str:
    """{{ n|shown_count }}: the number as the reader writes it, or "over 1.000" for a capped count."""
    if getattr(count, "capped", False):
        return _("over %(num)s", num=format_number(count.cap))
    return format_number(count)
