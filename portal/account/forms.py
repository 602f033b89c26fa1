from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.fields import SelectChoice

from portal.validators import CVR, email_address, max_length, required, strip

LANGUAGE_CHOICES = [SelectChoice("da", "Dansk"), SelectChoice("en", "English")]


class AccountForm(FlaskForm):
    name = StringField(_l("Company name"), filters=[strip], validators=[required(), max_length(200)])
    cvr = StringField(_l("CVR number"), validators=[required(), CVR()])


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), filters=[strip], validators=[required(), max_length(200)])
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)


class InviteForm(FlaskForm):
    email = EmailField(
        _l("E-mail"), filters=[strip], validators=[required(), email_address(), max_length(254)]
    )
    role = SelectField(
        _l("Role"), choices=[SelectChoice("member", _l("Member")), SelectChoice("owner", _l("Owner"))]
    )
    language = SelectField(_l("Language of the invitation"), choices=LANGUAGE_CHOICES)
