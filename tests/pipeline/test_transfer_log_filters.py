"""The transfer log's filters (in the query string, swapped in by HTMX), its keyset pages, and the live
status: rows and the detail page of a queued or running transfer poll until it has finished."""

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from portal.models import Connection, SourceLink, Transfer
from portal.pipeline import posting
from portal.pipeline.filters import TransferFilters, transfer_page
from tests.pipeline.conftest import (
    backdate,
    make_setup,
    make_source_link,
    order,
    queued_behind_a_lock,
    transfer_row,
    transfers_in_each_status,
)


def orders_in(page: str) -> list[str]:
    return re.findall(r">#(\d+)</a>", page)


@pytest.fixture
def log(db, account, run_jobs):
    """5001 and 5002 done, 5003 skipped, 5004 needing attention (configuration), 6001 done in a second shop;
    5002 was created on 10 January 2026 (Danish time), the rest today."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    second = make_source_link(db, account, setup, shop_id="13")
    second.name = "Anden butik"
    transfers_in_each_status(db, source_link, run_jobs, (second, order(number="6001")))
    backdate(db, "5002", datetime(2026, 1, 10, 22, 30, tzinfo=UTC))  # 23:30 in Copenhagen
    return source_link, second


def test_each_filter_narrows_the_log(owner_client, log):
    _, second = log
    everything = orders_in(owner_client.get("/transfers").get_data(as_text=True))
    assert sorted(everything) == ["5001", "5002", "5003", "5004", "6001"]

    def shown(query):
        return sorted(orders_in(owner_client.get(f"/transfers?{query}").get_data(as_text=True)))

    assert shown("status=done") == ["5001", "5002", "6001"]
    assert shown("status=needs_attention") == ["5004"]
    assert shown("order=5001") == ["5001"]
    assert shown("order=%235001") == ["5001"]  # "#5001" as typed from an e-mail
    assert shown("order=500") == []  # exact unless it ends in *
    assert shown("order=50*") == ["5001", "5002", "5003", "5004"]
    assert shown("error_kind=configuration") == ["5004"]
    assert shown(f"source_link={second.id}") == ["6001"]
    assert shown("date_from=2026-01-10&date_to=2026-01-10") == ["5002"]  # the Danish day, not UTC's
    assert shown("date_to=2026-01-09") == []
    assert shown("date_from=2026-01-11") == ["5001", "5003", "5004", "6001"]
    assert shown("status=done&order=50*&date_from=2026-01-11") == ["5001"]
    assert shown("status=nonsense&date_from=not-a-date") == sorted(everything)  # ignored, not an error


def test_the_filter_form_is_a_get_form_swapped_in_by_htmx(owner_client, log):
    page = owner_client.get("/transfers?status=done").get_data(as_text=True)
    assert 'method="get"' in page and 'hx-push-url="true"' in page and 'hx-target="#transfer-table"' in page
    assert '<option selected value="done">' in page
    partial = owner_client.get(
        "/transfers?status=needs_attention", headers={"HX-Request": "true", "HX-Target": "transfer-table"}
    )
    body = partial.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="transfer-table"') and "<html" not in body
    assert orders_in(body) == ["5004"]
    assert "HX-Request" in partial.headers["Vary"]


def test_pages_by_keyset(owner_client, db, account):
    shop = Connection(account_id=account.id, system="woocommerce", role="webshop", label="", credentials={})
    source_link = SourceLink(account_id=account.id, connection=shop, setup=make_setup(account, "dinero"))
    db.session.add_all(transfer_row(source_link, str(n), status="done") for n in range(1, 56))
    db.session.commit()

    first = owner_client.get("/transfers").get_data(as_text=True)
    numbers = orders_in(first)
    assert len(numbers) == 50 and numbers[0] == "55" and numbers[-1] == "6"
    older = re.search(r'href="(/transfers\?before=\d+)"', first).group(1)
    assert "after=" not in first
    second = owner_client.get(older).get_data(as_text=True)
    assert orders_in(second) == ["5", "4", "3", "2", "1"]
    newer = re.search(r'href="(/transfers\?after=\d+)"', second).group(1)
    assert orders_in(owner_client.get(newer).get_data(as_text=True)) == numbers

    # the same through the function, small pages and a filter
    filters = TransferFilters(order="2*")
    page = transfer_page(account.id, filters, size=3)
    assert [t.order_number for t in page.transfers] == ["29", "28", "27"] and page.newer is None
    page = transfer_page(account.id, filters, before=page.older, size=3)
    assert [t.order_number for t in page.transfers] == ["26", "25", "24"]
    for _ in range(2):
        page = transfer_page(account.id, filters, before=page.older, size=3)
    assert [t.order_number for t in page.transfers] == ["20", "2"] and page.older is None
    page = transfer_page(account.id, filters, after=page.newer, size=3)
    assert [t.order_number for t in page.transfers] == ["23", "22", "21"]


def test_a_queued_transfer_polls_until_it_is_done(owner_client, db, account, redis):
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    with queued_behind_a_lock(db, redis, source_link, order()) as transfer:
        page = owner_client.get("/transfers").get_data(as_text=True)
        row = f'hx-get="/transfers/{transfer.id}/row" hx-trigger="every 2s"'
        assert row in page
        detail = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
        assert f'hx-get="/transfers/{transfer.id}/live" hx-trigger="every 2s"' in detail
        fragment = owner_client.get(f"/transfers/{transfer.id}/row").get_data(as_text=True)
        assert fragment.lstrip().startswith(f'<tr id="transfer-{transfer.id}"') and row in fragment
    posting.run_transfer(transfer.id)
    fragment = owner_client.get(f"/transfers/{transfer.id}/row").get_data(as_text=True)
    assert "Færdig" in fragment and "hx-trigger" not in fragment  # finished: the polling stops
    live = owner_client.get(f"/transfers/{transfer.id}/live").get_data(as_text=True)
    assert "Færdig" in live and "hx-trigger" not in live
    db.session.expire_all()
    assert transfer.booked_number and f"Fakturanummer {transfer.booked_number}" in live
    assert "Færdige overførsler sendes aldrig igen" in live
    assert "every 2s" not in owner_client.get("/transfers").get_data(as_text=True)


def test_the_detail_page_shows_requests_and_answers(owner_client, db, log):
    failed = db.session.scalar(select(Transfer).where(Transfer.order_number == "5004"))
    page = owner_client.get(f"/transfers/{failed.id}").get_data(as_text=True)
    assert "Forespørgsel og svar" in page and '"system": "e-conomic"' in page
    assert "Forhåndsvis" in page and f"/transfers/{failed.id}/preview" in page


def test_pages_are_newest_first_by_creation_even_across_equal_times(db, account, other_account):
    """The keyset is (created_at, id): a transfer created long ago (a historic import) sits where its time
    puts it, transfers created in the same instant are ordered by id, and no page repeats or skips one."""
    shop = Connection(account_id=account.id, system="woocommerce", role="webshop", label="", credentials={})
    source_link = SourceLink(account_id=account.id, connection=shop, setup=make_setup(account, "dinero"))
    db.session.add_all(transfer_row(source_link, str(n), status="done") for n in range(1, 7))
    db.session.commit()
    backdate(db, "6", datetime(2025, 12, 1, tzinfo=UTC))
    same = datetime(2026, 6, 1, tzinfo=UTC)
    for number in ("2", "3", "4"):
        backdate(db, number, same)

    page = transfer_page(account.id, TransferFilters(), size=2)
    pages = [page]
    while page.older:
        page = transfer_page(account.id, TransferFilters(), before=page.older, size=2)
        pages.append(page)
    seen = [[t.order_number for t in p.transfers] for p in pages]
    assert seen == [["5", "1"], ["4", "3"], ["2", "6"]]
    back = transfer_page(account.id, TransferFilters(), after=pages[-1].newer, size=2)
    assert [t.order_number for t in back.transfers] == ["4", "3"]
    # another account's transfer is no anchor: the first page
    theirs = Connection(
        account_id=other_account.id, system="woocommerce", role="webshop", label="", credentials={}
    )
    other = SourceLink(
        account_id=other_account.id, connection=theirs, setup=make_setup(other_account, "dinero")
    )
    db.session.add(transfer_row(other, "9", status="done"))
    db.session.commit()
    foreign = db.session.scalar(select(Transfer.id).where(Transfer.account_id == other_account.id))
    first = transfer_page(account.id, TransferFilters(), before=foreign, size=2)
    assert [t.order_number for t in first.transfers] == ["5", "1"] and first.newer is None
