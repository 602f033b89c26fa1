"""`flask seed-demo` loads a realistic Danish price catalogue, idempotently, and leaves staff edits alone."""

from decimal import Decimal

from sqlalchemy import func, select

from portal.cli import seed_demo
from portal.models import (
    PriceAddOn,
    PriceFeature,
    PriceFeatureNote,
    PriceRule,
    PriceSettings,
    PriceSystem,
    PriceTier,
)

MODELS = (PriceSettings, PriceSystem, PriceTier, PriceAddOn, PriceFeature, PriceFeatureNote, PriceRule)


def counts(db) -> dict:
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model)) for model in MODELS}


def test_seed_demo_loads_the_catalogue_once_and_keeps_edits(app, db):
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    first = counts(db)
    assert first == {
        "PriceSettings": 1,
        "PriceSystem": 15,
        "PriceTier": 4,
        "PriceAddOn": 4,
        "PriceFeature": 15,
        "PriceFeatureNote": 6,
        "PriceRule": 4,
    }
    kinds = set(db.session.scalars(select(PriceSystem.kind)))
    assert kinds == {"accounting", "webshop", "subscription", "acquirer", "pos", "warehouse", "file"}
    extra = db.session.scalar(select(PriceAddOn).where(PriceAddOn.slug == "extra-economic"))
    assert (extra.monthly_price, extra.max_quantity, extra.requires_system.slug) == (
        Decimal("100"),
        20,
        "e-conomic",
    )

    economic = db.session.scalar(select(PriceSystem).where(PriceSystem.slug == "e-conomic"))
    economic.monthly_price = Decimal("129")
    db.session.commit()
    seed_demo()
    assert counts(db) == first
    db.session.expire_all()
    assert economic.monthly_price == Decimal("129.00")
