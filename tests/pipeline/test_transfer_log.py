"""The transfer log page: the account's transfers by status, one transfer's steps, retry; other accounts'
transfers are 404."""

from sqlalchemy import func, select

from portal.models import Transfer, TransferLog
from portal.pipeline.messages import N_, message
from portal.pipeline.steps import log_step
from tests.conftest import login, make_user
from tests.pipeline.conftest import feed, make_setup, make_source_link, order


def test_the_log_lists_filters_shows_steps_and_retries(owner_client, db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    skipped = order(number="5002")
    skipped["status"] = "pending"
    feed(source_link, skipped)
    run_jobs()

    page = owner_client.get("/transfers").get_data(as_text=True)
    assert "#5001" in page and "#5002" in page and "Færdig" in page and "Sprunget over" in page
    done_only = owner_client.get("/transfers?status=done").get_data(as_text=True)
    assert "#5001" in done_only and "#5002" not in done_only

    done = db.session.scalar(select(Transfer).where(Transfer.order_number == "5001"))
    detail = owner_client.get(f"/transfers/{done.id}").get_data(as_text=True)
    assert done.booked_number in detail and "WC-12-5001" in detail
    # the steps and what happened in each, in Danish (stored as msgids: the page's language decides)
    assert "<td>Kunde</td>" in detail and "<td>Kladde</td>" in detail and "<td>Bogføring</td>" in detail
    assert "Kladde " in detail and " oprettet." in detail
    assert f"Bogført som faktura {done.booked_number}." in detail
    assert "<code>customer</code>" not in detail and " created" not in detail

    # a configuration problem, fixed, then retried from the page
    goods = setup.template("goods")
    chosen = goods.values["product_group"]
    goods.values = {"product_group": "999"}
    db.session.commit()
    feed(source_link, order(number="5003", items=[("Ny vare", "NY-01", 1, "100.00", "25.00")], shipping=[]))
    run_jobs()
    failed = db.session.scalar(select(Transfer).where(Transfer.order_number == "5003"))
    assert failed.status == "needs_attention"
    assert "Kræver handling" in owner_client.get("/transfers?status=needs_attention").get_data(as_text=True)
    failed_page = owner_client.get(f"/transfers/{failed.id}").get_data(as_text=True)
    assert "<td>Fejl</td>" in failed_page  # the step "error", named
    assert "Forespørgsel og svar" in failed_page and '"system": "e-conomic"' in failed_page
    goods.values = {"product_group": chosen}
    db.session.commit()
    response = owner_client.post(f"/transfers/{failed.id}/retry", follow_redirects=True)
    assert "Overførslen er sat i kø igen." in response.get_data(as_text=True)
    run_jobs()
    db.session.expire_all()
    assert failed.status == "done" and failed.booked_number


def test_other_accounts_transfers_are_not_found(client, db, account, other_account, run_jobs):
    setup = make_setup(account, "e-conomic")
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    login(client, "owner@anden.dk")
    assert client.get(f"/transfers/{transfer.id}").status_code == 404
    assert client.post(f"/transfers/{transfer.id}/retry").status_code == 404
    assert "#5001" not in client.get("/transfers").get_data(as_text=True)


def test_members_see_the_log(client, db, account, run_jobs):
    make_user("member@kunde.dk", account, role="member")
    login(client, "member@kunde.dk")
    assert client.get("/transfers").status_code == 200


def test_the_newest_page_of_the_log_shows_new_transfers_without_a_reload(owner_client, db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    feed(source_link, order(number="5002"))
    run_jobs()
    page = owner_client.get("/transfers?status=done").get_data(as_text=True)
    table = page[page.index('<div id="transfer-table"') :].split(">", 1)[0]
    assert 'hx-trigger="every 10s"' in table and 'hx-get="/transfers?status=done"' in table
    newest = db.session.scalar(select(Transfer.id).order_by(Transfer.id.desc()))
    older = owner_client.get(f"/transfers?before={newest}").get_data(as_text=True)  # not the newest page
    assert 'hx-trigger="every 10s"' not in older.split('<div id="transfer-table"', 1)[1].split(">", 1)[0]

    feed(source_link, order(number="5009"))
    run_jobs()
    headers = {"HX-Request": "true", "HX-Target": "transfer-table"}
    polled = owner_client.get("/transfers?status=done", headers=headers).get_data(as_text=True)
    assert polled.lstrip().startswith('<div id="transfer-table"')
    assert "#5009" in polled and "#5001" in polled and "<html" not in polled


def test_step_rows_are_written_before_anything_reads_them_and_go_with_a_rollback(db, account, run_jobs):
    """log_step builds its rows and writes them with the transaction's next statement, flush or commit
    (pipeline.steps): a query in the same transaction sees them, in order, and a rollback takes them too."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order(number="5001"))
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    before = db.session.scalar(select(func.count(TransferLog.id)))

    requeued = message(N_("Running since %(time)s UTC: queued again."), time="x")
    log_step(transfer, "watchdog", "error", requeued)
    log_step(transfer, "decide", "ok", "second")
    assert [(entry.step, entry.message) for entry in transfer_entries(db, transfer)[-2:]] == [
        ("watchdog", "Running since x UTC: queued again."),
        ("decide", "second"),
    ]
    db.session.rollback()
    assert db.session.scalar(select(func.count(TransferLog.id))) == before

    log_step(transfer, "decide", "ok", "kept")
    db.session.commit()
    assert transfer_entries(db, transfer)[-1].message == "kept"
    db.session().expire_on_commit = False  # as during a run: the commit leaves no transaction begun
    try:
        db.session.refresh(transfer)
        db.session.commit()
        log_step(transfer, "decide", "ok", "never committed")
        db.session.close()  # as a request's end does: nothing carried into the next transaction
    finally:
        db.session().expire_on_commit = True
    assert transfer_entries(db, transfer)[-1].message == "kept"


def transfer_entries(db, transfer):
    return db.session.scalars(
        select(TransferLog).where(TransferLog.transfer_id == transfer.id).order_by(TransferLog.id)
    ).all()
