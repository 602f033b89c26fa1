from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class ImpersonateForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the customer sees it)"),
        validators=[
            DataRequired(message=_l("State why you need access.")),
            Length(min=10, max=1000, message=_l("Describe the reason in at least 10 characters.")),
        ],
    )
