"""Account settings: company details, subscription, own profile, members and invitations, support access,
audit log."""

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.account import changelog, operations, plan
from portal.account.forms import AccountForm, InviteForm, ProfileForm
from portal.auth import operations as auth_operations
from portal.calculator import forms as calculator_forms
from portal.calculator import pricing
from portal.calculator.operations import load_catalogue, system_names
from portal.extensions import db
from portal.i18n import language_of
from portal.models import AuditEvent, Invitation, SupportSession, User, utcnow
from portal.tenancy import (
    account_required,
    current_account,
    get_owned_or_404,
    is_impersonating,
    not_while_impersonating,
    owner_required,
)

bp = Blueprint("account", __name__, url_prefix="/settings", template_folder="templates")

PAGE_SIZE = 100


def _can_manage() -> bool:
    return is_impersonating() or current_user.is_owner


@bp.route("", methods=["GET", "POST"])
@account_required
def settings():
    account = current_account()
    form = AccountForm(obj=account)
    if request.method == "POST":
        if not _can_manage():
            abort(403)
        if form.validate():
            try:
                changes = operations.update_account(account, form.name.data, form.cvr.data)
            except operations.AccountError as refusal:
                form.cvr.errors.append(str(refusal))
            else:
                flash(_("Saved.") if changes else _("Nothing was changed."), "success")
                return redirect(url_for("account.settings"))
    return render_template(
        "account/settings.html",
        form=form,
        account=account,
        can_manage=_can_manage(),
        quote=account.quote_request,  # the selection and price the account was made from, if any
        names=system_names() if account.quote_request else {},
    )


@bp.get("/subscription")
@account_required
def subscription():
    return _render_subscription()


def _render_subscription(chosen=None, error=None, status=200):
    account = current_account()
    catalogue = load_catalogue(language_of(None))
    selection = plan.current_selection(account)
    chosen = chosen or selection or pricing.Selection()
    today = datetime.now(plan.COPENHAGEN).date()
    documents = plan.documents_this_month(account, today)
    return (
        render_template(
            "account/subscription.html",
            catalogue=catalogue,
            outlook=plan.outlook(catalogue, selection, documents, today) if selection else None,
            documents=documents,
            chosen=chosen,
            # the tier that covers the plan's volume (a quote's 300 orders: the tier up to 500)
            chosen_tier=pricing.tier_for(catalogue, chosen.orders),
            error=error,
            can_change=current_user.is_owner and not is_impersonating(),
            kind_labels=calculator_forms.KIND_LABELS,
        ),
        status,
    )


@bp.post("/subscription")
@owner_required
@not_while_impersonating
def change_subscription():
    """A change of plan is the owner's own choice, never automatic nor support's."""
    account = current_account()
    catalogue = load_catalogue(language_of(None))
    selection, _moved = calculator_forms.selection_from_args(request.form, catalogue)
    try:
        changes = plan.change_plan(account, catalogue, selection)
    except plan.PlanError as refusal:
        return _render_subscription(chosen=selection, error=str(refusal), status=400)
    flash(_("Your subscription is changed.") if changes else _("Nothing was changed."), "success")
    return redirect(url_for("account.subscription"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        operations.update_profile(current_user, form.name.data, form.language.data)
        flash(_("Saved."), "success")
        return redirect(url_for("account.profile"))
    return render_template("account/profile.html", form=form)


@bp.get("/members")
@account_required
def members():
    return _render_members(InviteForm())


def _render_members(form, status=200):
    account = current_account()
    users = db.session.scalars(
        select(User).where(User.account_id == account.id, User.active).order_by(User.name)
    ).all()
    invitations = db.session.scalars(
        select(Invitation)
        .where(
            Invitation.account_id == account.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.created_at.desc())
    ).all()
    return (
        render_template(
            "account/members.html",
            form=form,
            users=users,
            invitations=invitations,
            can_manage=current_user.is_owner and not is_impersonating(),
        ),
        status,
    )


@bp.post("/members/invite")
@owner_required
@not_while_impersonating
def invite():
    form = InviteForm()
    if form.validate():
        try:
            auth_operations.invite_member(
                current_account(),
                current_user,
                form.email.data,
                form.role.data,
                form.language.data,
            )
        except auth_operations.AuthError as refusal:
            form.email.errors.append(str(refusal))
        else:
            flash(_("The invitation is sent to %(email)s.", email=form.email.data), "success")
            return redirect(url_for("account.members"))
    return _render_members(form, status=400)


@bp.post("/members/<int:user_id>/remove")
@owner_required
@not_while_impersonating
def remove_member(user_id):
    user = get_owned_or_404(User, user_id)
    try:
        operations.remove_member(current_account(), user, current_user)
    except operations.AccountError as refusal:
        flash(str(refusal), "error")
    else:
        flash(_("%(name)s no longer has access.", name=user.name), "success")
    return redirect(url_for("account.members"))


@bp.post("/invitations/<int:invitation_id>/revoke")
@owner_required
@not_while_impersonating
def revoke_invitation(invitation_id):
    invitation = get_owned_or_404(Invitation, invitation_id)
    if invitation.is_open:
        auth_operations.revoke_invitation(invitation)
        flash(_("The invitation to %(email)s is revoked.", email=invitation.email), "success")
    return redirect(url_for("account.members"))


@bp.get("/support-access")
@account_required
def support_access():
    sessions = db.session.scalars(
        select(SupportSession)
        .where(SupportSession.account_id == current_account().id)
        .order_by(SupportSession.started_at.desc())
        .limit(PAGE_SIZE)
    ).all()
    return render_template("account/support_access.html", sessions=sessions)


@bp.get("/support-access/<int:session_id>")
@account_required
def support_access_detail(session_id):
    support_session = get_owned_or_404(SupportSession, session_id)
    return render_template("account/support_access_detail.html", support_session=support_session)


@bp.get("/audit")
@account_required
def audit_log():
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.account_id == current_account().id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(PAGE_SIZE)
    ).all()
    return render_template("account/audit.html", entries=changelog.entries(events))
