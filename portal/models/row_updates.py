"""Changed columns of events and transfers written by one prepared UPDATE per table, before the unit of work.

A steady-state sale changes its transfer two or three times and its event once. Through the ORM's flush,
each of those UPDATEs cost about four times what the same statement costs alone (dependency sorting,
relationship processing, history per column): a fifth of a sale's own time in `make bench`. So before each
flush, a SourceEvent or Transfer whose changes are plain column values is written here by its table's
UPDATE keyed on the id (rows changing the same columns in one executemany), and marked as written. Anything
else — a new or deleted row, a changed relationship, a SQL expression as a value, another class — is left to
the unit of work.

As the flush would: the same transaction, tables in dependency order and rows by id, the same `updated_at`,
no UPDATE for a value set again to what it was, a row deleted meanwhile refused (StaleDataError); a
rolled-back transaction expires these objects like any other. (The app uses no SAVEPOINTs: a rolled-back
one would not expire them.)"""

from functools import cache

from sqlalchemy import bindparam, event, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import ClauseElement

from portal.models.transfers import SourceEvent, Transfer

_CLASSES = (SourceEvent, Transfer)  # the unit of work's order: a transfer points at its event


@cache
def _plan(cls) -> tuple:
    """The table's UPDATE by id, the class's attribute → column keys, and the columns every UPDATE sets
    (updated_at): built on first use, once all mappers are configured."""
    table = cls.__table__
    statement = update(table).where(table.c.id == bindparam("row_id"))
    columns = {prop.key: prop.columns[0].key for prop in inspect(cls).column_attrs}
    on_update = [(column.key, column.onupdate.arg) for column in table.columns if column.onupdate is not None]
    return statement, columns, on_update


def _changed_columns(state, columns: dict) -> dict | None:
    """{column: new value} of a persistent object's changes; None when the unit of work must write them."""
    values = {}
    for key, old in state.committed_state.items():
        column = columns.get(key)
        value = state.dict.get(key, NO_VALUE)
        if column is None or value is NO_VALUE or isinstance(value, ClauseElement):
            return None  # a relationship, an expired value, or SQL
        if old is NO_VALUE or old != value:  # set again to what it was: nothing to write (as the ORM)
            values[column] = value
    return values


@event.listens_for(Session, "before_flush")
def _write_changed_rows(session, flush_context, instances) -> None:
    rows: dict = {cls: {} for cls in _CLASSES}  # class → the columns changed → those rows' parameters
    for state in list(session.identity_map._modified):
        cls = state.class_
        if cls not in rows or state.key is None or state in session._deleted:
            continue
        _statement, columns, on_update = _plan(cls)
        values = _changed_columns(state, columns)
        if values is None:
            continue
        if values:
            for column, make in on_update:  # (these columns' attributes have the same names)
                if column not in values:
                    state.dict[column] = values[column] = make(None)
            values["row_id"] = state.key[1][0]
            rows[cls].setdefault(tuple(sorted(values)), []).append(values)
        state._commit_all(state.dict, session.identity_map)  # written: nothing left for the flush
    for cls in _CLASSES:  # the unit of work's order: tables by dependency, rows by id
        for params in rows[cls].values():
            params.sort(key=lambda row: row["row_id"])
            matched = session.connection().execute(_plan(cls)[0], params).rowcount
            if matched != len(params):  # a row deleted meanwhile: refused, as the unit of work refuses it
                raise StaleDataError(f"UPDATE {cls.__tablename__}: {matched} of {len(params)} rows")
