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
    """Credentials of one Connection; refreshes are single-flight across every process (Redis lock)."""

    def __init__(self, connection_id: int):
        self.connection_id = connection_id

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
        return self._load().credentials

    def refresh(self, is_stale, renew) -> dict:
        with connection_lock(self.connection_id):
            connection = self._load()
            if not is_stale(connection.credentials):
                return connection.credentials  # someone else refreshed while we waited
            connection.credentials = renew(connection.credentials)
            db.session.commit()
            return connection.credentials


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
        credentials=credentials or DatabaseCredentialStore(connection.id),
        external_id=external_id,
        transport=transport,
        redis=get_redis(),
        settings=settings,
        retries=current_app.config["CONNECTOR_RETRIES"],
        backoff=current_app.config["CONNECTOR_BACKOFF_SECONDS"],
    )
    return make_connector(connection.system, context)
