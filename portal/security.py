"""Process- and request-level safeguards: only our own host names (production), no caching of logged-in
pages, files under instance/ readable by the owner only, and secrets masked in every log line."""

from pathlib import Path

from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import BadRequest, SecurityError
from werkzeug.wsgi import get_host

from portal import redaction


class TrustedHosts:
    """WSGI middleware: a request for a host not in TRUSTED_HOSTS gets a plain 400 before Flask routes it
    (Flask's own check raises while building the URL adapter, where our error pages cannot render)."""

    def __init__(self, wsgi_app, hosts: list[str]):
        self.wsgi_app = wsgi_app
        self.hosts = hosts

    def __call__(self, environ, start_response):
        try:
            get_host(environ, self.hosts)
        except SecurityError:
            return BadRequest("Unknown host.")(environ, start_response)
        return self.wsgi_app(environ, start_response)


def no_store_when_logged_in(response):
    """A logged-in page holds account data: never kept by the browser's or a proxy's cache (the back
    button after logout, a shared computer)."""
    if current_user and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
    return response


def private_directory(path: Path) -> None:
    """A directory only its owner can enter (it holds secrets, the database, Redis' socket and dump)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def private_file(path: Path) -> None:
    if not path.exists():
        path.touch(mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)


@event.listens_for(Engine, "do_connect")
def _private_sqlite_file(dialect, connection_record, cargs, cparams):
    """An SQLite database file is created 0600 before SQLite opens it (its journal and WAL files copy the
    database's mode)."""
    database = cargs[0] if cargs else cparams.get("database")
    if dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))


def init_app(app):
    """Call before ProxyFix wraps the app, so the host check sees the forwarded host."""
    redaction.install_log_redaction()
    if not app.config["PRODUCTION"]:  # development keeps its secrets, database and Redis there
        private_directory(Path(app.instance_path))
    if app.config.get("TRUSTED_HOSTS"):
        app.wsgi_app = TrustedHosts(app.wsgi_app, app.config["TRUSTED_HOSTS"])
    app.after_request(no_store_when_logged_in)
