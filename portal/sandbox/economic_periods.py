"""The e-conomic sandbox's accounting-year periods (`/accounting-years/{year}/periods`), registered on the
same blueprint and state as portal.sandbox.economic.

A year document may carry `closed` (the schema's field) and, internally, `_closedPeriods` (period numbers):
the periods are the year's calendar months, numbered from 1 (a guess: e-conomic's own periods follow the
agreement's setup; docs/connectors/economic.md guess 9). A document dated in a closed year or a closed period
is refused like one outside every year (E07330).
"""

from datetime import date

from flask import g

from portal.sandbox.economic import bp, collection, decode_key, json_response, link, not_found

PERIOD_FILTERS = {"periodNumber", "fromDate", "toDate", "closed"}


def _months(year: dict) -> list[tuple[int, date, date]]:
    start, end = date.fromisoformat(year["fromDate"]), date.fromisoformat(year["toDate"])
    out, number, first = [], 1, start
    while first <= end:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        last = min(end, date.fromordinal(following.toordinal() - 1))
        out.append((number, first, last))
        number, first = number + 1, following
    return out


def periods(year: dict) -> list[dict]:
    closed = set(year.get("_closedPeriods") or ())
    base = f"{g.eco_base}/accounting-years/{year['year']}"
    return [
        {
            "periodNumber": number,
            "accountingYear": {"year": year["year"], "self": base},
            "fromDate": first.isoformat(),
            "toDate": last.isoformat(),
            "closed": bool(year.get("closed")) or number in closed,
            "entries": f"{base}/periods/{number}/entries",
            "totals": f"{base}/periods/{number}/totals",
            "self": f"{base}/periods/{number}",
        }
        for number, first, last in _months(year)
    ]


def is_open(year: dict, day: date) -> bool:
    """The day lies in an open period of an open year (the caller has found the year holding it)."""
    if year.get("closed"):
        return False
    closed = set(year.get("_closedPeriods") or ())
    return not any(first <= day <= last and number in closed for number, first, last in _months(year))


@bp.get("/accounting-years/<year>/periods")
def list_periods(year):
    document = g.eco.get("accounting-years", decode_key(year))
    if document is None:
        raise not_found()
    return collection(periods(document), PERIOD_FILTERS, "periodNumber")


@bp.get("/accounting-years/<year>/periods/<int:number>")
def get_period(year, number):
    document = g.eco.get("accounting-years", decode_key(year))
    found = next((p for p in periods(document) if p["periodNumber"] == number), None) if document else None
    if found is None:
        raise not_found()
    return json_response(link(found, g.eco_base))


def close_year(agreement, year: str, closed: bool = True) -> None:
    """Close (or reopen) an accounting year of a sandbox agreement: the demo's way, as the REST API has none
    (e-conomic closes a year in its own pages, after the annual accounts)."""
    from portal.extensions import db
    from portal.sandbox.store import SandboxStore

    store = SandboxStore("e-conomic", str(agreement))
    document = store.get("accounting-years", str(year))
    if document is None:
        raise LookupError(f"agreement {agreement} has no accounting year {year}")
    store.put("accounting-years", str(year), {**document, "closed": closed})
    db.session.commit()
