"""The forms for connecting a webshop, linking it, and an sales source's settings.

The settings form only carries text: portal.pipeline.source_links.clean_settings decides what is valid
(and its messages are put next to the fields), so the rules live in one place.
"""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice

from portal.engine.settings import FixedProducts, SourceLinkSettings
from portal.pipeline import periods
from portal.pipeline.settings import (
    DEFAULT_POLL_MINUTES,
    MAIL_FIELDS,
    SALE_KINDS,
    daily_report_enabled,
    document_for_state,
    error_digest_enabled,
    rules,
    sale_kinds,
)
from portal.validators import max_length, required, strip


class WooCommerceForm(FlaskForm):
    url = StringField(
        _l("Your shop's address"),
        filters=[strip],
        validators=[max_length(300)],
        description=_l("E.g. https://www.minbutik.dk"),
    )
    consumer_key = StringField(_l("Consumer key"), filters=[strip], validators=[required(), max_length(100)])
    consumer_secret = PasswordField(
        _l("Consumer secret"), filters=[strip], validators=[required(), max_length(100)]
    )


class StripeForm(FlaskForm):
    api_key = PasswordField(
        _l("Restricted API key"),
        filters=[strip],
        validators=[required(), max_length(255)],
        description=_l("Starts with rk_ (or sk_ for a secret key)."),
    )


class FrisbiiForm(FlaskForm):
    private_key = PasswordField(
        _l("Private API key"), filters=[strip], validators=[required(), max_length(200)]
    )


class ShopifyForm(FlaskForm):
    shop = StringField(
        _l("Your shop's Shopify address"),
        filters=[strip],
        validators=[required(), max_length(255)],
        description=_l("E.g. min-butik.myshopify.com"),
    )


class LinkForm(FlaskForm):
    setup = SelectField(_l("Accounting setup"), coerce=int, choices=[])
    name = StringField(
        _l("Name of the sales source"), filters=[strip], validators=[required(), max_length(200)]
    )


# --- settings -----------------------------------------------------------------------------------------------

DOCUMENT_LABELS = {
    "none": _l("Nothing"),
    "order": _l("Order"),
    "draft": _l("Draft invoice"),
    "booked": _l("Booked invoice"),
}
STATE_LABELS = {
    # WooCommerce
    "pending": _l("Pending payment"),
    "processing": _l("Processing"),
    "on-hold": _l("On hold"),
    "completed": _l("Completed"),
    "cancelled": _l("Cancelled"),
    "refunded": _l("Refunded"),
    "failed": _l("Failed"),
    # Shopify's financial states
    "authorized": _l("Authorized"),
    "partially_paid": _l("Partially paid"),
    "paid": _l("Paid"),
    "partially_refunded": _l("Partially refunded"),
    "voided": _l("Voided"),
    # Stripe invoices
    "open": _l("Open (paid by bank transfer)"),
    "payment_due": _l("Awaiting automatic payment"),
    "payment_failed": _l("Payment failed"),
    "draft": _l("Draft"),
    "void": _l("Voided"),
    "uncollectible": _l("Uncollectible"),
    # Frisbii's invoice states
    "settled": _l("Settled"),
    "dunning": _l("Dunning"),
    "created": _l("Created"),
}
MATCH_LABELS = [
    SelectChoice("email", _l("E-mail address")),
    SelectChoice("vat_number", _l("CVR/VAT number")),
    SelectChoice("ean", _l("EAN number")),
]
FIXED_PRODUCT_LABELS = {
    "shipping": _l("Shipping"),
    "fee": _l("Fees"),
    "discount": _l("Discounts"),
    "gift_card": _l("Gift cards"),
    "rounding": _l("Rounding"),
    "refund": _l("Amount-only refunds"),
    "default": _l("Products without a SKU"),
}
SECURITY_CHOICES = [
    SelectChoice("starttls", _l("STARTTLS (usually port 587)")),
    SelectChoice("ssl", _l("SSL/TLS (usually port 465)")),
    SelectChoice("none", _l("None (not recommended)")),
]
EXTRA_PAYMENT_ROWS = 3


def state_field_name(state: str) -> str:
    return "state_" + state.replace("-", "_")


def fixed_field_name(kind: str) -> str:
    return f"fixed_{kind}"


class PaymentRowForm(Form):
    # Picked from the shop's own list (settings_context.payment_methods), checked when saving.
    method = SelectField(_l("Payment method in the shop"), choices=[], validate_choice=False)
    terms = SelectField(_l("Payment terms"), choices=[], validate_choice=False)
    paid = BooleanField(_l("Register as paid"))


class SettingsForm(FlaskForm):
    # Shown while the source link has no transfers; once it has, the page shows it as text and no field.
    shop_id = StringField(_l("Shop ID"), filters=[strip])
    activation_date = StringField(
        _l("Transfer orders from"),
        filters=[strip],
        description=_l("Orders created before this date are not transferred. Empty: all orders."),
    )
    # Shown for sources with subscription renewals (Source.subscription_of); else the stored kinds stay.
    sale_kinds = SelectField(
        _l("Which sales transfer"),
        choices=[
            SelectChoice("orders,renewals", _l("Orders and subscription renewals")),
            SelectChoice("orders", _l("Only first and ordinary orders (not renewals)")),
            SelectChoice("renewals", _l("Only subscription renewals")),
        ],
        default="orders,renewals",
        validate_choice=False,
        description=_l("A sale that is not set to transfer is skipped and shown in the transfer log."),
    )
    match_b2c = SelectField(
        _l("Private customers are matched on"), choices=MATCH_LABELS, validate_choice=False
    )
    match_b2b = SelectField(
        _l("Business customers are matched on"), choices=MATCH_LABELS, validate_choice=False
    )
    match_ean = SelectField(
        _l("Public sector (EAN) customers are matched on"), choices=MATCH_LABELS, validate_choice=False
    )
    collective_customer = StringField(
        _l("Collective customer number for private customers"),
        filters=[strip],
        description=_l("Empty: each private customer gets their own customer."),
    )
    customers_create = BooleanField(_l("Create customers that are not found"))
    customers_update = BooleanField(
        _l("Update customers found (name, address, EAN) from the order"),
        description=_l("At most once a day per customer."),
    )
    products_create = BooleanField(_l("Create products that are not found"))
    products_update = BooleanField(
        _l("Update products found (name and price) from the sales source"),
        description=_l("At most once a day per product."),
    )
    vat_meta_keys = StringField(
        _l("Order fields holding the buyer's VAT number"),
        filters=[strip],
        description=_l("Comma separated, tried in this order."),
    )
    payments = FieldList(FormField(PaymentRowForm), min_entries=0)
    rounding_tolerance = StringField(
        _l("Rounding tolerance (kr.)"),
        filters=[strip],
        description=_l(
            "A difference up to this amount becomes a rounding line; more keeps the invoice as a draft."
        ),
    )
    oss = BooleanField(_l("EU sales to private customers with the buyer's country's VAT (OSS)"))
    # A source selling invoices (Source.invoices): whether invoices for 0 (a full discount) transfer
    transfer_zero = BooleanField(_l("Transfer invoices for 0 (e.g. with a coupon for the full amount)"))
    refund_payouts_guessed = BooleanField(
        _l("Register the payout of a refund on its credit note (a guess: see below)"),
        description=_l(
            "Where the invoice was registered as paid, the money paid back is registered on the credit note, "
            "so the customer's balance returns to zero. How the accounting system takes such a payout is not "
            "in its public documentation (Bogbro infers it), so it is off until you turn it on; check the "
            "first one in the accounting system."
        ),
    )
    closed_period = SelectField(
        _l("An order dated in a closed accounting period"),
        choices=[
            ("hold", _l("Hold it as “needs attention”, with what to do")),
            ("first_open_day", _l("Date it on the first open day, with the order date in the invoice text")),
        ],
        default="hold",
        validate_choice=False,
        description=_l(
            "Checked against the accounting system's open periods before posting. Moved to the first open "
            "day, the invoice text keeps the order date (“ordredato 30.12.2025”)."
        ),
    )
    poll_minutes = StringField(
        _l("Check the shop for missed orders every (minutes)"),
        filters=[strip],
        description=_l("0 = never."),
    )
    mail_enabled = BooleanField(_l("Mail the booked invoice to the customer"))
    mail_host = StringField(_l("SMTP server"), filters=[strip])
    mail_port = StringField(_l("Port"), filters=[strip])
    mail_security = SelectField(_l("Encryption"), choices=SECURITY_CHOICES, validate_choice=False)
    mail_username = StringField(_l("User name"), filters=[strip])
    mail_password = PasswordField(_l("Password"))
    mail_sender = StringField(
        _l("Sender"), filters=[strip], description=_l("E.g. Butikken <shop@example.dk>")
    )
    mail_subject = StringField(_l("Subject"), filters=[strip])
    mail_body = TextAreaField(_l("Text"))
    mail_credit_note_subject = StringField(
        _l("Subject of credit notes"), filters=[strip], description=_l("Empty: the standard text.")
    )
    mail_credit_note_body = TextAreaField(
        _l("Text of credit notes"), description=_l("Empty: the standard text.")
    )
    notify_recipients = StringField(
        _l("Send notifications to"),
        filters=[strip],
        description=_l("E-mail addresses, comma separated. Empty: the account's owners."),
    )
    notify_error_digest = BooleanField(_l("A summary of orders that need attention"))
    notify_daily_report = BooleanField(_l("A daily report of what was transferred"))


def settings_form_class(states, documents):
    """SettingsForm with one select per order state; `documents` are SelectChoices (some disabled)."""

    class SourceLinkSettingsForm(SettingsForm):
        pass

    for state in states:
        setattr(
            SourceLinkSettingsForm,
            state_field_name(state),
            SelectField(STATE_LABELS.get(state, state), choices=documents, validate_choice=False),
        )
    for kind in FixedProducts.__dataclass_fields__:
        setattr(
            SourceLinkSettingsForm,
            fixed_field_name(kind),
            StringField(FIXED_PRODUCT_LABELS.get(kind, kind), filters=[strip]),
        )
    return SourceLinkSettingsForm


# --- between the stored settings and the form ---------------------------------------------------------------

ENGINE_DEFAULTS = SourceLinkSettings()
FIXED_DEFAULTS = FixedProducts()


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def initial_data(source_link, states) -> dict:
    """The form's values for the stored settings (defaults where nothing is stored). A state shows the
    document it really creates now (e.g. a draft while the setup does not book automatically)."""
    stored = source_link.settings or {}
    data = {state_field_name(state): document_for_state(source_link, state) for state in states}
    tolerance = str(stored.get("rounding_tolerance", ENGINE_DEFAULTS.rounding_tolerance))
    customers, products = rules(source_link, "customers"), rules(source_link, "products")
    data.update(
        shop_id=stored.get("shop_id") or "",  # empty: the source link's own id (the field's placeholder)
        activation_date=stored.get("activation_date") or "",
        sale_kinds=",".join(kind for kind in SALE_KINDS if kind in sale_kinds(source_link)),
        match_b2c=stored.get("match_b2c") or ENGINE_DEFAULTS.match_b2c,
        match_b2b=stored.get("match_b2b") or ENGINE_DEFAULTS.match_b2b,
        match_ean=stored.get("match_ean") or ENGINE_DEFAULTS.match_ean,
        collective_customer=stored.get("collective_customer") or "",
        customers_create=customers.create,
        customers_update=customers.update,
        products_create=products.create,
        products_update=products.update,
        vat_meta_keys=", ".join(stored.get("vat_meta_keys") or ENGINE_DEFAULTS.vat_meta_keys),
        rounding_tolerance=tolerance.replace(".", ","),
        oss=bool(stored.get("oss", False)),
        transfer_zero=stored.get("zero_amount") == "transfer",
        refund_payouts_guessed=bool(stored.get("refund_payouts_guessed", False)),
        poll_minutes=str(stored.get("poll_minutes", DEFAULT_POLL_MINUTES)),
        closed_period=periods.setting(stored),
    )
    fixed = stored.get("fixed_products") or {}
    for kind in FixedProducts.__dataclass_fields__:
        data[fixed_field_name(kind)] = fixed.get(kind) or getattr(FIXED_DEFAULTS, kind)
    by_method = stored.get("payment_terms_by_method") or {}
    paid = list(stored.get("paid_methods") or [])
    methods = list(by_method) + [method for method in paid if method not in by_method]
    rows = [{"method": m, "terms": by_method.get(m, ""), "paid": m in paid} for m in methods]
    data["payments"] = rows + [{"method": "", "terms": "", "paid": False}] * EXTRA_PAYMENT_ROWS
    mail = stored.get("invoice_mail") or {}
    data["mail_enabled"] = bool(mail.get("enabled", False))
    for key in MAIL_FIELDS:
        data[f"mail_{key}"] = str(mail.get(key) if mail.get(key) is not None else "")
    data["mail_security"] = mail.get("security") or "starttls"
    data["mail_port"] = str(mail.get("port") or 587)
    notify = stored.get("notify") or {}
    data["notify_recipients"] = ", ".join(notify.get("recipients") or [])
    data["notify_error_digest"] = error_digest_enabled(source_link)
    data["notify_daily_report"] = daily_report_enabled(source_link)
    return data


def settings_from(form, states, invoices: bool = False) -> tuple[dict, dict[str, str]]:
    """The settings the form describes, and the errors only the form can see (a payment row without its
    method). clean_settings checks the rest. `invoices`: the source sells invoices (Source.invoices), and
    the form also says whether invoices for 0 transfer."""
    errors: dict[str, str] = {}
    values: dict = {
        "states": {state: form[state_field_name(state)].data or "none" for state in states},
        "activation_date": form.activation_date.data or None,
        "match_b2c": form.match_b2c.data,
        "match_b2b": form.match_b2b.data,
        "match_ean": form.match_ean.data,
        "collective_customer": form.collective_customer.data or None,
        "customers": {"create": bool(form.customers_create.data), "update": bool(form.customers_update.data)},
        "products": {"create": bool(form.products_create.data), "update": bool(form.products_update.data)},
        "vat_meta_keys": _comma_list(form.vat_meta_keys.data) or list(ENGINE_DEFAULTS.vat_meta_keys),
        "rounding_tolerance": (
            form.rounding_tolerance.data or str(ENGINE_DEFAULTS.rounding_tolerance)
        ).replace(",", "."),
        "oss": bool(form.oss.data),
        "refund_payouts_guessed": bool(form.refund_payouts_guessed.data),
        "poll_minutes": form.poll_minutes.data or "0",
        "closed_period": form.closed_period.data or periods.HOLD,
        "fixed_products": {
            kind: form[fixed_field_name(kind)].data or "" for kind in FixedProducts.__dataclass_fields__
        },
    }
    if invoices:
        values["zero_amount"] = "transfer" if form.transfer_zero.data else "skip"
    by_method, paid = {}, []
    for row in form.payments:
        method, terms, is_paid = row.form.method.data, row.form.terms.data, row.form.paid.data
        if not method:
            if terms or is_paid:
                errors["payment_terms_by_method"] = str(_l("Choose the payment method from the shop's list."))
            continue
        if method in by_method or method in paid:
            errors["payment_terms_by_method"] = str(_l("Each payment method only once."))
        if terms:
            by_method[method] = terms
        if is_paid:
            paid.append(method)
    values["payment_terms_by_method"] = by_method
    values["paid_methods"] = paid
    if form.sale_kinds.raw_data:  # only when the page showed it
        values["sale_kinds"] = _comma_list(form.sale_kinds.data)
    if form.shop_id.raw_data:  # only when the page showed the field: else the stored shop id stays
        values["shop_id"] = form.shop_id.data or None
    values["invoice_mail"] = {
        "enabled": bool(form.mail_enabled.data),
        **{key: form[f"mail_{key}"].data or "" for key in MAIL_FIELDS},
    }
    values["notify"] = {
        "recipients": _comma_list(form.notify_recipients.data),
        "error_digest": bool(form.notify_error_digest.data),
        "daily_report": bool(form.notify_daily_report.data),
    }
    return values, errors


def field_for(key: str) -> str | None:
    """The form field a settings error belongs next to (None: the form as a whole)."""
    if key.startswith("invoice_mail."):
        return "mail_" + key.split(".", 1)[1]
    if key.startswith("notify."):
        return "notify_" + key.split(".", 1)[1]
    if key.startswith("fixed_products."):
        return fixed_field_name(key.split(".", 1)[1])
    if key in ("paid_methods", "payment_terms_by_method"):
        return "payments"
    if key == "fixed_products":
        return "fixed_default"
    if key in ("customers", "products"):
        return f"{key}_create"
    return key
