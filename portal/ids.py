"""Database ids from URLs and query strings: whole numbers our INTEGER id columns can hold (PostgreSQL's
integer is 32-bit). Anything larger would make the database driver raise (PostgreSQL: "integer out of
range", SQLite above 2^63: OverflowError) instead of finding nothing, so it never gets there."""

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: above MAX_ID the URL does not match, i.e. 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def whole_number(value) -> int | None:
    """A non-negative whole number in ASCII digits that fits an id, else None (ignored, not an error)."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if number <= MAX_ID else None
