"""Which transfers a person is looking at: the transfer log's filters as plain data, turned into one query.

The same filters narrow the log page, the count on the bulk re-transfer's confirm step and the bulk
re-transfer itself, so what is shown, counted and queued is always the same set. Dates are Danish calendar
days (Europe/Copenhagen) on the transfer's `created_at`; the order number matches exactly, or as a prefix
when it ends in `*`.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.orm import joinedload

from portal.engine.documents import COPENHAGEN
from portal.extensions import db
from portal.ids import whole_number
from portal.models import TRANSFER_STATUSES, Transfer
from portal.models.transfers import ERROR_KINDS


def day_start(day: date) -> datetime:
    """The first moment of a Danish calendar day, in UTC."""
    return datetime.combine(day, time.min, COPENHAGEN).astimezone(UTC)


def today() -> date:
    return datetime.now(COPENHAGEN).date()


def _date(value) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class TransferFilters:
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    order: str = ""  # "5001" exactly, or "50*" for every number starting with 50
    error_kind: str | None = None
    source_link_id: int | None = None

    @classmethod
    def from_args(cls, args: Mapping) -> "TransferFilters":
        """From a query string (or form): what cannot be read is left out rather than refused, so an
        edited or outdated link still shows something sensible."""
        status = args.get("status") or None
        error_kind = args.get("error_kind") or None
        return cls(
            status=status if status in TRANSFER_STATUSES else None,
            date_from=_date(args.get("date_from")),
            date_to=_date(args.get("date_to")),
            order=str(args.get("order") or "").strip().lstrip("#")[:100],
            error_kind=error_kind if error_kind in ERROR_KINDS else None,
            source_link_id=whole_number(args.get("source_link")),
        )

    def args(self) -> dict:
        """The query-string form (for links and hidden fields): only what is set."""
        values = {
            "status": self.status,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "order": self.order or None,
            "error_kind": self.error_kind,
            "source_link": self.source_link_id,
        }
        return {key: value for key, value in values.items() if value is not None}

    def describe(self) -> dict:
        """For the audit log: every filter, plain JSON."""
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items() if v}

    @property
    def active(self) -> bool:
        return bool(self.args())

    def apply(self, query: Select, account_id: int) -> Select:
        """`query` (over Transfer) narrowed to the account and these filters."""
        query = query.where(Transfer.account_id == account_id)
        if self.status:
            query = query.where(Transfer.status == self.status)
        if self.date_from:
            query = query.where(Transfer.created_at >= day_start(self.date_from))
        if self.date_to:
            query = query.where(Transfer.created_at < day_start(self.date_to + timedelta(days=1)))
        if self.order:
            if self.order.endswith("*"):
                prefix = self.order.rstrip("*")
                if prefix:
                    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    query = query.where(Transfer.order_number.like(f"{escaped}%", escape="\\"))
            else:
                query = query.where(Transfer.order_number == self.order)
        if self.error_kind:
            query = query.where(Transfer.error_kind == self.error_kind)
        if self.source_link_id:
            query = query.where(Transfer.source_link_id == self.source_link_id)
        return query


@dataclass
class TransferPage:
    transfers: list[Transfer]
    newer: int | None  # ?after= for the previous (newer) page, if there is one
    older: int | None  # ?before= for the next (older) page, if there is one


def transfer_page(
    account_id: int, filters: TransferFilters, before: int | None = None, after: int | None = None, size=200
) -> TransferPage:
    """One page of the log, newest first, by keyset on (created_at, id): stable while new transfers arrive
    (an offset would shift every page by the transfers created since), and read straight off an index that
    starts with the account (and the status, when filtered), however long the history. `before`/`after` are
    transfer ids, so links stay short; an id not the account's is no anchor (the first page)."""
    query = filters.apply(select(Transfer), account_id).options(joinedload(Transfer.source_link))
    newest_first = (Transfer.created_at.desc(), Transfer.id.desc())
    anchor = _anchor(account_id, after if after is not None else before)
    if after is not None and anchor is not None:  # the page newer than `after`: read upwards, newest first
        rows = list(
            db.session.scalars(
                query.where(_key() > anchor).order_by(Transfer.created_at, Transfer.id).limit(size + 1)
            )
        )
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        return TransferPage(rows, rows[0].id if more_newer and rows else None, rows[-1].id if rows else None)
    if before is not None and anchor is not None:
        query = query.where(_key() < anchor)
    rows = list(db.session.scalars(query.order_by(*newest_first).limit(size + 1)))
    more_older = len(rows) > size
    rows = rows[:size]
    newer = rows[0].id if before is not None and anchor is not None and rows else None
    return TransferPage(rows, newer, rows[-1].id if more_older and rows else None)


def _key():
    return tuple_(Transfer.created_at, Transfer.id)


def _anchor(account_id: int, transfer_id: int | None):
    """The (created_at, id) key of the account's transfer `transfer_id`, as typed bound values."""
    if transfer_id is None:
        return None
    created_at = db.session.scalar(
        select(Transfer.created_at).where(Transfer.id == transfer_id, Transfer.account_id == account_id)
    )
    if created_at is None:
        return None
    return tuple_(literal(created_at, Transfer.created_at.type), literal(transfer_id, Transfer.id.type))
