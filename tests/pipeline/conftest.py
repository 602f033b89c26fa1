"""An account with a sandbox accounting system connected through its real consent flow, its templates
filled from the system's own choices, and a WooCommerce shop linked to it by an sales source."""

import json
import uuid
from contextlib import contextmanager
from datetime import datetime

import httpx
import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from portal.models import Connection, SourceLink, Transfer
from portal.pipeline import intake
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from portal.setups import operations as setup_operations
from portal.setups.connections import connector_for
from tests.conftest import connect_sandbox
from tests.engine.factories import wc_order

# Template field -> the label to pick (else the first choice), per system.
PREFERRED = {
    ("invoice", "layout"): ("Standard faktura",),
    ("invoice", "payment_terms"): ("Netto 8 dage",),
    ("goods", "product_group"): ("Varer",),
    ("freight", "product_group"): ("Fragt",),
    ("payments", "journal"): ("Indbetalinger fra webshop",),
    ("payments", "account"): ("5830 Betalingsformidler (clearing)", "5830 Mellemregning kortindløser"),
    # Dynaccount's sales vouchers: the kladde, the receivable and the output VAT account
    ("invoice", "journal"): ("Bogbro",),
    ("invoice", "receivable"): ("5600 Debitorer",),
    ("invoice", "vat_account"): ("6910 Salgsmoms",),
    # the VAT-free template (gift cards, the rounding line): e-conomic, Dinero, Dynaccount
    ("no_vat", "product_group"): ("Momsfrit salg (gavekort, afrunding)",),
    ("no_vat", "account"): ("1050 Salg af varer/ydelser u/moms", "1070 Momsfrit salg (gavekort, afrunding)"),
    # e-conomic's OSS groups (portal.sandbox.economic.OSS_SETUP); other countries are left empty
    ("oss", "SE"): ("OSS Sverige",),
    ("oss", "DE"): ("OSS Tyskland",),
    ("oss", "FI"): ("OSS Finland",),
    ("oss", "FR"): ("OSS Frankrig",),
}
SECRET = "wc-webhook-secret"


def _pick(template, field, available):
    wanted = PREFERRED.get((template.kind, field.name), ())
    if wanted == (None,) or (not wanted and not field.required):
        return ""  # an optional value nobody asked for stays empty
    for label in wanted:
        found = next((c for c in available if c.label == label), None)
        if found:
            return found.value
    if field.name == "vat_code" and template.kind in ("goods", "freight"):
        # Dynaccount: the zone's sales VAT code (the wizard refuses purchase VAT and a wrong zone's code)
        code = {"domestic": "U25", "eu": "UEUV", "world": "UEXP"}[template.zone]
        return next(c.value for c in available if c.value == code)
    if field.name == "account" and template.kind in ("goods", "freight"):
        # a revenue account: a sales account ("Salg …") with the zone's VAT
        sales = [c for c in available if "salg" in c.label.lower()]
        zone_words = {"domestic": ("danmark", "indland", "dk"), "eu": ("eu",), "world": ("udland", "eksport")}
        for word in zone_words.get(template.zone, ()):
            hit = next((c for c in sales if word in c.label.lower()), None)
            if hit:
                return hit.value
        if sales:
            return sales[0].value
    return available[0].value


def make_setup(account, system_key: str, auto_book: bool = False):
    connection = connect_sandbox(account, system_key)
    setup = next(s for s in connection.setups if not s.unusable_reason)
    setup_operations.select_setup(setup, True)
    for template in setup.templates:
        spec = setup_operations.spec_of(setup, template)
        available = {f.name: setup_operations.choices(setup, f.choices) for f in spec.fields}
        submitted = {f.name: _pick(template, f, available[f.name]) for f in spec.fields}
        errors = setup_operations.save_template(template, submitted, available)
        assert not errors, errors
    assert setup_operations.activate(setup) == []
    if auto_book:
        setup_operations.set_auto_book(setup, True)
    return setup


def make_source_link(db, account, setup, **settings) -> SourceLink:
    shop = Connection(
        account_id=account.id,
        system="woocommerce",
        role="webshop",
        label="Testbutikken",
        credentials={"consumer_key": "ck_demo", "consumer_secret": "cs_demo"},
        sandbox=True,
    )
    values = {"shop_id": "12", "states": {"processing": "booked", "completed": "booked", "on-hold": "draft"}}
    values.update(settings)
    source_link = SourceLink(
        account_id=account.id,
        connection=shop,
        setup=setup,
        name="Testbutikken",
        settings=values,
        webhook_secret={"secret": SECRET},
        active=True,
    )
    db.session.add(source_link)
    db.session.commit()
    return source_link


def feed(source_link, payload, delivery_id=None, topic="order.updated"):
    """A webhook delivery of an order, stored raw through the pipeline's front door."""
    return intake.record_event(
        source_link,
        "webhook",
        delivery_id or str(uuid.uuid4()),
        topic,
        str(payload.get("id", "")),
        json.dumps(payload),
    )


def order(**kwargs):
    """Order 5001 as the WooCommerce sandbox sends it: two mugs and a teapot, GLS shipping, 25 % VAT."""
    values = {
        "items": [
            ("Keramikkrus, blå", "KRUS-01", 2, "160.00", "40.00"),
            ("Tekande", "TE-02", 1, "240.00", "60.00"),
        ],
        "shipping": [("GLS Pakkeshop", "39.20", "9.80")],
        "number": "5001",
        "date_gmt": "2026-11-20T10:00:00",
    }
    values.update(kwargs)
    return wc_order(**values)


def transfers_in_each_status(db, source_link, run_jobs, *more):
    """Feeds `source_link` (an e-conomic setup that books): 5001 and 5002 done, 5003 skipped (pending
    payment), 5004 needing attention (its new product's group is gone in e-conomic: a configuration
    error). `more` are (source_link, order) pairs fed along with the first three."""
    feed(source_link, order())
    feed(source_link, order(number="5002"))
    skipped = order(number="5003")
    skipped["status"] = "pending"
    feed(source_link, skipped)
    for other, payload in more:
        feed(other, payload)
    run_jobs()
    goods = source_link.setup.template("goods")
    chosen = goods.values
    goods.values = {"product_group": "999"}
    db.session.commit()
    feed(source_link, order(number="5004", items=[("Ny vare", "NY-01", 1, "100.00", "25.00")], shipping=[]))
    run_jobs()
    goods.values = chosen
    db.session.commit()


def transfer_row(source_link, number: str, **fields) -> Transfer:
    """A transfer of order `number` as the database holds it (nothing sent anywhere); `fields` set the
    rest, e.g. status."""
    return Transfer(
        account_id=source_link.account_id,
        source_link=source_link,
        kind="invoice",
        source_ref=number,
        order_ref=number,
        order_number=number,
        **fields,
    )


def backdate(db, order_number: str, created_at: datetime) -> None:
    """Let the transfer of `order_number` have been created at `created_at`."""
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == order_number))
    transfer.created_at = created_at
    db.session.commit()


@contextmanager
def queued_behind_a_lock(db, redis, source_link, payload):
    """The transfer of `payload` (an order in a state that transfers), queued while another worker holds
    its lock: inside the block it stays `pending` whatever runs; the lock is released when the block ends.
    The order arrives unpaid first (skipped), so the transfer exists before the lock is taken."""
    intake.process_event(feed(source_link, {**payload, "status": "pending"}).id)  # not transferring
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == str(payload["number"])))
    assert transfer.status == "skipped"
    lock = redis.lock(f"bogbro:lock:transfer:{transfer.id}", timeout=60)
    assert lock.acquire(blocking=False)  # another worker holds it
    try:
        intake.process_event(feed(source_link, payload).id)  # now it transfers: queued
        db.session.expire_all()
        assert transfer.status == "pending"
        yield transfer
    finally:
        lock.release()


def release_scheduled(redis):
    """Move every job scheduled for later (enqueue_in) onto its queue now, as if its time had come."""
    queue = Queue("default", connection=redis)
    registry = ScheduledJobRegistry(queue=queue)
    ids = registry.get_job_ids()
    for job_id in ids:
        registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=redis))
    return len(ids)


def remote(setup):
    return connector_for(setup.connection, setup.external_id)


def place_woocommerce_order(app) -> dict:
    """An order placed in the WooCommerce sandbox's demo shop, as a shopper would: its first product, paid
    with QuickPay, processing. WooCommerce then fires its webhooks."""
    with httpx.Client(
        transport=SandboxTransport(app),
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce/wp-json/wc/v3",
        auth=("ck_demo", "cs_demo"),
    ) as woo:
        product = woo.get("/products").json()[0]
        created = woo.post(
            "/orders",
            json={
                "status": "processing",
                "billing": {
                    "first_name": "Ida",
                    "last_name": "Holm",
                    "email": "ida@example.dk",
                    "country": "DK",
                },
                "payment_method": "quickpay",
                "line_items": [{"product_id": product["id"], "quantity": 1}],
            },
        )
    assert created.status_code == 201, created.text
    return created.json()


def faults(app, system, **settings):
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as client:
        if settings:
            response = client.put(f"/sandbox/{system}/_faults", json=settings)
        else:
            response = client.delete(f"/sandbox/{system}/_faults")
        assert response.status_code == 200, response.text


@pytest.fixture
def fast_retries(app):
    saved = {k: app.config.get(k) for k in ("PIPELINE_RETRY_SECONDS", "CONNECTOR_RETRIES")}
    app.config["PIPELINE_RETRY_SECONDS"] = 0
    yield app
    app.config.update(saved)


@pytest.fixture
def shop(app, db, redis):
    """The WooCommerce sandbox's REST API as the shop owner (or WooCommerce admin) changes it; the
    source_links made by make_source_link read the same shop with the same demo keys."""
    from portal.sandbox import woocommerce as wc_sandbox

    wc_sandbox.seed()
    with httpx.Client(
        transport=SandboxTransport(app),
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce/wp-json/wc/v3",
        auth=("ck_demo", "cs_demo"),
        timeout=10,
    ) as client:
        yield client


def shop_order(shop, **body) -> dict:
    """An order placed in the sandbox shop (Danish 25 % VAT, prices incl. VAT), as WooCommerce returns it."""
    body.setdefault("status", "processing")
    body.setdefault(
        "billing", {"first_name": "Sofie", "last_name": "Lund", "email": "sofie@example.dk", "country": "DK"}
    )
    body.setdefault("payment_method", "quickpay")
    if "line_items" not in body:
        (espresso,) = shop.get("/products", params={"sku": "KAFFE/ESP-500g"}).json()
        body["line_items"] = [{"product_id": espresso["id"], "quantity": 2}]
    response = shop.post("/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def lose_first_answer(monkeypatch, path_suffix: str, calls: list | None = None) -> list:
    """The first POST to a path ending in `path_suffix` reaches the sandbox (it does the work) but its answer
    is lost, as a read timeout loses it. Returns the list that receives the sandbox's status code; `calls`
    receives "METHOD path" of every request."""
    import httpx

    from portal.sandbox.transport import SandboxTransport

    original = SandboxTransport.handle_request
    lost: list = []

    def answer_lost(self, request):
        if calls is not None:
            calls.append(f"{request.method} {request.url.path}")
        response = original(self, request)
        if request.method == "POST" and request.url.path.endswith(path_suffix) and not lost:
            lost.append(response.status_code)
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response

    monkeypatch.setattr(SandboxTransport, "handle_request", answer_lost)
    return lost
