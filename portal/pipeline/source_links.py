"""Creating sales sources and changing their settings; every change is audited (the webhook secret
only as "changed", never its value)."""

import re
import secrets
from collections.abc import Collection
from datetime import date
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from string import Formatter

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from portal import audit
from portal.connectors.base import N_, OSS_LABEL
from portal.engine.customers import MATCH_FIELDS
from portal.engine.settings import FixedProducts
from portal.extensions import db
from portal.models import AccountingSetup, Connection, SourceLink, Transfer
from portal.models.transfers import DOCUMENTS
from portal.pipeline import periods
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.settings import MAIL_FIELDS, MAIL_PLACEHOLDERS, MAIL_SECURITY, SALE_KINDS, oss_countries
from portal.sources import get_source


class SettingsError(ValueError):
    """Settings that cannot be saved; `errors` maps each setting (nested ones dotted, e.g.
    "invoice_mail.port") to what is wrong, as a Problem the UI translates."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Problem(str):
    """An English message (an N_ msgid, %-formatted with `params`); the UI shows _(msgid, **params)."""

    def __new__(cls, msgid: str, labels: tuple[str, ...] = (), **params):
        problem = super().__new__(cls, msgid % params if params else msgid)
        problem.msgid, problem.params, problem.labels = (
            msgid,
            params,
            labels,
        )  # labels: params that are msgids
        return problem


STATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # WooCommerce custom statuses are slugs too
PRODUCT_NUMBER_MAX = 25  # e-conomic's product number length; Dinero and Dynaccount allow more
MAIL_KEYS = {"enabled", *MAIL_FIELDS}
# the mail's texts and their longest length; each may use the placeholders (the credit note's are optional)
MAIL_TEXTS = {"subject": 200, "body": 5000, "credit_note_subject": 200, "credit_note_body": 5000}
NOTIFY_KEYS = {"recipients", "error_digest", "daily_report"}


def valid_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _placeholder_problem(text: str) -> Problem | None:
    """Only {invoice_number}, {order_number}, {customer_name}, {shop_name}; literal braces doubled."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(text) if name is not None]
    except ValueError:
        return Problem(N_("A { or } without its partner: write {{ and }} for literal braces."))
    for name, spec, conversion in fields:
        if name not in MAIL_PLACEHOLDERS or spec or conversion:
            return Problem(
                N_("Unknown placeholder {%(name)s}. Use only %(allowed)s."),
                name=name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else ""),
                allowed=", ".join(f"{{{p}}}" for p in MAIL_PLACEHOLDERS),
            )
    return None


def _text_list(value, errors: dict, key: str, limit: int = 100) -> list[str] | None:
    if not isinstance(value, list | tuple) or any(
        not isinstance(item, str) or not item.strip() or len(item) > limit for item in value
    ):
        errors[key] = Problem(N_("A list of names, each at most %(max)d characters."), max=limit)
        return None
    return [item.strip() for item in value]


def _flag(values: dict, key: str, errors: dict, error_key: str) -> None:
    if key in values and not isinstance(values[key], bool):
        errors[error_key] = Problem(N_("On or off."))


def _clean_mail(mail, errors: dict) -> dict | None:
    if not isinstance(mail, dict):
        errors["invoice_mail"] = Problem(N_("The invoice mail settings are not valid."))
        return None
    cleaned = dict(mail)
    for key in sorted(set(mail) - MAIL_KEYS):
        errors[f"invoice_mail.{key}"] = Problem(
            N_("Unknown setting %(name)s (the SMTP password is kept apart, encrypted)."), name=key
        )
    _flag(mail, "enabled", errors, "invoice_mail.enabled")
    for key, limit in (("host", 255), ("username", 255), ("sender", 320), *MAIL_TEXTS.items()):
        value = mail.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            errors[f"invoice_mail.{key}"] = Problem(N_("Use at most %(max)d characters."), max=limit)
        else:
            # a body as written, with the browser's CRLF line ends made plain newlines
            cleaned[key] = value.replace("\r\n", "\n") if key.endswith("body") else value.strip()
    host = cleaned.get("host") or ""
    if host and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
        errors["invoice_mail.host"] = Problem(N_("A host name such as smtp.example.dk."))
    if mail.get("port") not in (None, ""):
        try:
            port = int(str(mail["port"]).strip())
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            errors["invoice_mail.port"] = Problem(N_("A port number between 1 and 65535, usually 587."))
        else:
            cleaned["port"] = port
    else:
        cleaned.pop("port", None)
    if mail.get("security") is not None and mail["security"] not in MAIL_SECURITY:
        errors["invoice_mail.security"] = Problem(
            N_("One of: %(choices)s."), choices=", ".join(MAIL_SECURITY)
        )
    sender = cleaned.get("sender") or ""
    if sender and "invoice_mail.sender" not in errors:
        _name, address = parseaddr(sender)
        if not address or not valid_email(address):
            errors["invoice_mail.sender"] = Problem(
                N_("An e-mail address, optionally with a name: Butikken <shop@example.dk>.")
            )
    for key in MAIL_TEXTS:
        if cleaned.get(key) and f"invoice_mail.{key}" not in errors:
            problem = _placeholder_problem(cleaned[key])
            if problem:
                errors[f"invoice_mail.{key}"] = problem
    if cleaned.get("enabled") is True:
        for key in ("host", "port", "sender", "subject", "body"):
            if cleaned.get(key) in (None, "") and f"invoice_mail.{key}" not in errors:
                errors[f"invoice_mail.{key}"] = Problem(N_("Needed to send invoice mails."))
    return cleaned


def _clean_notify(notify, errors: dict) -> dict | None:
    if not isinstance(notify, dict):
        errors["notify"] = Problem(N_("The notification settings are not valid."))
        return None
    cleaned = dict(notify)
    for key in sorted(set(notify) - NOTIFY_KEYS):
        errors[f"notify.{key}"] = Problem(N_("Unknown setting %(name)s."), name=key)
    recipients = notify.get("recipients")
    if recipients is not None:
        if not isinstance(recipients, list | tuple) or any(not isinstance(r, str) for r in recipients):
            errors["notify.recipients"] = Problem(N_("A list of e-mail addresses."))
        else:
            wrong = [r for r in recipients if not valid_email(r.strip())]
            if wrong:
                errors["notify.recipients"] = Problem(
                    N_("Not an e-mail address: %(addresses)s"), addresses=", ".join(wrong)
                )
            else:
                cleaned["recipients"] = [r.strip() for r in recipients]
    _flag(notify, "error_digest", errors, "notify.error_digest")
    _flag(notify, "daily_report", errors, "notify.daily_report")
    return cleaned


def shop_id(source_link: SourceLink, settings: dict | None = None) -> str:
    """The shop id in the source link's references (WC-<shop id>-<order number>): the stored one, else
    the source link's own id. `settings`: as they would be, instead of as stored."""
    return pipeline_settings.shop_id(source_link.id, source_link.settings if settings is None else settings)


def shop_id_locked(source_link: SourceLink) -> bool:
    """Whether the shop id may no longer change: once the source link has a transfer, documents may carry
    references with it, and only the same references let Bogbro recognise them (never twice)."""
    if source_link.id is None:
        return False
    found = db.session.scalar(select(Transfer.id).where(Transfer.source_link_id == source_link.id).limit(1))
    return found is not None


def clean_settings(
    values: dict,
    setup: AccountingSetup,
    source: str | None = None,
    payment_terms: Collection[str] | None = None,
    source_link: SourceLink | None = None,
) -> dict:
    """Validate the settings a source link stores (see portal.pipeline.settings); raise SettingsError.

    `source` (the shop's system) checks the state names; `payment_terms` (the accounting system's
    payment terms, when fetched) checks payment_terms_by_method; `source_link` (the one being changed)
    checks what may no longer change (its shop id once it has transfers). Nothing here calls out.
    """
    from portal.connectors import get_system

    system = get_system(setup.system)
    errors: dict[str, str] = {}
    cleaned = dict(values)
    states = values.get("states")
    if states is not None:
        if not isinstance(states, dict) or any(doc not in DOCUMENTS for doc in states.values()):
            errors["states"] = Problem(
                N_("Each state transfers as one of: %(documents)s."), documents=", ".join(DOCUMENTS)
            )
        elif any(not isinstance(state, str) or not STATE_NAME.match(state) for state in states):
            errors["states"] = Problem(N_("An order state is a short name such as processing."))
        else:
            for document in states.values():
                if document == "booked" and not setup.auto_book:
                    errors["states"] = Problem(
                        N_("Booked invoices need “book automatically” on in the accounting setup %(setup)s."),
                        setup=setup.name,
                    )
                elif document == "order" and not system.capabilities.orders:
                    errors["states"] = Problem(
                        N_(
                            "%(system)s has no orders (which reserve stock): choose a draft or booked "
                            "invoice for those states."
                        ),
                        system=system.name,
                    )
    kinds = values.get("sale_kinds")
    if kinds is not None:
        if not isinstance(kinds, list) or not kinds or any(kind not in SALE_KINDS for kind in kinds):
            errors["sale_kinds"] = Problem(N_("Orders, renewals or both."))
        else:
            cleaned["sale_kinds"] = [kind for kind in SALE_KINDS if kind in kinds]
    if values.get("activation_date"):
        try:
            date.fromisoformat(str(values["activation_date"]))
        except ValueError:
            errors["activation_date"] = Problem(N_("A date as YYYY-MM-DD."))
    if values.get("rounding_tolerance") is not None:
        try:
            tolerance = Decimal(str(values["rounding_tolerance"]).strip().replace(",", "."))
        except InvalidOperation:
            tolerance = Decimal(-1)
        if not tolerance.is_finite() or tolerance < 0 or tolerance > 100:
            errors["rounding_tolerance"] = Problem(N_("An amount between 0 and 100, e.g. 0,10."))
        else:
            cleaned["rounding_tolerance"] = str(tolerance)
    if values.get("closed_period") is not None and values["closed_period"] not in periods.CHOICES:
        errors["closed_period"] = Problem(N_("One of: %(choices)s."), choices=", ".join(periods.CHOICES))
    for key in ("match_b2c", "match_b2b", "match_ean"):
        if values.get(key) and values[key] not in MATCH_FIELDS:
            errors[key] = Problem(N_("One of: %(choices)s."), choices=", ".join(MATCH_FIELDS))
    if "collective_customer" in values:
        number = values["collective_customer"]
        number = str(number).strip() if number not in (None, "") else None
        if number is not None and (len(number) > 50 or not re.fullmatch(r"[\w.-]+", number)):
            errors["collective_customer"] = Problem(N_("A customer number from the accounting system."))
        cleaned["collective_customer"] = number
    if values.get("zero_amount") is not None and values["zero_amount"] not in ("skip", "transfer"):
        errors["zero_amount"] = Problem(N_("One of: %(choices)s."), choices="skip, transfer")
    for key in ("vat_meta_keys", "ean_meta_keys", "gift_card_fee_names", "paid_methods"):
        if values.get(key) is not None:
            items = _text_list(values[key], errors, key)
            if items is not None:
                cleaned[key] = items
    fixed = values.get("fixed_products")
    if fixed is not None:
        if not isinstance(fixed, dict):
            errors["fixed_products"] = Problem(N_("Product numbers per kind of line."))
        else:
            unknown = set(fixed) - set(FixedProducts.__dataclass_fields__)
            if unknown:
                errors["fixed_products"] = Problem(N_("Unknown: %(names)s"), names=", ".join(sorted(unknown)))
            for kind, number in fixed.items():
                if kind in unknown:
                    continue
                if not isinstance(number, str) or not number.strip() or len(number) > PRODUCT_NUMBER_MAX:
                    errors[f"fixed_products.{kind}"] = Problem(
                        N_("A product number of 1 to %(max)d characters."), max=PRODUCT_NUMBER_MAX
                    )
            if not any(key.startswith("fixed_products") for key in errors):
                cleaned["fixed_products"] = {kind: number.strip() for kind, number in fixed.items()}
    by_method = values.get("payment_terms_by_method")
    if by_method is not None:
        if not isinstance(by_method, dict) or any(
            not isinstance(k, str) or not k.strip() or len(k) > 100 or not isinstance(v, str) or not v
            for k, v in by_method.items()
        ):
            errors["payment_terms_by_method"] = Problem(
                N_("Each payment method needs its id from the shop and payment terms.")
            )
        elif payment_terms is not None:
            unknown = sorted(method for method, terms in by_method.items() if terms not in payment_terms)
            if unknown:
                errors["payment_terms_by_method"] = Problem(
                    N_("%(system)s has no such payment terms (any more) for: %(methods)s"),
                    system=system.name,
                    methods=", ".join(unknown),
                )
    if "oss" in values:
        if not isinstance(values["oss"], bool):
            errors["oss"] = Problem(N_("On or off."))
        elif values["oss"] and not system.capabilities.oss:
            errors["oss"] = Problem(N_("%(system)s cannot book OSS sales."), system=system.name)
        elif values["oss"] and not oss_countries(setup):
            # On with nothing to book on, every EU sale to a consumer would stop: say where to choose first.
            errors["oss"] = Problem(
                N_(
                    "Choose the product groups for the EU countries you sell to first: in the template "
                    "“%(template)s” of the accounting setup %(setup)s under Setup."
                ),
                labels=("template",),
                template=OSS_LABEL,
                setup=setup.name,
            )
    if "refund_payouts_guessed" in values and not isinstance(values["refund_payouts_guessed"], bool):
        errors["refund_payouts_guessed"] = Problem(N_("On or off."))
    for kind in ("customers", "products"):
        given = values.get(kind)
        if given is None:
            continue
        if not isinstance(given, dict) or set(given) - {"create", "update"}:
            errors[kind] = Problem(N_("Whether to create and whether to update, on or off."))
        elif any(not isinstance(flag, bool) for flag in given.values()):
            errors[kind] = Problem(N_("On or off."))
    if values.get("poll_minutes") is not None:
        try:
            minutes = int(str(values["poll_minutes"]).strip())
        except ValueError:
            minutes = -1
        if not 0 <= minutes <= 1440:
            errors["poll_minutes"] = Problem(N_("Whole minutes from 0 (never) to 1440 (once a day)."))
        else:
            cleaned["poll_minutes"] = minutes
    if values.get("shop_id") is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,20}", str(values["shop_id"])):
        errors["shop_id"] = Problem(N_("Up to 20 letters, digits or dashes."))
    elif (
        source_link is not None
        and shop_id(source_link, values) != shop_id(source_link)
        and shop_id_locked(source_link)
    ):
        errors["shop_id"] = Problem(
            N_(
                "The shop ID can no longer be changed: orders have been transferred with it in their "
                "references."
            )
        )
    if values.get("home_country") is not None and not re.fullmatch(
        r"[A-Za-z]{2}", str(values["home_country"])
    ):
        errors["home_country"] = Problem(N_("A two-letter country code such as DK."))
    if values.get("invoice_mail") is not None:
        mail = _clean_mail(values["invoice_mail"], errors)
        if mail is not None:
            cleaned["invoice_mail"] = mail
    if values.get("notify") is not None:
        notify = _clean_notify(values["notify"], errors)
        if notify is not None:
            cleaned["notify"] = notify
    if errors:
        raise SettingsError(errors)
    return cleaned


def create_source_link(
    connection: Connection, setup: AccountingSetup, name: str, settings: dict | None = None
) -> SourceLink:
    """Link a webshop or subscription-system connection to an accounting setup of the same account (inactive
    until activated)."""
    if connection.account_id != setup.account_id:
        raise ValueError("the shop and the accounting setup belong to different accounts")
    if connection.role not in ("webshop", "subscription"):
        raise ValueError("only a webshop or subscription system connection can send sales")
    source_link = SourceLink(
        account_id=connection.account_id,
        connection=connection,
        setup=setup,
        name=name,
        settings=clean_settings(settings or {}, setup, connection.system),
        webhook_secret={"secret": secrets.token_urlsafe(32)},
    )
    db.session.add(source_link)
    audit.record(
        "source_link.created",
        source_link,
        account=connection.account,
        changes={
            "setup": {"before": None, "after": setup.name},
            "settings": {"before": None, "after": source_link.settings},
            "webhook_secret": {"before": None, "after": "***"},
        },
    )
    db.session.commit()
    return source_link


def update_settings(
    source_link: SourceLink,
    settings: dict,
    *,
    smtp_password: str | None = None,
    payment_terms: Collection[str] | None = None,
) -> None:
    """Replace the settings (validated first: nothing is saved when anything is wrong). A non-empty
    `smtp_password` replaces the stored one (encrypted; audited as changed, never its value)."""
    cleaned = clean_settings(
        settings, source_link.setup, source_link.source_system, payment_terms, source_link
    )
    changes = audit.apply_changes(source_link, {"settings": cleaned})
    if smtp_password:
        changes.update(
            audit.apply_changes(
                source_link,
                {"mail_secret": {"smtp_password": smtp_password}},
                secret_fields=frozenset({"mail_secret"}),
            )
        )
    if changes:
        audit.record("source_link.settings", source_link, account=source_link.account, changes=changes)
    db.session.commit()


def set_active(source_link: SourceLink, active: bool) -> None:
    changes = audit.apply_changes(source_link, {"active": active})
    if changes:
        audit.record("source_link.active", source_link, account=source_link.account, changes=changes)
    db.session.commit()


def rotate_webhook_secret(source_link: SourceLink) -> str:
    """A new shared secret (the shop's webhooks must be registered again with it)."""
    return set_webhook_secret(source_link, secrets.token_urlsafe(32))


def set_webhook_secret(source_link: SourceLink, secret: str) -> str:
    """The secret deliveries are verified with (audited, never shown)."""
    changes = audit.apply_changes(
        source_link, {"webhook_secret": {"secret": secret}}, secret_fields=frozenset({"webhook_secret"})
    )
    audit.record("source_link.webhook_secret", source_link, account=source_link.account, changes=changes)
    db.session.commit()
    return secret


def webhook_shop(source_link: SourceLink) -> str | None:
    """The shop a webhook for this source link must come from, where the source names it
    (Source.webhook_account)."""
    return get_source(source_link.source_system).webhook_account(source_link.connection.credentials or {})


def signing_secret(source_link: SourceLink) -> str:
    """What the source signs this source link's webhook deliveries with (Source.webhook_secret): the
    source_link's own secret, or an app's secret from the configuration."""
    from portal.setups.connections import system_settings

    key = source_link.source_system
    own = (source_link.webhook_secret or {}).get("secret") or ""
    return get_source(key).webhook_secret(own, lambda: system_settings(key, source_link.connection.sandbox))
