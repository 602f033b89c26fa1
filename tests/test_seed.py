from sqlalchemy import func, select

from portal.cli import seed_demo
from portal.models import Account, AccountingSetup, User
from tests.conftest import login


def test_seed_demo_is_idempotent_and_its_logins_work(app, client, db):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    assert db.session.scalar(select(func.count()).select_from(User)) == 2
    account = db.session.scalar(select(Account))
    assert (account.name, account.cvr) == ("Demo Webshop ApS", "35000003")

    login(client, "demo@example.com", "demo-demo")
    assert "Demo Webshop ApS" in client.get("/dashboard").get_data(as_text=True)
    client.post("/logout")
    login(client, "support@example.com", "support-demo")
    assert client.get("/").headers["Location"] == "/support"


def test_seed_keeps_changed_passwords(app, db):
    seed_demo()
    user = db.session.scalar(select(User).where(User.email == "demo@example.com"))
    user.password_hash = "changed"
    db.session.commit()
    seed_demo()
    db.session.expire_all()
    assert user.password_hash == "changed"


def test_create_staff_command(app, db):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "Agent@Bogbro.dk", "--name", "Ny Agent", "--password", "long enough pw"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "agent@bogbro.dk"))
    assert user.is_staff and user.account_id is None


def test_seed_connects_a_finished_economic_sandbox_source_link(app, db, redis):
    seed_demo()
    seed_demo()
    setups = db.session.scalars(select(AccountingSetup)).all()
    assert len(setups) == 1
    setup = setups[0]
    assert (setup.connection.system, setup.connection.sandbox) == ("e-conomic", True)
    # it books: the Stripe demo link books paid invoices (the WooCommerce demo shop asks for drafts)
    assert setup.selected and setup.active and setup.auto_book
    assert {(t.kind, tuple(sorted(t.values))) for t in setup.templates} == {
        ("invoice", ("layout", "payment_terms")),
        ("goods", ("product_group",)),
        ("freight", ("product_group",)),
        ("no_vat", ("product_group",)),
        ("payments", ("account", "journal")),
        ("oss", ("DE", "FI", "FR", "SE")),  # the sandbox's OSS groups; the other countries stay empty
    }
    assert setup.template("goods").labels == {"product_group": "Varer"}
    assert setup.template("oss").labels["FI"] == "OSS Finland"
    # gift cards and the rounding line land in the VAT-free group
    assert setup.template("no_vat").labels == {"product_group": "Momsfrit salg (gavekort, afrunding)"}


def test_an_order_in_the_demo_shop_becomes_a_draft_in_the_demo_economic(app, db, redis, run_jobs):
    """What a new user can do after `make run`: order in the WooCommerce sandbox, watch the invoice appear."""
    import httpx

    from portal.models import SourceLink, Transfer
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
    from portal.setups.connections import connector_for

    seed_demo()
    seed_demo()
    (source_link,) = db.session.scalars(
        select(SourceLink).where(SourceLink.name == "WooCommerce-sandkassen")
    ).all()
    assert source_link.active and source_link.setup.connection.system == "e-conomic"
    assert source_link.settings["states"] == {"processing": "draft", "completed": "draft"}
    run_jobs()  # WooCommerce's creation pings

    shop = httpx.Client(
        transport=SandboxTransport(app), base_url=f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce/wp-json/wc/v3",
        auth=("ck_demo", "cs_demo"),
    )  # fmt: skip
    products = shop.get("/products").json()
    order = shop.post(
        "/orders",
        json={
            "status": "processing",
            "billing": {"first_name": "Ida", "last_name": "Holm", "email": "ida@example.dk", "country": "DK"},
            "payment_method": "quickpay",
            "line_items": [{"product_id": products[0]["id"], "quantity": 2}],
        },
    ).json()
    for _ in range(5):  # webhook delivery → event → transfer, each a job of its own
        run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer is not None and transfer.status == "done", transfer and transfer.status
    draft = connector_for(source_link.setup.connection, source_link.setup.external_id).find_invoice(
        transfer.reference
    )
    assert draft is not None and not draft.booked
    assert str(draft.totals.gross) == order["total"]


def test_a_renewal_in_the_demo_stripe_account_becomes_a_booked_paid_invoice(
    app, db, redis, live_server, run_jobs
):
    """What the README shows: subscribe in the Stripe sandbox, advance the test clock, watch the renewal
    arrive in the demo e-conomic as a booked invoice registered as paid."""
    import stripe

    from portal.models import SourceLink, Transfer
    from portal.sandbox.stripe import DEMO_KEY
    from portal.setups.connections import connector_for

    seed_demo()
    seed_demo()
    (source_link,) = db.session.scalars(
        select(SourceLink).where(SourceLink.name == "Stripe-sandkassen")
    ).all()
    assert source_link.active and source_link.settings["states"] == {"paid": "booked"}
    api = stripe.StripeClient(DEMO_KEY, base_addresses={"api": f"{live_server}/sandbox/stripe"})
    clock = api.v1.test_helpers.test_clocks.create({"frozen_time": 1_780_000_000})
    customer = api.v1.customers.create(
        {"name": "Ida Holm", "email": "ida@example.dk", "address": {"country": "DK"}, "test_clock": clock.id}
    )
    card = api.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    api.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})
    price = next(p for p in api.v1.prices.list().data if p.lookup_key == "kaffe-maaned")
    vat = api.v1.tax_rates.list().data[0]  # the demo's Danish VAT, included in the price
    subscription = api.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "default_tax_rates": [vat.id]}
    )
    end = subscription["items"].data[0].current_period_end
    api.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": end + 7200})
    run_jobs()

    renewal = next(
        i
        for i in api.v1.invoices.list({"subscription": subscription.id}).data
        if i.billing_reason == "subscription_cycle"
    )
    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == renewal.number))
    assert transfer.status == "done" and transfer.payment_id, transfer.error_message
    found = connector_for(source_link.setup.connection, source_link.setup.external_id).find_invoice(
        transfer.reference
    )
    assert found.booked and str(found.totals.gross) == "149.00"


def test_a_renewal_in_the_demo_frisbii_account_becomes_a_booked_paid_invoice(app, db, redis, run_jobs):
    """What the README shows: renew the Frisbii sandbox's demo subscription, watch the renewal arrive in the
    demo e-conomic as a booked invoice registered as paid."""
    import httpx

    from portal.models import SourceLink, Transfer
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
    from portal.setups.connections import connector_for

    seed_demo()
    seed_demo()
    (source_link,) = db.session.scalars(
        select(SourceLink).where(SourceLink.name == "Frisbii-sandkassen")
    ).all()
    assert source_link.active and source_link.settings["states"] == {"settled": "booked"}
    with httpx.Client(
        transport=SandboxTransport(app), base_url=f"{IN_PROCESS_ORIGIN}/sandbox/frisbii"
    ) as frisbii:
        answer = frisbii.post("/_subscriptions/sub-demo-0001/renew", json={"outcome": "settled"})
        assert answer.status_code == 200, answer.text
    for _ in range(6):  # webhook delivery → event → fetch → invoice event → transfer
        run_jobs()

    transfer = db.session.scalar(select(Transfer).where(Transfer.order_number == answer.json()["handle"]))
    assert transfer.status == "done" and transfer.payment_id, transfer.error_message
    found = connector_for(source_link.setup.connection, source_link.setup.external_id).find_invoice(
        transfer.reference
    )
    assert found.booked and str(found.totals.gross) == "149.00"
