"""WTForms validators for Danish identifiers (python-stdnum)."""

from flask_babel import lazy_gettext as _l
from stdnum.dk import cvr
from stdnum.exceptions import ValidationError as StdnumError
from wtforms.validators import DataRequired, Email, Length, ValidationError


class CVR:
    """A Danish CVR number; the field's data is replaced by its compact 8-digit form."""

    def __call__(self, form, field):
        try:
            field.data = cvr.validate(field.data or "")
        except StdnumError as exc:
            raise ValidationError(
                _l("This is not a valid CVR number (8 digits with a valid check digit).")
            ) from exc


# WTForms has no Danish catalogue, so the validators we use carry our own (translated) messages.


def required():
    return DataRequired(message=_l("Fill in this field."))


def email_address():
    return Email(message=_l("Enter a valid e-mail address."))


def max_length(limit: int):
    return Length(max=limit, message=_l("Use at most %(max)d characters."))


def strip(value):
    return value.strip() if isinstance(value, str) else value
