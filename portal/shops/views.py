"""Sales sources: connect a webshop (WooCommerce, Shopify) or a subscription system (Stripe, Frisbii),
link it to an accounting setup, and edit the link's settings. Thin: parse, authorise, call
portal.shops.operations, render."""

import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from wtforms.fields import SelectChoice

from portal.connectors import system_module
from portal.extensions import htmx
from portal.models import Connection, SourceLink
from portal.pipeline.settings import smtp_password
from portal.shops import forms, operations
from portal.tenancy import (
    account_required,
    current_account,
    get_owned_or_404,
    is_impersonating,
    owner_required,
)

bp = Blueprint("shops", __name__, url_prefix="/shops", template_folder="templates")
PENDING_SHOPIFY = "pending_shopify"


def _sandbox() -> bool:
    sandbox = request.values.get("sandbox") == "1"
    if sandbox and not current_app.config["SANDBOX_ENABLED"]:
        abort(404)
    return sandbox


def _owned_shop(shop_id) -> Connection:
    connection = get_owned_or_404(Connection, shop_id)
    if connection.role not in operations.SOURCE_ROLES:
        abort(404)
    return connection


@bp.get("")
@account_required
def index():
    account = current_account()
    shops = operations.account_shops(account)
    return render_template(
        "shops/index.html",
        shops=shops,
        linked=operations.shop_source_links(account),
        setups=operations.linkable_setups(account),
        systems=[system_module(key).SYSTEM for key in operations.SHOP_SYSTEMS],
        shopify_available=bool(operations.system_settings("shopify", False).get("client_id")),
        sandbox_enabled=current_app.config["SANDBOX_ENABLED"],
    )


# --- connecting -------------------------------------------------------------------------------------------


@bp.route("/connect/woocommerce", methods=["GET", "POST"])
@owner_required
def connect_woocommerce():
    sandbox = _sandbox()
    form = forms.WooCommerceForm()
    if form.validate_on_submit():
        if not sandbox and not form.url.data:
            form.url.errors.append(_("Fill in this field."))
        else:
            try:
                connection = operations.connect_woocommerce(
                    current_account(),
                    sandbox,
                    form.url.data,
                    form.consumer_key.data,
                    form.consumer_secret.data,
                )
            except operations.ShopError as refusal:
                target = form._fields.get(refusal.field or "", form.consumer_key)
                target.errors.append(refusal.message)
            else:
                flash(_("WooCommerce is connected."), "success")
                return redirect(url_for(".link", shop_id=connection.id))
    status = 400 if request.method == "POST" else 200
    return render_template("shops/connect_woocommerce.html", form=form, sandbox=sandbox), status


@bp.route("/connect/stripe", methods=["GET", "POST"])
@owner_required
def connect_stripe():
    return _connect_by_key(forms.StripeForm(), "api_key", operations.connect_stripe, "stripe", "Stripe")


@bp.route("/connect/frisbii", methods=["GET", "POST"])
@owner_required
def connect_frisbii():
    return _connect_by_key(
        forms.FrisbiiForm(), "private_key", operations.connect_frisbii, "frisbii", "Frisbii"
    )


def _connect_by_key(form, field: str, connect, system: str, name: str):
    """A source connected by an API key alone (Stripe, Frisbii): checked, stored, then on to linking it."""
    sandbox = _sandbox()
    if form.validate_on_submit():
        try:
            connection = connect(current_account(), sandbox, form[field].data)
        except operations.ShopError as refusal:
            form[field].errors.append(refusal.message)
        else:
            flash(_("%(system)s is connected.", system=name), "success")
            return redirect(url_for(".link", shop_id=connection.id))
    status = 400 if request.method == "POST" else 200
    return render_template(f"shops/connect_{system}.html", form=form, sandbox=sandbox), status


@bp.route("/connect/shopify", methods=["GET", "POST"])
@owner_required
def connect_shopify():
    sandbox = _sandbox()
    form = forms.ShopifyForm()
    if request.method == "GET" and sandbox:
        form.shop.data = operations.system_settings("shopify", True).get("shop")
    if form.validate_on_submit():
        try:
            shop = operations.normalise_shopify_shop(form.shop.data)
            state = secrets.token_urlsafe(24)
            callback_url = url_for(".shopify_callback", _external=True)
            location = operations.start_shopify(sandbox, shop, callback_url, state)
        except operations.ShopError as refusal:
            form.shop.errors.append(refusal.message)
        else:
            session[PENDING_SHOPIFY] = {"sandbox": sandbox, "state": state, "shop": shop}
            return redirect(location)
    status = 400 if request.method == "POST" else 200
    return render_template("shops/connect_shopify.html", form=form, sandbox=sandbox), status


@bp.get("/connect/shopify/callback")
@owner_required
def shopify_callback():
    pending = session.pop(PENDING_SHOPIFY, None)
    if pending is None:
        flash(_("The connection was not started from this browser session. Start again."), "error")
        return redirect(url_for(".index"))
    if not secrets.compare_digest(request.args.get("state", ""), pending["state"]):
        flash(
            _(
                "The answer from %(system)s does not belong to the connection started in this browser, so "
                "nothing was connected. Start again.",
                system="Shopify",
            ),
            "error",
        )
        return redirect(url_for(".index"))
    callback_url = url_for(".shopify_callback", _external=True)
    try:
        connection = operations.connect_shopify(
            current_account(), pending["sandbox"], request.args.to_dict(), callback_url, pending["state"]
        )
    except operations.ShopError as refusal:
        flash(refusal.message, "error")
        return redirect(url_for(".index"))
    flash(_("Shopify is connected."), "success")
    return redirect(url_for(".link", shop_id=connection.id))


@bp.post("/<int:shop_id>/disconnect")
@owner_required
def disconnect(shop_id):
    connection = _owned_shop(shop_id)
    for problem in operations.disconnect(connection):
        flash(problem, "error")
    flash(_("The shop is disconnected. Bogbro no longer receives its orders."), "success")
    return redirect(url_for(".index"))


# --- linking ----------------------------------------------------------------------------------------------


@bp.route("/<int:shop_id>/link", methods=["GET", "POST"])
@owner_required
def link(shop_id):
    connection = _owned_shop(shop_id)
    setups = operations.linkable_setups(current_account())
    form = forms.LinkForm()
    form.setup.choices = [SelectChoice(setup.id, f"{setup.name} ({setup.system})") for setup in setups]
    if request.method == "GET":
        form.name.data = connection.label
    if connection.status == "active" and setups and form.validate_on_submit():
        setup = next(s for s in setups if s.id == form.setup.data)
        try:
            source_link = operations.link(connection, setup, form.name.data)
        except operations.ShopError as refusal:
            form.setup.errors.append(refusal.message)
        else:
            try:
                operations.register_webhooks(source_link)
            except operations.ShopError as refusal:
                flash(refusal.message, "error")
            else:
                flash(_("The shop is linked and sends its orders to Bogbro."), "success")
            return redirect(url_for(".settings", source_link_id=source_link.id))
    status = 400 if request.method == "POST" else 200
    return render_template("shops/link.html", form=form, shop=connection, setups=setups), status


# --- one sales source --------------------------------------------------------------------------------


def _settings_page(source_link, form, context, status=200, errors=None):
    return render_template(
        "shops/settings.html",
        source_link=source_link,
        form=form,
        context=context,
        errors=errors or {},
        states=context.states,
        state_field=forms.state_field_name,
        fixed_fields=[forms.fixed_field_name(kind) for kind in forms.FixedProducts.__dataclass_fields__],
        has_password=bool(smtp_password(source_link)),
        impersonating=is_impersonating(),
    ), status


def _settings_form(source_link, context, data=None):
    documents = []
    for document in ("none", "order", "draft", "booked"):
        disabled = (document == "booked" and not context.can_book) or (
            document == "order" and not context.can_order
        )
        documents.append(
            SelectChoice(
                document, forms.DOCUMENT_LABELS[document], render_kw={"disabled": True} if disabled else {}
            )
        )
    form = forms.settings_form_class(context.states, documents)(data=data)
    terms = [SelectChoice("", _("Standard (from the invoice template)"))] + [
        SelectChoice(choice.value, choice.label) for choice in context.payment_terms or []
    ]
    methods = [SelectChoice("", _("– choose –"))] + [
        SelectChoice(value, label) for value, label in context.payment_methods
    ]
    for row in form.payments:
        row.form.terms.choices = terms
        row.form.method.choices = methods
    if not context.can_oss:
        form.oss.render_kw = {"disabled": True}
    return form


@bp.get("/source_links/<int:source_link_id>")
@account_required
def settings(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    context = operations.settings_context(source_link)
    form = _settings_form(source_link, context, forms.initial_data(source_link, context.states))
    return _settings_page(source_link, form, context)


@bp.post("/source_links/<int:source_link_id>")
@owner_required
def save_settings(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    context = operations.settings_context(source_link)
    form = _settings_form(source_link, context)
    values, errors = forms.settings_from(form, context.states, invoices=context.invoices)
    if not form.validate():
        errors[""] = _("The form has expired. Try again.")
    password = form.mail_password.data or None
    if password and is_impersonating():
        errors["invoice_mail.password"] = _("Only the customer enters the SMTP password.")
    errors = operations.save_settings(source_link, values, password, context, errors)
    if errors:
        placed = {"any": True, "form": [], "states": []}
        for key, message in errors.items():
            name = forms.field_for(key)
            if name in form:
                form[name].errors = [*form[name].errors, message]
            else:
                placed["states" if key == "states" else "form"].append(message)
        return _settings_page(source_link, form, context, status=400, errors=placed)
    flash(_("Saved."), "success")
    return redirect(url_for(".settings", source_link_id=source_link.id))


@bp.get("/source_links/<int:source_link_id>/webhooks")
@account_required
def webhooks(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    failure, registered = None, []
    try:
        registered = operations.webhook_status(source_link)
    except operations.ShopError as refusal:
        failure = refusal.message
    template = "shops/_webhooks.html" if htmx else "shops/webhooks.html"
    return render_template(
        template,
        source_link=source_link,
        registered=registered,
        expected=system_module(source_link.source_system).SYSTEM.webhook_topics,
        failure=failure,
    )


@bp.post("/source_links/<int:source_link_id>/webhooks")
@owner_required
def register_webhooks(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    try:
        operations.register_webhooks(source_link, rotate=True)
    except operations.ShopError as refusal:
        flash(refusal.message, "error")
    else:
        flash(_("The webhooks are registered again with a new secret."), "success")
    return redirect(url_for(".settings", source_link_id=source_link.id, _anchor="webhooks"))


@bp.post("/source_links/<int:source_link_id>/activate")
@owner_required
def activate(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    try:
        operations.set_active(source_link, True)
    except operations.ShopError as refusal:
        flash(refusal.message, "error")
    else:
        flash(_("The sales source is active: new sales are transferred."), "success")
    return _back(source_link)


def _back(source_link):
    """To the wizard's last step when the button was there (a fixed name, never a URL), else the settings."""
    if request.form.get("next") == "setup":
        return redirect(url_for("setups.setup", setup_id=source_link.setup_id, _anchor="webshops"))
    return redirect(url_for(".settings", source_link_id=source_link.id))


@bp.post("/source_links/<int:source_link_id>/deactivate")
@owner_required
def deactivate(source_link_id):
    source_link = get_owned_or_404(SourceLink, source_link_id)
    operations.set_active(source_link, False)
    flash(_("The sales source is paused. Sales are kept and not transferred."), "success")
    return _back(source_link)
