"""The transfer log: what happened to each order, filtered and paged; each transfer's steps with live status;
retry one or every matching one; and the dry-run preview of the invoice an order would become."""

import logging

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_htmx import make_response
from sqlalchemy import select

from portal.connectors.errors import ConnectorError
from portal.extensions import db, htmx
from portal.i18n import system_name
from portal.ids import whole_number
from portal.models import SourceLink, Transfer, TransferUndo
from portal.pipeline import counts, failures, messages, notifications, retries, undo
from portal.pipeline import preview as dry_run
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.filters import TransferFilters, transfer_page
from portal.pipeline.forms import (
    AFTERWARDS_LABELS,
    ERROR_LABELS,
    STATUS_LABELS,
    PreviewForm,
    TransferFilterForm,
    UndoForm,
)
from portal.pipeline.overview import account_source_links
from portal.tenancy import account_required, current_account, get_owned_or_404

log = logging.getLogger(__name__)
bp = Blueprint("transfers", __name__, url_prefix="/transfers", template_folder="templates")
# {{ transfer|transfer_message }}: why it needs attention / was skipped / waits, in the reader's language
bp.add_app_template_filter(messages.shown, "transfer_message")
# {{ n|shown_count }}: a count as the reader writes it, "over 1.000" when capped (pipeline.counts); not
# "count", which is Jinja's own (the length of a list)
bp.add_app_template_filter(counts.shown, "shown_count")
# {{ reason|translated }}: an engine reason or warning (or any msgid) in the reader's language
bp.add_app_template_filter(messages.translated, "translated")
bp.add_app_template_filter(messages.log_text, "log_text")
bp.add_app_template_filter(
    lambda state: messages.translated(pipeline_settings.STATE_NAMES.get(state, state)), "shop_state"
)

KIND_LABELS = {"invoice": _l("Invoice"), "credit_note": _l("Credit note")}
LINE_KIND_LABELS = {
    "goods": _l("Goods"),
    "freight": _l("Shipping"),
    "fee": _l("Fee"),
    "discount": _l("Discount"),
    "gift_card": _l("Gift card"),
    "refund": _l("Refund"),
    "rounding": _l("Rounding"),
}
ZONE_LABELS = {"domestic": _l("Denmark"), "eu": _l("EU"), "world": _l("Outside the EU")}
DOCUMENT_LABELS = {key: _l(name) for key, name in dry_run.DOCUMENT_NAMES.items()}
MATCH_FIELD_LABELS = {
    "email": _l("the e-mail address"),
    "vat_number": _l("the VAT number"),
    "ean": _l("the EAN number"),
    "customer_number": _l("the customer number"),
}
# The step log's steps and outcomes (TransferLog.step / .outcome)
STEP_LABELS = {
    "decide": _l("Decision"),
    "customer": _l("Customer"),
    "products": _l("Products"),
    "order": _l("Order"),
    "draft": _l("Draft"),
    "book": _l("Booking"),
    "payment": _l("Payment"),
    "mail": _l("Invoice mail"),
    "done": _l("Done"),
    "error": _l("Error"),
    "retry": _l("Retry"),
    "watchdog": _l("Restarted"),
    "undo": _l("Undo"),
}
OUTCOME_LABELS = {
    "ok": _l("OK"),
    "reused": _l("Already there"),
    "skipped": _l("Skipped"),
    "waiting": _l("Waiting"),
    "error": _l("Error"),
    "sending": _l("Sending"),
    "uncertain": _l("Uncertain"),
}
PAGE_SIZE = 50  # rows per page of the log: rendering, not the query, is what a page costs
LIVE = ("pending", "running")  # a transfer in these states is polled until it finishes


def _translated(labels: dict) -> dict:
    """Lazy labels translated once per request, not once per row of the log."""
    return {key: str(label) for key, label in labels.items()}


def _labels() -> dict:
    return {
        "statuses": _translated(STATUS_LABELS),
        "errors": _translated(ERROR_LABELS),
        "kinds": _translated(KIND_LABELS),
        "steps": _translated(STEP_LABELS),
        "outcomes": _translated(OUTCOME_LABELS),
        "live": LIVE,
        "retry_statuses": retries.RETRYABLE,
        "retry_effect": lambda transfer: messages.render(retries.retry_effect(transfer).as_dict()),
        "posted_nothing": retries.posted_nothing,
        "undo_history": undo.history,
        "undo_refusal": lambda transfer: (
            messages.render(p.as_dict()) if (p := undo.refusal(transfer)) else None
        ),
        "afterwards_labels": _translated(AFTERWARDS_LABELS),
        "undo_message": lambda stopped: messages.render(stopped.message) if stopped.message else "",
    }


def _source_links():
    return account_source_links(current_account().id)


def _int_arg(name: str) -> int | None:
    return whole_number(request.args.get(name))


# --- the log -----------------------------------------------------------------------------------------------


@bp.get("")
@account_required
def index():
    account = current_account()
    filters = TransferFilters.from_args(request.args)
    source_links = _source_links()
    page = transfer_page(
        account.id, filters, before=_int_arg("before"), after=_int_arg("after"), size=PAGE_SIZE
    )
    context = {
        "page": page,
        "filters": filters,
        "form": TransferFilterForm(request.args, source_links),
        "retryable": counts.capped_count(retries.retryable(account, filters)),  # a hint: capped
        "several_shops": len(source_links) > 1,
        **_labels(),
    }
    if htmx and htmx.target == "transfer-table" and not htmx.history_restore_request:
        response = make_response(render_template("transfers/_table.html", **context))
    else:
        response = make_response(render_template("transfers/index.html", **context))
    response.vary.add("HX-Request")
    return response


@bp.get("/<int:transfer_id>")
@account_required
def detail(transfer_id):
    transfer = get_owned_or_404(Transfer, transfer_id)
    return render_template(
        "transfers/detail.html",
        transfer=transfer,
        can_preview=dry_run.can_preview(transfer),
        system=system_name(transfer.source_link.setup.connection.system),
        currency=notifications.sale_currency(transfer),
        **_labels(),
    )


@bp.get("/<int:transfer_id>/row")
@account_required
def row(transfer_id):
    """One row of the log, polled while the transfer is queued or running (the row stops polling itself
    once it is finished: the row rendered then has no trigger)."""
    transfer = get_owned_or_404(Transfer, transfer_id)
    several = request.args.get("shops") == "1"
    return render_template("transfers/_row.html", t=transfer, several_shops=several, **_labels())


@bp.get("/<int:transfer_id>/live")
@account_required
def live(transfer_id):
    """The detail page's status and steps, polled the same way."""
    transfer = get_owned_or_404(Transfer, transfer_id)
    system = system_name(transfer.source_link.setup.connection.system)
    currency = notifications.sale_currency(transfer)
    return render_template(
        "transfers/_live.html", transfer=transfer, system=system, currency=currency, **_labels()
    )


@bp.post("/<int:transfer_id>/retry")
@account_required
def retry(transfer_id):
    transfer = get_owned_or_404(Transfer, transfer_id)
    if transfer.status in retries.RETRYABLE:
        retries.retry(transfer)
        flash(_("The transfer is queued again."), "success")
    else:
        flash(_("Only transfers that are not done can be retried."), "error")
    return redirect(url_for(".detail", transfer_id=transfer.id))


@bp.post("/<int:transfer_id>/leave-out")
@account_required
def leave_out(transfer_id):
    transfer = get_owned_or_404(Transfer, transfer_id)
    if retries.leave_out(transfer):
        flash(_("The transfer is left out: it will not be transferred."), "success")
    else:
        flash(_("Only a transfer that has posted nothing yet can be left out."), "error")
    return redirect(url_for(".detail", transfer_id=transfer.id))


def _confirm_retry(filters: TransferFilters):
    account = current_account()
    source_link = None
    if filters.source_link_id:
        source_link = db.session.scalar(
            select(SourceLink).where(
                SourceLink.id == filters.source_link_id, SourceLink.account_id == account.id
            )
        )
    return render_template(
        "transfers/retry_confirm.html",
        filters=filters,
        count=retries.count_retryable(account, filters),  # exact: the person confirms this many
        source_link=source_link,
        **_labels(),
    )


@bp.get("/retry")
@account_required
def confirm_retry_matching():
    """How many not-done transfers match the log's filters, to confirm (a page: reloading it works)."""
    return _confirm_retry(TransferFilters.from_args(request.args))


@bp.post("/retry")
@account_required
def retry_matching():
    """Queue again every not-done transfer matching the log's filters (with `confirmed`; without it, the
    count to confirm, as the GET shows it)."""
    account = current_account()
    filters = TransferFilters.from_args(request.form)
    if request.form.get("confirmed") != "1":
        return _confirm_retry(filters)
    count = retries.retry_matching(account, filters)
    if count:
        flash(_("%(count)s transfers are queued again.", count=count), "success")
    else:
        flash(_("No transfers matched that can be queued again."), "info")
    return redirect(url_for(".index", **filters.args()))


# --- undo ("Fortryd overførsel") -------------------------------------------------------------------------


def _undo_page(transfer: Transfer, form: UndoForm, refused=None, status: int = 200):
    system = system_name(transfer.source_link.setup.connection.system)
    page = render_template(
        "transfers/undo_confirm.html",
        transfer=transfer,
        form=form,
        system=system,
        currency=notifications.sale_currency(transfer),
        refused=messages.render(refused.as_dict()) if refused else None,
        **_labels(),
    )
    return page, status


@bp.route("/<int:transfer_id>/undo", methods=["GET", "POST"])
@account_required
def undo_transfer(transfer_id):
    """What an undo will do, to confirm with what follows it (GET); the undo itself (POST). A transfer that
    cannot be undone says why; bad input changes nothing."""
    transfer = get_owned_or_404(Transfer, transfer_id)
    form = UndoForm(request.form if request.method == "POST" else None)
    refused = undo.refusal(transfer)
    if request.method == "GET" or refused is not None:
        return _undo_page(transfer, form, refused, 200 if request.method == "GET" else 409)
    if not form.validate():
        return _undo_page(transfer, form, status=400)
    try:
        undo.request(transfer, form.afterwards.data, form.reason.data or "")
    except undo.AlreadyUndoing:
        return _undo_page(transfer, form, undo.refusal(transfer), 409)
    flash(_("The transfer is being undone."), "success")
    return redirect(url_for(".detail", transfer_id=transfer.id))


@bp.post("/undos/<int:undo_id>/retry")
@account_required
def retry_undo(undo_id):
    stopped = get_owned_or_404(TransferUndo, undo_id)
    if undo.retry(stopped):
        flash(_("The undo is queued again."), "success")
    else:
        flash(_("Only an undo that stopped can be tried again."), "error")
    return redirect(url_for(".detail", transfer_id=stopped.transfer_id))


def _confirm_undo(filters: TransferFilters, form: UndoForm, status: int = 200):
    figures = undo.count_and_total(current_account(), filters)  # exact: the person confirms these
    page = render_template(
        "transfers/undo_matching.html",
        filters=filters,
        form=form,
        count=figures.count,
        totals=figures.totals,
        unknown=figures.unknown,
        **_labels(),
    )
    return page, status


@bp.get("/undo")
@account_required
def confirm_undo_matching():
    """How many done transfers matching the log's filters can be undone, and their total (a page)."""
    return _confirm_undo(TransferFilters.from_args(request.args), UndoForm())


@bp.post("/undo")
@account_required
def undo_matching():
    """Undo every done transfer matching the filters (with `confirmed`; without it, the confirmation)."""
    account = current_account()
    filters = TransferFilters.from_args(request.form)
    form = UndoForm(request.form)
    if request.form.get("confirmed") != "1" or not form.validate():
        return _confirm_undo(filters, form, 400 if request.form.get("confirmed") == "1" else 200)
    try:
        count = undo.request_matching(account, filters, form.afterwards.data, form.reason.data or "")
    except undo.AlreadyUndoing:
        flash(
            _("Some of these transfers were being undone a moment ago: nothing was changed; look again."),
            "error",
        )
        return redirect(url_for(".confirm_undo_matching", **filters.args()))
    if count:
        flash(_("%(count)s transfers are being undone.", count=count), "success")
    else:
        flash(_("No transfers matched that can be undone."), "info")
    return redirect(url_for(".index", **filters.args()))


# --- the dry-run preview ---------------------------------------------------------------------------------


def _preview_context(make_preview, source_link: SourceLink):
    """Run a preview; a problem the person can act on becomes a message instead of an error page."""
    try:
        return {"preview": make_preview(), "problem": None}
    except dry_run.OrderNotFound as exc:
        problem = _("The shop has no order with the number or id %(number)s.", number=str(exc))
    except ConnectorError as exc:  # the shop's: reading the order
        problem = _(
            "The shop did not answer as expected: %(message)s", message=getattr(exc, "message", str(exc))
        )
    except Exception as exc:  # what a transfer of this order would stop at, said the same way
        kind, reason = failures.explain(exc, source_link.setup.connection.system)
        if kind == failures.UNEXPECTED:
            log.exception("preview failed")
        problem = messages.render(reason.as_dict())
    return {"preview": None, "problem": problem}


def _plan_labels(source_link: SourceLink) -> dict:
    return {
        "line_kinds": LINE_KIND_LABELS,
        "zones": ZONE_LABELS,
        "documents": DOCUMENT_LABELS,
        "match_fields": MATCH_FIELD_LABELS,
        "system": system_name(source_link.setup.connection.system),
        "setup": source_link.setup,
        "named": pipeline_settings.template_names(source_link.setup),
    }


@bp.get("/preview")
@account_required
def preview():
    """Choose a shop and an order; the order is read from the shop and the invoice it would become shown.
    Nothing is written: not here, not in the accounting system."""
    source_links = _source_links()
    form = PreviewForm(request.args, source_links)
    context = {"form": form, "preview": None, "problem": None, "source_link": None}
    if request.args and form.validate():
        source_link = get_owned_or_404(SourceLink, int(form.source_link.data))
        context["source_link"] = source_link
        context.update(_plan_labels(source_link))
        context.update(
            _preview_context(
                lambda: dry_run.preview_order(
                    source_link, dry_run.find_shop_order(source_link, form.order.data)
                ),
                source_link,
            )
        )
    elif whole_number(request.args.get("source_link")) is not None:
        # another account's: 404
        get_owned_or_404(SourceLink, whole_number(request.args["source_link"]))
    return render_template("transfers/preview.html", source_links=source_links, **context)


@bp.get("/<int:transfer_id>/preview")
@account_required
def transfer_preview(transfer_id):
    """The invoice this transfer's stored order payload becomes with today's settings."""
    transfer = get_owned_or_404(Transfer, transfer_id)
    if not dry_run.can_preview(transfer):
        flash(_("Only an order's invoice can be previewed."), "error")
        return redirect(url_for(".detail", transfer_id=transfer.id))
    source_link = transfer.source_link
    context = {"transfer": transfer, "source_link": source_link, **_plan_labels(source_link)}
    context.update(_preview_context(lambda: dry_run.preview_transfer(transfer), source_link))
    return render_template("transfers/transfer_preview.html", **context)
