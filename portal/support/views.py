"""The support console: staff find an account and work in it on the customer's behalf."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.auth import signup
from portal.calculator.operations import count_quote_requests_by_status
from portal.extensions import db, htmx
from portal.ids import get_or_404
from portal.models import Account, QuoteRequest, SupportSession
from portal.support import operations
from portal.support.forms import ImpersonateForm, NewAccountForm
from portal.tenancy import staff_required

bp = Blueprint("support", __name__, url_prefix="/support", template_folder="templates")


@bp.get("")
@staff_required
def index():
    query = request.args.get("q", "")
    accounts = operations.search_accounts(query)
    if htmx and htmx.target == "results":
        return render_template("support/_results.html", accounts=accounts, query=query)
    new_quotes = count_quote_requests_by_status().get("new", 0)
    return render_template("support/index.html", accounts=accounts, query=query, new_quotes=new_quotes)


@bp.route("/new-account", methods=["GET", "POST"])
@staff_required
def new_account():
    """Create a customer account and invite its owner; from a quote request, the account carries it."""
    quote_id = request.values.get("quote_id") or request.args.get("quote") or ""
    quote = get_or_404(QuoteRequest, int(quote_id)) if quote_id.isdigit() else None
    if request.method == "GET" and quote is not None:
        form = NewAccountForm(
            company=quote.company,
            cvr=quote.cvr,
            email=quote.email,
            language=quote.language,
            quote_id=quote.id,
        )
    else:
        form = NewAccountForm()
    if form.validate_on_submit():
        company = signup.Company(form.company.data, form.cvr.data, form.email.data, form.language.data)
        try:
            invitation = signup.create_and_invite(company, current_user._get_current_object(), quote)
        except signup.SignupError as refusal:
            getattr(form, refusal.field).errors.append(str(refusal))
        else:
            flash(
                _(
                    "%(account)s is created. %(email)s has been invited as its owner.",
                    account=invitation.account.name,
                    email=invitation.email,
                ),
                "success",
            )
            return redirect(url_for("support.account", account_id=invitation.account_id))
    status = 400 if form.is_submitted() else 200
    return render_template("support/new_account.html", form=form, quote=quote), status


@bp.get("/accounts/<int:account_id>")
@staff_required
def account(account_id):
    return _render_account(get_or_404(Account, account_id), ImpersonateForm())


def _render_account(account, form, status=200):
    sessions = db.session.scalars(
        select(SupportSession)
        .where(SupportSession.account_id == account.id)
        .order_by(SupportSession.started_at.desc())
        .limit(20)
    ).all()
    return render_template("support/account.html", account=account, sessions=sessions, form=form), status


@bp.post("/accounts/<int:account_id>/impersonate")
@staff_required
def impersonate(account_id):
    account = get_or_404(Account, account_id)
    form = ImpersonateForm()
    if not form.validate():
        return _render_account(account, form, status=400)
    operations.start_impersonation(current_user, account, form.reason.data)
    flash(_("You are now working in %(account)s. Every request is logged.", account=account.name), "info")
    return redirect(url_for("main.dashboard"))


@bp.post("/impersonation/stop")
@staff_required
def stop():
    support_session = g.get("support_session")
    operations.stop_impersonation()
    flash(_("Support access has ended."), "info")
    if support_session is None:
        return redirect(url_for("support.index"))
    return redirect(url_for("support.account", account_id=support_session.account_id))
