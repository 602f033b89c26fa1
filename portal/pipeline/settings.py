"""An sales source's stored settings (JSON) → the engine's SourceLinkSettings, the per-state
document decision, and the accounting setup's templates → the engine's setup dict.

Stored settings (every key optional):

    {
      "shop_id": "12",                                   # goes into the reference: WC-12-<order number>
      "states": {"processing": "order", "completed": "booked", "on-hold": "draft"},  # none|order|draft|booked
      "activation_date": "2026-01-01",                   # older orders are skipped unless imported on purpose
      "sale_kinds": ["orders", "renewals"],              # which sales transfer: first/ordinary orders,
                                                         # subscription renewals (Source.subscription_of)
      "match_b2c": "email", "match_b2b": "vat_number", "match_ean": "ean",
      "collective_customer": null,                       # a customer number for all B2C sales
      "customers": {"create": true, "update": false},    # may Bogbro create / update customers …
      "products": {"create": true, "update": false},     # … and products (update: name and price)
      "vat_meta_keys": ["_billing_vat_number", ...],
      "fixed_products": {"shipping": "FRAGT", ...},
      "payment_terms_by_method": {"bacs": "3"},
      "paid_methods": ["quickpay", "stripe"],            # register these as paid once booked
      "zero_amount": "skip",                             # invoices for 0 (Source.invoices): skip|transfer
      "refund_payouts_guessed": false,                   # a refund's payout on its credit note, where the
                                                         # system's way is inferred (pipeline.refund_payments)
      "rounding_tolerance": "0.10",
      "oss": false,                                      # EU private customers at their country's VAT:
                                                         # only where the accounting system can (e-conomic),
                                                         # and once its setup's OSS template names a group
      "poll_minutes": 5,                                 # the reconciliation poll; 0 = never
      "closed_period": "hold",                           # a date in a closed accounting period: "hold"
                                                         # (needs attention, with what to do) or
                                                         # "first_open_day" (dated there, the order date
                                                         # in the text): portal.pipeline.periods
      "invoice_mail": {                                  # mail the booked invoice from the shop's own SMTP
        "enabled": false, "host": "smtp.example.dk", "port": 587, "security": "starttls",  # | ssl | none
        "username": "shop@example.dk", "sender": "Butikken <shop@example.dk>",
        "subject": "Faktura {invoice_number}", "body": "Tak for din ordre {order_number} ...",
        "credit_note_subject": "...", "credit_note_body": "..."   # optional; else Danish defaults
      },                                                 # the SMTP password: SourceLink.mail_secret
      "notify": {                                        # recipients (empty: the account's owners)
        "recipients": ["bogholder@example.dk"], "error_digest": true, "daily_report": false
      }
    }

Invoice mail placeholders (subject and body): {invoice_number}, {order_number}, {customer_name},
{shop_name}. An empty subject or body means Bogbro's Danish default text (portal.pipeline.invoice_mail).
"""

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from flask import current_app

from portal.connectors.base import N_, danish_country_name
from portal.engine.settings import FixedProducts, SourceLinkSettings
from portal.engine.vat import TEST_RATES, RateTable, load_ibericode
from portal.models import AccountingSetup, SourceLink
from portal.models.transfers import DOCUMENTS

DEFAULT_STATES = {"processing": "booked", "completed": "booked"}
# How pages and messages name the sale states sources report (the keys of "states": Source.states, e.g.
# WooCommerce's order `status`, Shopify's `financial_status`) — msgids; the settings' labels are the same.
STATE_NAMES = {
    "pending": N_("Pending payment"),
    "processing": N_("Processing"),
    "on-hold": N_("On hold"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "refunded": N_("Refunded"),
    "failed": N_("Failed"),
    "authorized": N_("Authorized"),
    "partially_paid": N_("Partially paid"),
    "paid": N_("Paid"),
    "partially_refunded": N_("Partially refunded"),
    "voided": N_("Voided"),
    # Stripe invoices (portal.sources.stripe)
    "open": N_("Open (paid by bank transfer)"),
    "payment_due": N_("Awaiting automatic payment"),
    "payment_failed": N_("Payment failed"),
    "draft": N_("Draft"),
    "void": N_("Voided"),
    "uncollectible": N_("Uncollectible"),
    # Frisbii's invoice states (besides authorized, pending, failed, cancelled)
    "settled": N_("Settled"),
    "dunning": N_("Dunning"),
    "created": N_("Created"),
}
MAIL_SECURITY = ("starttls", "ssl", "none")
# the invoice_mail keys besides "enabled" (the SMTP password is not one: SourceLink.mail_secret)
MAIL_FIELDS = (
    "host",
    "port",
    "security",
    "username",
    "sender",
    "subject",
    "body",
    "credit_note_subject",  # optional: empty is the default Danish credit-note text
    "credit_note_body",
)
DEFAULT_POLL_MINUTES = 5
MAIL_PLACEHOLDERS = ("invoice_number", "order_number", "customer_name", "shop_name")
_TUPLES = ("vat_meta_keys", "ean_meta_keys", "gift_card_fee_names")
_PLAIN = ("shop_id", "home_country", "match_b2c", "match_b2b", "match_ean", "collective_customer")


def shop_id(source_link_id: int, stored: dict | None) -> str:
    """The shop id in a source link's references (WC-<shop id>-<order number>): the stored one, else the
    source_link's own id."""
    return str((stored or {}).get("shop_id") or source_link_id)


def engine_settings(source_link: SourceLink) -> SourceLinkSettings:
    stored = source_link.settings or {}
    values: dict = {key: stored[key] for key in _PLAIN if stored.get(key) is not None}
    values["shop_id"] = shop_id(source_link.id, stored)
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
    return SourceLinkSettings(**values)


def document_for_state(source_link: SourceLink, state: str) -> str:
    """none | order | draft | booked for an order in `state`; booked only while the setup books
    automatically. "order" is the accounting system's stock-reserving order (e-conomic), invoiced when a
    later state asks for draft or booked."""
    states = (source_link.settings or {}).get("states") or DEFAULT_STATES
    document = states.get(state, "none")
    if document not in DOCUMENTS:
        document = "none"
    if document == "booked" and not source_link.setup.auto_book:
        return "draft"
    return document


SALE_KINDS = ("orders", "renewals")


def sale_kinds(source_link: SourceLink) -> set[str]:
    """Which kinds of sale transfer: "orders" (first and ordinary sales), "renewals" (of subscriptions)."""
    return set((source_link.settings or {}).get("sale_kinds") or SALE_KINDS)


def activation_date(source_link: SourceLink) -> date | None:
    text = (source_link.settings or {}).get("activation_date")
    return date.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Rules:
    """Whether the pipeline may create what it does not find, and update what it finds (customers: name,
    address, EAN; products: name and price) — the first time it meets them after the cache (a day)."""

    create: bool = True
    update: bool = False


def rules(source_link: SourceLink, kind: str) -> Rules:
    """kind: "customers" | "products"."""
    stored = (source_link.settings or {}).get(kind) or {}
    return Rules(create=bool(stored.get("create", True)), update=bool(stored.get("update", False)))


def paid_methods(source_link: SourceLink) -> set[str]:
    return set((source_link.settings or {}).get("paid_methods") or ())


# The line templates an OSS target goes into (other taxed kinds fall back to goods: KIND_TEMPLATES).
OSS_KINDS = ("goods", "freight")
OSS_PRODUCT_PREFIX = "OSS-"


def oss_product(country: str) -> str:
    """The product Bogbro books OSS sales to `country` on (e-conomic: VAT follows the product's group)."""
    return f"{OSS_PRODUCT_PREFIX}{country}"


def oss_product_name(country: str) -> str:
    """Its name when Bogbro creates it, in Danish as the accounting system shows it: "OSS-salg Sverige"."""
    return f"OSS-salg {danish_country_name(country)}"


def oss_countries(setup: AccountingSetup) -> list[str]:
    """The countries the setup's OSS template names a product group for (sorted)."""
    template = setup.template("oss")
    return sorted(code for code, value in (template.values if template else {}).items() if value)


def setup_values(setup: AccountingSetup) -> dict:
    """Template rows → {"invoice": {...}, "goods": {...} | {"domestic": {...}, ...}, "payments": {...}}.

    The OSS template ({"SE": "12", ...}: a product group per country) becomes the engine's per-kind OSS
    targets: goods and freight (when their template is filled) get `"oss": {"SE": {"product_group": "12",
    "product": "OSS-SE", "product_name": "OSS-salg Sverige"}}` — both book on the country's product; fees,
    discounts and refunds fall back to goods. Standard rates only: a line at a reduced rate of the
    destination has no target (the engine says so)."""
    values: dict = {}
    oss: dict = {}
    for template in setup.templates:
        if template.kind == "oss":
            oss = {
                code: {
                    "product_group": group,
                    "product": oss_product(code),
                    "product_name": oss_product_name(code),
                }
                for code, group in sorted(template.values.items())
                if group
            }
        elif template.zone:
            values.setdefault(template.kind, {})[template.zone] = dict(template.values)
        else:
            values[template.kind] = dict(template.values)
    if oss:
        for kind in OSS_KINDS:
            if values.get(kind):  # an empty template stays empty (the engine names it), never OSS-only
                values[kind]["oss"] = {code: dict(target) for code, target in oss.items()}
    return values


def template_names(setup: AccountingSetup) -> dict[str, dict[str, str]]:
    """{field: {value: the name chosen in the wizard}}: `{"layout": {"19": "Standard faktura"}}`, so pages
    name a layout, payment terms or product group instead of showing its number. OSS fields are named by
    country code and hold product groups: they are listed under "product_group"."""
    names: dict[str, dict[str, str]] = {}
    for template in setup.templates:
        for field, value in (template.values or {}).items():
            label = (template.labels or {}).get(field)
            if value and label and label != value:
                key = "product_group" if template.kind == "oss" else field
                names.setdefault(key, {})[str(value)] = label
    return names


@cache
def _load_rates(path: str) -> RateTable:
    return load_ibericode(json.loads(Path(path).read_text()))


def vat_rates() -> RateTable:
    """The dated EU rate table: VAT_RATES_FILE (ibericode's vat-rates.json) when configured, else the
    engine's small built-in table."""
    path = current_app.config.get("VAT_RATES_FILE")
    return _load_rates(path) if path else TEST_RATES


# --- invoice mail and notifications --------------------------------------------------------------------

SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class InvoiceMail:
    enabled: bool
    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str
    sender: str
    subject: str  # "" = the default text
    body: str
    credit_note_subject: str
    credit_note_body: str


def invoice_mail(source_link: SourceLink) -> InvoiceMail:
    """The `invoice_mail` settings, with defaults: off; STARTTLS; the port that goes with the security."""
    stored = (source_link.settings or {}).get("invoice_mail") or {}
    security = str(stored.get("security") or "starttls").lower()
    try:
        port = int(stored.get("port") or 0)
    except (TypeError, ValueError):
        port = 0
    return InvoiceMail(
        enabled=bool(stored.get("enabled")),
        host=str(stored.get("host") or "").strip(),
        port=port or SMTP_DEFAULT_PORTS.get(security, 587),
        security=security,
        username=str(stored.get("username") or "").strip(),
        sender=str(stored.get("sender") or "").strip(),
        subject=str(stored.get("subject") or ""),
        body=str(stored.get("body") or ""),
        credit_note_subject=str(stored.get("credit_note_subject") or ""),
        credit_note_body=str(stored.get("credit_note_body") or ""),
    )


def smtp_password(source_link: SourceLink) -> str:
    return str((source_link.mail_secret or {}).get("smtp_password") or "")


def _notify(source_link: SourceLink) -> dict:
    return (source_link.settings or {}).get("notify") or {}


def error_digest_enabled(source_link: SourceLink) -> bool:
    """The error digest is on unless switched off."""
    return bool(_notify(source_link).get("error_digest", True))


def daily_report_enabled(source_link: SourceLink) -> bool:
    """The daily status report is off unless switched on."""
    return bool(_notify(source_link).get("daily_report", False))


def notify_recipients(source_link: SourceLink) -> list[str]:
    """Who gets the digest and the report: `notify.recipients`, else the account's active owners."""
    configured = _notify(source_link).get("recipients") or []  # clean_settings stores a list
    recipients = [str(address).strip() for address in configured if str(address).strip()]
    if recipients:
        return list(dict.fromkeys(recipients))
    return [user.email for user in source_link.account.users if user.role == "owner" and user.active]


def notify_language(source_link: SourceLink) -> str:
    """The language of notifications: the account has none of its own, so its first owner's (Danish by
    default)."""
    owners = sorted(
        (user for user in source_link.account.users if user.role == "owner" and user.active),
        key=lambda user: user.id,
    )
    return owners[0].language if owners and owners[0].language else "da"
