"""What the vendor sandboxes share: the consent pages' rules for the return address and the way back to it,
and sending a signed webhook. Each vendor keeps its own paths, field names, status codes and handshake; only
what is the same for all of them lives here.
"""

import base64
import hashlib
import hmac
from urllib.parse import urlencode, urlsplit

import httpx
from flask import current_app, redirect, render_template

from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

# --- consent pages ------------------------------------------------------------------------------------------


def redirect_allowed(uri: str | None, host: str | None = None) -> bool:
    """A return address a consent page may send the browser to: a path on this app ("/…", not "//…"), or an
    absolute http(s) URL — on `host` only, when given (Visma Connect allows only registered addresses)."""
    uri = uri or ""
    parts = urlsplit(uri)
    if not parts.scheme and not parts.netloc:
        return uri.startswith("/") and not uri.startswith("//")
    return parts.scheme in ("http", "https") and bool(parts.netloc) and host in (None, parts.netloc)


def redirect_back(uri: str, params: dict):
    """The browser back to the app's return address with `params` added to its query."""
    separator = "&" if "?" in uri else "?"
    return redirect(f"{uri}{separator}{urlencode(params)}")


def consent_page(template: str, problem: str | None, **context):
    """A consent page: 400 when the request for access is not valid (the page says why), else 200."""
    return render_template(template, problem=problem, **context), (400 if problem else 200)


# --- signed webhooks ----------------------------------------------------------------------------------------


def signature(body: bytes, secret: str) -> str:
    """base64 of the HMAC-SHA256 of the raw body: how WooCommerce (X-WC-Webhook-Signature) and Shopify
    (X-Shopify-Hmac-Sha256) sign a delivery."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post_webhook(url: str, body: bytes, headers: dict, timeout: httpx.Timeout) -> httpx.Response:
    """One delivery: through this app itself for an in-process address (the demo and the tests), else over
    the network. Raises what httpx raises; each vendor decides what a failure means."""
    transport = (
        SandboxTransport(current_app._get_current_object()) if url.startswith(IN_PROCESS_ORIGIN) else None
    )
    with httpx.Client(transport=transport, timeout=timeout) as client:
        return client.post(url, content=body, headers=headers)
