"""The error digest and the daily status report: real failing transfers in the e-conomic sandbox, the jobs
run by a real RQ worker, the mail received by the test SMTP server (Bogbro's own mail)."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import SourceLink, Transfer
from portal.pipeline import notifications, retries
from portal.queue import get_queue
from tests.conftest import make_user
from tests.pipeline.conftest import feed, make_setup, make_source_link, order


@pytest.fixture
def setup_booked(account):
    return make_setup(account, "e-conomic", auto_book=True)


def unreadable(number):
    payload = order(number=str(number))
    payload["total"] = "not a number"  # the engine cannot read it: needs attention
    return payload


def transfers(db):
    return db.session.scalars(
        select(Transfer).order_by(Transfer.id).execution_options(populate_existing=True)
    ).all()


def plain(message):
    return message.get_body(("plain",)).get_content()


def html(message):
    return message.get_body(("html",)).get_content()


def run_digest_job(run_jobs):
    get_queue().enqueue("workers.jobs.send_error_digests")
    run_jobs()


def test_three_failures_make_one_digest_and_only_new_ones_the_next(
    app, db, account, owner, setup_booked, run_jobs, mailbox
):
    source_link = make_source_link(db, account, setup_booked)
    for number in (6001, 6002, 6003):
        feed(source_link, unreadable(number))
    run_jobs()
    assert [t.status for t in transfers(db)] == ["needs_attention"] * 3
    mailbox.clear()

    run_digest_job(run_jobs)
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == "owner@kunde.dk"
    assert message["Subject"] == "Bogbro: 3 ordrer fra Testbutikken kræver handling"
    text = plain(message)
    for transfer in transfers(db):
        assert f"Ordre #{transfer.order_number}" in text
        assert f"{app.config['PUBLIC_URL']}/transfers/{transfer.id}" in text
        assert "kunne ikke læses" in text  # the reason, in the recipients' language
        assert transfer.notified_at is not None
    assert f'href="{app.config["PUBLIC_URL"]}/transfers/' in html(message)

    run_digest_job(run_jobs)  # nothing new: nothing sent
    assert len(mailbox.messages) == 1

    feed(source_link, unreadable(6004))  # a new failure: a digest with only it
    run_jobs()
    run_digest_job(run_jobs)
    assert len(mailbox.messages) == 2
    second = plain(mailbox.messages[1])
    assert "Ordre #6004" in second and "Ordre #6001" not in second
    assert mailbox.messages[1]["Subject"] == "Bogbro: 1 ordre fra Testbutikken kræver handling"


def test_a_transfer_that_fails_again_after_a_retry_is_reported_again(
    db, account, owner, setup_booked, run_jobs, mailbox
):
    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, unreadable(6001))
    run_jobs()
    notifications.send_error_digests()
    transfer = transfers(db)[0]
    assert transfer.notified_at is not None

    retries.retry(transfer)  # someone retries before fixing anything
    assert transfers(db)[0].notified_at is None
    run_jobs()
    assert transfers(db)[0].status == "needs_attention"
    mailbox.clear()
    assert notifications.send_error_digests() == [source_link.id]
    assert len(mailbox.messages) == 1 and "Ordre #6001" in plain(mailbox.messages[0])


def test_recipients_from_the_settings_else_the_owners_in_the_first_owners_language(
    db, account, setup_booked, run_jobs, mailbox
):
    first_owner = make_user("ejer@kunde.dk", account, role="owner")
    make_user("owner2@kunde.dk", account, role="owner")
    make_user("medlem@kunde.dk", account, role="member")  # members are not told
    first_owner.language = "en"
    db.session.commit()
    to_owners = make_source_link(db, account, setup_booked)
    to_bookkeeper = make_source_link(db, account, setup_booked, notify={"recipients": ["bogholder@kunde.dk"]})
    feed(to_owners, unreadable(6001))
    feed(to_bookkeeper, unreadable(6002))
    run_jobs()
    mailbox.clear()
    assert notifications.send_error_digests() == [to_owners.id, to_bookkeeper.id]
    by_to = {m["To"]: m for m in mailbox.messages}
    assert set(by_to) == {"ejer@kunde.dk, owner2@kunde.dk", "bogholder@kunde.dk"}
    assert by_to["bogholder@kunde.dk"]["Subject"] == "Bogbro: 1 order from Testbutikken needs attention"
    assert "Order #6001" in plain(by_to["ejer@kunde.dk, owner2@kunde.dk"])


def test_the_digest_can_be_switched_off(db, account, owner, setup_booked, run_jobs, mailbox):
    source_link = make_source_link(db, account, setup_booked, notify={"error_digest": False})
    feed(source_link, unreadable(6001))
    run_jobs()
    mailbox.clear()
    assert notifications.send_error_digests() == []
    assert mailbox.messages == [] and transfers(db)[0].notified_at is None


def test_two_workers_at_once_send_one_digest(app, db, account, owner, setup_booked, run_jobs, mailbox):
    source_link = make_source_link(db, account, setup_booked)
    for number in (6001, 6002):
        feed(source_link, unreadable(number))
    run_jobs()
    mailbox.clear()
    source_link_id = source_link.id  # read here: the threads must not touch this session's objects
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                barrier.wait(10)
                results.append(notifications.send_error_digest(source_link_id))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(results) == [False, False, False, True]
    assert len(mailbox.messages) == 1


def test_a_failed_send_gives_the_transfers_back_for_the_next_run(
    app, db, account, owner, setup_booked, run_jobs, mailbox
):
    source_link = make_source_link(db, account, setup_booked)
    feed(source_link, unreadable(6001))
    run_jobs()
    mailbox.clear()
    port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = 1  # Bogbro's own mail server is unreachable
    try:
        with pytest.raises(OSError):
            notifications.send_error_digests()
    finally:
        app.config["MAIL_PORT"] = port
    assert transfers(db)[0].notified_at is None
    assert notifications.send_error_digests() == [source_link.id]
    assert len(mailbox.messages) == 1


# --- the daily report -----------------------------------------------------------------------------------


def at_copenhagen(day: date, hour: int) -> datetime:
    from portal.engine.documents import COPENHAGEN

    return datetime(day.year, day.month, day.day, hour, 5, tzinfo=COPENHAGEN).astimezone(UTC)


def test_the_daily_report_goes_out_once_a_day_after_seven(
    db, account, owner, setup_booked, run_jobs, mailbox
):
    source_link = make_source_link(db, account, setup_booked, notify={"daily_report": True})
    quiet = make_source_link(db, account, setup_booked)  # no report wanted
    feed(source_link, order(number="5001"))
    feed(source_link, order(number="5002"))
    feed(source_link, unreadable(5003))
    feed(quiet, order(number="7001"))
    run_jobs()
    done = [t for t in transfers(db) if t.status == "done" and t.source_link_id == source_link.id]
    assert len(done) == 2
    # Everything above happened "yesterday" (Copenhagen): move it there.
    today = date(2026, 11, 21)
    yesterday_noon = at_copenhagen(today - timedelta(days=1), 12)
    for transfer in transfers(db):
        transfer.created_at = yesterday_noon
        if transfer.finished_at:
            transfer.finished_at = yesterday_noon
    db.session.commit()
    mailbox.clear()

    assert notifications.send_daily_reports(now=at_copenhagen(today, 6)) == []  # 06:05: too early
    assert mailbox.messages == []
    assert notifications.send_daily_reports(now=at_copenhagen(today, 7)) == [source_link.id]
    assert notifications.send_daily_reports(now=at_copenhagen(today, 9)) == []  # once a day
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == "owner@kunde.dk"
    assert message["Subject"] == "Bogbro: Testbutikken den 20. november 2026"
    text = plain(message)
    assert "Ordrer modtaget: 3" in text
    assert "Fakturaer overført: 2 (bogført 2, kladder 0)" in text
    total = sum((t.computed_gross for t in done), Decimal("0"))
    assert total == Decimal("1098.00")
    assert "I alt inkl. moms: 1.098,00\xa0kr." in text
    assert "1 ordre kræver handling nu." in text
    assert "/transfers?status=needs_attention" in text
    assert "1.098,00" in html(message)
    assert db.session.get(SourceLink, source_link.id).last_report_on == today

    # the next day: the next report
    assert notifications.send_daily_reports(now=at_copenhagen(today + timedelta(days=1), 8)) == [
        source_link.id
    ]
    assert "Ordrer modtaget: 0" in plain(mailbox.messages[1])


def test_the_report_job_is_scheduled_and_runs(db, run_jobs):
    get_queue().enqueue("workers.jobs.send_daily_reports")
    run_jobs()
