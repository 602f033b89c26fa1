from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import EqualTo, Length

from portal.auth.passwords import MIN_LENGTH
from portal.validators import CVR, email_address, max_length, required, strip


def _new_password_fields():
    password = PasswordField(
        _l("New password"),
        validators=[
            required(),
            Length(
                min=MIN_LENGTH,
                max=200,
                message=_l("The password must be at least %(n)s characters.", n=MIN_LENGTH),
            ),
        ],
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[required(), EqualTo("password", message=_l("The two passwords are not the same."))],
    )
    return password, confirm


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), filters=[strip], validators=[required(), email_address()])
    password = PasswordField(_l("Password"), validators=[required()])


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[required()])
    password, confirm = _new_password_fields()


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), filters=[strip], validators=[required(), email_address()])


class ResetPasswordForm(FlaskForm):
    password, confirm = _new_password_fields()


class AcceptInvitationForm(FlaskForm):
    name = StringField(_l("Your name"), filters=[strip], validators=[required(), max_length(200)])
    password, confirm = _new_password_fields()


class SignupForm(FlaskForm):
    company = StringField(_l("Company name"), filters=[strip], validators=[required(), max_length(200)])
    cvr = StringField(_l("CVR number"), validators=[required(), CVR()])
    name = StringField(_l("Your name"), filters=[strip], validators=[required(), max_length(200)])
    email = EmailField(
        _l("Your e-mail"), filters=[strip], validators=[required(), email_address(), max_length(254)]
    )
    password, confirm = _new_password_fields()
