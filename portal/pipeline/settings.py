"""An order integration's stored settings (JSON) → the engine's IntegrationSettings, the per-state
document decision, and the accounting setup's templates → the engine's setup dict.

Stored settings (every key optional):

    {
      "shop_id": "12",                                   # goes into the reference: WC-12-<order number>
      "states": {"processing": "order", "completed": "booked", "on-hold": "draft"},  # none|order|draft|booked
      "activation_date": "2026-01-01",                   # older orders are skipped unless imported on purpose
      "match_b2c": "email", "match_b2b": "vat_number", "match_ean": "ean",
      "collective_customer": null,                       # a customer number for all B2C sales
      "vat_meta_keys": ["_billing_vat_number", ...],
      "fixed_products": {"shipping": "FRAGT", ...},
      "payment_terms_by_method": {"bacs": "3"},
      "paid_methods": ["quickpay", "stripe"],            # register these as paid once booked
      "rounding_tolerance": "0.10",
      "oss": false,
      "poll_minutes": 5,                                 # the reconciliation poll; 0 = never
      "invoice_mail": {                                  # the booked invoice, via the shop's own SMTP
        "enabled": false, "host": "smtp.example.dk", "port": 587, "security": "starttls",  # | ssl | none
        "username": "shop@example.dk", "sender": "Butikken <shop@example.dk>",
        "subject": "Faktura {invoice_number}", "body": "Tak for din ordre {order_number} ..."
      },                                                 # the SMTP password: OrderIntegration.mail_secret
      "notify": {                                        # recipients (empty: the account's owners)
        "recipients": ["bogholder@example.dk"], "error_digest": true, "daily_report": false
      }
    }
"""

import json
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from flask import current_app

from portal.engine.settings import FixedProducts, IntegrationSettings
from portal.engine.vat import TEST_RATES, RateTable, load_ibericode
from portal.models import AccountingSetup, OrderIntegration
from portal.models.transfers import DOCUMENTS

DEFAULT_STATES = {"processing": "booked", "completed": "booked"}
_TUPLES = ("vat_meta_keys", "ean_meta_keys", "gift_card_fee_names")
_PLAIN = ("shop_id", "home_country", "match_b2c", "match_b2b", "match_ean", "collective_customer")


def engine_settings(integration: OrderIntegration) -> IntegrationSettings:
    stored = integration.settings or {}
    values: dict = {key: stored[key] for key in _PLAIN if stored.get(key) is not None}
    values.setdefault("shop_id", str(integration.id))
    for key in _TUPLES:
        if stored.get(key):
            values[key] = tuple(str(item) for item in stored[key])
    if stored.get("rounding_tolerance") is not None:
        values["rounding_tolerance"] = Decimal(str(stored["rounding_tolerance"]))
    if "oss" in stored:
        values["oss"] = bool(stored["oss"])
    if stored.get("fixed_products"):
        values["fixed_products"] = FixedProducts(**{k: str(v) for k, v in stored["fixed_products"].items()})
    if stored.get("payment_terms_by_method"):
        values["payment_terms_by_method"] = {
            str(k): str(v) for k, v in stored["payment_terms_by_method"].items()
        }
    return IntegrationSettings(**values)


def document_for_state(integration: OrderIntegration, state: str) -> str:
    """none | order | draft | booked for an order in `state`; booked only while the setup books
    automatically. "order" is the accounting system's stock-reserving order (e-conomic), invoiced when a
    later state asks for draft or booked."""
    states = (integration.settings or {}).get("states") or DEFAULT_STATES
    document = states.get(state, "none")
    if document not in DOCUMENTS:
        document = "none"
    if document == "booked" and not integration.setup.auto_book:
        return "draft"
    return document


def activation_date(integration: OrderIntegration) -> date | None:
    text = (integration.settings or {}).get("activation_date")
    return date.fromisoformat(text) if text else None


def paid_methods(integration: OrderIntegration) -> set[str]:
    return set((integration.settings or {}).get("paid_methods") or ())


def setup_values(setup: AccountingSetup) -> dict:
    """Template rows → {"invoice": {...}, "goods": {...} | {"domestic": {...}, ...}, "payments": {...}}."""
    values: dict = {}
    for template in setup.templates:
        if template.zone:
            values.setdefault(template.kind, {})[template.zone] = dict(template.values)
        else:
            values[template.kind] = dict(template.values)
    return values


@cache
def _load_rates(path: str) -> RateTable:
    return load_ibericode(json.loads(Path(path).read_text()))


def vat_rates() -> RateTable:
    """The dated EU rate table: VAT_RATES_FILE (ibericode's vat-rates.json) when configured, else the
    engine's small built-in table."""
    path = current_app.config.get("VAT_RATES_FILE")
    return _load_rates(path) if path else TEST_RATES
