"""Order integrations are created and changed through audited operations; the webhook secret is never in
the log."""

import json

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Connection
from portal.pipeline import integrations
from tests.pipeline.conftest import make_setup


@pytest.fixture
def shop(db, account):
    connection = Connection(
        account_id=account.id, system="woocommerce", role="webshop", label="Butik", credentials={"k": "v"}
    )
    db.session.add(connection)
    db.session.commit()
    return connection


def test_creating_and_changing_an_integration_is_audited(db, account, shop):
    setup = make_setup(account, "e-conomic", auto_book=True)
    integration = integrations.create_integration(shop, setup, "Butik", {"states": {"processing": "booked"}})
    secret = integration.webhook_secret["secret"]
    assert len(secret) >= 32 and len(integration.webhook_token) >= 24 and not integration.active

    integrations.update_settings(
        integration, {"states": {"completed": "draft"}, "rounding_tolerance": "0.25"}
    )
    integrations.set_active(integration, True)
    new_secret = integrations.rotate_webhook_secret(integration)
    assert new_secret != secret

    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.startswith("order_integration")).order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == [
        "order_integration.created",
        "order_integration.settings",
        "order_integration.active",
        "order_integration.webhook_secret",
    ]
    assert events[1].changes["settings"]["after"] == {
        "states": {"completed": "draft"},
        "rounding_tolerance": "0.25",
    }
    logged = json.dumps([e.changes for e in events])
    assert secret not in logged and new_secret not in logged


def test_invalid_settings_are_refused(db, account, shop):
    setup = make_setup(account, "dinero", auto_book=False)
    integration = integrations.create_integration(shop, setup, "Butik")
    with pytest.raises(integrations.SettingsError) as refused:
        integrations.update_settings(
            integration,
            {
                "states": {"processing": "booked"},
                "activation_date": "i går",
                "rounding_tolerance": "-1",
                "match_b2c": "phone",
                "oss": True,
                "customers": {"create": "yes"},
                "products": {"delete": True},
                "closed_period": "ignore",
            },
        )
    assert set(refused.value.errors) == {
        "states",
        "activation_date",
        "rounding_tolerance",
        "match_b2c",
        "oss",
        "customers",
        "products",
        "closed_period",
    }
    assert "book automatically" in refused.value.errors["states"]
    assert "Dinero cannot book OSS" in refused.value.errors["oss"]
    db.session.rollback()
    db.session.refresh(integration)
    assert integration.settings == {}
