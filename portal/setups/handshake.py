"""The browser handshake of connecting an accounting system: what binds a callback to the attempt this browser
started, so nobody can make a customer's browser attach someone else's organisation (login CSRF).

Each attempt has one random value. The session keeps it; Redis keeps the attempt under it (who started it,
sandbox or not, the PKCE code_verifier) for ten minutes and gives it out once. The callback must bring the
value back: as OAuth's `state` (Dinero), or — where the grant page echoes no state (e-conomic) — as a
`nonce` in the redirect URL we hand it. Missing, other, expired or used: nothing is connected.
"""

import json
import secrets
from dataclasses import dataclass, field

from flask import session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.connectors import system_module
from portal.redis_client import get_redis
from portal.setups.connections import system_settings

PENDING = "pending_connect"
TTL_SECONDS = 600
# e-conomic's grant page returns only `token` to the redirect URL (docs/connectors/economic.md).
NONCE_SYSTEMS = frozenset({"e-conomic"})


class HandshakeRefused(Exception):
    pass


@dataclass
class Attempt:
    system: str
    sandbox: bool
    params: dict  # the callback's parameters, for finish_connect
    finish: dict = field(default_factory=dict)  # extra arguments of finish_connect (state, code_verifier)


def _key(value: str) -> str:
    return f"bogbro:connect-attempt:{value}"


def callback_url(system_key: str, nonce: str | None = None) -> str:
    return url_for("setups.callback", system_key=system_key, nonce=nonce, _external=True)


def start(system_key: str, sandbox: bool) -> str:
    """Remember a new attempt and return where to send the browser to grant access."""
    module = system_module(system_key)
    value = secrets.token_urlsafe(32)
    attempt = {"system": system_key, "sandbox": sandbox, "user": current_user.id}
    extra = {}
    if getattr(module, "PKCE", False):
        attempt["code_verifier"] = extra["code_verifier"] = module.new_code_verifier()
    get_redis().set(_key(value), json.dumps(attempt), ex=TTL_SECONDS)
    session[PENDING] = {"system": system_key, "value": value}
    nonce = value if system_key in NONCE_SYSTEMS else None
    settings = system_settings(system_key, sandbox)
    return module.start_connect(settings, callback_url(system_key, nonce), value, **extra)


def _take(value: str) -> dict | None:
    """The attempt stored under `value`, deleted in the same step: a second callback finds nothing."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.get(_key(value))
    pipe.delete(_key(value))
    stored, _deleted = pipe.execute()
    return json.loads(stored) if stored else None


def _params(system_key: str, args) -> tuple[str, dict]:
    """The value the callback brings back, and its other parameters."""
    params = args.to_dict()
    if system_key not in NONCE_SYSTEMS:
        return params.get("state") or "", params
    nonce = params.pop("nonce", "")
    # Guess: should e-conomic append "?token=…" to a redirect URL that already has a query, the token
    # arrives inside the nonce.
    nonce, _sep, rest = nonce.partition("?")
    if rest and "token" not in params:
        key, _eq, token = rest.partition("=")
        if key == "token":
            params["token"] = token
    return nonce, params


def finish(system_key: str, system_name: str, args) -> Attempt:
    """Check a callback against this browser's attempt (used up either way); HandshakeRefused says why."""
    pending = session.pop(PENDING, None)
    if pending is None or pending.get("system") != system_key:
        raise HandshakeRefused(_("The connection was not started from this browser session. Start again."))
    given, params = _params(system_key, args)
    if not given or not secrets.compare_digest(given, pending["value"]):
        get_redis().delete(_key(pending["value"]))
        raise HandshakeRefused(
            _(
                "The answer from %(system)s does not belong to the connection started in this browser, so "
                "nothing was connected. Start again.",
                system=system_name,
            )
        )
    attempt = _take(pending["value"])
    if attempt is None or attempt["user"] != current_user.id:
        raise HandshakeRefused(
            _(
                "This answer from %(system)s has already been used or is too old, so nothing was connected. "
                "Start again.",
                system=system_name,
            )
        )
    finish_kwargs = {}
    if attempt.get("code_verifier"):
        finish_kwargs = {"state": pending["value"], "code_verifier": attempt["code_verifier"]}
    return Attempt(system_key, attempt["sandbox"], params, finish_kwargs)
