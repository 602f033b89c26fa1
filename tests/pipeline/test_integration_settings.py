"""Sales sources are created and changed through audited operations; the webhook secret is never in
the log."""

import json

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Connection
from portal.pipeline import source_links
from tests.pipeline.conftest import make_setup


@pytest.fixture
def shop(db, account):
    connection = Connection(
        account_id=account.id, system="woocommerce", role="webshop", label="Butik", credentials={"k": "v"}
    )
    db.session.add(connection)
    db.session.commit()
    return connection


def test_creating_and_changing_an_source_link_is_audited(db, account, shop):
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = source_links.create_source_link(shop, setup, "Butik", {"states": {"processing": "booked"}})
    secret = source_link.webhook_secret["secret"]
    assert len(secret) >= 32 and len(source_link.webhook_token) >= 24 and not source_link.active

    source_links.update_settings(
        source_link, {"states": {"completed": "draft"}, "rounding_tolerance": "0.25"}
    )
    source_links.set_active(source_link, True)
    new_secret = source_links.rotate_webhook_secret(source_link)
    assert new_secret != secret

    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.startswith("source_link")).order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == [
        "source_link.created",
        "source_link.settings",
        "source_link.active",
        "source_link.webhook_secret",
    ]
    assert events[1].changes["settings"]["after"] == {
        "states": {"completed": "draft"},
        "rounding_tolerance": "0.25",
    }
    logged = json.dumps([e.changes for e in events])
    assert secret not in logged and new_secret not in logged


def test_invalid_settings_are_refused(db, account, shop):
    setup = make_setup(account, "dinero", auto_book=False)
    source_link = source_links.create_source_link(shop, setup, "Butik")
    with pytest.raises(source_links.SettingsError) as refused:
        source_links.update_settings(
            source_link,
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
    db.session.refresh(source_link)
    assert source_link.settings == {}
