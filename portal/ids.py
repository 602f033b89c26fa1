"""Database ids from URLs and query strings: whole numbers our INTEGER id columns can hold (PostgreSQL's
integer is 32-bit). Anything larger would make the database driver raise (PostgreSQL: "integer out of
range", SQLite above 2^63: OverflowError) instead of finding nothing, so it never gets there."""

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1
# What any `<int:…>` route accepts: the sandboxes' vendor ids are 64-bit (Shopify's 5800000004 …); our own
# views read their ids through get_owned_or_404 / whole_number, which stop at MAX_ID.
MAX_ROUTE_INT = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: above MAX_ROUTE_INT the URL does not match, i.e. 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROUTE_INT)
        super().__init__(map, *args, **kwargs)


def whole_number(value) -> int | None:
    """A non-negative whole number in ASCII digits that fits an id, else None (ignored, not an error)."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def is_row_id(value) -> bool:
    """An int that one of our id columns can hold: what may be looked up at all."""
    return isinstance(value, int) and 0 <= value <= MAX_ID


def get_or_404(model, ident):
    """The row with this id, else 404 — also for an id no row can have (the staff's views: not scoped to an
    account; customers' rows go through tenancy.get_owned_or_404)."""
    from flask import abort

    from portal.extensions import db

    if not is_row_id(ident):
        abort(404)
    return db.get_or_404(model, ident)
