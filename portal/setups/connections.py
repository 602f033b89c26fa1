"""Building connectors for stored connections: where to send requests, and credentials that rotate safely.

This is the bridge between the database/Flask world and portal.connectors (which knows neither).
"""

from contextlib import contextmanager

from flask import current_app
from sqlalchemy import select

from portal.connectors import ConnectorContext, make_connector, system_module
from portal.connectors.base import AccountingConnector
from portal.extensions import db
from portal.models import Connection
from portal.redis_client import get_redis
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

LOCK_TIMEOUT = 60


class SandboxDisabled(RuntimeError):
    pass


class DatabaseCredentialStore:
    """Credentials of one Connection: as the caller loaded them (`loaded`: this job's or request's own read),
    else read fresh. A refresh re-reads them under a Redis lock, single-flight across every process: another
    worker may have rotated them since (a token it rejects is refreshed the same way)."""

    def __init__(self, connection_id: int, loaded: dict | None = None):
        self.connection_id = connection_id
        self._loaded = loaded

    def _load(self) -> Connection:
        # A fresh read, not the session's cached copy: another worker may have rotated the tokens. It needs
        # none of the session's pending changes, so it does not flush them (a transfer commits its own).
        with db.session.no_autoflush:
            return db.session.scalar(
                select(Connection)
                .where(Connection.id == self.connection_id)
                .execution_options(populate_existing=True)
            )

    def get(self) -> dict:
        if self._loaded is None:
            self._loaded = self._load().credentials
        return self._loaded

    def refresh(self, is_stale, renew) -> dict:
        with connection_lock(self.connection_id):
            connection = self._load()
            if is_stale(connection.credentials):  # else someone else refreshed them while we waited
                connection.credentials = renew(connection.credentials)
                db.session.commit()
            self._loaded = connection.credentials
            return self._loaded


@contextmanager
def connection_lock(connection_id: int):
    lock = get_redis().lock(
        f"bogbro:lock:connection:{connection_id}", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_TIMEOUT
    )
    if not lock.acquire():
        raise TimeoutError(f"connection {connection_id} is locked by another worker")
    try:
        yield
    finally:
        lock.release()


def system_settings(system: str, sandbox: bool) -> dict:
    """The app's own ids/secrets/URLs for one system: from configuration, or the sandbox's."""
    module = system_module(system)
    if sandbox:
        if not current_app.config["SANDBOX_ENABLED"]:
            raise SandboxDisabled("sandbox connections only work while SANDBOX_ENABLED is on")
        return module.sandbox_settings(IN_PROCESS_ORIGIN)
    prefix = module.CONFIG_PREFIX
    return {
        key[len(prefix) :].lower(): value
        for key, value in current_app.config.items()
        if key.startswith(prefix)
    }


def connector_for(
    connection: Connection, external_id: str | None = None, *, transport=None, credentials=None
) -> AccountingConnector:
    """A connector for a stored connection (or, with a `credentials` store, for one not saved yet)."""
    settings = system_settings(connection.system, connection.sandbox)
    if connection.sandbox and transport is None:
        transport = SandboxTransport(current_app._get_current_object())
    context = ConnectorContext(
        base_url=settings["api_url"],
        credentials=credentials or DatabaseCredentialStore(connection.id, connection.credentials),
        external_id=external_id,
        transport=transport,
        redis=get_redis(),
        settings=settings,
        retries=current_app.config["CONNECTOR_RETRIES"],
        backoff=current_app.config["CONNECTOR_BACKOFF_SECONDS"],
    )
    return make_connector(connection.system, context)
