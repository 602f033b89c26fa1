"""A WooCommerce shop with WooCommerce Subscriptions is one connection with two kinds of sale: ordinary orders
and renewal orders. Through the real path: the sandbox shop renews (its own helper), fires signed webhooks to
the portal, RQ runs the pipeline, e-conomic's sandbox gets the invoice."""

import json

import httpx
import pytest
from sqlalchemy import select

from portal.models import SourceEvent, Transfer
from portal.sandbox import woocommerce as sandbox
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from portal.sandbox.woocommerce import Shop
from tests.pipeline.conftest import make_setup, place_woocommerce_order, remote
from tests.shops.test_shops import body, connect_woocommerce, link, settings_form

SITE = f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce"
ORDER_TOPICS = ["order.created", "order.deleted", "order.updated"]
SUBSCRIPTION_TOPICS = [
    "subscription.created",
    "subscription.deleted",
    "subscription.switched",
    "subscription.updated",
]


@pytest.fixture
def shop(app, db, redis):
    sandbox.seed()
    with httpx.Client(
        transport=SandboxTransport(app), base_url=SITE, auth=("ck_demo", "cs_demo"), timeout=10
    ) as client:
        yield client


@pytest.fixture
def setup(account):
    return make_setup(account, "e-conomic", auto_book=True)


@pytest.fixture
def source_link(owner_client, db, setup, shop, run_jobs):
    linked = link(owner_client, db, connect_woocommerce(owner_client, db), setup)
    assert owner_client.post(f"/shops/source_links/{linked.id}/activate").status_code == 302
    run_jobs()  # the creation pings
    return linked


def form(db, source_link, **changes) -> dict:
    """The settings form as the page sends it, creating customers and products as a new link does."""
    return settings_form(db, source_link, customers_create="y", products_create="y", **changes)


def renew(shop, run_jobs, paid=True) -> dict:
    (subscription,) = shop.get("/wp-json/wc/v3/subscriptions").json()
    answer = shop.post(f"/_subscriptions/{subscription['id']}/renew", json={"paid": paid})
    assert answer.status_code == 201, answer.text
    for _ in range(5):  # delivery → event → transfer
        run_jobs()
    return answer.json()


def transfer_of(db, order) -> Transfer:
    db.session.expire_all()
    return db.session.scalar(select(Transfer).where(Transfer.order_number == str(order["number"])))


def test_a_renewal_is_booked_and_named_in_the_step_log(owner_client, db, source_link, shop, setup, run_jobs):
    order = renew(shop, run_jobs)
    subscription = next(m["value"] for m in order["meta_data"] if m["key"] == "_subscription_renewal")
    transfer = transfer_of(db, order)
    assert transfer.status == "done", transfer.error_message
    assert remote(setup).find_invoice(transfer.reference).booked
    page = body(owner_client.get(f"/transfers/{transfer.id}"))
    assert f"Fornyelse af abonnement #{subscription}" in page


def test_the_subscriptions_own_topics_are_registered_stored_and_ignored(db, source_link, shop, run_jobs):
    ours = [h for h in Shop().all("webhooks") if h["delivery_url"].endswith(source_link.webhook_token)]
    assert sorted(h["topic"] for h in ours) == ORDER_TOPICS + SUBSCRIPTION_TOPICS
    renew(shop, run_jobs)
    events = db.session.scalars(select(SourceEvent).where(SourceEvent.topic == "subscription.updated")).all()
    assert events and all(e.processed_at is not None for e in events)
    assert {e.outcome for e in events} == {
        "ignored: En ændring af et abonnement: gemt, ikke overført (dets fornyelser kommer som ordrer)."
    }
    # only the renewal order became a transfer: nothing for the subscription itself
    subscription_id = str(json.loads(events[0].raw_body)["id"])
    refs = db.session.scalars(select(Transfer.order_ref)).all()
    assert len(refs) == 1 and subscription_id not in refs


def test_without_the_plugin_only_the_order_topics_are_registered(owner_client, db, source_link, shop):
    assert (
        shop.put("/_settings", json={"subscriptions_plugin": False}).json()["subscriptions_plugin"] is False
    )
    assert shop.get("/wp-json/wc/v3/subscriptions").status_code == 404
    assert owner_client.post(f"/shops/source_links/{source_link.id}/webhooks").status_code == 302
    assert sorted(h["topic"] for h in Shop().all("webhooks")) == ORDER_TOPICS


def test_renewals_left_out_by_the_setting_are_skipped_with_the_reason(
    app, owner_client, db, source_link, shop, run_jobs
):
    page = body(owner_client.get(f"/shops/source_links/{source_link.id}"))
    assert "Hvilke salg overføres" in page and '<option selected value="orders,renewals">' in page
    saved = owner_client.post(
        f"/shops/source_links/{source_link.id}", data=form(db, source_link, sale_kinds="orders")
    )
    assert saved.status_code == 302, body(saved)
    db.session.expire_all()
    assert source_link.settings["sale_kinds"] == ["orders"]

    order = renew(shop, run_jobs)
    transfer = transfer_of(db, order)
    assert transfer.status == "skipped"
    page = body(owner_client.get(f"/transfers/{transfer.id}"))
    assert (
        "Fornyelse af abonnement #" in page
        and "fornyelser af abonnementer er ikke valgt til at blive overført" in page
    )

    ordinary = place_woocommerce_order(app)  # an ordinary order still transfers
    for _ in range(5):
        run_jobs()
    assert transfer_of(db, ordinary).status == "done", transfer_of(db, ordinary).error_message


def test_only_renewals_skip_an_ordinary_order(app, owner_client, db, source_link, shop, run_jobs):
    saved = owner_client.post(
        f"/shops/source_links/{source_link.id}", data=form(db, source_link, sale_kinds="renewals")
    )
    assert saved.status_code == 302, body(saved)
    ordinary = place_woocommerce_order(app)
    for _ in range(5):
        run_jobs()
    transfer = transfer_of(db, ordinary)
    assert transfer.status == "skipped"
    assert "kun fornyelser af abonnementer" in body(owner_client.get(f"/transfers/{transfer.id}")).lower()
    assert transfer_of(db, renew(shop, run_jobs)).status == "done"


def test_a_bad_sale_kind_is_refused_and_nothing_is_saved(owner_client, db, source_link):
    before = dict(source_link.settings)
    refused = owner_client.post(
        f"/shops/source_links/{source_link.id}", data=form(db, source_link, sale_kinds="gifts")
    )
    assert refused.status_code == 400 and "Ordrer, fornyelser eller begge." in body(refused)
    db.session.expire_all()
    assert source_link.settings == before


def test_a_failed_renewal_is_skipped_with_the_reason(owner_client, db, source_link, shop, setup, run_jobs):
    order = renew(shop, run_jobs, paid=False)
    transfer = transfer_of(db, order)
    assert transfer.status == "skipped" and remote(setup).find_invoice(transfer.reference) is None
    assert "Mislykket" in body(owner_client.get(f"/transfers/{transfer.id}"))
