"""Connecting webshops, linking them to accounting setups, their webhooks and settings.

Every change is audited (portal.pipeline.source_links audits the source link's own changes). Nothing here
holds a database write transaction open while a shop answers: the sandbox shops deliver their webhooks
back into this same database (on SQLite a second writer would wait for us, and we for it).
"""

import hashlib
import json
from dataclasses import dataclass

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from portal import audit
from portal.connectors import StaticCredentials, system_module
from portal.connectors.base import OSS_COUNTRIES, Choice
from portal.connectors.errors import ConnectorError
from portal.connectors.evidence import unverified
from portal.connectors.sources import RemoteWebhook, SourceConnector
from portal.engine.documents import order_reference
from portal.extensions import db
from portal.models import Account, AccountingSetup, Connection, SourceEvent, SourceLink
from portal.pipeline import source_links
from portal.pipeline.messages import translated
from portal.pipeline.settings import oss_countries
from portal.sandbox.transport import IN_PROCESS_ORIGIN
from portal.setups import operations as setup_operations
from portal.setups.connections import SandboxTransport, connector_for, system_settings
from portal.sources import get_source

SHOP_SYSTEMS = ("woocommerce", "shopify", "stripe", "frisbii")
# A connection's role per sending system (DESIGN §3): webshops, and subscription systems linked the same way.
ROLES = {"stripe": "subscription", "frisbii": "subscription"}
SOURCE_ROLES = ("webshop", "subscription")
# Systems whose account is known by its API key only: the field holding it.
KEY_FIELDS = {"stripe": "api_key", "frisbii": "private_key"}


class ShopError(Exception):
    """A refusal with a message meant for the user; `field` names the form field it is about, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# --- connecting ---------------------------------------------------------------------------------------------


def _transport(sandbox: bool):
    return SandboxTransport(current_app._get_current_object()) if sandbox else None


def connect_woocommerce(account: Account, sandbox: bool, url: str, key: str, secret: str) -> Connection:
    """Check the key against the shop (over HTTPS; the sandbox in-process), then store it encrypted.
    Nothing is stored when the shop refuses."""
    settings = system_settings("woocommerce", sandbox)
    module = system_module("woocommerce")
    params = {"url": "" if sandbox else url, "consumer_key": key, "consumer_secret": secret}
    try:
        credentials = module.finish_connect(settings, params, "", _transport(sandbox))
        shop = _verify("woocommerce", sandbox, credentials)
    except ConnectorError as exc:
        db.session.rollback()
        raise ShopError(
            _("WooCommerce refused the connection: %(message)s", message=translated(exc.message)),
            field=(exc.details or {}).get("field") if isinstance(exc.details, dict) else None,
        ) from exc
    return _store_shop(account, "woocommerce", sandbox, credentials, shop["name"] or credentials["url"])


def connect_stripe(account: Account, sandbox: bool, api_key: str) -> Connection:
    """Check the key against Stripe (the sandbox in-process), then store it encrypted. Nothing is stored
    when Stripe refuses."""
    module = system_module("stripe")
    if not api_key.startswith(("rk_", "sk_")):
        raise ShopError(translated(module.MESSAGES["key"]), field="api_key")
    credentials = {"api_key": api_key}
    try:
        found = _verify("stripe", sandbox, credentials)
    except ConnectorError as exc:
        db.session.rollback()
        raise ShopError(
            _("Stripe refused the connection: %(message)s", message=translated(exc.message)), field="api_key"
        ) from exc
    return _store_shop(account, "stripe", sandbox, credentials, found.get("name") or "Stripe")


def connect_frisbii(account: Account, sandbox: bool, private_key: str) -> Connection:
    """Check the private key against Frisbii, then store it encrypted. Nothing is stored when it is
    refused."""
    settings = system_settings("frisbii", sandbox)
    try:
        credentials = system_module("frisbii").finish_connect(
            settings, {"private_key": private_key}, "", _transport(sandbox)
        )
    except ConnectorError as exc:
        db.session.rollback()
        raise ShopError(
            _("Frisbii refused the connection: %(message)s", message=translated(exc.message)),
            field="private_key",
        ) from exc
    return _store_shop(account, "frisbii", sandbox, credentials, "Frisbii")


def normalise_shopify_shop(value: str) -> str:
    try:
        return system_module("shopify").normalise_shop(value)
    except ConnectorError as exc:
        raise ShopError(translated(exc.message), field="shop") from exc


def start_shopify(sandbox: bool, shop: str, callback_url: str, state: str) -> str:
    """Shopify's install page for `shop` (the browser goes there to grant access)."""
    settings = system_settings("shopify", sandbox)
    try:
        return system_module("shopify").start_connect(settings, callback_url, state, shop=shop)
    except ConnectorError as exc:
        raise ShopError(translated(exc.message)) from exc


def connect_shopify(
    account: Account, sandbox: bool, params: dict, callback_url: str, expected_state: str
) -> Connection:
    """The install callback → an offline token (after Shopify's signature and our state are checked)."""
    settings = system_settings("shopify", sandbox)
    try:
        credentials = system_module("shopify").finish_connect(
            settings, params, callback_url, _transport(sandbox), expected_state=expected_state
        )
        shop = _verify("shopify", sandbox, credentials)
    except ConnectorError as exc:
        db.session.rollback()
        raise ShopError(
            _("Shopify refused the connection: %(message)s", message=translated(exc.message))
        ) from exc
    return _store_shop(account, "shopify", sandbox, credentials, shop.get("name") or credentials["shop"])


def _verify(system: str, sandbox: bool, credentials: dict) -> dict:
    role = ROLES.get(system, "webshop")
    probe = Connection(system=system, role=role, label="", credentials=credentials, sandbox=sandbox)
    connector = connector_for(probe, credentials=StaticCredentials(credentials))
    try:
        return connector.verify()
    finally:
        connector.close()


def _shop_key(system: str, credentials: dict) -> str:
    if system in KEY_FIELDS:  # the account is known by its key only: a digest of it (never the key itself)
        return "key:" + hashlib.sha256(credentials.get(KEY_FIELDS[system], "").encode()).hexdigest()[:16]
    return credentials.get("url", "") if system == "woocommerce" else credentials.get("shop", "")


def _store_shop(account, system, sandbox, credentials, label) -> Connection:
    """A new webshop Connection, or the account's existing one for the same shop with renewed keys."""
    key = _shop_key(system, credentials)
    existing = next(
        (
            connection
            for connection in db.session.scalars(
                select(Connection).where(
                    Connection.account_id == account.id,
                    Connection.system == system,
                    Connection.role == ROLES.get(system, "webshop"),
                    Connection.sandbox == sandbox,
                )
            )
            if connection.credentials and _shop_key(system, connection.credentials) == key
        ),
        None,
    )
    if existing is not None:
        existing.credentials = credentials
        existing.status, existing.status_message = "active", None
        audit.record("connection.renewed", existing, account=account)
        db.session.commit()
        return existing
    connection = Connection(
        account_id=account.id,
        system=system,
        role=ROLES.get(system, "webshop"),
        label=label[:200],
        credentials=credentials,
        sandbox=sandbox,
    )
    db.session.add(connection)
    audit.record(
        "connection.created",
        connection,
        account=account,
        changes={
            "system": {"before": None, "after": system},
            "sandbox": {"before": None, "after": sandbox},
            "shop": {"before": None, "after": label if system in KEY_FIELDS else key},
        },
    )
    db.session.commit()
    return connection


def account_shops(account: Account) -> list[Connection]:
    return db.session.scalars(
        select(Connection)
        .where(Connection.account_id == account.id, Connection.role.in_(SOURCE_ROLES))
        .order_by(Connection.id)
    ).all()


def shop_source_links(account: Account) -> dict[int, list[SourceLink]]:
    """Connection id -> its sales sources, for the account's shops (one query)."""
    found: dict[int, list[SourceLink]] = {}
    for source_link in db.session.scalars(
        select(SourceLink).where(SourceLink.account_id == account.id).order_by(SourceLink.id)
    ):
        found.setdefault(source_link.connection_id, []).append(source_link)
    return found


def linkable_setups(account: Account) -> list[AccountingSetup]:
    """The accounting setups a shop can send orders to: the active ones."""
    return [setup for setup in setup_operations.account_setups(account) if setup.active]


# --- linking and webhooks -----------------------------------------------------------------------------------


def delivery_url(source_link: SourceLink) -> str:
    """Where the shop delivers: this app's webhooks.receive. A sandbox shop lives inside this app and
    delivers in-process, so its URL is on the in-process origin."""
    values = {"source": source_link.source_system, "token": source_link.webhook_token}
    if source_link.connection.sandbox:
        return IN_PROCESS_ORIGIN + url_for("webhooks.receive", **values)
    return url_for("webhooks.receive", _external=True, **values)


def _shop_connector(connection: Connection) -> SourceConnector:
    if connection.status != "active" or not connection.credentials:
        raise ShopError(_("The shop is not connected. Connect it again first."))
    return connector_for(connection)


def default_settings(system: str, setup: AccountingSetup) -> dict:
    """A new source link transfers the source's paid states: booked when the setup books, else drafts; the
    source's instant payment methods are registered as paid."""
    document = "booked" if setup.auto_book else "draft"
    source = get_source(system)
    settings: dict = {"states": {state: document for state in source.paid_states}}
    if source.paid_methods:
        settings["paid_methods"] = list(source.paid_methods)
    return settings


def link(connection: Connection, setup: AccountingSetup, name: str) -> SourceLink:
    """Create the (inactive) sales source; its webhooks are registered next (register_webhooks)."""
    if not setup.active:
        raise ShopError(_("Choose an active accounting setup."), field="setup")
    return source_links.create_source_link(
        connection, setup, name, default_settings(connection.system, setup)
    )


def register_webhooks(source_link: SourceLink, rotate: bool = False) -> list[RemoteWebhook]:
    """Subscribe the shop to Bogbro's topics with the source link's secret (a new one when `rotate`).

    The secret is committed before the shop is called, so a delivery the shop sends at once already
    verifies; no transaction stays open while the shop answers.
    """
    connector = _shop_connector(source_link.connection)
    secret = (
        source_links.rotate_webhook_secret(source_link) if rotate else source_link.webhook_secret["secret"]
    )
    url = delivery_url(source_link)
    db.session.commit()
    try:
        registered = connector.register_webhooks(url, secret)
        own = connector.account_webhook_secret()
    except ConnectorError as exc:
        db.session.rollback()
        raise ShopError(
            _("The shop did not accept Bogbro's webhooks: %(message)s", message=translated(exc.message))
        ) from exc
    finally:
        connector.close()
    made = next((w.raw["secret"] for w in registered if w.raw.get("secret")), None)
    if made:  # the system made the signing secret itself (Stripe), shown this once: it is the link's now
        source_links.set_webhook_secret(source_link, made)
    elif own and own != secret:  # the system signs with its account's secret: deliveries verify with it
        source_links.set_webhook_secret(source_link, own)
    audit.record(
        "source_link.webhooks_registered",
        source_link,
        account=source_link.account,
        changes={"topics": {"before": None, "after": sorted(w.topic for w in registered)}},
    )
    db.session.commit()
    return registered


def webhook_status(source_link: SourceLink) -> list[RemoteWebhook]:
    """The shop's subscriptions to this source link's delivery URL, as the shop reports them now."""
    connector = _shop_connector(source_link.connection)
    url = delivery_url(source_link)
    db.session.commit()  # nothing pending while the shop answers
    try:
        return [webhook for webhook in connector.list_webhooks() if webhook.delivery_url == url]
    except ConnectorError as exc:
        raise ShopError(_("The shop did not answer: %(message)s", message=translated(exc.message))) from exc
    finally:
        connector.close()


def set_active(source_link: SourceLink, active: bool) -> None:
    if active and not source_link.setup.active:
        raise ShopError(_("Activate the accounting setup %(setup)s first.", setup=source_link.setup.name))
    if active and source_link.connection.status != "active":
        raise ShopError(_("The shop is not connected. Connect it again first."))
    source_links.set_active(source_link, active)


def disconnect(connection: Connection) -> list[str]:
    """Remove Bogbro's webhooks from the shop, deactivate its source links, forget its keys. Returns the
    problems met at the shop (the disconnect happens anyway: the customer removes the rest there)."""
    problems = []
    linked = db.session.scalars(select(SourceLink).where(SourceLink.connection_id == connection.id)).all()
    urls = [delivery_url(source_link) for source_link in linked]
    db.session.commit()
    if urls:
        try:
            connector = _shop_connector(connection)
        except ShopError as refusal:
            problems.append(refusal.message)
        else:
            try:
                for url in urls:
                    connector.delete_webhooks(url)
            except ConnectorError as exc:
                problems.append(
                    _(
                        "Bogbro's webhooks could not be removed from the shop (%(message)s): "
                        "remove them in the shop.",
                        message=translated(exc.message),
                    )
                )
            finally:
                connector.close()
    for source_link in linked:
        if source_link.active:
            source_links.set_active(source_link, False)
    changes = audit.apply_changes(connection, {"status": "disabled"})
    connection.credentials = {}
    audit.record("connection.disconnected", connection, account=connection.account, changes=changes)
    db.session.commit()
    return problems


# --- settings -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsContext:
    """What the settings form offers for one source link, and why some choices are not offered."""

    states: tuple[str, ...]
    payment_terms: list[Choice] | None  # None: the accounting system did not answer
    failure: str | None
    can_book: bool
    can_order: bool
    can_oss: bool
    refund_payout_guessed: bool  # the system's refund payout is inferred, not documented: the setting shows
    system_name: str
    shop_id: str  # in the references, as they are now
    shop_id_locked: bool  # the source link has transfers: the shop id may no longer change
    reference: str  # an example reference, for order 1001
    setup_id: int = 0
    oss_template_id: int | None = None  # the setup's OSS template (the link next to the OSS setting)
    oss_countries: tuple[str, ...] = ()  # the countries it names a product group for (names: msgids)
    # the shop's own payment methods (value, label) to pick from, and why the list may be short
    payment_methods: tuple[tuple[str, str], ...] = ()
    methods_failure: str | None = None
    invoices: bool = False  # the source sells invoices (Source.invoices): whether invoices for 0 transfer
    renewals: bool = False  # the source sells subscriptions too: the settings say which kinds transfer


def settings_context(source_link: SourceLink) -> SettingsContext:
    setup = source_link.setup
    system = setup_operations.system_of(setup)
    stored = list((source_link.settings or {}).get("states") or {})
    source = get_source(source_link.source_system)
    standard = source.states
    states = tuple(standard) + tuple(state for state in stored if state not in standard)
    shop_id = source_links.shop_id(source_link)
    terms, failure = None, None
    oss_template = setup.template("oss")  # None for a setup from before it (the wizard page adds the row)
    try:
        terms = setup_operations.choices(setup, "payment_terms")
    except ConnectorError as exc:
        failure = translated(exc.message)
    return SettingsContext(
        states=states,
        payment_terms=terms,
        failure=failure,
        can_book=setup.auto_book,
        can_order=system.capabilities.orders,
        can_oss=system.capabilities.oss,
        refund_payout_guessed=any(c.operation == "register_refund_payment" for c in unverified(setup.system)),
        system_name=system.name,
        shop_id=shop_id,
        shop_id_locked=source_links.shop_id_locked(source_link),
        reference=order_reference(source.reference_prefix, shop_id, "1001"),
        setup_id=setup.id,
        renewals=source.renewals,
        oss_template_id=oss_template.id if oss_template is not None else None,
        oss_countries=tuple(OSS_COUNTRIES.get(code, code) for code in oss_countries(setup)),
        invoices=source.invoices,
        **_payment_methods(source_link),
    )


SEEN_EVENTS = 500  # the latest events read for the gateway names a shop has used


def _payment_methods(source_link: SourceLink) -> dict:
    """The payment methods to pick from instead of typing ids: WooCommerce's own gateways (GET
    payment_gateways); for Shopify, which lists no gateways to an app, the gateway names its orders to this
    source_link have carried. Methods already in the settings stay listed, so a save never drops one."""
    offered, failure = [], None
    if source_link.source_system == "woocommerce":
        try:
            connector = _shop_connector(source_link.connection)
            try:
                offered = [
                    (gateway, title if enabled else _("%(title)s (off in the shop)", title=title))
                    for gateway, title, enabled in connector.list_payment_gateways()
                ]
            finally:
                connector.close()
        except ConnectorError as exc:
            failure = _("The shop did not answer: %(message)s", message=translated(exc.message))
        except ShopError as refusal:
            failure = refusal.message
    elif source_link.source_system == "stripe":  # how Stripe invoices are paid (engine.sources.stripe)
        offered = [
            ("stripe", _("Paid through Stripe (card, direct debit)")),
            ("bank_transfer", _("Bank transfer")),
        ]
    else:
        offered = [(name, name) for name in _seen_gateways(source_link)]
    stored = source_link.settings or {}
    known = {value for value, _label in offered}
    for method in [*(stored.get("payment_terms_by_method") or {}), *(stored.get("paid_methods") or [])]:
        if method not in known:
            offered.append((method, method))
            known.add(method)
    return {"payment_methods": tuple(offered), "methods_failure": failure}


def _seen_gateways(source_link: SourceLink) -> list[str]:
    """Gateway names on the source link's latest stored events (Shopify's REST `payment_gateway_names` /
    `gateway`, GraphQL `paymentGatewayNames`), most used first."""
    bodies = db.session.scalars(
        select(SourceEvent.raw_body)
        .where(SourceEvent.source_link_id == source_link.id, SourceEvent.account_id == source_link.account_id)
        .order_by(SourceEvent.id.desc())
        .limit(SEEN_EVENTS)
    )
    counts: dict[str, int] = {}
    for body in bodies:
        try:
            order = json.loads(body)
        except ValueError:
            continue
        order = order.get("order", order) if isinstance(order, dict) else {}
        names = order.get("payment_gateway_names") or order.get("paymentGatewayNames") or []
        if not names and order.get("gateway"):
            names = [order["gateway"]]
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name:
                counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: (-counts[name], name))


def save_settings(
    source_link: SourceLink,
    values: dict,
    smtp_password: str | None,
    context: SettingsContext,
    form_errors: dict[str, str] | None = None,
) -> dict[str, str]:
    """Store the settings from the form (the keys the form does not show are kept). Returns every error
    per setting (the form's own and clean_settings'), translated; nothing is saved when there are any."""
    errors = dict(form_errors or {})
    offered = {value for value, _label in context.payment_methods}
    chosen = [*(values.get("payment_terms_by_method") or {}), *(values.get("paid_methods") or [])]
    unknown = [method for method in chosen if method not in offered]
    if unknown:
        errors["payment_terms_by_method"] = _(
            "%(method)s is not a payment method of the shop. Choose one from the list.", method=unknown[0]
        )
    if context.payment_terms is None:
        errors["payment_terms_by_method"] = context.failure or ""
    merged = {**(source_link.settings or {}), **values}
    terms = {choice.value for choice in context.payment_terms or []}
    try:
        if errors:  # the form's own: still run the settings' checks, to show every message at once
            source_links.clean_settings(
                merged, source_link.setup, source_link.source_system, terms, source_link
            )
        else:  # validates (once) and saves, or raises before anything is written
            source_links.update_settings(
                source_link, merged, smtp_password=smtp_password or None, payment_terms=terms
            )
    except source_links.SettingsError as refusal:
        errors = {**{key: translated(problem) for key, problem in refusal.errors.items()}, **errors}
    return errors
