"""Files under instance/ are the owner's alone, and API keys in URLs never reach a log line."""

import logging
import stat

import redis as redis_lib

from portal import create_app
from portal.connectors.dynaccount import sandbox_settings
from portal.devserver import start_embedded_redis
from portal.extensions import db as _db
from portal.pipeline.steps import redact
from portal.sandbox.transport import IN_PROCESS_ORIGIN
from portal.setups.connections import connector_for
from tests.conftest import connect_sandbox

KEY = sandbox_settings(IN_PROCESS_ORIGIN)["demo_api_key"]


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def open_development_app(monkeypatch, instance) -> None:
    """An app on the embedded defaults in `instance` (as `make run` makes one), its SQLite file opened."""
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEYS", "PRODUCTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SANDBOX_ENABLED", "0")  # the sandboxes' blueprints belong to the tests' app
    app = create_app()
    with app.app_context():
        with _db.engine.connect():
            pass
        _db.engine.dispose()


def assert_private(instance) -> None:
    assert mode(instance) == 0o700
    assert mode(instance / "secrets.json") == 0o600
    assert mode(instance / "bogbro.sqlite3") == 0o600


def test_development_creates_instance_files_for_the_owner_only(app, monkeypatch, tmp_path):
    instance = tmp_path / "instance"
    open_development_app(monkeypatch, instance)
    assert_private(instance)


def test_files_made_by_an_older_release_are_closed(app, monkeypatch, tmp_path):
    instance = tmp_path / "instance"
    open_development_app(monkeypatch, instance)
    instance.chmod(0o755)
    (instance / "secrets.json").chmod(0o644)
    (instance / "bogbro.sqlite3").chmod(0o644)
    open_development_app(monkeypatch, instance)
    assert_private(instance)


def test_the_embedded_redis_keeps_its_socket_and_dump_private(tmp_path):
    instance = tmp_path / "instance"
    process, url = start_embedded_redis(instance)
    try:
        redis_lib.Redis.from_url(url).save()
    finally:
        process.terminate()
        process.wait(10)
    assert mode(instance) == 0o700
    assert mode(instance / "redis.rdb") == 0o600


def test_the_transfer_log_masks_keys_in_urls():
    details = {
        "request": f"GET https://api.dynaccount.com/v1/1000/{KEY}/get/debtor/7?select=id",
        "calls": [
            f"/v1/1000/{KEY}/action/book",
            "/wp-json/wc/v3/orders?consumer_key=ck_1&consumer_secret=cs_2",
        ],
        "order": "5001",
    }
    cleaned = str(redact(details))
    assert KEY not in cleaned and "cs_2" not in cleaned and "ck_1" not in cleaned
    assert "/v1/1000/[redacted]/get/debtor/7?select=id" in cleaned
    assert "5001" in cleaned


def test_python_logging_of_httpx_requests_masks_the_dynaccount_key(account, caplog):
    connection = connect_sandbox(account, "dynaccount")
    caplog.set_level(logging.INFO)
    connector = connector_for(connection, connection.credentials.get("api_id"))
    connector.verify()
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert requests, "httpx logged no request"
    assert all(KEY not in line for line in requests)
    assert any("/[redacted]/" in line for line in requests)
