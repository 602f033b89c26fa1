"""Counts over a long history: capped where they only inform ("over 1.000" on the dashboard and above the
log), exact where a person acts on them (the bulk re-transfer's confirmation, and what it then queues)."""

from sqlalchemy import insert, select

from portal.models import Connection, SourceLink, Transfer
from portal.pipeline.counts import COUNT_CAP, capped_count, shown
from tests.pipeline.conftest import make_setup


def _source_link(db, account) -> SourceLink:
    shop = Connection(account_id=account.id, system="woocommerce", role="webshop", label="", credentials={})
    setup = make_setup(account, "dinero")
    source_link = SourceLink(account_id=account.id, connection=shop, setup=setup)
    db.session.add(source_link)
    db.session.commit()
    return source_link


def _needing_attention(db, source_link, n: int, start: int = 1) -> None:
    rows = [
        {
            "account_id": source_link.account_id,
            "source_link_id": source_link.id,
            "kind": "invoice",
            "source_ref": str(number),
            "order_ref": str(number),
            "order_number": str(number),
            "status": "needs_attention",
            "error_kind": "order",
            "error_message": "The accounting system refused the invoice.",
        }
        for number in range(start, start + n)
    ]
    db.session.execute(insert(Transfer), rows)
    db.session.commit()


def test_a_capped_count_stops_at_the_cap_and_says_so(app, db, account):
    source_link = _source_link(db, account)
    _needing_attention(db, source_link, 5)
    everything = select(Transfer).where(Transfer.account_id == account.id)
    assert capped_count(everything, cap=5) == 5 and not capped_count(everything, cap=5).capped
    count = capped_count(everything, cap=4)
    assert count == 5 and count.capped
    with app.test_request_context():  # Danish, the default
        assert shown(count) == "over 4" and shown(capped_count(everything, cap=5)) == "5"


def test_past_the_cap_the_pages_say_over_but_the_confirmation_is_exact(owner_client, db, account, redis):
    source_link = _source_link(db, account)
    _needing_attention(db, source_link, COUNT_CAP + 1)

    dashboard = owner_client.get("/dashboard").get_data(as_text=True)
    assert '<span class="count">over 1.000</span> overførsler kræver handling' in dashboard
    log = owner_client.get("/transfers").get_data(as_text=True)
    assert "over 1.000 overførsler her er ikke færdige og kan sættes i kø igen." in log

    confirm = owner_client.post("/transfers/retry", data={})  # the confirm step: counts, queues nothing
    body = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "1001 overførsler sættes i kø igen." in body


def test_below_the_cap_every_count_is_the_number(owner_client, db, account):
    source_link = _source_link(db, account)
    _needing_attention(db, source_link, 3)
    dashboard = owner_client.get("/dashboard").get_data(as_text=True)
    assert '<span class="count">3</span> overførsler kræver handling' in dashboard
    log = owner_client.get("/transfers").get_data(as_text=True)
    assert "3 overførsler her er ikke færdige og kan sættes i kø igen." in log
