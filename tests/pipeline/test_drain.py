"""A source link's events are drained by one job at a time: under load one job posts many orders (a job
per event cost as much again as the order's own work), and no event is lost between a drain finishing and
a new event arriving."""

from rq.registry import FinishedJobRegistry
from sqlalchemy import select

from portal.models import SourceEvent, Transfer
from portal.pipeline import ride_along, scheduling
from portal.pipeline.posting import run_transfer
from portal.queue import get_queue
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote


def _references(setup) -> set[str]:
    return {document["references"]["other"] for document in remote(setup)._all("/invoices/booked")}


def test_many_events_one_job(db, account, run_jobs, redis):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    for number in ("5001", "5002", "5003"):
        feed(source_link, order(number=number))
    queue = get_queue()
    assert [job.func_name for job in queue.jobs] == ["workers.jobs.drain_events"]

    run_jobs()
    db.session.expire_all()
    assert [t.status for t in db.session.scalars(select(Transfer).order_by(Transfer.id))] == ["done"] * 3
    assert _references(setup) == {"WC-12-5001", "WC-12-5002", "WC-12-5003"}
    assert redis.get(f"bogbro:drain:{source_link.id}") is None  # finished: the next event queues a job


def test_an_event_arriving_while_a_drain_runs_is_taken_by_it_not_lost(db, account, redis):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    redis.set(f"bogbro:drain:{source_link.id}", "1")  # a drain job is queued or running
    feed(source_link, order(number="5001"))
    queue = get_queue()
    assert queue.count == 0  # no second job: the one draining finds it

    assert scheduling.drain(source_link.id) == 1
    assert redis.get(f"bogbro:drain:{source_link.id}") is None
    assert _references(setup) == {"WC-12-5001"}

    feed(source_link, order(number="5002"))  # after the drain: a job of its own
    assert [job.func_name for job in queue.jobs] == ["workers.jobs.drain_events"]


def test_a_drain_stops_after_its_time_and_queues_the_rest(db, account, run_jobs, monkeypatch):
    """Its share of a worker is DRAIN_SECONDS: then it queues itself behind other source links' work."""
    monkeypatch.setattr(scheduling, "DRAIN_SECONDS", 0)
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    for number in ("5001", "5002", "5003"):
        feed(source_link, order(number=number))

    run_jobs()
    # one event each, each queueing the next job; the last finds nothing left and ends the drain
    assert FinishedJobRegistry(queue=get_queue()).count == 4
    db.session.expire_all()
    assert None not in db.session.scalars(select(SourceEvent.processed_at)).all()
    assert all(t.status == "done" for t in db.session.scalars(select(Transfer)))
    assert _references(setup) == {"WC-12-5001", "WC-12-5002", "WC-12-5003"}


def test_a_later_state_in_the_same_batch_books_the_draft_and_leaves_no_lease(db, account, run_jobs, redis):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, {**order(number="5001"), "status": "on-hold"})  # a draft
    feed(source_link, order(number="5001"))  # then booked (processing), in the same batch
    run_jobs()
    db.session.expire_all()
    [transfer] = db.session.scalars(select(Transfer))
    assert (transfer.status, transfer.document) == ("done", "booked")
    assert transfer.booked_number
    assert _references(setup) == {"WC-12-5001"}
    assert redis.keys("bogbro:lock:transfer:*") == []  # released at the batch's end


def test_a_run_again_in_the_same_batch_takes_over_the_lease_it_left(db, account, run_jobs, redis):
    """A finished run's lease goes with the batch's next round trip (pipeline.ride_along); a run of the same
    transfer before that takes it over, never waiting for itself (nor returning as if another worker held
    it)."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, {**order(number="5001"), "status": "on-hold"})
    run_jobs()
    [transfer] = db.session.scalars(select(Transfer))
    with ride_along.batch():
        transfer.document, transfer.status = "booked", "pending"  # raised, as a later state does
        db.session.commit()
        run_transfer(transfer.id)  # holds the lease still, left for the batch's next round trip
        assert redis.keys("bogbro:lock:transfer:*") != []
        transfer.status = "pending"  # run again (it finds its booked invoice by its reference)
        db.session.commit()
        run_transfer(transfer.id)  # takes the lease over instead of returning as if another held it
        db.session.expire_all()
        assert db.session.get(Transfer, transfer.id).attempts == 3
    assert redis.keys("bogbro:lock:transfer:*") == []  # the batch's end released it
