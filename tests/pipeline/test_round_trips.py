"""Our own SQL statements and Redis round trips per sale in steady state (customer and products cached),
as test_api_calls pins the accounting API's calls: the pipeline's own cost per sale is mostly these (the
bench: `make bench`, "the pipeline's own"). Counted as the difference between a drain of 8 sales and one
of 4, so what a drain job costs once (its source link, the RQ job) cancels out; what the sandbox does while
it stands in for e-conomic is not ours and is not counted."""

import threading

import redis.connection
from sqlalchemy import event

from portal.sandbox.transport import SandboxTransport
from tests.pipeline.conftest import feed, make_setup, make_source_link, order
from workers import jobs

# One steady-state order:
#   intake: SELECT the event, SELECT its transfer (none yet), INSERT the transfer;
#   before the create (draft_requested): UPDATE the event (processed) and the transfer, INSERT the customer
#   step's log, COMMIT;
#   done: INSERT the draft, book and done steps' logs (one INSERT of three rows: steps.log_step), UPDATE
#   the transfer, UPDATE the order's waiting credit notes (none), COMMIT.
SQL_PER_ORDER = 9
COMMITS_PER_ORDER = 2
# One: the cache read (customer, products, open periods), which also takes the lease and the rate limiter's
# turns for the create and the booking, and releases the lease of the order before (pipeline.ride_along).
REDIS_PER_ORDER = 1
# One steady-state sale paid by card, on e-conomic: as an order until it is booked; then parked for the
# payment batch with the booking's checkpoint (the draft, book and waiting logs in one INSERT, UPDATE the
# transfer, COMMIT), and its share of the batch job (its UPDATE; the batch's logs go in one INSERT, its
# credit-note wake in one UPDATE). Redis: as an order; the batch job's flag is set with the lease's release.
SQL_PER_PAID_SALE = 8
COMMITS_PER_PAID_SALE = 2
REDIS_PER_PAID_SALE = 1


def count_per_sale(db, run_jobs, monkeypatch, source_link, number) -> tuple[dict, list]:
    """{sql, commit, redis} per sale: (a drain of 8) − (a drain of 4), over 4."""
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
    in_job = []  # RQ's own round trips (dequeue, registries, maintenance on its own clock) are not ours

    def round_trip(self, *args, **kwargs):
        # not the lease heartbeat's (a thread of its own, every few seconds: not per sale)
        if in_job and not inside and threading.current_thread() is threading.main_thread():
            counts["redis"] += 1
        return sent(self, *args, **kwargs)

    def ours(job):
        def counted(*args, **kwargs):
            in_job.append(True)
            try:
                return job(*args, **kwargs)
            finally:
                in_job.pop()

        return counted

    for name in ("drain_events", "run_transfer", "register_payment_batch"):
        monkeypatch.setattr(jobs, name, ours(getattr(jobs, name)))
    monkeypatch.setattr(SandboxTransport, "handle_request", sandboxed)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", round_trip)
    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "commit", commit)
    try:
        measured = []
        for first, count in ((number + 100, 4), (number + 200, 8)):
            for n in range(first, first + count):
                feed(source_link, order(number=str(n)))
            before = dict(counts)
            run_jobs()
            measured.append({key: counts[key] - before[key] for key in counts})
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "commit", commit)
    return {key: (measured[1][key] - measured[0][key]) / 4 for key in counts}, measured


def test_steady_state_statements_and_round_trips_per_order(db, account, run_jobs, monkeypatch):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="7000"))
    run_jobs()  # warms the customer and product caches

    per_order, measured = count_per_sale(db, run_jobs, monkeypatch, source_link, 7000)
    expected = {"sql": SQL_PER_ORDER, "commit": COMMITS_PER_ORDER, "redis": REDIS_PER_ORDER}
    assert per_order == expected, measured


def test_steady_state_statements_and_round_trips_per_paid_sale(db, account, run_jobs, monkeypatch):
    """A sale paid by card (a Stripe renewal, a paid order) on e-conomic: as an order, then parked for its
    setup's payment batch, and its share of that batch job."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order(number="8000"))
    run_jobs()

    per_sale, measured = count_per_sale(db, run_jobs, monkeypatch, source_link, 8000)
    expected = {"sql": SQL_PER_PAID_SALE, "commit": COMMITS_PER_PAID_SALE, "redis": REDIS_PER_PAID_SALE}
    assert per_sale == expected, measured
