"""The Bogbro portal: create_app assembles configuration, extensions and blueprints."""

import os
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import i18n, observability, security, web
from portal.config import load_config
from portal.extensions import babel, csrf, db, htmx, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(app.instance_path))
    app.config.update(config or {})

    observability.init_app(app)  # first: JSON logs and Sentry from the first line on
    security.init_app(app)
    if app.config["PROXY_COUNT"]:
        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_translation_directories="translations")
    login_manager.init_app(app)
    i18n.init_app(app)
    web.init_app(app)

    from portal import auth, sandbox, tenancy
    from portal.account.views import bp as account_bp
    from portal.auth.views import bp as auth_bp
    from portal.calculator.views import bp as calculator_bp
    from portal.cli import register_commands
    from portal.main.views import bp as main_bp
    from portal.metrics.views import bp as metrics_bp
    from portal.pipeline.completeness_views import bp as completeness_bp
    from portal.pipeline.views import bp as transfers_bp
    from portal.setups.views import bp as setups_bp
    from portal.shops.views import bp as shops_bp
    from portal.support.views import bp as support_bp
    from portal.webhooks.views import bp as webhooks_bp

    auth.init_login(login_manager)
    app.before_request(tenancy.load_request_context)
    for blueprint in (main_bp, auth_bp, account_bp, support_bp, setups_bp, calculator_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(webhooks_bp)  # the transfer pipeline: shops' webhooks, the transfer log
    app.register_blueprint(transfers_bp)
    app.register_blueprint(completeness_bp)  # the completeness report ("Afstemning")
    app.register_blueprint(shops_bp)  # webshops: connect, link to an accounting setup, settings
    app.register_blueprint(metrics_bp)  # /metrics for Prometheus (METRICS_TOKEN)
    sandbox.init_app(app)
    register_commands(app)
    return app
