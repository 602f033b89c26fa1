"""A whole Shopify flow through the portal into each ledger (e-conomic, Dinero, Dynaccount) calls Shopify's
GraphQL Admin API only: the sandbox's request log shows no REST Admin path (REST is legacy; new public apps
must use GraphQL since 2025-04-01).

Connect (the OAuth install), subscribe to webhooks, an order by webhook, an order found by the poll, a
refund, stock written back by SKU. The merchant's own actions happen inside the emulated shop (its store),
not through the Admin API, so every logged request is Bogbro's."""

import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from portal.extensions import db as _db
from portal.models import Connection, Transfer
from portal.pipeline import polls
from portal.sandbox import shopify as sandbox
from portal.setups.connections import connector_for
from tests.pipeline.conftest import make_setup, remote
from tests.shops.test_shops import link

GRAPHQL = re.compile(r"^POST /sandbox/shopify/admin/api/2026-04/graphql\.json$")
OAUTH = re.compile(r"^(GET|POST) /sandbox/shopify/admin/oauth/(authorize|access_token)$")


def install(client, db) -> Connection:
    started = client.post("/shops/connect/shopify", data={"sandbox": "1", "shop": "bogbro-demo"})
    location = urlsplit(started.headers["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    granted = client.post(location.path, data={**query, "answer": "install"})
    back = urlsplit(granted.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    return db.session.scalar(select(Connection).where(Connection.role == "webshop"))


def in_the_shop(action, *args, **kwargs):
    """The merchant (or a customer at the checkout) acting inside Shopify."""
    store = sandbox._store(sandbox.DEMO_SHOP)
    result = action(store, sandbox.DEMO_SHOP, *args, **kwargs)
    _db.session.commit()
    return result


def paid_order(fire=True, sku="KRUS-30CL/HYGGE", quantity=1):
    variant = next(v for v in sandbox._store(sandbox.DEMO_SHOP).all("variants") if v["sku"] == sku)
    payload = {
        "financial_status": "paid",
        "email": "kunde@example.dk",
        "line_items": [{"variant_id": variant["id"], "quantity": quantity}],
    }
    return in_the_shop(sandbox._create_order, payload, fire=fire)


@pytest.mark.parametrize("ledger", ["e-conomic", "dinero", "dynaccount"])
def test_connect_webhooks_orders_polls_refunds_and_stock_use_graphql_only(
    app, owner_client, db, account, run_jobs, ledger
):
    setup = make_setup(account, ledger, auto_book=True)
    sandbox.seed(sandbox.DEMO_SHOP)
    db.session.commit()
    sandbox.clear_request_log()

    shop = install(owner_client, db)
    source_link = link(owner_client, db, shop, setup, name="Shopify-butikken")
    owner_client.post(f"/shops/source_links/{source_link.id}/activate")

    by_webhook = paid_order()
    run_jobs()
    by_poll = paid_order(fire=False, sku="TS-ØKO_M")  # no webhook: only the poll can find it
    assert polls.poll_orders(source_link.id) >= 1
    run_jobs()
    line = by_webhook["line_items"][0]
    in_the_shop(
        sandbox._create_refund,
        by_webhook["id"],
        {
            "refund_line_items": [{"line_item_id": line["id"], "quantity": 1, "restock_type": "no_restock"}],
            "transactions": [{"kind": "refund", "amount": by_webhook["total_price"]}],
        },
    )
    for _ in range(3):
        run_jobs()
    shopify = connector_for(source_link.connection)
    try:
        assert shopify.set_stock("BØNNER 1KG.ESP", 7)
    finally:
        shopify.close()

    transfers = {(t.kind, t.order_ref): t for t in db.session.scalars(select(Transfer))}
    for kind, order in (("invoice", by_webhook), ("invoice", by_poll), ("credit_note", by_webhook)):
        transfer = transfers.get((kind, str(order["id"])))
        assert transfer is not None and transfer.status == "done", (kind, transfer and transfer.error_message)
    booked = remote(setup).find_invoice(transfers[("invoice", str(by_poll["id"]))].reference)
    assert booked is not None and booked.booked and booked.totals.gross == Decimal(by_poll["total_price"])
    credit = remote(setup).find_invoice(transfers[("credit_note", str(by_webhook["id"]))].reference)
    assert credit is not None and abs(credit.totals.gross) == Decimal(by_webhook["total_price"])
    store = sandbox._store(sandbox.DEMO_SHOP)
    variant = next(v for v in store.all("variants") if v["sku"] == "BØNNER 1KG.ESP")
    assert variant["inventory_quantity"] == 7

    log = sandbox.request_log()
    assert any(GRAPHQL.match(entry) for entry in log)
    assert [entry for entry in log if not GRAPHQL.match(entry) and not OAUTH.match(entry)] == []
    # The log does see REST: the merchant's side reading the shop through the Admin REST API.
    token = sandbox.issue_token()["access_token"]
    owner_client.get(
        "/sandbox/shopify/admin/api/2026-07/shop.json", headers={"X-Shopify-Access-Token": token}
    )
    assert sandbox.request_log()[-1] == "GET /sandbox/shopify/admin/api/2026-07/shop.json"
