"""Re-transfer many by filter: a count to confirm, then exactly the matching not-done transfers are queued
(done ones never), in one commit with one audit entry, and the worker finishes them."""

from sqlalchemy import select

from portal.models import AuditEvent, Connection, SourceLink, Transfer
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, remote, transfer_row


def by_number(db) -> dict[str, Transfer]:
    db.session.expire_all()
    return {t.order_number: t for t in db.session.scalars(select(Transfer))}


def test_retry_matching_queues_exactly_the_matching_not_done_transfers(
    owner_client, db, account, other_account, run_jobs
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    second = make_source_link(db, account, setup, shop_id="13")
    feed(source_link, order())
    run_jobs()
    goods = setup.template("goods")
    chosen = goods.values
    goods.values = {"product_group": "999"}  # deleted in e-conomic: every new product fails
    db.session.commit()
    feed(source_link, order(number="5003", items=[("Ny vare", "NY-01", 1, "100.00", "25.00")], shipping=[]))
    feed(source_link, order(number="5004", items=[("Ny vare 2", "NY-02", 1, "80.00", "20.00")], shipping=[]))
    feed(second, order(number="6001", items=[("Ny vare 3", "NY-03", 1, "80.00", "20.00")], shipping=[]))
    run_jobs()
    # another account's transfer needing attention: never touched from this account
    theirs = SourceLink(
        account_id=other_account.id,
        connection=Connection(
            account_id=other_account.id, system="woocommerce", role="webshop", label="", credentials={}
        ),
        setup=make_setup(other_account, "dinero"),
    )
    db.session.add(transfer_row(theirs, "9001", status="needs_attention", error_kind="configuration"))
    db.session.commit()
    before = by_number(db)
    assert {n: t.status for n, t in before.items()} == {
        "5001": "done",
        "5003": "needs_attention",
        "5004": "needs_attention",
        "6001": "needs_attention",
        "9001": "needs_attention",
    }
    done_logs = len(before["5001"].logs)

    log = owner_client.get("/transfers?status=needs_attention").get_data(as_text=True)
    assert "3 overførsler her er ikke færdige og kan sættes i kø igen." in log

    # the first post only counts
    filters = {"status": "needs_attention", "source_link": str(source_link.id), "error_kind": "configuration"}
    confirm = owner_client.post("/transfers/retry", data=filters).get_data(as_text=True)
    assert "2 overførsler sættes i kø igen." in confirm
    assert "Færdige overførsler sendes aldrig igen" in confirm and 'name="confirmed" value="1"' in confirm
    assert {n: t.status for n, t in by_number(db).items()} == {n: t.status for n, t in before.items()}
    assert owner_client.post("/transfers/retry", data=filters, csrf=False).status_code == 400
    # the log's button asks with a GET, so the confirmation is a page that survives a reload; it only counts
    assert 'method="get" action="/transfers/retry"' in log
    reloaded = owner_client.get("/transfers/retry", query_string=filters)
    assert reloaded.status_code == 200
    assert "2 overførsler sættes i kø igen." in reloaded.get_data(as_text=True)
    assert {n: t.status for n, t in by_number(db).items()} == {n: t.status for n, t in before.items()}

    goods.values = chosen  # the cause is fixed
    db.session.commit()
    response = owner_client.post("/transfers/retry", data={**filters, "confirmed": "1"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/transfers?status=needs_attention")
    after = by_number(db)
    assert after["5003"].status == after["5004"].status == "pending"
    assert after["5003"].attempts == 0 and after["5003"].error_kind is None
    assert after["6001"].status == "needs_attention"  # another shop: not matched
    assert after["9001"].status == "needs_attention"  # another account: never
    assert after["5001"].status == "done" and len(after["5001"].logs) == done_logs
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "transfers.retried")).all()
    assert len(audit) == 1 and audit[0].account_id == account.id
    assert audit[0].changes["count"]["after"] == 2
    assert audit[0].changes["filters"]["after"] == {
        "status": "needs_attention",
        "error_kind": "configuration",
        "source_link_id": source_link.id,
    }

    run_jobs()
    after = by_number(db)
    assert after["5003"].status == after["5004"].status == "done"
    connector = remote(setup)
    for reference in ("WC-12-5003", "WC-12-5004"):
        assert connector.find_invoice(reference).booked
    assert len(connector._all("/invoices/booked", "references.other$eq:WC-12-5001")) == 1  # not again

    # every not-done transfer (no status filter): only 6001 is left; a done filter queues nothing
    assert "1 overførsel sættes i kø igen." in owner_client.post("/transfers/retry", data={}).get_data(
        as_text=True
    )
    page = owner_client.post(
        "/transfers/retry", data={"status": "done", "confirmed": "1"}, follow_redirects=True
    )
    assert "Ingen af de valgte overførsler kan sættes i kø igen." in page.get_data(as_text=True)
    assert by_number(db)["5001"].status == "done"
