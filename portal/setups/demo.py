"""The demo account's finished e-conomic setup, so a new user sees a complete setup at once (OSS
groups for Sweden, Germany, Finland and France included, ready for a shop that turns OSS on)."""

from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, AccountingSetup, Connection
from portal.setups import operations

# Template field -> the choice the demo picks (by its label in the e-conomic sandbox's demo agreement).
DEMO_ECONOMIC_CHOICES = {
    ("invoice", "layout"): "Standard faktura",
    ("invoice", "payment_terms"): "Netto 8 dage",
    ("goods", "product_group"): "Varer",
    ("freight", "product_group"): "Fragt",
    ("no_vat", "product_group"): "Momsfrit salg (gavekort, afrunding)",
    ("payments", "journal"): "Indbetalinger fra webshop",
    ("payments", "account"): "5830 Betalingsformidler (clearing)",
    # OSS: the sandbox agreement's per-country groups (portal.sandbox.economic.OSS_SETUP); other countries
    # stay empty (OSS itself stays off until a shop's settings turn it on)
    ("oss", "SE"): "OSS Sverige",
    ("oss", "DE"): "OSS Tyskland",
    ("oss", "FI"): "OSS Finland",
    ("oss", "FR"): "OSS Frankrig",
}


def seed_economic_demo(account: Account) -> None:
    """Connect the e-conomic sandbox with the documented demo/demo tokens, fill every template, activate.

    Idempotent: an account that already has an e-conomic sandbox connection is left alone.
    """
    existing = select(Connection).where(
        Connection.account_id == account.id, Connection.system == "e-conomic", Connection.sandbox
    )
    if db.session.scalar(existing) is not None:
        return
    connection = operations.connect(account, "e-conomic", True, {"token": "demo"}, callback_url="")
    setup = connection.setups[0]
    operations.select_setup(setup, True)
    for template in setup.templates:
        spec = operations.spec_of(setup, template)
        available = operations.template_choices(setup, spec)
        submitted = {}
        for field in spec.fields:
            wanted = DEMO_ECONOMIC_CHOICES.get((template.kind, field.name))
            if wanted is None and not field.required:
                continue  # an optional value the demo does not choose stays empty
            match = (
                next((c for c in available[field.name] if c.label == wanted), None)
                or available[field.name][0]
            )
            submitted[field.name] = match.value
        errors = operations.save_template(template, submitted, available)
        if errors:
            raise RuntimeError(f"demo template {template.kind}: {errors}")
    problems = operations.activate(setup)
    if problems:
        raise RuntimeError(f"the demo setup could not be activated: {problems}")


def _unseeded_economic_setup(account: Account, system: str) -> AccountingSetup | None:
    """The demo e-conomic setup a sandbox source of `system` is linked to; None when the account has no such
    setup, or has a `system` sandbox connection already (seeding is idempotent)."""
    seeded = select(Connection.id).where(
        Connection.account_id == account.id, Connection.system == system, Connection.sandbox
    )
    if db.session.scalar(seeded) is not None:
        return None
    return db.session.scalar(
        select(AccountingSetup)
        .join(Connection)
        .where(AccountingSetup.account_id == account.id, Connection.system == "e-conomic", Connection.sandbox)
    )


def seed_woocommerce_demo(account: Account) -> None:
    """A WooCommerce sandbox shop sending to the demo e-conomic setup: orders in `processing` or
    `completed` become draft invoices. Its webhooks point at this app in-process, so an order created in
    the sandbox shop (see the README) shows up as a transfer and a draft in the e-conomic sandbox.

    Idempotent: an account that already has a WooCommerce sandbox shop is left alone.
    """
    from flask import current_app

    from portal.connectors import system_module
    from portal.pipeline.source_links import create_source_link, set_active
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
    from portal.setups.connections import connector_for, system_settings

    setup = _unseeded_economic_setup(account, "woocommerce")
    if setup is None:
        return
    settings = system_settings("woocommerce", sandbox=True)
    keys = {
        "consumer_key": settings["demo_consumer_key"],
        "consumer_secret": settings["demo_consumer_secret"],
    }
    credentials = system_module("woocommerce").finish_connect(
        settings, keys, "", SandboxTransport(current_app._get_current_object())
    )
    shop = Connection(
        account_id=account.id,
        system="woocommerce",
        role="webshop",
        label="WooCommerce-sandkassen",
        credentials=credentials,
        sandbox=True,
    )
    db.session.add(shop)
    db.session.flush()
    states = {"processing": "draft", "completed": "draft"}
    source_link = create_source_link(shop, setup, "WooCommerce-sandkassen", {"states": states})
    set_active(source_link, True)
    delivery_url = f"{IN_PROCESS_ORIGIN}/webhooks/woocommerce/{source_link.webhook_token}"
    connector_for(shop).register_webhooks(delivery_url, source_link.webhook_secret["secret"])


def _sandbox_subscription(
    account: Account, setup, system: str, label: str, credentials: dict, settings: dict
):
    """A subscription system's sandbox connection, linked to the demo setup (booking automatically) and
    switched on: (connection, source link, the webhook address to register)."""
    from portal.pipeline.source_links import create_source_link, set_active
    from portal.sandbox.transport import IN_PROCESS_ORIGIN

    source = Connection(
        account_id=account.id,
        system=system,
        role="subscription",
        label=label,
        credentials=credentials,
        sandbox=True,
    )
    db.session.add(source)
    db.session.flush()
    operations.set_auto_book(setup, True)
    source_link = create_source_link(source, setup, label, settings)
    set_active(source_link, True)
    return source, source_link, f"{IN_PROCESS_ORIGIN}/webhooks/{system}/{source_link.webhook_token}"


def seed_stripe_demo(account: Account) -> None:
    """The Stripe sandbox account (its demo catalogue: a coffee subscription) sending to the demo e-conomic
    source_link: a paid invoice becomes a booked invoice registered as paid, so advancing a test clock
    (see the README) shows a renewal arrive in e-conomic. The setup books automatically from here on (the
    WooCommerce demo shop still makes drafts: its states say so).

    Idempotent: an account that already has a Stripe sandbox connection is left alone.
    """
    from portal.connectors.stripe import sandbox_settings
    from portal.pipeline.source_links import set_webhook_secret
    from portal.sandbox import stripe as stripe_sandbox
    from portal.sandbox.transport import IN_PROCESS_ORIGIN
    from portal.setups.connections import connector_for

    setup = _unseeded_economic_setup(account, "stripe")
    if setup is None:
        return
    stripe_sandbox.seed()
    source, source_link, delivery_url = _sandbox_subscription(
        account,
        setup,
        "stripe",
        "Stripe-sandkassen",
        {"api_key": sandbox_settings(IN_PROCESS_ORIGIN)["demo_key"]},
        {"states": {"paid": "booked"}, "paid_methods": ["stripe"]},
    )
    connector = connector_for(source)
    try:
        endpoint = connector.register_webhooks(delivery_url)[0]
    finally:
        connector.close()
    set_webhook_secret(source_link, endpoint.raw["secret"])


def seed_frisbii_demo(account: Account) -> None:
    """The Frisbii sandbox account (its demo plan, customer and subscription sub-demo-0001) sending to the
    demo e-conomic setup: a settled invoice becomes a booked invoice registered as paid (settled by
    card), so renewing the demo subscription (see the README) shows a renewal arrive in e-conomic.

    Idempotent: an account that already has a Frisbii sandbox connection is left alone.
    """
    from portal.connectors.frisbii import sandbox_settings
    from portal.pipeline.source_links import set_webhook_secret
    from portal.sandbox.transport import IN_PROCESS_ORIGIN
    from portal.setups.connections import connector_for
    from portal.sources import get_source

    setup = _unseeded_economic_setup(account, "frisbii")
    if setup is None:
        return
    source, source_link, delivery_url = _sandbox_subscription(
        account,
        setup,
        "frisbii",
        "Frisbii-sandkassen",
        {"private_key": sandbox_settings(IN_PROCESS_ORIGIN)["demo_private_key"]},
        {"states": {"settled": "booked"}, "paid_methods": list(get_source("frisbii").paid_methods)},
    )
    connector = connector_for(source)
    try:
        connector.register_webhooks(delivery_url, source_link.webhook_secret["secret"])
        secret = connector.account_webhook_secret()  # Frisbii signs with its account's one secret
    finally:
        connector.close()
    set_webhook_secret(source_link, secret)
