from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.account.forms import LANGUAGE_CHOICES
from portal.validators import CVR, email_address, max_length, required, strip


class ImpersonateForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the customer sees it)"),
        validators=[
            DataRequired(message=_l("State why you need access.")),
            Length(min=10, max=1000, message=_l("Describe the reason in at least 10 characters.")),
        ],
    )


class NewAccountForm(FlaskForm):
    """Support creates a customer account and invites its owner (from a quote request, or by hand)."""

    company = StringField(_l("Company name"), filters=[strip], validators=[required(), max_length(200)])
    cvr = StringField(_l("CVR number"), validators=[required(), CVR()])
    email = EmailField(
        _l("The owner's e-mail"), filters=[strip], validators=[required(), email_address(), max_length(254)]
    )
    language = SelectField(_l("Language of the invitation"), choices=LANGUAGE_CHOICES)
    quote_id = HiddenField()
