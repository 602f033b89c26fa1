"""The demo account's finished e-conomic setup, so a new user sees a complete integration at once."""

from sqlalchemy import select

from portal.extensions import db
from portal.integrations import operations
from portal.models import Account, Connection

# Template field -> the choice the demo picks (by its label in the e-conomic sandbox's demo agreement).
DEMO_ECONOMIC_CHOICES = {
    ("invoice", "layout"): "Standard faktura",
    ("invoice", "payment_terms"): "Netto 8 dage",
    ("goods", "product_group"): "Varer",
    ("freight", "product_group"): "Fragt",
    ("payments", "journal"): "Indbetalinger fra webshop",
    ("payments", "account"): "5830 Betalingsformidler (clearing)",
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
        available = {field.name: operations.choices(setup, field.choices) for field in spec.fields}
        submitted = {}
        for field in spec.fields:
            wanted = DEMO_ECONOMIC_CHOICES.get((template.kind, field.name))
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
