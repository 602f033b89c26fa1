from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField

from portal.validators import max_length, required, strip


class ApiKeyForm(FlaskForm):
    """Keys copied from the accounting system (Dynaccount: Administration → Virksomheder)."""

    api_id = StringField(_l("API ID"), filters=[strip], validators=[required(), max_length(20)])
    api_key = StringField(_l("API key"), filters=[strip], validators=[required(), max_length(100)])
    api_secret = PasswordField(_l("API secret"), filters=[strip], validators=[required(), max_length(200)])
