"""The front door: where a visitor lands, the dashboard, language choice and a health check."""

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from portal.account import changelog
from portal.extensions import db
from portal.i18n import LANGUAGE_SESSION_KEY
from portal.main.checklist import next_step, onboarding
from portal.models import LANGUAGES
from portal.pipeline import completeness, undo
from portal.pipeline.forms import ERROR_LABELS, STATUS_LABELS
from portal.pipeline.overview import account_overview
from portal.redis_client import get_redis
from portal.setups import drift
from portal.setups.operations import account_setups
from portal.tenancy import account_required, current_account
from portal.web import safe_next

bp = Blueprint("main", __name__, template_folder="templates")


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_account() is None:
        return redirect(url_for("support.index"))
    return redirect(url_for("main.dashboard"))


@bp.get("/dashboard")
@account_required
def dashboard():
    account = current_account()
    overview = account_overview(account)
    steps = onboarding(account)
    setups = [setup for setup in account_setups(account) if setup.selected or not setup.unusable_reason]
    return render_template(
        "main/dashboard.html",
        account=account,
        steps=steps,
        next_step=next_step(steps),
        # An unusable organisation never set up (made before connect refused them) is noise; one that
        # became unusable after it was set up stays, marked, so it does not vanish.
        setups=setups,
        drift=[(setup, found) for setup in setups if (found := drift.summary(setup))],
        # the newest completeness report of each shop link: "Alt stemmer for …" or what does not
        completeness=[
            (shop, completeness.summary(report)) for shop, report in completeness.account_reports(account.id)
        ],
        shops=overview.source_links,
        overview=overview,
        statuses=STATUS_LABELS,
        errors=ERROR_LABELS,
        support_visits=changelog.support_visits(account.id),
        stopped_undos=undo.stopped(account.id),
    )


@bp.post("/language")
def set_language():
    language = request.form.get("language")
    if language in LANGUAGES:
        session[LANGUAGE_SESSION_KEY] = language
        if current_user.is_authenticated:
            current_user.language = language
            db.session.commit()
    return redirect(safe_next(request.form.get("next")) or url_for("main.index"))


@bp.get("/healthz")
def healthz():
    """For load balancers: the database and Redis both answer."""
    db.session.execute(text("SELECT 1"))
    get_redis().ping()
    return jsonify(status="ok")
