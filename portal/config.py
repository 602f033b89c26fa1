"""Configuration from environment variables only.

Development (the default) generates its secrets once into ``instance/secrets.json`` and uses SQLite
and an embedded Redis under ``instance/``. Production (``PRODUCTION=1``) refuses to start while a
required variable is missing, instead of falling back to a silent default.
"""

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

TRUE_WORDS = {"1", "true", "yes", "on"}
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "MAIL_SERVER",
    "PUBLIC_URL",  # links in mails sent by periodic jobs (no request to take the address from)
)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def env_flag(name: str, default: bool, environ=os.environ) -> bool:
    value = environ.get(name)
    return default if value is None or value == "" else value.strip().lower() in TRUE_WORDS


def _development_secrets(instance_path: Path) -> dict:
    """Generated once, kept in instance/ so sessions and encrypted data survive restarts."""
    path = instance_path / "secrets.json"
    if path.exists():
        if path.stat().st_mode & 0o077:  # made by an older release: close it
            path.chmod(0o600)
        return json.loads(path.read_text())
    values = {"SECRET_KEY": secrets.token_urlsafe(48), "ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    instance_path.mkdir(parents=True, exist_ok=True, mode=0o700)  # secrets: the owner's eyes only
    path.touch(mode=0o600)
    path.write_text(json.dumps(values, indent=2))
    return values


def load_config(instance_path: str, environ=os.environ) -> dict:
    instance = Path(instance_path)
    production = env_flag("PRODUCTION", False, environ)
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not environ.get(name)]
        if missing:
            raise ConfigError(
                f"PRODUCTION=1 but these environment variables are not set: {', '.join(missing)}"
            )
        generated = {}
    else:
        generated = _development_secrets(instance)

    def get(name, default=None):
        return environ.get(name) or generated.get(name) or default

    keys = [key.strip() for key in get("ENCRYPTION_KEYS", "").split(",") if key.strip()]
    try:
        for key in keys:
            Fernet(key)
    except ValueError as exc:
        raise ConfigError("ENCRYPTION_KEYS must be comma separated Fernet keys") from exc
    if not keys:
        raise ConfigError("ENCRYPTION_KEYS is empty")

    return {
        "PRODUCTION": production,
        "SECRET_KEY": get("SECRET_KEY"),
        "ENCRYPTION_KEYS": keys,
        "SQLALCHEMY_DATABASE_URI": _database_url(
            get("DATABASE_URL", f"sqlite:///{instance / 'bogbro.sqlite3'}")
        ),
        "REDIS_URL": get("REDIS_URL", f"unix://{instance / 'redis.sock'}"),
        "SANDBOX_ENABLED": env_flag("SANDBOX_ENABLED", not production, environ),
        "MAIL_SERVER": get("MAIL_SERVER"),
        "MAIL_PORT": int(get("MAIL_PORT", "587")),
        "MAIL_USERNAME": get("MAIL_USERNAME"),
        "MAIL_PASSWORD": get("MAIL_PASSWORD"),
        "MAIL_USE_TLS": env_flag("MAIL_USE_TLS", True, environ),
        "MAIL_USE_SSL": env_flag("MAIL_USE_SSL", False, environ),
        "MAIL_FROM": get("MAIL_FROM", "Bogbro <noreply@bogbro.dk>"),
        "SALES_EMAIL": get("SALES_EMAIL", "salg@bogbro.dk"),
        # The portal's own address, for links in mail sent by periodic jobs (no request to take it from).
        "PUBLIC_URL": get("PUBLIC_URL", f"http://localhost:{get('PORT', '5000')}"),
        # Production answers only to its own host name: a forged Host header gets 400 (None: any host).
        "TRUSTED_HOSTS": _trusted_hosts(environ.get("TRUSTED_HOSTS"), environ.get("PUBLIC_URL"))
        if production
        else None,
        # Shops' webhooks are a few kB; anything beyond this is refused with 413 before it is read.
        "MAX_CONTENT_LENGTH": int(get("MAX_CONTENT_LENGTH", str(4 * 1024 * 1024))),
        # Invoice mails go through each shop's own SMTP server; how long to wait for it.
        "INVOICE_MAIL_TIMEOUT_SECONDS": float(get("INVOICE_MAIL_TIMEOUT_SECONDS", "20")),
        "QUOTE_REQUESTS_PER_IP_PER_HOUR": int(get("QUOTE_REQUESTS_PER_IP_PER_HOUR", "5")),
        "PROXY_COUNT": int(get("PROXY_COUNT", "0")),
        "SIGNUPS_PER_IP_PER_HOUR": int(get("SIGNUPS_PER_IP_PER_HOUR", "5")),
        "LOGIN_MAX_FAILURES_PER_EMAIL": int(get("LOGIN_MAX_FAILURES_PER_EMAIL", "5")),
        "LOGIN_MAX_FAILURES_PER_IP": int(get("LOGIN_MAX_FAILURES_PER_IP", "30")),
        "LOGIN_FAILURE_WINDOW_SECONDS": int(get("LOGIN_FAILURE_WINDOW_SECONDS", "900")),
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "BABEL_DEFAULT_LOCALE": "da",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Copenhagen",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # Accounting systems: the app's own registration with each vendor (see the README).
        "ECONOMIC_APP_SECRET_TOKEN": get("ECONOMIC_APP_SECRET_TOKEN"),
        "ECONOMIC_APP_PUBLIC_TOKEN": get("ECONOMIC_APP_PUBLIC_TOKEN"),
        "ECONOMIC_API_URL": get("ECONOMIC_API_URL", "https://restapi.e-conomic.com"),
        "ECONOMIC_APIS_URL": get("ECONOMIC_APIS_URL", "https://apis.e-conomic.com"),
        "ECONOMIC_CONNECT_URL": get(
            "ECONOMIC_CONNECT_URL", "https://secure.e-conomic.com/secure/api1/requestaccess.aspx"
        ),
        "ECONOMIC_REQUESTS_PER_SECOND": float(get("ECONOMIC_REQUESTS_PER_SECOND", "3")),
        "DINERO_CLIENT_ID": get("DINERO_CLIENT_ID"),
        "DINERO_CLIENT_SECRET": get("DINERO_CLIENT_SECRET"),
        "DINERO_API_URL": get("DINERO_API_URL", "https://api.dinero.dk"),
        "DINERO_AUTHORIZE_URL": get("DINERO_AUTHORIZE_URL", "https://connect.visma.com/connect/authorize"),
        "DINERO_TOKEN_URL": get("DINERO_TOKEN_URL", "https://connect.visma.com/connect/token"),
        "DYNACCOUNT_API_URL": get("DYNACCOUNT_API_URL", "https://api.dynaccount.com"),
        # Webshops. Shopify: Bogbro's app (Partner Dashboard); "{shop}" is the shop's myshopify.com domain.
        "SHOPIFY_CLIENT_ID": get("SHOPIFY_CLIENT_ID"),
        "SHOPIFY_CLIENT_SECRET": get("SHOPIFY_CLIENT_SECRET"),
        "SHOPIFY_SCOPES": get(
            "SHOPIFY_SCOPES", "read_orders,read_products,read_inventory,write_inventory,read_locations"
        ),
        "SHOPIFY_API_URL": get("SHOPIFY_API_URL", "https://{shop}"),
        "SHOPIFY_AUTHORIZE_URL": get("SHOPIFY_AUTHORIZE_URL", "https://{shop}/admin/oauth/authorize"),
        "SHOPIFY_TOKEN_URL": get("SHOPIFY_TOKEN_URL", "https://{shop}/admin/oauth/access_token"),
        # Subscription systems. Stripe: the customer's own restricted key; this is the API's root.
        "STRIPE_API_URL": get("STRIPE_API_URL", "https://api.stripe.com"),
        # Webshops: each shop's address and key come from its owner; these are our pace and patience.
        # No API host of our own: each shop's address is in its credentials (connector_for needs the key).
        "WOOCOMMERCE_API_URL": "",
        "WOOCOMMERCE_REQUESTS_PER_SECOND": float(get("WOOCOMMERCE_REQUESTS_PER_SECOND", "5")),
        "WOOCOMMERCE_TIMEOUT_SECONDS": float(get("WOOCOMMERCE_TIMEOUT_SECONDS", "30")),
        # A shop's address is typed in by a customer: in production it must not reach our own network
        # (loopback, private, link-local …). The sandboxes in development and tests live on loopback.
        "WOOCOMMERCE_PUBLIC_ADDRESSES_ONLY": production,
        # Frisbii (formerly Reepay): one API host for every account; the account is its private key.
        "FRISBII_API_URL": get("FRISBII_API_URL", "https://api.reepay.com"),
        "FRISBII_REQUESTS_PER_SECOND": float(get("FRISBII_REQUESTS_PER_SECOND", "5")),
        "CONNECTOR_RETRIES": int(get("CONNECTOR_RETRIES", "3")),
        "CONNECTOR_BACKOFF_SECONDS": float(get("CONNECTOR_BACKOFF_SECONDS", "0.5")),
        # The transfer pipeline: attempts before "needs attention", the first retry's delay (doubling), when
        # a transfer `running` this long has lost its worker, and the EU VAT rate table (ibericode JSON).
        "PIPELINE_MAX_ATTEMPTS": int(get("PIPELINE_MAX_ATTEMPTS", "5")),
        "PIPELINE_RETRY_SECONDS": float(get("PIPELINE_RETRY_SECONDS", "30")),
        "PIPELINE_STUCK_SECONDS": int(get("PIPELINE_STUCK_SECONDS", "600")),
        # Look the reference up before every first create too (costs a request per order): for a while after
        # restoring the database from a backup, when transfers made since the backup are unknown.
        "PIPELINE_LOOKUP_BEFORE_CREATE": get("PIPELINE_LOOKUP_BEFORE_CREATE", "0") == "1",
        "VAT_RATES_FILE": get("VAT_RATES_FILE"),
        # Operators: /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (unset: no /metrics);
        # log lines as JSON (the production default) or as text; errors to Sentry when a DSN is set.
        "METRICS_TOKEN": get("METRICS_TOKEN"),
        "LOG_FORMAT": _choice(
            "LOG_FORMAT", get("LOG_FORMAT", "json" if production else "text"), ("json", "text")
        ),
        "LOG_LEVEL": get("LOG_LEVEL", "INFO"),
        "SENTRY_DSN": get("SENTRY_DSN"),
        "SENTRY_ENVIRONMENT": get("SENTRY_ENVIRONMENT", "production" if production else "development"),
        "SENTRY_TRACES_SAMPLE_RATE": float(get("SENTRY_TRACES_SAMPLE_RATE", "0")),
    }


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _trusted_hosts(value: str | None, public_url: str | None) -> list[str]:
    """TRUSTED_HOSTS (comma separated) when set, else the host of PUBLIC_URL."""
    if value:
        return [host.strip() for host in value.split(",") if host.strip()]
    host = urlsplit(public_url or "").hostname
    if not host:
        raise ConfigError("PUBLIC_URL must be an absolute URL, e.g. https://app.bogbro.dk")
    return [host]


def _database_url(url: str) -> str:
    # Heroku-style URLs and bare postgresql:// both mean psycopg 3 here.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url
