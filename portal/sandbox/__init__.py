"""Emulators of the external systems under /sandbox/<name>/, mounted only when SANDBOX_ENABLED.

Each sandbox module defines `bp` (a Blueprint with the vendor's paths below the prefix) and
`seed(tenant)` (idempotent demo master data). Fault injection and its admin endpoint are added here.
"""

import importlib

from flask import Blueprint, render_template

from portal.extensions import csrf
from portal.sandbox.faults import ConnectionDropped, apply_faults, dropped_response, fault_admin_blueprint

# prefix under /sandbox/ -> module; e.g. "e-conomic" stands for https://restapi.e-conomic.com/
SANDBOXES: dict[str, str] = {
    "e-conomic": "portal.sandbox.economic",
    "e-conomic-apis": "portal.sandbox.economic_apis",
    "dinero": "portal.sandbox.dinero",
    "dynaccount": "portal.sandbox.dynaccount",
    "shopify": "portal.sandbox.shopify",
    "woocommerce": "portal.sandbox.woocommerce",
    "frisbii": "portal.sandbox.frisbii",
    "stripe": "portal.sandbox.stripe",
}

index_bp = Blueprint("sandbox", __name__, url_prefix="/sandbox", template_folder="templates")


@index_bp.get("/")
def index():
    return render_template("sandbox/index.html", sandboxes=sorted(SANDBOXES))


def init_app(app):
    if not app.config["SANDBOX_ENABLED"]:
        return
    app.register_blueprint(index_bp)
    app.register_error_handler(ConnectionDropped, dropped_response)
    for name, module_path in SANDBOXES.items():
        module = importlib.import_module(module_path)
        prefix = f"/sandbox/{name}"
        if not getattr(module.bp, "bogbro_faults", False):  # once per process: a second app (tests) reuses it
            bodies = getattr(module, "FAULT_BODIES", None)  # the vendor's error shape, where it has one
            module.bp.before_request(lambda name=name, bodies=bodies: apply_faults(name, bodies))
            module.bp.bogbro_faults = True
        csrf.exempt(module.bp)  # machine APIs authenticate with tokens, not sessions
        app.register_blueprint(module.bp, url_prefix=prefix)
        faults = fault_admin_blueprint(name)
        csrf.exempt(faults)
        app.register_blueprint(faults, url_prefix=prefix)
