"""The calculator's query string (the selection, shareable as a URL), the quote forms, and the forms of
the staff price-catalogue editor."""

import re
from decimal import Decimal
from urllib.parse import urlencode

from babel.numbers import format_decimal
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional, Regexp, ValidationError

from portal.calculator import pricing
from portal.calculator.pricing import Catalogue, Selection
from portal.models import QUOTE_STATUSES, RULE_OUTCOMES, SYSTEM_KINDS
from portal.validators import CVR, email_address, max_length, required, strip

DEFAULT_ORDERS = 250

KIND_LABELS = {
    "accounting": _l("Accounting"),
    "webshop": _l("Webshop"),
    "subscription": _l("Subscriptions"),
    "acquirer": _l("Card acquirer"),
    "pos": _l("Point of sale"),
    "warehouse": _l("Warehouse (WMS)"),
    "file": _l("File upload"),
}
STATUS_LABELS = {
    "new": _l("New"),
    "contacted": _l("Contacted"),
    "won": _l("Won"),
    "lost": _l("Lost"),
}
QUOTE_KIND_LABELS = {
    "quote": _l("Quote"),
    "contact": _l("Special combination"),
    "notify": _l("Notify me"),
}
OUTCOME_LABELS = {"special": _l("Special: a contact form, no price"), "unavailable": _l("Not available yet")}


# --- the selection in the URL -----------------------------------------------------------------------------


def _int(value, default: int) -> int:
    try:
        return int(str(value).strip().replace(".", "").replace(" ", ""))
    except (TypeError, ValueError):
        return default


def selection_from_args(args: MultiDict, catalogue: Catalogue) -> tuple[Selection, str | None]:
    """Read the selection from a query string; also say which volume control the prospect moved.

    The page has a slider (`slider`: a position among `pricing.slider_stops`) and a number field
    (`orders`), and both are submitted. `orders_was` is the volume the page was rendered with, so
    whichever of the two differs from it is the one that moved ("orders", "slider" or None).
    """
    orders = _int(args.get("orders"), DEFAULT_ORDERS)
    moved = None
    if "orders_was" in args:
        was = _int(args.get("orders_was"), orders)
        stops = pricing.slider_stops(catalogue.tiers)
        if orders != was:
            moved = "orders"
        elif "slider" in args and _int(args.get("slider"), -1) != pricing.slider_position(stops, was):
            position = max(0, min(_int(args.get("slider"), 0), len(stops) - 1))
            orders, moved = stops[position], "slider"
    addons = [(slug, 1) for slug in args.getlist("addons")]
    for addon in catalogue.addons:
        if f"qty-{addon.slug}" in args:
            addons = [(slug, n) for slug, n in addons if slug != addon.slug]
            addons.append((addon.slug, _int(args.get(f"qty-{addon.slug}"), 0)))
    selection = Selection(
        systems=tuple(args.getlist("systems")),
        orders=orders,
        addons=tuple(addons),
        billing=args.get("billing", "monthly"),
        setup=args.get("setup") in {"1", "on", "yes", "true"},
    )
    return pricing.normalise(catalogue, selection), moved


def selection_to_args(selection: Selection, **extra) -> list[tuple[str, str]]:
    """The canonical query string of a selection (defaults left out), e.g. for a shareable link."""
    args = [("systems", slug) for slug in selection.systems]
    args.append(("orders", str(selection.orders)))
    for slug, quantity in selection.addons:
        args.append(("addons", slug) if quantity == 1 else (f"qty-{slug}", str(quantity)))
    if selection.billing != "monthly":
        args.append(("billing", selection.billing))
    if selection.setup:
        args.append(("setup", "1"))
    args.extend((key, str(value)) for key, value in extra.items() if value)
    return args


def query_string(selection: Selection, **extra) -> str:
    return urlencode(selection_to_args(selection, **extra))


# --- quote requests ---------------------------------------------------------------------------------------

CONTACT_FIELDS = ("name", "company", "cvr", "email", "phone", "message")
PHONE = re.compile(r"^\+?[\d\s\-()]{8,20}$")


def phone_number(form, field):
    if field.data and not PHONE.match(field.data):
        raise ValidationError(_l("Enter a phone number of at least 8 digits."))


class _Honeypot:
    # People never see this field (it is off-screen and skipped by the keyboard); form-filling bots do.
    website = StringField(_l("Leave this field empty"), filters=[strip])


class QuoteForm(_Honeypot, FlaskForm):
    """A quote, or for a special combination a contact request: the same fields."""

    name = StringField(_l("Your name"), filters=[strip], validators=[required(), max_length(200)])
    company = StringField(_l("Company"), filters=[strip], validators=[required(), max_length(200)])
    cvr = StringField(
        _l("CVR number"),
        filters=[strip],
        validators=[Optional(), CVR()],
        description=_l("Optional. 8 digits."),
    )
    email = EmailField(
        _l("E-mail"), filters=[strip], validators=[required(), email_address(), max_length(254)]
    )
    phone = TelField(_l("Phone"), filters=[strip], validators=[max_length(40), phone_number])
    message = TextAreaField(
        _l("Message"),
        filters=[strip],
        validators=[max_length(4000)],
        description=_l("Anything we should know: your shop, your set-up, when you want to start."),
    )


class NotifyForm(_Honeypot, FlaskForm):
    email = EmailField(
        _l("E-mail"), filters=[strip], validators=[required(), email_address(), max_length(254)]
    )


class QuoteStatusForm(FlaskForm):
    status = SelectField(_l("Status"), choices=[SelectChoice(s, STATUS_LABELS[s]) for s in QUOTE_STATUSES])
    notes = TextAreaField(_l("Notes"), filters=[strip], validators=[max_length(10000)])


# --- the price catalogue editor ---------------------------------------------------------------------------

DANISH_AMOUNT = re.compile(r"^\d{1,3}(\.\d{3})+(,\d{1,2})?$")  # 1.495 or 1.495,50
PLAIN_AMOUNT = re.compile(r"^\d+([,.]\d{1,2})?$")  # 1495, 99,5 or 1495.50


def parse_amount(text: str) -> Decimal:
    """`1.495`, `1495`, `1495,50`, `1.495,50` and `1495.50` are all understood; anything else refused."""
    text = (text or "").strip().replace(" ", "").replace("\xa0", "")
    if DANISH_AMOUNT.match(text):
        text = text.replace(".", "").replace(",", ".")
    elif PLAIN_AMOUNT.match(text):
        text = text.replace(",", ".")
    else:
        raise ValueError(text)
    return pricing.money(text)


class AmountField(StringField):
    """Kroner with up to two decimals, Danish (1.495,50) or plain (1495.50), never negative."""

    def __init__(self, label=None, validators=None, maximum=Decimal("1000000"), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.maximum = maximum

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = parse_amount(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Enter an amount such as 1.495 or 99,50.")) from exc
        if self.data > self.maximum:
            raise ValueError(
                _l("Enter at most %(max)s.", max=format_decimal(self.maximum, locale=str(get_locale())))
            )

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None:
            return ""
        return format_decimal(self.data, format="#0.00", locale=str(get_locale() or "da"))


def filled():
    """Like required(), but 0 is an answer (DataRequired would refuse a set-up price of 0)."""
    return InputRequired(message=_l("Fill in this field."))


SLUG = Regexp(
    r"^[a-z0-9][a-z0-9-]*$", message=_l("Use lower-case letters, digits and hyphens (e.g. e-conomic).")
)


class WholeNumberField(IntegerField):
    """An integer field whose "not a number" message is ours (and so translated)."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = int(valuelist[0].strip())
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Enter a whole number.")) from exc


def _whole_number(label, minimum=0, maximum=1_000_000, **kwargs):
    return WholeNumberField(
        label,
        validators=[
            filled(),
            NumberRange(minimum, maximum, message=_l("Enter a whole number from %(min)s to %(max)s.")),
        ],
        **kwargs,
    )


def _kind_choices(blank=None):
    choices = [SelectChoice(kind, KIND_LABELS[kind]) for kind in SYSTEM_KINDS]
    return ([SelectChoice("", blank)] if blank else []) + choices


def _required_amount(label, **kwargs):
    return AmountField(label, validators=[filled()], **kwargs)


class SystemForm(FlaskForm):
    name = StringField(_l("Name"), filters=[strip], validators=[required(), max_length(100)])
    slug = StringField(_l("Key in the URL"), filters=[strip], validators=[required(), max_length(40), SLUG])
    kind = SelectField(_l("Kind"), choices=_kind_choices())
    monthly_price = _required_amount(_l("Module price per month (kr. ex. VAT)"))
    setup_price = _required_amount(_l("Set-up price (kr. ex. VAT)"))
    setup = SelectField(
        _l("Our set-up"),
        choices=[
            SelectChoice("optional", _l("Optional: the customer can set it up alone")),
            SelectChoice("required", _l("Required: we always set it up")),
        ],
    )
    delivery_days = _whole_number(_l("Delivery of our set-up (working days)"), maximum=365)
    description = TextAreaField(_l("Description (Danish)"), filters=[strip], validators=[max_length(2000)])
    description_en = TextAreaField(
        _l("Description (English)"), filters=[strip], validators=[max_length(2000)]
    )
    position = _whole_number(_l("Position in its group"), maximum=10000)
    active = BooleanField(_l("Shown in the calculator"), default=True)


class TierForm(FlaskForm):
    name = StringField(_l("Name"), filters=[strip], validators=[max_length(100)])
    max_orders = _whole_number(_l("Up to orders per month"), minimum=1)
    monthly_price = _required_amount(_l("Price per month (kr. ex. VAT)"))


class AddOnForm(FlaskForm):
    name = StringField(_l("Name (Danish)"), filters=[strip], validators=[required(), max_length(100)])
    name_en = StringField(_l("Name (English)"), filters=[strip], validators=[max_length(100)])
    slug = StringField(_l("Key in the URL"), filters=[strip], validators=[required(), max_length(40), SLUG])
    monthly_price = _required_amount(_l("Price per month (kr. ex. VAT)"))
    setup_price = _required_amount(_l("One-off price (kr. ex. VAT)"))
    delivery_days = _whole_number(_l("Delivery (working days)"), maximum=365)
    max_quantity = _whole_number(
        _l("Most that can be bought"),
        minimum=1,
        maximum=100,
        description=_l("1: a check box. More: the prospect chooses a quantity."),
    )
    requires_kind = SelectField(_l("Needs a system of the kind"), choices=_kind_choices(blank=_l("(none)")))
    requires_system_id = SelectField(_l("Needs the system"), coerce=lambda v: int(v) if v else None)
    description = TextAreaField(_l("Read more (Danish)"), filters=[strip], validators=[max_length(2000)])
    description_en = TextAreaField(_l("Read more (English)"), filters=[strip], validators=[max_length(2000)])
    position = _whole_number(_l("Position"), maximum=10000)
    active = BooleanField(_l("Shown in the calculator"), default=True)


class FeatureForm(FlaskForm):
    name = StringField(_l("Name (Danish)"), filters=[strip], validators=[required(), max_length(200)])
    name_en = StringField(_l("Name (English)"), filters=[strip], validators=[max_length(200)])
    slug = StringField(_l("Key"), filters=[strip], validators=[required(), max_length(40), SLUG])
    requires_kind = SelectField(
        _l("Shown when a system of this kind is chosen"), choices=_kind_choices(blank=_l("Always"))
    )
    requires_addon_id = SelectField(
        _l("Shown when this add-on is chosen"), coerce=lambda v: int(v) if v else None
    )
    position = _whole_number(_l("Position"), maximum=10000)
    active = BooleanField(_l("Shown in the calculator"), default=True)


class FeatureNoteForm(FlaskForm):
    feature_id = SelectField(_l("Feature"), coerce=int)
    system_id = SelectField(_l("System"), coerce=int)
    note = TextAreaField(_l("Caveat (Danish)"), filters=[strip], validators=[required(), max_length(1000)])
    note_en = TextAreaField(_l("Caveat (English)"), filters=[strip], validators=[max_length(1000)])


class RuleForm(FlaskForm):
    system_id = SelectField(_l("When this system is chosen"), coerce=int)
    other_system_id = SelectField(_l("… together with this system"), coerce=lambda v: int(v) if v else None)
    outcome = SelectField(
        _l("Then the combination is"), choices=[SelectChoice(o, OUTCOME_LABELS[o]) for o in RULE_OUTCOMES]
    )
    note = TextAreaField(
        _l("Explanation for the prospect (Danish)"), filters=[strip], validators=[max_length(1000)]
    )
    note_en = TextAreaField(
        _l("Explanation for the prospect (English)"), filters=[strip], validators=[max_length(1000)]
    )


class PriceSettingsForm(FlaskForm):
    half_yearly_discount_percent = AmountField(
        _l("Discount for half-yearly billing (%)"), validators=[filled()], maximum=Decimal("99")
    )
    vat_percent = AmountField(_l("VAT (%)"), validators=[filled()], maximum=Decimal("100"))
