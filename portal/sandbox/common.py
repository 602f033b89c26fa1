"""What the vendor sandboxes share: the consent pages' rules for the return address and the way back to it,
and sending a signed webhook. Each vendor keeps its own paths, field names, status codes and handshake; only
what is the same for all of them lives here.
"""

import base64
import hashlib
import hmac
import re
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


# RFC 7636 §4.1: 43-128 characters of [A-Z] [a-z] [0-9] - . _ ~ (a challenge made with S256 is 43 of them).
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def pkce_challenge_problem(challenge: str | None, method: str | None, allowed=("S256",)) -> str | None:
    """None when an authorize request's PKCE parameters are acceptable (or absent); else the OAuth error.
    RFC 7636 §4.3: without a method the challenge is "plain"; §4.4.1: one not supported is invalid_request."""
    if not challenge:
        return "invalid_request" if method else None
    if (method or "plain") not in allowed or not _PKCE_VALUE.fullmatch(challenge):
        return "invalid_request"
    return None


def pkce_verified(challenge: str, method: str | None, verifier: str | None) -> bool:
    """RFC 7636 §4.6: S256 compares BASE64URL(SHA256(verifier)) without padding; "plain" the verifier."""
    if not verifier or not _PKCE_VALUE.fullmatch(verifier):
        return False
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


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
