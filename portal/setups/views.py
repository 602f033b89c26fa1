"""The setup wizard: connect an accounting system, pick organisations, fill the templates, activate."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.connectors import available_systems, get_system
from portal.connectors.errors import ConnectorError
from portal.connectors.evidence import unverified
from portal.extensions import htmx
from portal.models import AccountingSetup, Connection, Template
from portal.setups import drift, handshake, operations
from portal.setups.forms import ApiKeyForm
from portal.tenancy import account_required, current_account, get_owned_or_404, owner_required

bp = Blueprint("setups", __name__, url_prefix="/setup", template_folder="templates")
# The wizard names what no public source shows for the system being set up (docs/connectors/<system>.md).
bp.add_app_template_global(unverified, "unverified_calls")


def _system_or_404(system_key):
    try:
        return get_system(system_key)
    except LookupError:
        abort(404)


@bp.get("")
@account_required
def index():
    setups = operations.account_setups(current_account())
    systems = [(system, operations.real_connect_available(system.key)) for system in available_systems()]
    return render_template(
        "setups/index.html",
        setups=setups,
        systems=systems,
        sandbox_enabled=current_app.config["SANDBOX_ENABLED"],
    )


@bp.route("/connect/<system_key>", methods=["GET", "POST"])
@owner_required
def connect(system_key):
    system = _system_or_404(system_key)
    sandbox = request.values.get("sandbox") == "1"
    if sandbox and not current_app.config["SANDBOX_ENABLED"]:
        abort(404)
    if not sandbox and not operations.real_connect_available(system_key):
        flash(_("Bogbro is not yet registered with %(system)s on this server.", system=system.name), "error")
        return redirect(url_for(".index"))
    callback_url = url_for(".callback", system_key=system_key, _external=True)
    if system.connect == "api_key":
        form = ApiKeyForm()
        if form.validate_on_submit():
            params = {
                "api_id": form.api_id.data,
                "api_key": form.api_key.data,
                "api_secret": form.api_secret.data,
            }
            try:
                connection = operations.connect(current_account(), system_key, sandbox, params, callback_url)
            except operations.SetupError as refusal:
                form.api_key.errors.append(str(refusal))
            else:
                _flash_refused(connection)
                return redirect(url_for(".connection", connection_id=connection.id))
        return render_template(
            "setups/connect_keys.html",
            form=form,
            system=system,
            sandbox=sandbox,
            demo_keys=_sandbox_demo_keys(system_key) if sandbox else None,
        )
    return redirect(handshake.start(system_key, sandbox))


@bp.get("/connect/<system_key>/callback")
@owner_required
def callback(system_key):
    system = _system_or_404(system_key)
    try:
        attempt = handshake.finish(system_key, system.name, request.args)
    except handshake.HandshakeRefused as refusal:
        flash(str(refusal), "error")
        return redirect(url_for(".index"))
    if attempt.params.get("error"):
        flash(
            _(
                "%(system)s did not grant access (%(reason)s).",
                system=system.name,
                reason=attempt.params["error"],
            ),
            "error",
        )
        return redirect(url_for(".index"))
    try:
        connection = operations.connect(
            current_account(),
            system_key,
            attempt.sandbox,
            attempt.params,
            handshake.callback_url(system_key),
            attempt.finish,
        )
    except operations.SetupError as refusal:
        flash(str(refusal), "error")
        return redirect(url_for(".index"))
    flash(_("%(system)s is connected.", system=system.name), "success")
    _flash_refused(connection)
    return redirect(url_for(".connection", connection_id=connection.id))


def _flash_refused(connection):
    message = operations.refused_message(connection)
    if message:
        flash(message, "info")


def _sandbox_demo_keys(system_key) -> dict | None:
    """The sandbox's documented demo keys, shown on its own connect form (sandboxes are never on in
    production), so nobody has to read them out of the source."""
    if system_key != "dynaccount":
        return None
    from portal.sandbox import dynaccount

    return {
        "api_id": dynaccount.DEMO_API_ID,
        "api_key": dynaccount.DEMO_API_KEY,
        "api_secret": dynaccount.DEMO_API_SECRET,
    }


@bp.get("/connections/<int:connection_id>")
@account_required
def connection(connection_id):
    connection = get_owned_or_404(Connection, connection_id)
    return render_template(
        "setups/connection.html", connection=connection, system=get_system(connection.system)
    )


@bp.post("/connections/<int:connection_id>/disconnect")
@owner_required
def disconnect(connection_id):
    connection = get_owned_or_404(Connection, connection_id)
    operations.disconnect(connection)
    flash(
        _(
            "The connection is removed. Nothing more is sent to %(system)s.",
            system=get_system(connection.system).name,
        ),
        "success",
    )
    return redirect(url_for(".index"))


@bp.post("/<int:setup_id>/select")
@owner_required
def select_setup(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    try:
        operations.select_setup(setup, request.form.get("selected") == "on")
    except operations.SetupError as refusal:
        flash(str(refusal), "error")
        return redirect(url_for(".connection", connection_id=setup.connection_id))
    if setup.selected:
        target = url_for(".setup", setup_id=setup.id)
    else:
        target = url_for(".connection", connection_id=setup.connection_id)
    if htmx:  # the checkbox posts by itself; let the browser follow
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


@bp.get("/<int:setup_id>")
@account_required
def setup(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    if not setup.selected:
        return redirect(url_for(".connection", connection_id=setup.connection_id))
    operations.complete_templates(setup)
    system = get_system(setup.connection.system)
    return render_template(
        "setups/setup.html",
        setup=setup,
        system=system,
        specs={(spec.kind, spec.zone): spec for spec in system.templates},
        missing=operations.missing_values(setup),
        linked=operations.linked_shops(setup),
        drift_checked_at=drift.checked_at(setup),
    )


def _template_card(setup, template, errors=None, status=200, saved=False, available=None):
    """The card (HTMX: the partial; otherwise a page). After an HTMX save only its status and messages."""
    spec = operations.spec_of(setup, template)
    system = get_system(setup.connection.system)
    failure = None
    if available is None:
        try:
            available = operations.template_choices(setup, spec)
        except ConnectorError as exc:
            failure = exc.message
    # A saved value the checks refuse (saved before them, or the account changed since) shows as an error
    # and keeps the template from counting as done.
    found = operations.account_findings(setup, template, available) if failure is None else {}
    refused = {name: finding.message for name, finding in found.items() if finding.refused}
    if not errors:
        errors = refused
    warnings = operations.template_warnings(setup, template, available) if failure is None else {}
    shown = set(errors or {}) | set(warnings)
    if failure is None:
        shown |= {
            f.name
            for f in spec.fields
            if template.values.get(f.name)
            and template.values[f.name] not in {c.value for c in available[f.name]}
        }
    context = {
        "setup": setup,
        "system": system,
        "template": template,
        "spec": spec,
        "available": available,
        "failure": failure,
        "errors": errors or {},
        "refused": bool(refused),
        "warnings": warnings,
        # What the daily check found that the live checks above do not show (a known future rate change,
        # or a change in the ledger since the choices were cached).
        "drift": [
            notice for notice in drift.template_notices(setup, template.id) if notice["field"] not in shown
        ],
    }
    if htmx and saved and failure is None:
        return render_template("setups/_template_saved.html", **context), status
    if htmx:
        return render_template("setups/_template_card.html", **context), status
    return render_template("setups/template.html", **context), status


def _owned_template(setup_id, template_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    template = get_owned_or_404(Template, template_id)
    if template.setup_id != setup.id:
        abort(404)
    return setup, template


@bp.get("/<int:setup_id>/templates/<int:template_id>")
@account_required
def template(setup_id, template_id):
    setup, template = _owned_template(setup_id, template_id)
    return _template_card(setup, template)


@bp.post("/<int:setup_id>/templates/<int:template_id>")
@owner_required
def save_template(setup_id, template_id):
    setup, template = _owned_template(setup_id, template_id)
    spec = operations.spec_of(setup, template)
    try:
        available = operations.template_choices(setup, spec)
    except ConnectorError as exc:
        flash(exc.message, "error")
        return _template_card(setup, template, status=502)
    errors = operations.save_template(template, request.form, available)
    if errors:
        # 200 for HTMX, so the messages are swapped in; a plain form post gets a real 400.
        status = 200 if htmx else 400
        return _template_card(setup, template, errors=errors, status=status, saved=True, available=available)
    if htmx:
        return _template_card(setup, template, saved=True, available=available)
    flash(_("Saved."), "success")
    return redirect(url_for(".setup", setup_id=setup.id, _anchor=f"template-{template.id}"))


@bp.post("/<int:setup_id>/refresh")
@owner_required
def refresh(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    operations.forget_choices(setup)
    return redirect(url_for(".setup", setup_id=setup.id))


@bp.post("/<int:setup_id>/check")
@owner_required
def check_drift(setup_id):
    """Run the daily check now (e.g. after correcting the ledger), in the background."""
    setup = get_owned_or_404(AccountingSetup, setup_id)
    if setup.active:
        drift.queue_check(setup)
        flash(_("The templates are being checked; reload the page in a moment to see the result."), "info")
    return redirect(url_for(".setup", setup_id=setup.id, _anchor="templates"))


@bp.post("/<int:setup_id>/auto-book")
@owner_required
def auto_book(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    operations.set_auto_book(setup, request.form.get("auto_book") == "on")
    if htmx:  # the checkbox saves by itself: answer with the visible "Saved"
        return render_template("setups/_saved.html")
    flash(_("Saved."), "success")
    return redirect(url_for(".setup", setup_id=setup.id, _anchor="auto-book"))


@bp.post("/<int:setup_id>/activate")
@owner_required
def activate(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    try:
        stale = operations.stale_values(setup)
        refused = operations.refused_values(setup)
    except ConnectorError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".setup", setup_id=setup.id))
    problems = operations.activate(setup, stale, refused)
    if problems:
        flash(_("The accounting setup cannot be activated yet:"), "error")
        for problem in problems:
            flash(problem, "error")
        return redirect(url_for(".setup", setup_id=setup.id, _anchor="activate"))
    flash(_("The accounting setup is active."), "success")
    return redirect(url_for(".setup", setup_id=setup.id))


@bp.post("/<int:setup_id>/deactivate")
@owner_required
def deactivate(setup_id):
    setup = get_owned_or_404(AccountingSetup, setup_id)
    operations.deactivate(setup)
    flash(_("The accounting setup is paused. Nothing is transferred until you activate it again."), "success")
    return redirect(url_for(".setup", setup_id=setup.id))
