"""The dashboard's Transfers card: today's transfers per status, what needs attention, the queue and the
last poll per shop — the account's own figures only, and still a page when Redis is down."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.engine.documents import COPENHAGEN
from portal.models import Connection, SourceLink, Transfer
from portal.pipeline.filters import day_start, today
from portal.pipeline.overview import account_overview
from portal.queue import get_queue
from tests.conftest import login
from tests.pipeline.conftest import (
    backdate,
    feed,
    make_setup,
    make_source_link,
    order,
    transfers_in_each_status,
)


def _card(client) -> str:
    page = client.get("/dashboard").get_data(as_text=True)
    return page[page.index('id="transfers-overview"') :]


@pytest.fixture
def transfers_of_today(db, account, run_jobs):
    """Two done, one skipped, one needing attention (a product group deleted in e-conomic) — and one done
    yesterday (Danish time), which today's figures leave out."""
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    transfers_in_each_status(db, source_link, run_jobs, (source_link, order(number="5009")))
    backdate(db, "5009", day_start(today()) - timedelta(minutes=1))  # 23:59 yesterday in Copenhagen
    return source_link


def test_the_card_counts_todays_transfers_per_status_and_links_to_the_log(
    owner_client, db, account, transfers_of_today
):
    overview = account_overview(account)
    assert overview.today == {"done": 2, "skipped": 1, "needs_attention": 1}
    assert overview.attention_count == 1 and overview.attention[0].order_number == "5004"

    card = _card(owner_client)
    day = today().isoformat()
    assert f"/transfers?status=done&amp;date_from={day}&amp;date_to={day}" in card
    assert '<span class="count">2</span> Færdig' in card
    assert '<span class="count">1</span> Sprunget over' in card
    assert "4 overførsler i dag" in card
    # the link really gives those two
    log = owner_client.get(f"/transfers?status=done&date_from={day}&date_to={day}").get_data(as_text=True)
    assert "#5001" in log and "#5002" in log and "#5009" not in log

    # what needs attention: the count, and the newest with its message, linking to the transfer
    failed = db.session.scalar(select(Transfer).where(Transfer.order_number == "5004"))
    assert "1</span> overførsel kræver handling" in card
    assert f'href="/transfers/{failed.id}"' in card and "afviste bilaget" in card  # the reason, in Danish


def test_the_card_counts_in_few_queries(db, account, transfers_of_today):
    from sqlalchemy import event

    statements = []
    assert account.id  # loaded before counting
    engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        account_overview(account)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) <= 4, statements  # grouped count, attention count + newest, source_links


def test_another_accounts_transfers_do_not_leak(client, db, account, other_account, transfers_of_today):
    login(client, "owner@anden.dk")
    card = _card(client)
    assert "Ingen overførsler i dag." in card and "Intet kræver din handling." in card
    assert "#5004" not in card and "Testbutikken" not in card
    assert account_overview(other_account).today == {}


def test_queue_depth_and_last_poll(owner_client, db, account, redis):
    setup = make_setup(account, "e-conomic")
    source_link = make_source_link(db, account, setup)
    shop = Connection(
        account_id=account.id, system="woocommerce", role="webshop", label="Anden butik", credentials={}
    )
    db.session.add(SourceLink(account_id=account.id, connection=shop, setup=setup, name="Anden butik"))
    source_link.last_polled_at = datetime.now(UTC) - timedelta(minutes=5)
    db.session.commit()
    feed(source_link, order())  # one job waits on the queue: it drains the source link's events …
    feed(source_link, order(number="5002"))  # … this one too
    get_queue().enqueue("workers.jobs.drain_events", 999)  # and another source link's

    card = _card(owner_client)
    assert "2 venter, 0 planlagt til et senere forsøg" in card
    assert "Testbutikken · <time" in card and "for 5 minutter siden" in card
    assert "Anden butik · aldrig" in card


def test_redis_down_shows_the_queue_as_unknown(owner_client, app, db, account):
    make_source_link(db, account, make_setup(account, "e-conomic"))
    saved_url, saved_client = app.config["REDIS_URL"], app.extensions.pop("bogbro.redis", None)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = owner_client.get("/dashboard")
    finally:
        app.config["REDIS_URL"] = saved_url
        app.extensions.pop("bogbro.redis", None)
        if saved_client is not None:
            app.extensions["bogbro.redis"] = saved_client
    assert response.status_code == 200
    assert "Kø: ukendt" in response.get_data(as_text=True)


def test_today_is_the_copenhagen_day():
    start = day_start(datetime(2026, 6, 1).date())
    assert start == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)  # CEST: UTC+2
    assert start.astimezone(COPENHAGEN).hour == 0
