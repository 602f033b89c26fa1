"""Creating order integrations and changing their settings; every change is audited (the webhook secret
only as "changed", never its value)."""

import secrets
from datetime import date
from decimal import Decimal, InvalidOperation

from portal import audit
from portal.engine.customers import MATCH_FIELDS
from portal.engine.settings import FixedProducts
from portal.extensions import db
from portal.models import AccountingSetup, Connection, OrderIntegration
from portal.models.transfers import DOCUMENTS


class SettingsError(ValueError):
    """Settings that cannot be saved; `errors` maps each setting to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean_settings(values: dict, setup: AccountingSetup) -> dict:
    """Validate the settings an integration stores (see portal.pipeline.settings); raise SettingsError."""
    errors: dict[str, str] = {}
    cleaned = dict(values)
    states = values.get("states")
    if states is not None:
        if not isinstance(states, dict) or any(doc not in DOCUMENTS for doc in states.values()):
            errors["states"] = f"each state transfers as one of: {', '.join(DOCUMENTS)}"
        elif "booked" in states.values() and not setup.auto_book:
            errors["states"] = "booked invoices need “book automatically” on in the accounting integration"
        elif "order" in states.values():
            from portal.connectors import get_system

            system = get_system(setup.system)
            if not system.capabilities.orders:
                errors["states"] = (
                    f"{system.name} has no orders (which reserve stock): "
                    "choose a draft or booked invoice for those states"
                )
    if values.get("activation_date"):
        try:
            date.fromisoformat(str(values["activation_date"]))
        except ValueError:
            errors["activation_date"] = "a date as YYYY-MM-DD"
    if values.get("rounding_tolerance") is not None:
        try:
            tolerance = Decimal(str(values["rounding_tolerance"]))
        except InvalidOperation:
            tolerance = Decimal(-1)
        if not tolerance.is_finite() or tolerance < 0 or tolerance > 100:
            errors["rounding_tolerance"] = "an amount between 0 and 100"
        else:
            cleaned["rounding_tolerance"] = str(tolerance)
    for key in ("match_b2c", "match_b2b", "match_ean"):
        if values.get(key) and values[key] not in MATCH_FIELDS:
            errors[key] = f"one of: {', '.join(MATCH_FIELDS)}"
    unknown = set(values.get("fixed_products") or {}) - set(FixedProducts.__dataclass_fields__)
    if unknown:
        errors["fixed_products"] = f"unknown: {', '.join(sorted(unknown))}"
    if values.get("oss"):
        from portal.connectors import get_system

        if not get_system(setup.system).capabilities.oss:
            errors["oss"] = f"{get_system(setup.system).name} cannot book OSS sales"
    if errors:
        raise SettingsError(errors)
    return cleaned


def create_integration(
    connection: Connection, setup: AccountingSetup, name: str, settings: dict | None = None
) -> OrderIntegration:
    """Link a webshop connection to an accounting setup of the same account (inactive until activated)."""
    if connection.account_id != setup.account_id:
        raise ValueError("the shop and the accounting integration belong to different accounts")
    if connection.role != "webshop":
        raise ValueError("only a webshop connection can send orders")
    integration = OrderIntegration(
        account_id=connection.account_id,
        connection=connection,
        setup=setup,
        name=name,
        settings=clean_settings(settings or {}, setup),
        webhook_secret={"secret": secrets.token_urlsafe(32)},
    )
    db.session.add(integration)
    audit.record(
        "order_integration.created",
        integration,
        account=connection.account,
        changes={
            "setup": {"before": None, "after": setup.name},
            "settings": {"before": None, "after": integration.settings},
            "webhook_secret": {"before": None, "after": "***"},
        },
    )
    db.session.commit()
    return integration


def update_settings(integration: OrderIntegration, settings: dict) -> None:
    cleaned = clean_settings(settings, integration.setup)
    changes = audit.apply_changes(integration, {"settings": cleaned})
    if changes:
        audit.record("order_integration.settings", integration, account=integration.account, changes=changes)
    db.session.commit()


def set_active(integration: OrderIntegration, active: bool) -> None:
    changes = audit.apply_changes(integration, {"active": active})
    if changes:
        audit.record("order_integration.active", integration, account=integration.account, changes=changes)
    db.session.commit()


def rotate_webhook_secret(integration: OrderIntegration) -> str:
    """A new shared secret (the shop's webhooks must be registered again with it)."""
    secret = secrets.token_urlsafe(32)
    changes = audit.apply_changes(
        integration, {"webhook_secret": {"secret": secret}}, secret_fields=frozenset({"webhook_secret"})
    )
    audit.record(
        "order_integration.webhook_secret", integration, account=integration.account, changes=changes
    )
    db.session.commit()
    return secret
