"""A production app (PRODUCTION=1, built from the environment as in production) on the tests' database and
Redis, for the checks that apply only in production."""

import pytest

from portal import create_app
from tests.conftest import CSRFClient

PUBLIC_URL = "https://app.bogbro.test"


@pytest.fixture
def production_app(app, db, monkeypatch, tmp_path):
    environment = {
        "PRODUCTION": "1",
        "SECRET_KEY": app.config["SECRET_KEY"],
        "ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "MAIL_SERVER": app.config["MAIL_SERVER"],
        "MAIL_PORT": str(app.config["MAIL_PORT"]),
        "MAIL_USE_TLS": "0",
        "PUBLIC_URL": PUBLIC_URL,
        "INSTANCE_PATH": str(tmp_path),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TRUSTED_HOSTS", raising=False)
    production = create_app()
    assert production.config["PRODUCTION"] and not production.config["SANDBOX_ENABLED"]
    return production


class ProductionClient(CSRFClient):
    """Requests go to PUBLIC_URL (over https, as behind the TLS proxy), from our own pages (CSRF over https
    checks the Referer)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", PUBLIC_URL)
        kwargs["headers"] = {"Referer": PUBLIC_URL + "/", **dict(kwargs.get("headers") or {})}
        return super().open(*args, **kwargs)

    def session_transaction(self, *args, **kwargs):
        kwargs.setdefault("base_url", PUBLIC_URL)
        return super().session_transaction(*args, **kwargs)


@pytest.fixture
def production_client(production_app):
    production_app.test_client_class = ProductionClient
    return production_app.test_client()
