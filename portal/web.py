"""Response headers every page carries, the friendly error pages, and safe redirects."""

from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_wtf.csrf import CSRFError

from portal.extensions import db
from portal.ids import IdConverter

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


def safe_next(target: str | None) -> str | None:
    """A redirect target from the request, if it is a same-site path (never `//evil.example`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def public_link(path: str) -> str:
    """An absolute link for a mail: on PUBLIC_URL, never on the request's (forgeable) Host header."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/" + path.lstrip("/")


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    return response


def _error_page(status):
    def handler(error):
        if status == 500:
            db.session.rollback()  # the failed transaction must not leak into the error page
        return render_template(f"errors/{status}.html", error=error), status

    return handler


def _csrf_error(error):
    return render_template("errors/400.html", error=error, csrf=True), 400


def init_app(app):
    app.url_map.converters["int"] = IdConverter  # before any route is added: every <int:…> is bounded
    app.after_request(security_headers)
    for status in (400, 403, 404, 405, 429, 500):
        app.register_error_handler(status, _error_page(status))
    app.register_error_handler(CSRFError, _csrf_error)
    if app.config["PRODUCTION"]:

        @app.after_request
        def strict_transport(response):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
            return response
