"""Our own SQL statements and Redis round trips per order in steady state (customer and products cached),
as test_api_calls pins the accounting API's calls: the pipeline's own cost per order is mostly these (the
bench: `make bench`, "the pipeline's own"). Counted as the difference between a drain of 8 orders and one
of 4, so what a drain job costs once (its source link, the RQ job) cancels out; what the sandbox does while
it stands in for e-conomic is not ours and is not counted."""

import threading

import redis.connection
from sqlalchemy import event

from portal.sandbox.transport import SandboxTransport
from tests.pipeline.conftest import feed, make_setup, make_source_link, order

# One steady-state order:
#   intake: SELECT the event, SELECT its transfer (none yet), INSERT the transfer;
#   before the create (draft_requested): UPDATE the event (processed) and the transfer, INSERT the customer
#   step's log, COMMIT;
#   done: INSERT the draft, book and done steps' logs, UPDATE the transfer, UPDATE the order's waiting
#   credit notes (none), COMMIT.
# PostgreSQL sends the three step-log INSERTs of the done commit as one (SQLAlchemy's insertmanyvalues).
SQL_PER_ORDER = {"sqlite": 11, "postgresql": 9}
COMMITS_PER_ORDER = 2
# the lease taken with the cache read (customer, products, open periods); the rate limiter before each of
# the 2 calls; the lease released
REDIS_PER_ORDER = 4


def test_steady_state_statements_and_round_trips_per_order(db, account, run_jobs, monkeypatch):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="7000"))
    run_jobs()  # warms the customer and product caches

    counts = {"sql": 0, "commit": 0, "redis": 0}
    inside = []  # in the sandbox: e-conomic's work, not ours
    original = SandboxTransport.handle_request

    def sandboxed(self, request):
        inside.append(True)
        try:
            return original(self, request)
        finally:
            inside.pop()

    def statement(*args):
        if not inside:
            counts["sql"] += 1

    def commit(*args):
        if not inside:
            counts["commit"] += 1

    sent = redis.connection.AbstractConnection.send_packed_command

    def round_trip(self, *args, **kwargs):
        # not the lease heartbeat's (a thread of its own, every few seconds: not per order)
        if not inside and threading.current_thread() is threading.main_thread():
            counts["redis"] += 1
        return sent(self, *args, **kwargs)

    monkeypatch.setattr(SandboxTransport, "handle_request", sandboxed)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", round_trip)
    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "commit", commit)
    try:
        measured = []
        for first, count in ((7100, 4), (7200, 8)):
            for number in range(first, first + count):
                feed(source_link, order(number=str(number)))
            before = dict(counts)
            run_jobs()
            measured.append({key: counts[key] - before[key] for key in counts})
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "commit", commit)
    per_order = {key: (measured[1][key] - measured[0][key]) / 4 for key in counts}
    sql = SQL_PER_ORDER[db.engine.dialect.name]
    assert per_order == {"sql": sql, "commit": COMMITS_PER_ORDER, "redis": REDIS_PER_ORDER}, measured
