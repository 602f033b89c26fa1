"""Request-level safeguards: only our own host names (production), and no caching of logged-in pages."""

from flask_login import current_user
from werkzeug.exceptions import BadRequest, SecurityError
from werkzeug.wsgi import get_host


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


def init_app(app):
    """Call before ProxyFix wraps the app, so the host check sees the forwarded host."""
    if app.config.get("TRUSTED_HOSTS"):
        app.wsgi_app = TrustedHosts(app.wsgi_app, app.config["TRUSTED_HOSTS"])
    app.after_request(no_store_when_logged_in)
