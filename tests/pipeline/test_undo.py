"""Legal undo ("Fortryd overførsel") through the real path: shop payload → RQ → the ledgers' sandboxes.

A booked invoice is credited in full (linked to it, with the payout where it was registered paid) and the
order transferred again under a reference of its own, each document exactly once; a draft is deleted; a
left-out order keeps the reason; many are undone by the log's filters after a confirmation naming their
count and total. Another account's transfer is a 404, and every change needs the CSRF token."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Connection, SourceLink, Transfer, TransferUndo
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote, transfer_row
from tests.pipeline.test_economic_pipeline import REF


def the_transfer(db, number="5001") -> Transfer:
    db.session.expire_all()
    return db.session.scalar(
        select(Transfer).where(Transfer.order_number == number, Transfer.kind == "invoice")
    )


def economic_documents(setup, reference: str) -> tuple[list, list]:
    connector = remote(setup)
    wanted = f"references.other$eq:{reference}"
    return connector._all("/invoices/booked", wanted), connector._all("/invoices/drafts", wanted)


def test_undo_of_a_booked_invoice_credits_it_and_transfers_the_order_again(
    owner_client, db, account, run_jobs
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.booked_number
    first_number = transfer.booked_number

    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Fortryd overførslen" in page
    confirm = owner_client.get(f"/transfers/{transfer.id}/undo").get_data(as_text=True)
    assert f"Fakturaen {first_number} er bogført" in confirm and "549,00\xa0kr." in confirm
    assert (
        owner_client.post(
            f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"}, csrf=False
        ).status_code
        == 400
    )
    response = owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    assert response.status_code == 302
    run_jobs()  # the undo, then the order's drain

    transfer = the_transfer(db)
    assert transfer.status == "done", transfer.error_message
    assert transfer.undone == 1 and transfer.reference == f"{REF}-V2"
    booked, drafts = economic_documents(setup, REF)
    assert len(booked) == 1 and str(booked[0]["bookedInvoiceNumber"]) == first_number and drafts == []
    credits, drafts = economic_documents(setup, f"{REF}-F")
    assert (
        len(credits) == 1 and Decimal(str(credits[0]["grossAmount"])) == Decimal("-549.00") and drafts == []
    )
    again, drafts = economic_documents(setup, f"{REF}-V2")
    assert len(again) == 1 and str(again[0]["bookedInvoiceNumber"]) == transfer.booked_number and drafts == []
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "done" and undo.action == "credited"
    assert undo.credit_note_number == str(credits[0]["bookedInvoiceNumber"])

    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert f"faktura {first_number} krediteret med kreditnota {undo.credit_note_number}" in page
    assert f"overført igen som {transfer.booked_number}" in page
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "transfer.undo_requested" in actions and "transfer.undone" in actions


def test_undo_of_a_draft_deletes_it_and_a_left_out_order_keeps_the_reason(
    owner_client, db, account, run_jobs
):
    setup = make_setup(account, "e-conomic")  # drafts only
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.draft_id and not transfer.booked_number
    assert len(economic_documents(setup, REF)[1]) == 1

    refused = owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "leave_out"})
    assert refused.status_code == 400 and "Skriv, hvorfor ordren udelades." in refused.get_data(as_text=True)
    assert db.session.scalar(select(TransferUndo)) is None
    response = owner_client.post(
        f"/transfers/{transfer.id}/undo", data={"afterwards": "leave_out", "reason": "Testordre"}
    )
    assert response.status_code == 302
    run_jobs()

    transfer = the_transfer(db)
    assert transfer.status == "skipped" and transfer.draft_id is None
    assert economic_documents(setup, REF) == ([], [])
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Fortrudt og udeladt: Testordre" in page and "udeladt: Testordre" in page
    assert db.session.scalar(select(TransferUndo)).action == "deleted"

    # the shop changes the order's state later: it stays left out
    feed(source_link, {**order(), "status": "completed"})
    run_jobs()
    assert the_transfer(db).status == "skipped"
    assert economic_documents(setup, REF) == ([], []) and economic_documents(setup, f"{REF}-V2") == ([], [])


def test_dinero_undo_credits_a_paid_invoice_with_its_payout(owner_client, db, account, run_jobs):
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.payment_id, transfer.error_message
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    run_jobs()

    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.reference == f"{REF}-V2", transfer.error_message
    connector = remote(setup)
    credit = connector.find_invoice(f"{REF}-F")
    assert credit.booked and credit.is_credit_note and credit.totals.gross == Decimal("549.00")
    assert connector.find_invoice(f"{REF}-V2").booked
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "done" and undo.payout_id
    # the credit note is settled by the payout: the customer owes nothing and is owed nothing for it
    assert connector.customer_balance(credit.raw["ContactGuid"]) == Decimal("0.00")


def test_dinero_undo_of_a_draft_deletes_it(owner_client, db, account, run_jobs):
    setup = make_setup(account, "dinero")
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and not transfer.booked_number
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    run_jobs()
    connector = remote(setup)
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.reference == f"{REF}-V2"
    assert connector.find_invoice(REF) is None and connector.find_invoice(f"{REF}-F") is None
    assert connector.find_invoice(f"{REF}-V2") is not None


def test_dynaccount_undo_posts_the_reversing_voucher(owner_client, db, account, run_jobs):
    setup = make_setup(account, "dynaccount", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done", transfer.error_message
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.reference == f"{REF}-V2", transfer.error_message
    connector = remote(setup)
    assert connector.find_invoice(f"{REF}-F") is not None and connector.find_invoice(f"{REF}-V2") is not None
    assert db.session.scalar(select(TransferUndo)).action == "credited"


def test_bulk_undo_by_filter_names_count_and_total(owner_client, db, account, other_account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    feed(source_link, order(number="5002"))
    run_jobs()
    theirs = SourceLink(
        account_id=other_account.id,
        connection=Connection(
            account_id=other_account.id, system="woocommerce", role="webshop", label="", credentials={}
        ),
        setup=make_setup(other_account, "dinero"),
    )
    db.session.add(transfer_row(theirs, "9001", status="done", draft_id="x", computed_gross=Decimal("10.00")))
    db.session.commit()
    their_transfer = the_transfer(db, "9001")

    log = owner_client.get("/transfers?status=done").get_data(as_text=True)
    assert 'action="/transfers/undo"' in log
    confirm = owner_client.get("/transfers/undo", query_string={"status": "done"}).get_data(as_text=True)
    assert "2 overførsler for 1.098,00\xa0kr. i alt fortrydes." in confirm
    assert (
        owner_client.post(
            "/transfers/undo",
            data={"status": "done", "confirmed": "1", "afterwards": "retransfer"},
            csrf=False,
        ).status_code
        == 400
    )
    assert db.session.scalar(select(TransferUndo)) is None
    one = owner_client.get("/transfers/undo", query_string={"status": "done", "order": "5002"})
    assert "1 overførsel for 549,00\xa0kr. i alt fortrydes." in one.get_data(as_text=True)

    response = owner_client.post(
        "/transfers/undo",
        data={"status": "done", "confirmed": "1", "afterwards": "leave_out", "reason": "Fejl"},
    )
    assert response.status_code == 302
    run_jobs()
    assert the_transfer(db, "5001").status == the_transfer(db, "5002").status == "skipped"
    assert the_transfer(db, "9001").status == "done"  # another account's: never
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "transfers.undo_requested"))
    assert audit.account_id == account.id and audit.changes["count"]["after"] == 2
    for number in ("5001", "5002"):
        assert len(economic_documents(setup, f"WC-12-{number}-F")[0]) == 1

    # another account's transfer: 404 everywhere
    assert owner_client.get(f"/transfers/{their_transfer.id}/undo").status_code == 404
    assert (
        owner_client.post(
            f"/transfers/{their_transfer.id}/undo", data={"afterwards": "retransfer"}
        ).status_code
        == 404
    )
    theirs = TransferUndo(
        account_id=other_account.id,
        transfer_id=their_transfer.id,
        afterwards="retransfer",
        reference="x",
        status="needs_attention",
    )
    db.session.add(theirs)
    db.session.commit()
    assert owner_client.post(f"/transfers/undos/{theirs.id}/retry").status_code == 404
    db.session.expire_all()
    assert theirs.status == "needs_attention"


@pytest.mark.parametrize("field", ["afterwards"])
def test_bad_input_changes_nothing(owner_client, db, account, run_jobs, field):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    response = owner_client.post(f"/transfers/{transfer.id}/undo", data={field: "explode"})
    assert response.status_code == 400 and "Vælg, hvad der skal ske bagefter." in response.get_data(
        as_text=True
    )
    assert db.session.scalar(select(TransferUndo)) is None


@pytest.mark.parametrize("guessed", [True, False])
def test_economic_undo_of_a_paid_invoice_pays_back_only_when_the_guess_is_on(
    owner_client, db, account, run_jobs, guessed
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    settings = {"refund_payouts_guessed": True} if guessed else {}
    source_link = make_source_link(db, account, setup, paid_methods=["quickpay"], **settings)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.payment_id, transfer.error_message
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "leave_out", "reason": "Dublet"})
    run_jobs()
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "done" and undo.credit_note_number
    connector = remote(setup)
    note = connector.find_invoice(f"{REF}-F")
    balance = connector.customer_balance(str(note.raw["customer"]["customerNumber"]))
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    if guessed:
        assert undo.payout_id and balance == 0  # paid, credited, paid back: nothing owed either way
    else:
        assert undo.payout_id is None and balance == Decimal("-549.00")  # the ledger owes the customer
        assert "registrér de penge, kunden får tilbage, manuelt i e-conomic" in page


def test_an_order_with_credited_refunds_is_not_undone(owner_client, db, account, run_jobs):
    from tests.pipeline.test_economic_pipeline import feed_refund, refund_event

    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    payload = order()
    feed(source_link, payload)
    run_jobs()
    feed_refund(source_link, refund_event(payload, amount="100.00"))
    run_jobs()
    transfer = the_transfer(db)
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Refusioner af denne ordre er allerede krediteret" in page
    response = owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    assert response.status_code == 409
    assert "Refusioner af denne ordre er allerede krediteret" in response.get_data(as_text=True)
    assert db.session.scalar(select(TransferUndo)) is None
    assert "1 overførsel" not in owner_client.get(
        "/transfers/undo", query_string={"status": "done"}
    ).get_data(as_text=True)


def test_a_stopped_undo_says_why_and_is_tried_again(app, owner_client, db, account, run_jobs):
    from tests.pipeline.conftest import faults

    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    saved = {key: app.config.get(key) for key in ("PIPELINE_MAX_ATTEMPTS", "CONNECTOR_RETRIES")}
    app.config.update(PIPELINE_MAX_ATTEMPTS=1, CONNECTOR_RETRIES=0)
    faults(app, "e-conomic", rate_500=1.0)
    try:
        owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
        run_jobs()
    finally:
        faults(app, "e-conomic")
        app.config.update(saved)
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "needs_attention" and undo.action is None
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Regnskabsprogrammet er optaget eller kan ikke nås" in page and "Prøv fortrydelsen igen" in page
    assert "Fortryd overførslen</a>" not in page  # one undo at a time
    dashboard = owner_client.get("/dashboard").get_data(as_text=True)
    assert (
        "Disse fortrydelser kræver handling:" in dashboard and f'href="/transfers/{transfer.id}"' in dashboard
    )
    assert owner_client.post(f"/transfers/undos/{undo.id}/retry", csrf=False).status_code == 400
    assert owner_client.post(f"/transfers/undos/{undo.id}/retry").status_code == 302
    run_jobs()
    db.session.expire_all()
    assert undo.status == "done" and the_transfer(db).reference == f"{REF}-V2"
    assert len(economic_documents(setup, f"{REF}-F")[0]) == 1


def test_the_watchdog_queues_an_undo_whose_job_was_lost(owner_client, db, account, run_jobs, redis):
    from datetime import timedelta

    from portal.models import utcnow
    from portal.pipeline import undo as undo_module
    from portal.queue import get_queue

    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    get_queue().empty()  # Redis forgot the job
    assert undo_module.recover() == []  # young: its job may still be on the way
    undo = db.session.scalar(select(TransferUndo))
    undo.created_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert undo_module.recover() == [undo.id]
    assert undo_module.recover() == []  # not again within the minute
    run_jobs()
    assert the_transfer(db).status == "done" and the_transfer(db).undone == 1
    assert len(economic_documents(setup, f"{REF}-F")[0]) == 1


def test_two_requests_racing_make_one_undo(app, db, account, run_jobs):
    """A double click or two tabs: both passed the check before either committed; the second is refused by
    the one-open-undo index, so the invoice is never credited twice."""
    from portal.pipeline import undo as undo_module

    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    with app.test_request_context():
        undo_module.request(transfer, "retransfer")
        with pytest.raises(undo_module.AlreadyUndoing):
            undo_module.request(the_transfer(db), "retransfer")
    assert len(db.session.scalars(select(TransferUndo)).all()) == 1
    run_jobs()
    assert len(economic_documents(setup, f"{REF}-F")[0]) == 1
    assert len(economic_documents(setup, f"{REF}-V2")[0]) == 1


def test_undo_of_an_economic_order_deletes_the_order(owner_client, db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    states = {"processing": "order", "completed": "booked"}
    source_link = make_source_link(db, account, setup, states=states)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.remote_order
    assert remote(setup).find_order(REF) is not None
    page = owner_client.get(f"/transfers/{transfer.id}/undo").get_data(as_text=True)
    assert "Bilaget er ikke bogført i e-conomic: Bogbro sletter det der." in page
    owner_client.post(
        f"/transfers/{transfer.id}/undo", data={"afterwards": "leave_out", "reason": "Annulleret"}
    )
    run_jobs()
    assert remote(setup).find_order(REF) is None and remote(setup).find_invoice(REF) is None
    assert the_transfer(db).status == "skipped"
    assert db.session.scalar(select(TransferUndo)).action == "deleted"


def test_an_undo_job_that_waited_for_the_lock_finds_it_done(owner_client, db, account, run_jobs):
    """A second job for the same undo (the watchdog queued it while the first worker was only slow) read it
    `running`, then waited for the lock while the first finished: under the lock it reads it again."""
    from sqlalchemy.orm.attributes import set_committed_value

    from portal.pipeline import undo as undo_module

    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    run_jobs()
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "done"
    set_committed_value(undo, "status", "running")  # what the second job read before the first finished
    undo_module._run(undo)
    transfer = the_transfer(db)
    assert transfer.undone == 1 and transfer.status == "done" and transfer.reference == f"{REF}-V2"
    assert len(economic_documents(setup, f"{REF}-V2")[0]) == 1


def test_a_refund_credited_while_the_undo_waited_stops_it(owner_client, db, account, run_jobs):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    owner_client.post(f"/transfers/{transfer.id}/undo", data={"afterwards": "retransfer"})
    refund = transfer_row(source_link, "77", status="done", draft_id="9", booked_number="9")
    refund.kind, refund.order_ref = "credit_note", transfer.order_ref
    db.session.add(refund)
    db.session.commit()
    run_jobs()
    undo = db.session.scalar(select(TransferUndo))
    assert undo.status == "needs_attention" and undo.action is None
    assert economic_documents(setup, f"{REF}-F") == ([], [])
    assert "Refusioner af denne ordre er allerede krediteret" in owner_client.get(
        f"/transfers/{transfer.id}"
    ).get_data(as_text=True)


def test_bulk_undo_names_each_currency_total_and_the_unknown(owner_client, db, account, run_jobs):
    """A total in kroner of EUR and DKK documents would be wrong: each currency is summed by itself, and
    a transfer from before transfers.currency is counted and said to be outside the totals."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())
    feed(source_link, dict(order(number="5002"), currency="eur"))
    feed(source_link, order(number="5003"))
    run_jobs()
    assert [the_transfer(db, n).currency for n in ("5001", "5002", "5003")] == ["DKK", "EUR", "DKK"]
    the_transfer(db, "5003").currency = None  # as a row posted before the column: unknown
    db.session.commit()

    confirm = owner_client.get("/transfers/undo", query_string={"status": "done"}).get_data(as_text=True)
    assert "3 overførsler for 549,00\xa0kr. og 549,00\xa0€ i alt fortrydes." in confirm
    assert "1 af dem er uden kendt valuta" in confirm
    only_unknown = owner_client.get("/transfers/undo", query_string={"status": "done", "order": "5003"})
    assert "1 overførsel fortrydes; dens valuta kendes ikke" in only_unknown.get_data(as_text=True)

    euro = the_transfer(db, "5002")
    single = owner_client.get(f"/transfers/{euro.id}/undo").get_data(as_text=True)
    assert "(549,00\xa0€)" in single and "549,00\xa0kr." not in single
    assert "549,00\xa0€" in owner_client.get(f"/transfers/{euro.id}").get_data(as_text=True)
    # the unknown one: its currency read from the order, as before the column
    unknown = owner_client.get(f"/transfers/{the_transfer(db, '5003').id}/undo").get_data(as_text=True)
    assert "(549,00\xa0kr.)" in unknown

    owner_client.post(
        "/transfers/undo", data={"status": "done", "confirmed": "1", "afterwards": "retransfer"}
    )
    run_jobs()
    for number, currency in (("5001", "DKK"), ("5002", "EUR"), ("5003", "DKK")):
        transfer = the_transfer(db, number)
        assert (transfer.status, transfer.undone, transfer.currency) == ("done", 1, currency), number
