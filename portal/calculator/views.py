"""The public price calculator (/priser), quote requests, and the staff's quote inbox and price-catalogue
editor in the support console."""

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_htmx import make_response
from wtforms.fields import SelectChoice

from portal.auth.signup import account_made_from
from portal.calculator import forms, operations, pricing
from portal.extensions import htmx
from portal.ids import get_or_404, whole_number
from portal.models import (
    QUOTE_STATUSES,
    SYSTEM_KINDS,
    PriceAddOn,
    PriceFeature,
    PriceFeatureNote,
    PriceRule,
    PriceSystem,
    PriceTier,
    QuoteRequest,
)
from portal.tenancy import staff_required

bp = Blueprint("calculator", __name__, template_folder="templates")


def _language() -> str:
    return str(get_locale() or "da")


@bp.context_processor
def labels() -> dict:
    return {
        "kind_labels": forms.KIND_LABELS,
        "status_labels": forms.STATUS_LABELS,
        "quote_kind_labels": forms.QUOTE_KIND_LABELS,
        "outcome_labels": forms.OUTCOME_LABELS,
    }


# --- the public calculator ------------------------------------------------------------------------------


def _calculator_context(catalogue, breakdown, vat: bool) -> dict:
    selection = breakdown.selection
    stops = pricing.slider_stops(catalogue.tiers)
    return {
        "catalogue": catalogue,
        "selection": selection,
        "breakdown": breakdown,
        "vat": vat,
        "stops": stops,
        "slider_position": pricing.slider_position(stops, selection.orders),
        "kinds": [
            (kind, forms.KIND_LABELS[kind], [s for s in catalogue.systems if s.kind == kind])
            for kind in SYSTEM_KINDS
        ],
        "flags": {
            next(iter(rule.systems)): rule.outcome for rule in catalogue.rules if len(rule.systems) == 1
        },
        "canonical": _canonical(selection, vat),
        "request_url": url_for("calculator.request_quote") + "?" + forms.query_string(selection),
        "query_string": forms.query_string,
    }


def _canonical(selection, vat: bool) -> str:
    return url_for("calculator.index") + "?" + forms.query_string(selection, vat="incl" if vat else None)


@bp.get("/priser")
def index():
    catalogue = operations.load_catalogue(_language())
    selection, moved = forms.selection_from_args(request.args, catalogue)
    vat = request.args.get("vat") == "incl"
    partial = bool(htmx) and not htmx.history_restore_request
    if not partial and ("orders_was" in request.args or "slider" in request.args):
        # A recompute without JavaScript: land on the clean address, which can be shared or bookmarked.
        return redirect(_canonical(selection, vat))
    context = _calculator_context(catalogue, pricing.price(catalogue, selection), vat)
    if partial:
        body = render_template("calculator/_result.html", oob=True, moved=moved, **context)
        response = make_response(body, push_url=context["canonical"])
    else:
        response = make_response(render_template("calculator/index.html", **context))
    response.vary.add("HX-Request")
    return response


@bp.route("/priser/tilbud", methods=["GET", "POST"])
def request_quote():
    """Request a quote (priced), talk to us (special), or be notified (unavailable)."""
    language = _language()
    catalogue = operations.load_catalogue(language)
    selection, _moved = forms.selection_from_args(request.args, catalogue)
    breakdown = pricing.price(catalogue, selection)
    kind = operations.request_kind(breakdown)
    if kind is None:
        flash(_("Choose the systems you want to connect first."), "info")
        return redirect(_canonical(selection, False))
    form = forms.NotifyForm() if kind == "notify" else forms.QuoteForm()
    status = 200
    if form.validate_on_submit():
        contact = {name: form[name].data for name in forms.CONTACT_FIELDS if name in form}
        try:
            operations.submit_request(
                breakdown,
                contact,
                ip=request.remote_addr or "-",
                language=language,
                honeypot=form.website.data or "",
            )
        except operations.TooManyRequests as refusal:
            flash(str(refusal), "error")
            status = 429
        else:
            return redirect(url_for("calculator.thanks", kind=kind))
    elif request.method == "POST":
        status = 400
    context = _calculator_context(catalogue, breakdown, vat=False)
    return render_template("calculator/request.html", form=form, kind=kind, **context), status


@bp.get("/priser/tak")
def thanks():
    kind = request.args.get("kind")
    return render_template(
        "calculator/thanks.html", kind=kind if kind in operations.REQUEST_KIND.values() else "quote"
    )


# --- staff: the quote inbox ------------------------------------------------------------------------------


@bp.get("/support/quotes")
@staff_required
def quotes():
    status = request.args.get("status")
    status = status if status in QUOTE_STATUSES else None
    context = {
        "quotes": operations.list_quote_requests(status),
        "counts": operations.count_quote_requests_by_status(),
        "status": status,
        "names": operations.system_names(),
    }
    template = (
        "calculator/_quote_list.html" if htmx and htmx.target == "quote-list" else "calculator/quotes.html"
    )
    return render_template(template, **context)


@bp.route("/support/quotes/<int:quote_id>", methods=["GET", "POST"])
@staff_required
def quote(quote_id):
    quote = get_or_404(QuoteRequest, quote_id)
    form = forms.QuoteStatusForm(obj=quote)
    if form.validate_on_submit():
        changes = operations.update_quote_request(quote, form.status.data, form.notes.data or "")
        flash(_("Saved.") if changes else _("Nothing was changed."), "success")
        return redirect(url_for("calculator.quote", quote_id=quote.id))
    selection = pricing.selection_from_json(quote.selection)
    return render_template(
        "calculator/quote.html",
        quote=quote,
        form=form,
        names=operations.system_names(),
        calculator_url=url_for("calculator.index") + "?" + forms.query_string(selection),
        account=account_made_from(quote),
    )


# --- staff: the price-catalogue editor -------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    model: type
    form: type
    title: str
    singular: str
    deletable: bool = False  # systems, add-ons and features are switched off instead


SECTIONS = {
    "systems": Section(PriceSystem, forms.SystemForm, _l("Systems"), _l("system")),
    "tiers": Section(PriceTier, forms.TierForm, _l("Volume tiers"), _l("volume tier"), deletable=True),
    "addons": Section(PriceAddOn, forms.AddOnForm, _l("Add-ons"), _l("add-on")),
    "features": Section(PriceFeature, forms.FeatureForm, _l("Features"), _l("feature")),
    "caveats": Section(PriceFeatureNote, forms.FeatureNoteForm, _l("Caveats"), _l("caveat"), deletable=True),
    "rules": Section(PriceRule, forms.RuleForm, _l("Combination rules"), _l("rule"), deletable=True),
}


PREFILL = ("system_id", "feature_id")


def _section(name: str) -> Section:
    if name not in SECTIONS:
        abort(404)
    return SECTIONS[name]


def _fill_choices(form) -> None:
    systems = operations.catalogue_rows(PriceSystem)
    system_choices = [SelectChoice(s.id, f"{s.name} ({forms.KIND_LABELS[s.kind]})") for s in systems]
    if "requires_system_id" in form:
        form.requires_system_id.choices = [SelectChoice("", _("(none)")), *system_choices]
    if "requires_addon_id" in form:
        addons = operations.catalogue_rows(PriceAddOn)
        form.requires_addon_id.choices = [
            SelectChoice("", _("Always")),
            *(SelectChoice(a.id, a.name) for a in addons),
        ]
    if "system_id" in form:
        form.system_id.choices = system_choices
    if "other_system_id" in form:
        form.other_system_id.choices = [SelectChoice("", _("(none: this system alone)")), *system_choices]
    if "feature_id" in form:
        form.feature_id.choices = [
            SelectChoice(f.id, f.name) for f in operations.catalogue_rows(PriceFeature)
        ]


def _values(form) -> dict:
    values = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
    if "requires_kind" in values:
        values["requires_kind"] = values["requires_kind"] or None
    return values


@bp.get("/support/catalogue")
@staff_required
def catalogue():
    return redirect(url_for("calculator.catalogue_section", section="systems"))


@bp.get("/support/catalogue/<section>")
@staff_required
def catalogue_section(section):
    entry = _section(section)
    return render_template(
        "calculator/catalogue.html",
        section=section,
        entry=entry,
        sections=SECTIONS,
        rows=operations.catalogue_rows(entry.model),
    )


@bp.route("/support/catalogue/<section>/new", methods=["GET", "POST"])
@bp.route("/support/catalogue/<section>/<int:item_id>", methods=["GET", "POST"])
@staff_required
def catalogue_item(section, item_id=None):
    entry = _section(section)
    item = None if item_id is None else get_or_404(entry.model, item_id)
    if item is not None:
        form = entry.form(obj=item)
    else:  # "add a caveat" from a system's page arrives with that system chosen
        form = entry.form(data={k: whole_number(request.args[k]) for k in PREFILL if k in request.args})
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            item, changes = operations.save_catalogue_item(entry.model, item, _values(form))
        except operations.CatalogueError as refusal:
            form[refusal.field].errors.append(str(refusal))
        else:
            flash(
                _("Saved. The calculator shows it now.") if changes else _("Nothing was changed."), "success"
            )
            return redirect(url_for("calculator.catalogue_section", section=section))
    status = 400 if request.method == "POST" else 200
    caveats = operations.caveats_of(item) if isinstance(item, PriceSystem) else []
    return render_template(
        "calculator/catalogue_item.html",
        section=section,
        entry=entry,
        sections=SECTIONS,
        item=item,
        form=form,
        caveats=caveats,
    ), status


@bp.post("/support/catalogue/<section>/<int:item_id>/delete")
@staff_required
def catalogue_delete(section, item_id):
    entry = _section(section)
    if not entry.deletable:
        abort(405)
    operations.delete_catalogue_item(get_or_404(entry.model, item_id))
    flash(_("Deleted. The calculator shows it now."), "success")
    return redirect(url_for("calculator.catalogue_section", section=section))


@bp.route("/support/catalogue/settings", methods=["GET", "POST"])
@staff_required
def catalogue_settings():
    form = forms.PriceSettingsForm(obj=operations.price_settings())
    if form.validate_on_submit():
        changes = operations.save_price_settings(_values(form))
        flash(_("Saved. The calculator shows it now.") if changes else _("Nothing was changed."), "success")
        return redirect(url_for("calculator.catalogue_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("calculator/catalogue_settings.html", form=form, sections=SECTIONS), status


@bp.get("/support/catalogue/log")
@staff_required
def catalogue_log():
    return render_template(
        "calculator/catalogue_log.html", events=operations.catalogue_changes(), sections=SECTIONS
    )
