from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal.auth import operations, ratelimit, signup, tokens
from portal.auth.forms import (
    AcceptInvitationForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
)
from portal.i18n import LANGUAGE_SESSION_KEY, select_locale
from portal.support.operations import stop_impersonation
from portal.tenancy import is_impersonating, not_while_impersonating
from portal.web import safe_next

bp = Blueprint("auth", __name__, template_folder="templates")


def _start_session(user) -> None:
    language = session.get(LANGUAGE_SESSION_KEY)
    session.clear()  # a fresh session on login: no fixation
    if language:
        session[LANGUAGE_SESSION_KEY] = language
    operations.start_session(user)
    login_user(user)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = operations.authenticate(form.email.data, form.password.data, request.remote_addr or "-")
        except operations.TooManyAttempts as refusal:
            flash(str(refusal), "error")
            return render_template("auth/login.html", form=form), 429
        except operations.AuthError as refusal:
            flash(str(refusal), "error")
            return render_template("auth/login.html", form=form), 401
        _start_session(user)
        return redirect(safe_next(request.args.get("next")) or url_for("main.index"))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        if is_impersonating():
            stop_impersonation()
        operations.end_session(current_user._get_current_object())
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@not_while_impersonating
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            operations.change_password(current_user, form.current_password.data, form.password.data)
        except operations.AuthError as refusal:
            form.current_password.errors.append(str(refusal))
        else:
            login_user(current_user._get_current_object())  # the session id carries the password fingerprint
            flash(_("Your password is changed."), "success")
            return redirect(url_for("account.profile"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        operations.request_password_reset(form.email.data)
        flash(_("If the address belongs to a user, a link to choose a new password is on its way."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    user = tokens.user_from_reset_token(token)
    if user is None:
        return render_template("auth/link_expired.html"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        operations.reset_password(user, form.password.data)
        flash(_("Your password is changed. Log in with the new one."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, user=user)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token):
    if current_user.is_authenticated:
        abort(403)
    invitation = tokens.invitation_from_token(token)
    if invitation is None:
        return render_template("auth/link_expired.html"), 400
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            user = operations.accept_invitation(invitation, form.name.data, form.password.data)
        except operations.AuthError as refusal:
            flash(str(refusal), "error")
        else:
            _start_session(user)
            flash(_("Welcome to %(account)s.", account=invitation.account.name), "success")
            return redirect(url_for("main.index"))
    return render_template("auth/accept_invitation.html", form=form, invitation=invitation)


@bp.route("/signup", methods=["GET", "POST"])
def sign_up():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = SignupForm()
    if form.validate_on_submit():
        wait = ratelimit.signup_hit(request.remote_addr or "-")
        if wait:
            flash(
                _("Too many sign-ups from here. Try again in %(minutes)s minutes.", minutes=-(-wait // 60)),
                "error",
            )
            return render_template("auth/signup.html", form=form), 429
        company = signup.Company(form.company.data, form.cvr.data, form.email.data, select_locale())
        try:
            user = signup.sign_up(company, form.name.data, form.password.data)
        except signup.SignupError as refusal:
            getattr(form, refusal.field).errors.append(str(refusal))
            return render_template("auth/signup.html", form=form), 400
        _start_session(user)
        flash(
            _(
                "Welcome to Bogbro. We have sent a link to %(email)s: open it to confirm your address.",
                email=user.email,
            ),
            "success",
        )
        return redirect(url_for("main.dashboard"))
    return render_template("auth/signup.html", form=form), 400 if form.is_submitted() else 200


@bp.get("/signup/confirm/<token>")
def confirm_email(token):
    user = tokens.user_from_confirmation_token(token)
    if user is None:
        return render_template("auth/link_expired.html"), 400
    if signup.confirm_email(user):
        flash(_("Your e-mail address is confirmed."), "success")
    else:
        flash(_("Your e-mail address was already confirmed."), "info")
    return redirect(url_for("main.index"))


@bp.post("/signup/confirm/resend")
@login_required
@not_while_impersonating
def resend_confirmation():
    user = current_user._get_current_object()
    if user.email_confirmed_at is None:
        if ratelimit.confirmation_resend_allowed(user.id):
            signup.resend_confirmation(user)
            flash(_("A new link is on its way to %(email)s.", email=user.email), "info")
        else:
            flash(_("A link was sent less than a minute ago. Look in your inbox (and spam folder)."), "info")
    return redirect(url_for("main.dashboard"))
