"""The completeness report's pages ("Afstemning"): per shop link, the newest report with its findings and
fixes, and a form to check any period; a report being made is polled (HTMX) until it is done."""

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired

from portal.connectors.errors import ConnectorError
from portal.extensions import db
from portal.i18n import system_name
from portal.ids import whole_number
from portal.models import CompletenessReport, SourceLink
from portal.pipeline import completeness, completeness_fixes
from portal.pipeline.messages import render
from portal.pipeline.overview import account_source_links
from portal.tenancy import account_required, current_account, get_owned_or_404

bp = Blueprint("completeness", __name__, url_prefix="/completeness", template_folder="templates")

KIND_LABELS = {
    "missing": _l("Missing in the accounting system"),
    "duplicate": _l("More than one document"),
    "totals_differ": _l("Totals differ"),
    "unmatched": _l("Document without an order"),
    "refund_missing": _l("Refund without a credit note"),
    "credit_unmatched": _l("Credit note without a refund"),
    "unlinked": _l("In the accounting system, not linked to its transfer"),
}
FIX_LABELS = {
    "transfer": _l("Transfer now"),
    "retry": _l("Transfer now"),
    "refunds": _l("Transfer now"),
    "link": _l("Link to the document"),
}
STATUS_LABELS = {
    "skipped": _l("Skipped"),
    "needs_attention": _l("Needs attention"),
    "pending": _l("Being transferred"),
    "running": _l("Being transferred"),
    "waiting": _l("Waiting"),
    "done": _l("Transferred, but not found in the accounting system"),
}


class PeriodForm(FlaskForm):
    start = DateField(_l("From"), validators=[InputRequired()])
    end = DateField(_l("To"), validators=[InputRequired()])


def _labels() -> dict:
    return {
        "kinds": {k: str(v) for k, v in KIND_LABELS.items()},
        "fixes": {k: str(v) for k, v in FIX_LABELS.items()},
        "statuses": {k: str(v) for k, v in STATUS_LABELS.items()},
        "reason_of": completeness.shown_reason,
        "summary_of": completeness.summary,
        "error_of": lambda report: render(report.error) if report.error else "",
        "day_of": date.fromisoformat,  # the findings keep their days as ISO text (JSON)
    }


@bp.get("")
@account_required
def index():
    shops = account_source_links(current_account().id)
    reports = {shop.id: completeness.latest(shop) for shop in shops}
    return render_template("completeness/index.html", shops=shops, reports=reports, **_labels())


def _page(source_link: SourceLink, form: PeriodForm, status: int = 200):
    report = completeness.latest(source_link, done=False)
    system = system_name(source_link.setup.connection.system) if source_link.setup else ""
    html = render_template(
        "completeness/page.html",
        source_link=source_link,
        form=form,
        report=report,
        system=system,
        **_labels(),
    )
    return html, status


@bp.get("/<int:source_link_id>")
@account_required
def page(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    form = PeriodForm()
    if not form.is_submitted():
        form.end.data = completeness.today()
        form.start.data = form.end.data - timedelta(days=completeness.DAILY_DAYS)
    return _page(source_link, form)


@bp.post("/<int:source_link_id>")
@account_required
def start(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    form = PeriodForm()
    if not form.validate():
        return _page(source_link, form, 400)
    try:
        completeness.request(source_link, form.start.data, form.end.data)
    except completeness.PeriodError as exc:
        form.end.errors = [_(str(exc))]
        return _page(source_link, form, 400)
    flash(_("The report is being made: this page shows it when it is ready."), "success")
    return redirect(url_for(".page", source_link_id=source_link.id))


@bp.get("/report/<int:report_id>")
@account_required
def report(report_id):
    """The report, polled every 2 s while it is queued or running (the answer then stops asking)."""
    found = get_owned_or_404(CompletenessReport, report_id)
    system = system_name(found.source_link.setup.connection.system)
    return render_template(
        "completeness/_report.html", report=found, source_link=found.source_link, system=system, **_labels()
    )


@bp.post("/report/<int:report_id>/fix")
@account_required
def fix(report_id):
    """The fix of the report's line given in the form (`line`: its position in the report)."""
    found = get_owned_or_404(CompletenessReport, report_id)
    index = whole_number(request.form.get("line"))
    try:
        done = completeness_fixes.apply(found, -1 if index is None else index)
    except completeness_fixes.FixRefused as exc:
        db.session.rollback()
        flash(render(exc.message.as_dict()), "error")
    except ConnectorError as exc:
        db.session.rollback()
        flash(_("The fix could not be made: %(error)s", error=str(exc)), "error")
    else:
        flash(render(done.as_dict()), "success")
    return redirect(url_for(".page", source_link_id=found.source_link_id))
