"""Fault injection for the sandboxes, settable at runtime and shared by every process through Redis.

    PUT /sandbox/<system>/_faults   {"latency_ms": 200, "rate_429": 0.1, "retry_after": 2,
                                     "rate_500": 0.05, "rate_drop": 0.01, "next": ["429", "500", "drop"]}
    GET /sandbox/<system>/_faults   the current settings
    DELETE /sandbox/<system>/_faults   back to a healthy system

Rates are fractions of requests (random). "next" is a queue of outcomes forced on the next requests in
order (deterministic, for tests): "429", "500", "drop" (connection closed without an answer), "slow"
(latency_ms applied), "ok".
"""

import contextlib
import json
import random
import socket
import time

from flask import Blueprint, Response, jsonify, request

from portal.redis_client import get_redis

FIELDS = {"latency_ms": int, "rate_429": float, "retry_after": int, "rate_500": float, "rate_drop": float}
OUTCOMES = {"429", "500", "drop", "slow", "ok"}


# Marks the empty answer that stands for a hang-up when there is no socket to close (in-process calls):
# SandboxTransport turns it into the httpx error a real hang-up gives. Never reaches a real client.
DROPPED_HEADER = "X-Bogbro-Sandbox-Dropped"


class ConnectionDropped(Exception):
    """The sandbox hung up without answering (raised after shutting the socket, if there is one)."""


def _keys(system):
    return f"bogbro:sandbox:faults:{system}", f"bogbro:sandbox:faults:{system}:next"


def get_faults(system: str) -> dict:
    settings_key, next_key = _keys(system)
    redis = get_redis()
    raw = redis.get(settings_key)
    settings = json.loads(raw) if raw else {}
    settings["next"] = [item.decode() for item in redis.lrange(next_key, 0, -1)]
    return settings


def set_faults(system: str, settings: dict) -> dict:
    clean = {}
    for name, kind in FIELDS.items():
        if name in settings:
            value = kind(settings[name])
            if name.startswith("rate_") and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
            if value < 0:
                raise ValueError(f"{name} cannot be negative")
            clean[name] = value
    outcomes = settings.get("next", [])
    unknown = [outcome for outcome in outcomes if outcome not in OUTCOMES]
    if unknown:
        raise ValueError(f"unknown outcomes in next: {unknown}; use {sorted(OUTCOMES)}")
    settings_key, next_key = _keys(system)
    pipe = get_redis().pipeline()
    pipe.set(settings_key, json.dumps(clean))
    pipe.delete(next_key)
    if outcomes:
        pipe.rpush(next_key, *outcomes)
    pipe.execute()
    return get_faults(system)


def clear_faults(system: str) -> None:
    get_redis().delete(*_keys(system))


def _drop_connection():
    # Over a real socket (werkzeug's dev server, the tests' live_server, gunicorn) the client must see the
    # connection close with no byte of an answer: shut the socket down here, so whatever the server still
    # tries to write (dropped_response below) goes nowhere.
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionDropped("sandbox dropped the connection")


def dropped_response(exc: ConnectionDropped) -> Response:
    """The app's handler for ConnectionDropped: without it Flask would answer 500 with our error page
    (outside tests) and the drop would look like a server error. An empty, marked answer: over a socket it
    is never delivered (the socket is shut); in-process the transport raises on the mark."""
    response = Response(b"", status=500)
    response.headers[DROPPED_HEADER] = "1"
    response.headers["Connection"] = "close"
    return response


def apply_faults(system: str, bodies: dict | None = None):
    """before_request of a sandbox: maybe sleep, maybe fail, maybe hang up. `bodies` gives the vendor's own
    error body per injected status ("429", "500") where its clients read one."""
    if request.path.endswith("/_faults"):
        return None
    redis = get_redis()
    settings_key, next_key = _keys(system)
    forced = redis.lpop(next_key)
    raw = redis.get(settings_key)
    if forced is None and raw is None:
        return None
    settings = json.loads(raw) if raw else {}
    outcome = forced.decode() if forced else None
    if outcome is None:
        roll = random.random()
        for name, candidate in (("rate_drop", "drop"), ("rate_500", "500"), ("rate_429", "429")):
            if roll < settings.get(name, 0):
                outcome = candidate
                break
            roll -= settings.get(name, 0)
    latency = settings.get("latency_ms", 0)
    if latency and outcome in (None, "slow", "drop", "500"):
        time.sleep(latency / 1000)
    if outcome == "drop":
        _drop_connection()
    if outcome == "500":
        return Response(
            json.dumps(
                (bodies or {}).get("500", {"message": "Internal server error (injected by the sandbox)"})
            ),
            status=500,
            mimetype="application/json",
        )
    if outcome == "429":
        response = Response(
            json.dumps(
                (bodies or {}).get("429", {"message": "API calls quota exceeded! (injected by the sandbox)"})
            ),
            status=429,
            mimetype="application/json",
        )
        response.headers["Retry-After"] = str(settings.get("retry_after", 1))
        return response
    return None


def fault_admin_blueprint(system: str) -> Blueprint:
    bp = Blueprint(f"sandbox_faults_{system.replace('-', '_')}", __name__)

    @bp.route("/_faults", methods=["GET", "PUT", "DELETE"])
    def faults():
        if request.method == "DELETE":
            clear_faults(system)
            return jsonify(get_faults(system))
        if request.method == "PUT":
            try:
                return jsonify(set_faults(system, request.get_json(force=True) or {}))
            except (TypeError, ValueError) as exc:
                return jsonify({"message": str(exc)}), 400
        return jsonify(get_faults(system))

    return bp
