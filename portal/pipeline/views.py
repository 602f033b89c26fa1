"""The transfer log: what happened to each order, filtered by status; each transfer's steps; retry."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.extensions import db
from portal.models import TRANSFER_STATUSES, Transfer
from portal.pipeline import operations
from portal.tenancy import account_required, current_account, get_owned_or_404

bp = Blueprint("transfers", __name__, url_prefix="/transfers", template_folder="templates")

STATUS_LABELS = {
    "pending": _l("Queued"),
    "running": _l("Running"),
    "done": _l("Done"),
    "skipped": _l("Skipped"),
    "waiting": _l("Waiting"),
    "needs_attention": _l("Needs attention"),
}
ERROR_LABELS = {
    "configuration": _l("Configuration"),
    "transient": _l("Temporarily unavailable"),
    "totals_differ": _l("Totals differ"),
}
KIND_LABELS = {"invoice": _l("Invoice"), "credit_note": _l("Credit note")}
PAGE_SIZE = 200


@bp.get("")
@account_required
def index():
    status = request.args.get("status", "")
    query = select(Transfer).where(Transfer.account_id == current_account().id)
    if status in TRANSFER_STATUSES:
        query = query.where(Transfer.status == status)
    transfers = db.session.scalars(query.order_by(Transfer.id.desc()).limit(PAGE_SIZE)).all()
    return render_template(
        "transfers/index.html",
        transfers=transfers,
        status=status,
        statuses=STATUS_LABELS,
        errors=ERROR_LABELS,
        kinds=KIND_LABELS,
    )


@bp.get("/<int:transfer_id>")
@account_required
def detail(transfer_id):
    transfer = get_owned_or_404(Transfer, transfer_id)
    return render_template(
        "transfers/detail.html",
        transfer=transfer,
        statuses=STATUS_LABELS,
        errors=ERROR_LABELS,
        kinds=KIND_LABELS,
    )


@bp.post("/<int:transfer_id>/retry")
@account_required
def retry(transfer_id):
    transfer = get_owned_or_404(Transfer, transfer_id)
    if transfer.status in ("needs_attention", "pending", "waiting"):
        operations.retry(transfer)
        flash(_("The transfer is queued again."), "success")
    else:
        flash(_("Only transfers that are not done can be retried."), "error")
    return redirect(url_for(".detail", transfer_id=transfer.id))
