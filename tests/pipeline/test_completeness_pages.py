"""The completeness report's page ("Afstemning"), the dashboard's line and the daily report mail's, as a
bookkeeper reads them: Danish, order numbers and names, amounts as `1.234,50 kr.`, never internal ids."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.models import CompletenessReport, Transfer
from portal.pipeline import completeness, notifications
from portal.queue import get_queue
from tests.conftest import make_account
from tests.pipeline.conftest import feed, make_setup, make_source_link, shop_order
from tests.test_danish_pages import DKK_AMOUNT, ENGLISH, RAW_WORDS, visible_text


def today():
    return completeness.today()


def shop_with_a_lost_order(db, account, run_jobs, shop, **settings):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=today().isoformat(), **settings)
    feed(source_link, shop_order(shop))
    lost = shop_order(shop, billing={"first_name": "Åse", "last_name": "Ørum", "country": "DK"})
    run_jobs()
    return source_link, lost


def reports(db) -> int:
    return db.session.scalar(select(func.count()).select_from(CompletenessReport))


def test_the_page_checks_a_period_shows_progress_then_the_findings_and_transfers_now(
    db, account, owner_client, run_jobs, shop
):
    source_link, lost = shop_with_a_lost_order(db, account, run_jobs, shop)
    page = owner_client.get(f"/completeness/{source_link.id}")
    assert page.status_code == 200
    text = visible_text(page.get_data(as_text=True))
    assert "Afstemning: Testbutikken" in text and "Der er ikke lavet nogen afstemning endnu." in text

    day = today().isoformat()
    assert (
        owner_client.post(
            f"/completeness/{source_link.id}", data={"start": day, "end": day}, csrf=False
        ).status_code
        == 400
    )
    bad = owner_client.post(
        f"/completeness/{source_link.id}",
        data={"start": day, "end": (today() - timedelta(days=1)).isoformat()},
    )
    assert bad.status_code == 400 and "Perioden slutter, før den begynder." in bad.get_data(as_text=True)
    too_long = owner_client.post(f"/completeness/{source_link.id}", data={"start": "2020-01-01", "end": day})
    assert too_long.status_code == 400 and reports(db) == 0  # bad input changes nothing

    assert (
        owner_client.post(f"/completeness/{source_link.id}", data={"start": day, "end": day}).status_code
        == 302
    )
    report = db.session.scalar(select(CompletenessReport))
    queued = owner_client.get(f"/completeness/report/{report.id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in queued and "Afstemningen laves" in visible_text(queued)
    run_jobs()
    done = owner_client.get(f"/completeness/report/{report.id}").get_data(as_text=True)
    assert "hx-trigger" not in done
    text = visible_text(owner_client.get(f"/completeness/{source_link.id}").get_data(as_text=True))
    amount = f"{lost['total'].replace('.', ',')} kr."
    assert "1 ordre mangler i regnskabet" in text and "Mangler i regnskabet" in text
    assert f"#{lost['number']}" in text and "Åse Ørum" in text and amount in text and "Overfør nu" in text
    assert "2 ordrer og 0 refusioner i butikken, 1 dokumenter i e-conomic" in text
    assert not [word for word in ENGLISH if word in text]
    assert not RAW_WORDS.search(text) and not DKK_AMOUNT.search(text)

    dashboard = visible_text(owner_client.get("/dashboard").get_data(as_text=True))
    assert "Afstemning: Testbutikken : 1 ordre mangler i regnskabet" in dashboard

    (line,) = completeness.open_findings(db.session.get(CompletenessReport, report.id))
    index = db.session.get(CompletenessReport, report.id).findings.index(line)
    fix = f"/completeness/report/{report.id}/fix"
    assert owner_client.post(fix, data={"line": index}, csrf=False).status_code == 400
    fixed = owner_client.post(fix, data={"line": index}, follow_redirects=True)
    assert f"Ordre {lost['number']} overføres nu." in visible_text(fixed.get_data(as_text=True))
    run_jobs()
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == str(lost["number"])))
    assert transfer.status == "done"
    log = visible_text(owner_client.get("/settings/audit").get_data(as_text=True))
    assert "Ordre overført fra afstemningen" in log and f"Ordrenummer : – → {lost['number']}" in log
    again = owner_client.post(fix, data={"line": index}, follow_redirects=True)
    assert "Denne linje har ingen rettelse" in visible_text(again.get_data(as_text=True))
    for line in ("99", "x", ""):  # bad input: said, nothing changes
        refused = owner_client.post(fix, data={"line": line}, follow_redirects=True)
        assert "Denne linje har ingen rettelse" in visible_text(refused.get_data(as_text=True))


def test_another_accounts_report_is_a_404(db, account, owner_client, run_jobs, shop):
    other = make_account("Anden ApS", "35000046")
    source_link, _ = shop_with_a_lost_order(db, other, run_jobs, shop)
    report = completeness.request(source_link, today(), today())
    assert owner_client.get(f"/completeness/{source_link.id}").status_code == 404
    assert (
        owner_client.post(f"/completeness/{source_link.id}", data={"start": "2026-11-01"}).status_code == 404
    )
    assert owner_client.get(f"/completeness/report/{report.id}").status_code == 404
    assert owner_client.post(f"/completeness/report/{report.id}/fix", data={"line": 0}).status_code == 404


def test_the_daily_run_is_queued_once_a_day_on_the_low_queue_and_reaches_the_mail(
    app, db, account, owner, run_jobs, shop, mailbox, redis
):
    source_link, _ = shop_with_a_lost_order(
        db, account, run_jobs, shop, notify={"daily_report": True, "recipients": ["bogholder@example.dk"]}
    )
    early = datetime.now(UTC).replace(hour=3, minute=0)  # 04:00 in Copenhagen: not yet
    assert completeness.queue_daily(early) == []
    morning = early.replace(hour=8)
    stuck = completeness.request(source_link, today(), today())  # its worker died
    stuck.status, stuck.created_at = "running", morning - timedelta(hours=7)
    db.session.commit()
    (report_id,) = completeness.queue_daily(morning)
    assert stuck.status == "failed" and "interrupted" in stuck.error["msgid"]
    assert completeness.queue_daily(morning) == []  # claimed: a second cron run queues nothing
    assert get_queue("low").count == 1  # the daily one; the one asked for above is on the default queue
    report = db.session.get(CompletenessReport, report_id)
    assert (report.trigger, report.period_end - report.period_start) == ("daily", timedelta(days=30))
    completeness.run(report_id)
    assert [line["kind"] for line in completeness.open_findings(report)] == ["missing"]

    assert notifications.send_daily_report(source_link.id, today())
    mail = mailbox.last("bogholder@example.dk")
    body = mail.get_body(("plain",)).get_content()
    assert "Afstemning: 1 ordre mangler i regnskabet" in body and f"/completeness/{source_link.id}" in body
